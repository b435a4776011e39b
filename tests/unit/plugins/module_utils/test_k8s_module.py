# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_k8s/module.py: a module's Kubernetes client, its failures and its masked secrets."""

from __future__ import annotations

import json

import pytest

from ansible_collections.canary.istio.plugins.module_utils._k8s.errors import K8sConfigError
from ansible_collections.canary.istio.plugins.module_utils._k8s.module import client_from_module, client_from_params
from ansible_collections.canary.istio.tests.unit.plugins.module_utils.k8s_fakes import (
    PASSWORD,
    TOKEN,
    ansible_module,
    module_output,
    two_contexts,
    write_kubeconfig,
)


class TestClientFromModule:
    def test_client_from_module_fails_with_the_option_and_no_secret(self, tmp_path, capsys, monkeypatch):
        with ansible_module({"kubeconfig": two_contexts(), "context": "nope"}, monkeypatch) as module:
            result = module_output(lambda: client_from_module(module), capsys)
        assert result["failed"] and result["option"] == "context"
        assert "context 'nope' not found" in result["msg"]
        assert TOKEN not in json.dumps(result) and PASSWORD not in json.dumps(result)
        missing = tmp_path / "dir" / "kc-missing"
        with ansible_module({"kubeconfig": str(missing)}, monkeypatch) as module:
            result = module_output(lambda: client_from_module(module), capsys)
        assert result["option"] == "kubeconfig"
        assert "'kc-missing'" in result["msg"] and str(missing.parent) in result["msg"]  # readable despite no_log

    def test_client_from_module_masks_secrets_read_from_files(self, tmp_path, capsys, monkeypatch):
        kc = write_kubeconfig(tmp_path / "kc", two_contexts())
        with ansible_module({"kubeconfig": str(kc), "context": "b"}, monkeypatch) as module:
            client = client_from_module(module)
            assert client.server == "https://b.example:6443"
            # The password came from a file, not from a no_log option: it is masked all the same.
            warned = capsys.readouterr().err  # in a controller process (pytest) warnings are displayed at once
            result = module_output(lambda: module.exit_json(changed=False, echoed=f"password is {PASSWORD}"), capsys)
        client.close()
        assert PASSWORD not in json.dumps(result) and result["echoed"] == "password is ********"
        # insecure-skip-tls-verify in context b: said as a warning
        warnings_seen = warned + json.dumps(result.get("warnings", []))
        assert "TLS certificate verification is off for https://b.example:6443" in warnings_seen


KEY = "df-key-8c1d2e3f4a5b6c7d"


class TestClientFromParams:
    def test_kubernetes_token_with_a_line_break_is_refused_by_name(self) -> None:
        with pytest.raises(K8sConfigError) as info:
            client_from_params({"host": "https://k.example:6443", "api_key": KEY[:6] + "\n" + KEY[6:]}, environ={})
        assert info.value.option == "api_key" and "a line break" in str(info.value)
        assert KEY[:6] not in str(info.value)
