# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_k8s/options.py: the connection options, kubernetes.core's, and their values from the environment."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from ansible_collections.canary.istio.plugins.module_utils._k8s.options import (
    AUTH_ARG_SPEC,
    AUTH_ENV_VARS,
    auth_argument_spec,
    resolve_auth_params,
)
from ansible_collections.canary.istio.tests.unit.plugins.module_utils.doc_fragment_specs import (
    _doc_normalized,
    _fragment_options,
    _spec_for_doc,
)


def _kubernetes_core_args_common():
    """kubernetes.core's own args_common.py, as shipped in the `ansible` package."""
    import ansible

    path = Path(ansible.__file__).resolve().parents[1] / "ansible_collections/kubernetes/core/plugins/module_utils/args_common.py"
    if not path.is_file():
        pytest.skip("kubernetes.core is not installed next to ansible-core")
    spec = importlib.util.spec_from_file_location("kubernetes_core_args_common", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _normalized(spec: dict) -> dict:
    out = {}
    for name, option in spec.items():
        out[name] = {
            "type": option.get("type", "str"),
            "aliases": sorted(option.get("aliases", [])),
            "no_log": bool(option.get("no_log")),
            "elements": option.get("elements"),
            "options": _normalized(option["options"]) if option.get("options") else None,
        }
    return out


class TestArgumentSpec:
    def test_auth_arg_spec_is_kubernetes_core_s(self):
        theirs = _kubernetes_core_args_common().AUTH_ARG_SPEC
        assert _normalized(AUTH_ARG_SPEC) == _normalized(theirs)

    def test_env_var_names_are_kubernetes_core_s(self):
        # kubernetes.core reads K8S_AUTH_<option> then K8S_AUTH_<client attribute> (AUTH_ARG_MAP).
        arg_map = _kubernetes_core_args_common().AUTH_ARG_MAP
        for attribute, option in arg_map.items():
            if option == "proxy_headers":
                continue
            expected = [f"K8S_AUTH_{option.upper()}"]
            if attribute != option:
                expected.append(f"K8S_AUTH_{attribute.upper()}")
            assert list(AUTH_ENV_VARS[option]) == expected

    def test_k8s_auth_fragment_documents_the_arg_spec(self):
        options = _fragment_options("k8s_auth")
        assert _doc_normalized(options) == _spec_for_doc(AUTH_ARG_SPEC)
        for name, env_vars in AUTH_ENV_VARS.items():
            text = " ".join(options[name]["description"])
            for var in env_vars:
                assert f"E({var})" in text, f"{name} does not document {var}"

    def test_auth_argument_spec_copies_and_merges(self):
        spec = auth_argument_spec({"name": {"type": "str", "required": True}})
        assert spec["name"] == {"type": "str", "required": True}
        assert set(spec) == set(AUTH_ARG_SPEC) | {"name"}
        spec["validate_certs"]["aliases"].append("oops")
        assert AUTH_ARG_SPEC["validate_certs"]["aliases"] == ["verify_ssl"]
        with pytest.raises(ValueError, match="'context' is already"):
            auth_argument_spec({"context": {"type": "str"}})


class TestValuesFromTheEnvironment:
    def test_params_win_over_environment(self):
        env = {"K8S_AUTH_HOST": "https://env:6443", "K8S_AUTH_VERIFY_SSL": "true", "K8S_AUTH_CONTEXT": "env"}
        auth = resolve_auth_params({"host": "https://param:6443", "validate_certs": False}, env)
        assert auth["host"] == "https://param:6443"
        assert auth["validate_certs"] is False  # an explicit false is not "unset"
        assert auth["context"] == "env"

    def test_environment_names_are_read_in_kubernetes_core_order(self):
        env = {
            "K8S_AUTH_VALIDATE_CERTS": "no", "K8S_AUTH_VERIFY_SSL": "yes",
            "K8S_AUTH_CA_CERT": "/first/ca.pem", "K8S_AUTH_SSL_CA_CERT": "/second/ca.pem",
            "K8S_AUTH_CERT_FILE": "/c.pem", "K8S_AUTH_KEY_FILE": "/k.pem",
        }
        auth = resolve_auth_params({}, env)
        assert auth["validate_certs"] is False
        assert auth["ca_cert"] == "/first/ca.pem"
        assert (auth["client_cert"], auth["client_key"]) == ("/c.pem", "/k.pem")
        env.pop("K8S_AUTH_VALIDATE_CERTS")
        env.pop("K8S_AUTH_CA_CERT")
        auth = resolve_auth_params({}, env)
        assert auth["validate_certs"] is True
        assert auth["ca_cert"] == "/second/ca.pem"

    @pytest.mark.parametrize("raw, expected", [
        ("0", False), ("false", False), ("FALSE", False), ("No", False),
        ("1", True), ("true", True), ("yes", True), ("anything", True),
    ])
    def test_boolean_environment_values(self, raw, expected):
        assert resolve_auth_params({}, {"K8S_AUTH_PERSIST_CONFIG": raw})["persist_config"] is expected

    def test_list_and_dict_options_from_environment(self):
        env = {
            "K8S_AUTH_IMPERSONATE_GROUPS": "ops, ,release,",
            "K8S_AUTH_PROXY_HEADERS_PROXY_BASIC_AUTH": "u:p",
            "K8S_AUTH_PROXY_HEADERS_USER_AGENT": "ua/1",
        }
        auth = resolve_auth_params({}, env)
        assert auth["impersonate_groups"] == ["ops", "release"]
        assert auth["proxy_headers"] == {"proxy_basic_auth": "u:p", "user_agent": "ua/1"}
        assert resolve_auth_params({}, {})["proxy_headers"] is None
