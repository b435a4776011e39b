# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_istio/http_route.py: the Gateway API backend's model of an HTTPRoute."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.canary.istio.plugins.module_utils._istio import http_route as hr
from ansible_collections.canary.istio.plugins.module_utils._istio.common import IstioSpecError

PARENT = {"group": "", "kind": "Service", "name": "reviews", "port": 9080}


def _route(name="reviews", rules=None, parents=(PARENT,), created="2026-01-01T00:00:00Z", namespace="prod"):
    return {"metadata": {"name": name, "namespace": namespace, "creationTimestamp": created},
            "spec": {"parentRefs": [dict(p) for p in parents],
                     "rules": rules if rules is not None else [{"backendRefs": [{"name": "reviews-v1", "port": 9080}]}]}}


JASON = {"matches": [{"headers": [{"name": "end-user", "value": "jason"}]}],
         "backendRefs": [{"name": "reviews-v2", "port": 9080}]}


def test_paths_and_version_services():
    assert hr.http_routes_path("prod") == "/apis/gateway.networking.k8s.io/v1/namespaces/prod/httproutes"
    assert hr.http_routes_path("prod", "reviews").endswith("/httproutes/reviews")
    assert hr.version_service("reviews", "v2") == "reviews-v2"
    assert hr.backend_version("reviews-v2", "reviews") == "v2"
    # A backend not named after the service stands for itself; "reviews-" alone is no version.
    assert hr.backend_version("ratings-v1", "reviews") == "ratings-v1"
    assert hr.backend_version("reviews-", "reviews") == "reviews-"


def test_the_routes_of_a_service_are_those_whose_parent_is_it_oldest_first():
    newer = _route("b-newer", created="2026-02-01T00:00:00Z")
    older = _route("z-older", created="2026-01-01T00:00:00Z")
    gateway = _route("gw", parents=({"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "public"},))
    core = _route("core", parents=(dict(PARENT, group="core"),), created="2026-03-01T00:00:00Z")
    other_ns = _route("other", parents=(dict(PARENT, namespace="test"),))
    other_service = _route("ratings", parents=(dict(PARENT, name="ratings"),))
    found = hr.routes_of_service([newer, gateway, core, older, other_ns, other_service], "reviews", "prod")
    assert [r["metadata"]["name"] for r in found] == ["z-older", "b-newer", "core"]
    assert hr.route_service(gateway, "prod") == "gw"  # a Gateway's route weighs the versions of its own name
    assert hr.route_service(older, "prod") == "reviews"


@pytest.mark.parametrize("matches,catch_all", [
    (None, True),
    ([{}], True),
    ([{"path": {"type": "PathPrefix", "value": "/"}}], True),
    ([{"path": {"type": "PathPrefix", "value": "/api"}}], False),
    ([{"path": {"type": "Exact", "value": "/"}}], False),
    ([{"method": "GET"}], False),
    ([{"queryParams": [{"name": "beta", "value": "1"}]}], False),
    ([{"headers": [{"name": "end-user", "value": "jason"}]}, {}], True),  # one match of the rule holds for all
])
def test_the_catch_all_rule_is_the_one_whose_match_holds_no_condition(matches, catch_all):
    rule = {"backendRefs": [{"name": "reviews-v1"}]}
    if matches is not None:
        rule["matches"] = matches
    spec = {"rules": [JASON, rule]}
    if catch_all:
        assert hr.find_catch_all_rule(spec) == 1
    else:
        with pytest.raises(IstioSpecError) as err:
            hr.find_catch_all_rule(spec)
        assert err.value.option == "name" and "takes every request" in str(err.value)


def test_backend_weights_are_relative_with_one_as_default():
    assert hr.backend_weights({"backendRefs": [{"name": "reviews-v1"}]}, "reviews") == {"v1": 100}
    assert hr.backend_weights({"backendRefs": [{"name": "reviews-v1", "weight": 9}, {"name": "reviews-v2"}]},
                              "reviews") == {"v1": 90, "v2": 10}
    assert hr.backend_weights({"backendRefs": [{"name": "reviews-v1", "weight": 0}, {"name": "reviews-v2", "weight": 0}]},
                              "reviews") == {"v1": 0, "v2": 0}
    three = hr.backend_weights({"backendRefs": [{"name": "reviews-%s" % v} for v in ("v1", "v2", "v3")]}, "reviews")
    assert three == {"v1": 33, "v2": 33, "v3": 33}


def test_setting_weights_changes_the_catch_all_backends_only():
    spec = _route(rules=[copy.deepcopy(JASON),
                         {"filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x", "value": "1"}]}}],
                          "backendRefs": [{"name": "reviews-v1", "port": 9080, "weight": 1,
                                           "filters": [{"type": "ResponseHeaderModifier"}]}]}])["spec"]
    new = hr.set_backend_weights(spec, {"v1": 90, "v2": 10}, "reviews")
    assert new["rules"][0] == JASON and new["parentRefs"] == spec["parentRefs"]
    assert new["rules"][1]["filters"] == spec["rules"][1]["filters"]
    assert new["rules"][1]["backendRefs"] == [
        {"name": "reviews-v1", "port": 9080, "weight": 90, "filters": [{"type": "ResponseHeaderModifier"}]},
        {"name": "reviews-v2", "port": 9080, "weight": 10},
    ]
    assert spec["rules"][1]["backendRefs"][0]["weight"] == 1  # the input is not changed
    # Promotion: the old version's backend goes; the same weights again change nothing.
    promoted = hr.set_backend_weights(new, {"v2": 100}, "reviews")
    assert promoted["rules"][1]["backendRefs"] == [{"name": "reviews-v2", "port": 9080, "weight": 100}]
    assert hr.set_backend_weights(promoted, {"v2": 100}, "reviews") == promoted
    # A rollback keeps the canary at 0 (Istio drops it), in the rule's own order.
    back = hr.set_backend_weights(new, {"v2": 0, "v1": 100}, "reviews")
    assert [(b["name"], b["weight"]) for b in back["rules"][1]["backendRefs"]] == [("reviews-v1", 100), ("reviews-v2", 0)]


def test_rules_that_cannot_be_weighted_are_refused_naming_why():
    with pytest.raises(IstioSpecError, match="no backendRefs"):
        hr.set_backend_weights({"rules": [{"filters": [{"type": "RequestRedirect"}]}]}, {"v1": 100}, "reviews")
    with pytest.raises(IstioSpecError, match="'bucket', which are not Services"):
        hr.set_backend_weights({"rules": [{"backendRefs": [{"group": "example.com", "kind": "Bucket", "name": "bucket"}]}]},
                               {"v1": 100}, "reviews")
    with pytest.raises(IstioSpecError, match="at most 16 backends"):
        hr.set_backend_weights({"rules": [{"backendRefs": [{"name": "reviews-v1"}]}]},
                               {"v%d" % i: (100 if i == 0 else 0) for i in range(17)}, "reviews")
    with pytest.raises(IstioSpecError, match="sum to exactly 100"):
        hr.set_backend_weights({"rules": [{"backendRefs": [{"name": "reviews-v1"}]}]}, {"v1": 90}, "reviews")


def test_a_host_routed_by_both_kinds_is_a_problem_naming_both():
    assert hr.mixed_routing_problem("reviews", [], ["reviews"]) is None
    assert hr.mixed_routing_problem("reviews", ["reviews"], []) is None
    problem = hr.mixed_routing_problem("reviews", ["reviews-route"], ["reviews-vs"])
    assert problem.startswith("host 'reviews' is routed by HTTPRoute 'reviews-route' and by VirtualService 'reviews-vs'")
    with pytest.raises(IstioSpecError) as err:
        hr.refuse_mixed_routing("reviews", ["reviews-route"], ["reviews-vs"])
    assert err.value.option == "name" and str(err.value).endswith("or set force=true to write anyway")
    hr.refuse_mixed_routing("reviews", [], ["reviews-vs"])


def test_the_gateway_model_reads_plain_traffic_from_the_oldest_routes_catch_all():
    older = _route("reviews", rules=[copy.deepcopy(JASON),
                                     {"backendRefs": [{"name": "reviews-v1", "weight": 90}, {"name": "reviews-v2", "weight": 10}]}])
    younger = _route("beta", created="2026-05-01T00:00:00Z",
                     rules=[{"matches": [{"headers": [{"name": "x-beta", "value": "1"}]}], "backendRefs": [{"name": "reviews-v3"}]},
                            {"backendRefs": [{"name": "reviews-v1"}]}])
    model = hr.gateway_routing("reviews", "prod", [older, younger])
    assert model["http_route"] == "reviews" and model["http_routes"] == ["reviews", "beta"]
    assert model["version_weights"] == {"v1": 90.0, "v2": 10.0} and model["default_weights"] == {"v1": 90, "v2": 10}
    assert model["catch_all"]["label"] == "HTTPRoute 'reviews' rule #1"
    # Every rule that sends a version requests, header rules of younger routes included.
    assert model["serving"] == {"v2": ["HTTPRoute 'reviews' rule #0", "HTTPRoute 'reviews' rule #1"],
                                "v1": ["HTTPRoute 'reviews' rule #1", "HTTPRoute 'beta' rule #1"],
                                "v3": ["HTTPRoute 'beta' rule #0"]}
    assert model["problems"] == []


def test_the_gateway_model_names_what_leaves_plain_traffic_without_a_pod():
    no_catch_all = hr.gateway_routing("reviews", "prod", [_route(rules=[copy.deepcopy(JASON)])])
    assert no_catch_all["catch_all"] is None and "plain traffic gets 404" in no_catch_all["problems"][0]
    all_zero = hr.gateway_routing("reviews", "prod", [_route(rules=[{"backendRefs": [{"name": "reviews-v1", "weight": 0}]}])])
    assert all_zero["version_weights"] == {"v1": 0.0} and "answers plain traffic with 500" in all_zero["problems"][0]
    assert hr.gateway_routing("reviews", "prod", [])["http_route"] is None


def test_the_routing_object_path_follows_the_kind():
    assert hr.routing_path("HTTPRoute", None, "prod", "reviews") == hr.http_routes_path("prod", "reviews")
    assert hr.routing_path("VirtualService", "v1beta1", "prod", "reviews") == \
        "/apis/networking.istio.io/v1beta1/namespaces/prod/virtualservices/reviews"
