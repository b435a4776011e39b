# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_analysis/terms.py: a histogram bucket's le label read as a number."""

from __future__ import annotations

import math

from ansible_collections.canary.istio.plugins.module_utils._analysis import terms as an_terms


def test_parse_le() -> None:
    assert an_terms.parse_le("+Inf") == math.inf
    assert an_terms.parse_le("1.8e+06") == 1800000.0
    assert an_terms.parse_le("0.5") == 0.5
    assert an_terms.parse_le(None) is None
    assert an_terms.parse_le("abc") is None
