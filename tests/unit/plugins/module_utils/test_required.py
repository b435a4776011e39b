# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_required.py: every module refuses a blank required option, naming it, before any request."""

from __future__ import annotations

import importlib

import pytest

from ansible_collections.canary.istio.plugins.module_utils._required import blank_required
from ansible_collections.canary.istio.tests.unit.plugins.modules.module_main import run_main


class TestBlankRequired:
    def test_blank_required_reads_the_spec(self):
        spec = {"name": {"type": "str", "required": True}, "note": {"type": "str"}, "count": {"type": "int", "required": True}}
        assert blank_required(spec, {"name": "x", "note": "", "count": 0}) is None
        assert blank_required(spec, {"name": "  ", "note": "x", "count": 1}) == "name"


K8S = {"host": "https://127.0.0.1:1", "api_key": "token-not-used"}
GUANCE = {"url": "http://127.0.0.1:1", "api_key": "key-not-used"}

CASES = [
    ("traffic_split", dict(K8S, name=" ", namespace="prod", weights={"v1": 100}), "name"),
    ("traffic_split", dict(K8S, name="reviews", namespace="", weights={"v1": 100}), "namespace"),
    ("mesh_info", dict(K8S, service_host="", namespace="prod"), "service_host"),
    ("mesh_info", dict(K8S, service_host="reviews", namespace="prod", version_label=""), "version_label"),
    ("release_lock", dict(K8S, name="reviews", namespace="prod", owner=""), "owner"),
    ("release_lock", dict(K8S, name="reviews", namespace="prod", owner="me", ttl=10 ** 12), "ttl"),
    ("fault_injection", dict(K8S, name="reviews", namespace="prod", rule="", headers={"x": "1"},
                             delay={"fixed_delay": "1s"}), "rule"),
    ("destination_rule", dict(K8S, name="", namespace="prod", service_host="reviews"), "name"),
    ("virtual_service", dict(K8S, name="reviews", namespace="\t", hosts=["reviews"], default_subset="v1"), "namespace"),
    ("guance_event", dict(GUANCE, title=""), "title"),
    ("canary_analysis", dict(GUANCE, service="", namespace="prod", canary_version="v2"), "service"),
]


class TestEveryModule:
    @pytest.mark.parametrize("module, args, option", CASES, ids=["%s-%s" % (c[0], c[2]) for c in CASES])
    def test_a_blank_required_option_is_refused_naming_it(self, module, args, option, monkeypatch, capsys):
        main = importlib.import_module("ansible_collections.canary.istio.plugins.modules." + module).main
        result = run_main(main, args, monkeypatch, capsys, clear_env=("K8S_AUTH_", "GUANCE_"))[0]
        assert result["failed"] is True and result.get("option") == option, result
        assert result["msg"].startswith(option + ":")
