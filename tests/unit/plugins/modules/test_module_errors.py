# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every module fails the one way (plugins/module_utils/_errors.py): a message naming the option,
``option`` in the result, no traceback, and nothing sent to a server."""

from __future__ import annotations

import pytest

from ansible_collections.canary.istio.plugins.modules import (
    destination_rule, fault_injection, mesh_info, release_lock, traffic_split, version_deployment, virtual_service)
from ansible_collections.canary.istio.tests.unit.plugins.modules.module_main import run_main

# No server listens here: a module that sent a request would fail with "cannot reach", not the refusal.
CONNECTION = {"host": "https://127.0.0.1:1", "api_key": "token-that-is-never-sent"}
BAD_NAMESPACE = "team/reviews"
CASES = {
    "version_deployment": (version_deployment.main, {"app": "reviews", "version": "v2", "from_version": "v1"}),
    "traffic_split": (traffic_split.main, {"name": "reviews", "weights": {"v1": 90, "v2": 10}}),
    "fault_injection": (fault_injection.main, {"name": "reviews", "rule": "slow", "headers": {"x-test": "1"},
                                               "delay": {"fixed_delay": "1s"}}),
    "destination_rule": (destination_rule.main, {"name": "reviews", "service_host": "reviews",
                                                 "subsets": [{"name": "v1", "labels": {"version": "v1"}}]}),
    "virtual_service": (virtual_service.main, {"name": "reviews", "hosts": ["reviews"], "default_subset": "v1"}),
    "release_lock": (release_lock.main, {"name": "reviews", "owner": "me"}),
    "mesh_info": (mesh_info.main, {"service_host": "reviews"}),
}


@pytest.mark.parametrize("module", sorted(CASES))
def test_a_namespace_that_cannot_be_in_a_rest_path_is_refused_naming_it(module, monkeypatch, capsys):
    main, args = CASES[module]
    result, err = run_main(main, dict(args, namespace=BAD_NAMESPACE, **CONNECTION), monkeypatch, capsys,
                           clear_env=("K8S_AUTH_",))
    assert result["failed"] and result["option"] == "namespace", result
    assert result["msg"].startswith("namespace must be a non-empty Kubernetes name without '/'"), result["msg"]
    assert "Traceback" not in err and "exception" not in result
