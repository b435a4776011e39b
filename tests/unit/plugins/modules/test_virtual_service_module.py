# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/modules/virtual_service.py: typed options, as Ansible validates them, into the VirtualService to write."""
# Not test_virtual_service.py: tests/integration has that name, and test names are unique (test_code_layout.py).

from __future__ import annotations

import copy

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.canary.istio.plugins.module_utils._istio.common import IstioSpecError
from ansible_collections.canary.istio.plugins.module_utils._istio.virtual_service import istio_http_routes
from ansible_collections.canary.istio.plugins.modules import virtual_service as vs


def validated(**params) -> dict:
    """Parameters as AnsibleModule hands them to the module: types converted, unset suboptions None."""
    params.setdefault("name", "reviews")
    params.setdefault("namespace", "prod")
    result = ArgumentSpecValidator(vs.argument_spec()).validate(params)
    assert result.error_messages == []
    return result.validated_parameters


def test_typed_route_options_become_istio_routes_without_the_nones_ansible_adds():
    params = validated(hosts=["reviews"], http=[
        {"name": "jason", "match": [{"headers": {"end-user": {"exact": "jason"}}, "uri": {"prefix": "/r"}, "port": "9080"}],
         "destinations": [{"subset": "v2"}], "headers": {"response": {"remove": "x-debug,x-trace"}}},
        {"destinations": [{"subset": "v1", "weight": "90"}, {"subset": "v2", "weight": 10}],
         "retries": {"attempts": "2", "retry_on": "5xx,reset"}, "fault": {"abort": {"http_status": "503"}}},
    ])
    obj = vs.wanted_virtual_service(None, params)
    assert obj == {
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "prod"},
        "spec": {"hosts": ["reviews"], "http": [
            {"name": "jason", "match": [{"headers": {"end-user": {"exact": "jason"}}, "uri": {"prefix": "/r"}, "port": 9080}],
             "route": [{"destination": {"host": "reviews", "subset": "v2"}}],
             "headers": {"response": {"remove": ["x-debug", "x-trace"]}}},
            {"route": [{"destination": {"host": "reviews", "subset": "v1"}, "weight": 90},
                       {"destination": {"host": "reviews", "subset": "v2"}, "weight": 10}],
             "retries": {"attempts": 2, "retryOn": "5xx,reset"},
             "fault": {"abort": {"httpStatus": 503, "percentage": {"value": 100}}}},
        ]},
    }


def test_nothing_to_write_when_the_live_object_already_matches_by_meaning():
    params = validated(hosts=["reviews"], http=[{"destinations": [{"subset": "v1", "weight": 50}, {"subset": "v2", "weight": 50}],
                                                 "mirror": {"subset": "v3"}, "mirror_percentage": 10}],
                       labels={"app": "reviews"})
    live = vs.wanted_virtual_service(None, params)
    live["metadata"].update(resourceVersion="7", labels={"app": "reviews", "team": "a"})
    live["spec"]["http"][0]["mirrorPercentage"]["value"] = 10.0  # a float from JSON
    live["spec"]["exportTo"] = ["."]
    assert vs.wanted_virtual_service(copy.deepcopy(live), params) is None


def test_an_update_keeps_resource_version_other_metadata_and_unknown_spec_fields():
    live = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "reviews", "namespace": "prod", "resourceVersion": "7", "labels": {"team": "a"}},
            "spec": {"hosts": ["reviews"], "tcp": [{"route": [{"destination": {"host": "reviews"}}]}],
                     "http": [{"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}]}}
    wanted = vs.wanted_virtual_service(copy.deepcopy(live), validated(hosts=["reviews"], default_subset="v2", labels={"app": 1}))
    assert wanted["metadata"] == {"name": "reviews", "namespace": "prod", "resourceVersion": "7", "labels": {"team": "a", "app": "1"}}
    assert wanted["spec"]["tcp"] == live["spec"]["tcp"]
    assert wanted["spec"]["http"] == [{"route": [{"destination": {"host": "reviews", "subset": "v2"}}]}]


@pytest.mark.parametrize("http, field, words", [
    ([{"name": "canary", "destinations": [{"subset": "v1", "weight": 80}, {"subset": "v2", "weight": 10}]}],
     "http[0] (route 'canary').destinations", "sum to 90 (v1=80, v2=10)"),
    ([{"destinations": [{"subset": "v1"}]}, {"destinations": [{"subset": "v1", "weight": 100}, {"subset": "v2"}]}],
     "http[1].destinations", "v2 has no weight"),
    ([{"destinations": [{"subset": "v1", "weight": 50}, {"subset": "v1", "host": "other", "weight": 50}]}, ], None, None),
    ([{"destinations": [{"host": "a", "weight": 50}, {"host": "b", "weight": 51}]}], "http[0].destinations", "(a=50, b=51)"),
    ([{"name": "x", "destinations": [{"subset": "v1"}]}, {"name": "x", "destinations": [{"subset": "v1"}]}], "http", "'x' is used more than once"),
    ([{"name": "slow", "destinations": [{"subset": "v1"}], "retries": {"per_try_timeout": "1500us"}}],
     "http[0] (route 'slow').retries.per_try_timeout", "millisecond precision"),
], ids=["sum-90-named", "missing-weight-unnamed", "same-subset-twice-is-fine", "hosts-as-keys", "duplicate-name", "sub-ms"])
def test_route_errors_name_the_route_by_position_and_name(http, field, words):
    params = validated(hosts=["reviews"], http=http)
    if field is None:
        assert istio_http_routes(params["http"], "reviews")[0]["route"][1]["destination"] == {"host": "other", "subset": "v1"}
        return
    with pytest.raises(IstioSpecError) as error:
        vs.wanted_virtual_service(None, params)
    assert error.value.option == field
    assert words in error.value.message
