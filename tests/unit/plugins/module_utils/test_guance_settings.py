# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_guance/settings.py: where Guance is, the key it needs, and the guance doc fragment."""

from __future__ import annotations

import pytest
import yaml

from ansible_collections.canary.istio.plugins.doc_fragments.guance import ModuleDocFragment
from ansible_collections.canary.istio.plugins.module_utils._guance import errors as guance_errors
from ansible_collections.canary.istio.plugins.module_utils._guance import settings as guance_settings


class TestWhereGuanceIs:
    def test_base_url_from_site_or_url(self) -> None:
        assert guance_settings.base_url(site="cn1") == "https://openapi.guance.com"
        assert guance_settings.base_url(site="us1") == "https://us1-openapi.guance.com"
        assert guance_settings.base_url(site="cn1", url="https://guance.example.com/") == "https://guance.example.com"
        assert guance_settings.base_url(api="datakit") == "http://localhost:9529"
        with pytest.raises(guance_errors.GuanceConfigError, match="unknown site 'mars'") as info:
            guance_settings.base_url(site="mars")
        assert info.value.option == "site"
        with pytest.raises(guance_errors.GuanceConfigError, match="set site") as info:
            guance_settings.base_url()
        assert info.value.option == "url"
        with pytest.raises(guance_errors.GuanceConfigError, match="must start with http"):
            guance_settings.base_url(url="ftp://x")

    def test_an_explicit_site_wins_over_guance_url_in_the_environment(self):
        env = {"GUANCE_URL": "http://127.0.0.1:9"}
        assert guance_settings.config_from_params({"site": "us1", "api_key": "k"}, env).url == guance_settings.SITES["us1"]
        assert guance_settings.config_from_params({"api_key": "k"}, env).url == "http://127.0.0.1:9"
        assert guance_settings.config_from_params({"url": "https://guance.example", "api_key": "k"}, env).url == "https://guance.example"


KEY = "tkn_0f9e8d7c6b5a4321secretKEY"


DF_KEY = "df-key-8c1d2e3f4a5b6c7d"


class TestTheKey:
    def test_openapi_needs_a_key(self) -> None:
        with pytest.raises(guance_errors.GuanceConfigError, match="needs api_key") as info:
            guance_settings.make_config(site="cn1")
        assert info.value.option == "api_key"
        assert KEY not in repr(guance_settings.make_config(site="cn1", api_key=KEY))

    @pytest.mark.parametrize("bad", [DF_KEY + "\n", DF_KEY[:5] + "\r\n" + DF_KEY[5:], DF_KEY + "\t"])
    def test_guance_key_with_a_control_character_is_refused_by_name(self, bad) -> None:
        with pytest.raises(guance_errors.GuanceConfigError) as info:
            guance_settings.make_config(url="https://guance.example", api_key=bad)
        assert info.value.option == "api_key"
        assert "api_key (or GUANCE_API_KEY) holds" in str(info.value)
        assert DF_KEY[:5] not in str(info.value) and DF_KEY not in repr(info.value)


class TestDocFragment:
    def test_doc_fragment_matches_the_argument_spec(self) -> None:
        documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
        assert set(documented) == set(guance_settings.GUANCE_ARG_SPEC)
        for name, spec in guance_settings.GUANCE_ARG_SPEC.items():
            assert documented[name]["type"] == spec["type"], name
            assert documented[name].get("default") == spec.get("default"), name
            assert documented[name].get("choices") == spec.get("choices"), name
        assert guance_settings.GUANCE_ARG_SPEC["api_key"]["no_log"] is True
