# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_istio/api.py: the Istio API options as their doc fragment documents them, and REST paths."""

from __future__ import annotations

import pytest

from ansible_collections.canary.istio.plugins.module_utils._istio.api import (
    DESTINATION_RULES,
    ISTIO_API_ARG_SPEC,
    VIRTUAL_SERVICES,
    istio_path,
)
from ansible_collections.canary.istio.tests.unit.plugins.module_utils.doc_fragment_specs import (
    _doc_normalized,
    _fragment_options,
    _spec_for_doc,
)


class TestArgumentSpec:
    def test_istio_api_fragment_documents_the_arg_spec(self):
        assert _doc_normalized(_fragment_options("istio_api")) == _spec_for_doc(ISTIO_API_ARG_SPEC)


class TestPaths:
    @pytest.mark.parametrize("api_version, expected", [
        (None, "networking.istio.io/v1"),
        ("networking.istio.io/v1", "networking.istio.io/v1"),
        ("v1beta1", "networking.istio.io/v1beta1"),
        ("networking.istio.io/v1alpha3", "networking.istio.io/v1alpha3"),
    ])
    def test_istio_path(self, api_version, expected):
        assert istio_path(api_version, VIRTUAL_SERVICES, "prod", "reviews") == f"/apis/{expected}/namespaces/prod/virtualservices/reviews"
        assert istio_path(api_version, DESTINATION_RULES, "prod") == f"/apis/{expected}/namespaces/prod/destinationrules"

    def test_unknown_istio_version_names_the_option(self):
        with pytest.raises(ValueError, match="api_version must be one of"):
            istio_path("networking.istio.io/v2", VIRTUAL_SERVICES, "prod")
