# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The catch-all route of a bookinfo VirtualService, for the tests that run on every bookinfo
manifest (``bookinfo_virtual_service`` in tests/unit/conftest.py)."""

from __future__ import annotations

import pytest

from ansible_collections.canary.istio.plugins.module_utils._istio.common import IstioSpecError
from ansible_collections.canary.istio.plugins.module_utils._istio.traffic import find_catch_all_index, find_route_index


def _catch_all(spec):
    index = find_catch_all_index(spec)
    if index is None:
        with pytest.raises(IstioSpecError) as err:
            find_route_index(spec)
        assert err.value.option == "route"
        pytest.skip("not applicable: no catch-all route in this VirtualService (refusal checked)")
    return index
