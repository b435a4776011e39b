# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_errors.py: every module fails the one way: a message naming the option, no traceback."""

from __future__ import annotations

import pytest

from ansible_collections.canary.istio.plugins.module_utils._errors import fail_from_error
from ansible_collections.canary.istio.plugins.module_utils._istio.api import VIRTUAL_SERVICES, istio_path
from ansible_collections.canary.istio.plugins.module_utils._k8s.errors import K8sInvalidError
from ansible_collections.canary.istio.plugins.modules import virtual_service as virtual_service_module
from ansible_collections.canary.istio.plugins.modules import (
    destination_rule,
    fault_injection,
    mesh_info,
    release_lock,
    traffic_split,
    version_deployment,
)
from ansible_collections.canary.istio.tests.unit.plugins.module_utils.k8s_fakes import (
    TOKEN,
    ansible_module,
    client_for,
    module_output,
    virtual_service,
)
from ansible_collections.canary.istio.tests.unit.plugins.modules.module_main import run_main


class TestFailFromError:
    def test_fail_from_k8s_error_reports_status_and_causes(self, capsys, monkeypatch, api):
        body = virtual_service({"v1": 100})
        body["spec"] = "invalid"
        with pytest.raises(K8sInvalidError) as err:
            client_for(api).create(istio_path(None, VIRTUAL_SERVICES, "prod"), body)
        with ansible_module({"host": api.url, "api_key": TOKEN}, monkeypatch) as module:
            result = module_output(lambda: fail_from_error(module, err.value, "create VirtualService prod/reviews"), capsys)
        assert result["msg"].startswith("create VirtualService prod/reviews: POST /apis/networking.istio.io/v1/")
        assert (result["status"], result["reason"]) == (422, "Invalid")
        assert result["causes"] == [{"field": "spec", "message": "bad"}]


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
    "virtual_service": (virtual_service_module.main, {"name": "reviews", "hosts": ["reviews"], "default_subset": "v1"}),
    "release_lock": (release_lock.main, {"name": "reviews", "owner": "me"}),
    "mesh_info": (mesh_info.main, {"service_host": "reviews"}),
}


class TestEveryModule:
    @pytest.mark.parametrize("module", sorted(CASES))
    def test_a_namespace_that_cannot_be_in_a_rest_path_is_refused_naming_it(self, module, monkeypatch, capsys):
        main, args = CASES[module]
        result, err = run_main(main, dict(args, namespace=BAD_NAMESPACE, **CONNECTION), monkeypatch, capsys,
                               clear_env=("K8S_AUTH_",))
        assert result["failed"] and result["option"] == "namespace", result
        assert result["msg"].startswith("namespace must be a non-empty Kubernetes name without '/'"), result["msg"]
        assert "Traceback" not in err and "exception" not in result
