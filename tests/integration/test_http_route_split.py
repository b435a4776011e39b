"""canary.istio.traffic_split with kind=HTTPRoute on the sandbox's real API server (the Gateway API's
standard CRDs, installed by the sandbox): the weights of an HTTPRoute whose parent is the Service,
one Service per version; and the refusal of a host routed by both an HTTPRoute and a VirtualService.
"""
from __future__ import annotations

import copy

import pytest

from _routing_fixtures import Requests, canonical, create, deploy_app

pytestmark = pytest.mark.integration

ROUTES = "/apis/gateway.networking.k8s.io/v1/namespaces/%s/httproutes/reviews"

# The user's route: jason to v2 with a header set on the way, everyone else to v1.
REVIEWS_ROUTE = {
    "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
    "metadata": {"name": "reviews", "labels": {"team": "bookinfo"}},
    "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": "reviews", "port": 9080}],
             "rules": [{"matches": [{"headers": [{"name": "end-user", "value": "jason"}]}],
                        "filters": [{"type": "RequestHeaderModifier",
                                     "requestHeaderModifier": {"set": [{"name": "x-tester", "value": "yes"}]}}],
                        "backendRefs": [{"name": "reviews-v2", "port": 9080}]},
                       {"backendRefs": [{"name": "reviews-v1", "port": 9080}]}]},
}

CANARY_10 = dict(name="reviews", kind="HTTPRoute", stable="v1", canary="v2", canary_weight=10)


def version_service(version: str) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "reviews-%s" % version},
            "spec": {"selector": {"app": "reviews", "version": version}, "ports": [{"name": "http", "port": 9080}]}}


@pytest.fixture
def reviews_route(admin, namespace):
    """Ready v1 and v2 pods, a Service per version (v1, v2, v3; no v3 pod), and REVIEWS_ROUTE as stored."""
    deploy_app(admin, namespace, "reviews", ("v1", "v2"))
    for version in ("v1", "v2", "v3"):
        create(admin, namespace, version_service(version))
    return create(admin, namespace, REVIEWS_ROUTE)


def route_of(admin, namespace):
    return admin.get(ROUTES % namespace)


def test_a_step_sets_the_catch_all_backends_only_and_a_second_run_reads_once(admin, namespace, audit, reviews_route, module_runner):
    audit.mark()
    result = module_runner("traffic_split", namespace=namespace, **CANARY_10)
    requests = Requests(audit, namespace)
    assert result["changed"] is True, result
    assert result["route"] == 1 and result["previous_weights"] == {"v1": 100} and result["weights"] == {"v1": 90, "v2": 10}
    stored = route_of(admin, namespace)
    expected = copy.deepcopy(reviews_route["spec"])
    expected["rules"][1]["backendRefs"] = [
        {"group": "", "kind": "Service", "name": "reviews-v1", "port": 9080, "weight": 90},
        {"group": "", "kind": "Service", "name": "reviews-v2", "port": 9080, "weight": 10},
    ]
    assert canonical(stored["spec"]) == canonical(expected)
    assert stored["metadata"]["labels"] == {"team": "bookinfo"}
    # The route, the VirtualServices that would also route the host, the versions' Services and pods.
    assert requests.reads == [("get", "httproutes"), ("list", "virtualservices"), ("get", "services"), ("list", "pods"),
                              ("get", "services"), ("list", "pods")]
    assert requests.writes == [("update", "httproutes")]

    version = stored["metadata"]["resourceVersion"]
    audit.mark()
    again = module_runner("traffic_split", namespace=namespace, **CANARY_10)
    assert again["changed"] is False and again["weights"] == {"v1": 90, "v2": 10}, again
    assert Requests(audit, namespace).reads == [("get", "httproutes")] and Requests(audit, namespace).writes == []
    assert route_of(admin, namespace)["metadata"]["resourceVersion"] == version


def test_check_mode_previews_with_a_dry_run_and_diff_shows_the_spec(admin, namespace, audit, reviews_route, module_runner):
    audit.mark()
    result = module_runner("traffic_split", check=True, diff=True, namespace=namespace, **CANARY_10)
    assert result["changed"] is True and result["weights"] == {"v1": 90, "v2": 10}, result
    assert Requests(audit, namespace).dry_runs == [("update", "httproutes")]
    assert Requests(audit, namespace).writes == []
    assert route_of(admin, namespace)["spec"] == reviews_route["spec"]
    diff = result["diff"]
    assert diff["before_header"] == "HTTPRoute %s/reviews (spec)" % namespace
    assert [b["weight"] for b in diff["after"]["rules"][1]["backendRefs"]] == [90, 10]
    assert "metadata" not in diff["after"]


def test_promotion_and_rollback(admin, namespace, reviews_route, module_runner):
    module_runner("traffic_split", namespace=namespace, **CANARY_10)
    promoted = module_runner("traffic_split", namespace=namespace, name="reviews", kind="HTTPRoute", weights={"v2": 100})
    assert promoted["weights"] == {"v2": 100}, promoted
    assert [b["name"] for b in route_of(admin, namespace)["spec"]["rules"][1]["backendRefs"]] == ["reviews-v2"]
    back = module_runner("traffic_split", namespace=namespace, name="reviews", kind="HTTPRoute", stable="v1", canary="v2",
                         canary_weight=0, force=True)
    assert back["changed"] is True and back["weights"] == {"v1": 100, "v2": 0}, back
    # jason's own rule was never touched.
    assert route_of(admin, namespace)["spec"]["rules"][0] == reviews_route["spec"]["rules"][0]


@pytest.mark.parametrize("params,option,words", [
    (dict(canary="v9"), "canary", "version 'v9' has no Service of its own (reviews-v9"),
    (dict(canary="v3"), "canary", "version 'v3' has no Ready pod behind Service reviews-v3"),
    (dict(canary_sticky=600), "canary_sticky", "sticky sessions are written to VirtualServices only"),
    (dict(route="default"), "route", "catch-all rule"),
    (dict(canary="v3", canary_weight=0, canary_mirror=100), "canary", "version 'v3' has no Ready pod"),
])
def test_refusals_name_the_option_and_write_nothing(admin, namespace, audit, reviews_route, module_runner, params, option, words):
    audit.mark()
    result = module_runner("traffic_split", namespace=namespace, **dict(CANARY_10, **params))
    assert result.get("failed") is True and result["option"] == option, result
    assert words in result["msg"], result["msg"]
    assert route_of(admin, namespace) == reviews_route
    assert Requests(audit, namespace).writes == [] and Requests(audit, namespace).dry_runs == []


def test_force_routes_to_a_version_without_ready_pods_but_never_to_a_missing_service(admin, namespace, reviews_route, module_runner):
    forced = module_runner("traffic_split", namespace=namespace, force=True, **dict(CANARY_10, canary="v3"))
    assert forced["changed"] is True and forced["weights"] == {"v1": 90, "v3": 10}, forced
    missing = module_runner("traffic_split", namespace=namespace, force=True, **dict(CANARY_10, canary="v9"))
    assert missing.get("failed") is True and "no Service of its own" in missing["msg"], missing


def test_a_host_routed_by_both_kinds_is_refused_either_way_unless_forced(admin, namespace, audit, reviews_route, module_runner):
    create(admin, namespace, {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": "reviews"},
                              "spec": {"host": "reviews", "subsets": [{"name": v, "labels": {"version": v}} for v in ("v1", "v2")]}})
    vs = create(admin, namespace, {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "reviews-vs"},
                                   "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}]}})
    audit.mark()
    by_route = module_runner("traffic_split", namespace=namespace, **CANARY_10)
    assert by_route.get("failed") is True and by_route["option"] == "name", by_route
    assert "routed by HTTPRoute 'reviews' and by VirtualService 'reviews-vs'" in by_route["msg"]
    by_vs = module_runner("traffic_split", namespace=namespace, **dict(CANARY_10, name="reviews-vs", kind="VirtualService"))
    assert by_vs.get("failed") is True and "routed by HTTPRoute 'reviews' and by VirtualService 'reviews-vs'" in by_vs["msg"], by_vs
    assert Requests(audit, namespace).writes == []
    assert route_of(admin, namespace) == reviews_route
    assert admin.get("/apis/networking.istio.io/v1/namespaces/%s/virtualservices/reviews-vs" % namespace) == vs

    # The rollback forces its way back, whatever else routes the host.
    forced = module_runner("traffic_split", namespace=namespace, force=True, **CANARY_10)
    assert forced["changed"] is True, forced


def test_mesh_info_reads_the_http_route_as_the_hosts_routing(admin, namespace, reviews_route, module_runner):
    module_runner("traffic_split", namespace=namespace, **CANARY_10)
    found = module_runner("mesh_info", service_host="reviews", namespace=namespace,
                          release={"stable": "v1", "canary": "v2", "steps": [10, 50, 100]})
    assert found["routing_kind"] == "HTTPRoute" and found["http_routes"] == ["reviews"], found
    assert found["virtual_service"] is None
    assert found["version_weights"] == {"v1": 90.0, "v2": 10.0}
    assert found["traffic"] == "traffic now: v1 90%, v2 10% (HTTPRoute 'reviews' rule #1)"
    assert found["serving"]["v2"] == ["HTTPRoute 'reviews' rule #0", "HTTPRoute 'reviews' rule #1"]
    release = found["release"]
    assert (release["has_routing"], release["has_virtual_service"], release["live_weight"]) == (True, False, 10)
    assert release["steps_to_run"] == [10, 50, 100]

    create(admin, namespace, {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "other"},
                              "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews"}}]}]}})
    both = module_runner("mesh_info", service_host="reviews", namespace=namespace)
    assert both["routing_kind"] == "VirtualService"
    assert any(p.startswith("host 'reviews' is routed by HTTPRoute 'reviews' and by VirtualService 'other'") for p in both["problems"])


def test_an_ab_step_is_a_rule_for_jason_and_a_shadow_step_a_mirror_both_gone_with_the_next_weight(
        admin, namespace, reviews_route, module_runner):
    ab = module_runner("traffic_split", namespace=namespace, **dict(CANARY_10, canary_weight=0,
                                                                    canary_match={"cookie": "user=jason"}))
    assert ab["changed"] is True and ab["step_routes"] == {"match": "canary-match-v2", "mirror": None, "sticky": None}, ab
    rules = route_of(admin, namespace)["spec"]["rules"]
    assert rules[0]["name"] == "canary-match-v2" and rules[0]["backendRefs"][0]["name"] == "reviews-v2"
    assert rules[0]["matches"][0]["headers"][0]["name"] == "cookie"
    again = module_runner("traffic_split", namespace=namespace, **dict(CANARY_10, canary_weight=0,
                                                                       canary_match={"cookie": "user=jason"}))
    assert again["changed"] is False, again

    shadow = module_runner("traffic_split", namespace=namespace, **dict(CANARY_10, canary_weight=0, canary_mirror=25))
    assert shadow["step_routes"] == {"match": None, "mirror": 25, "sticky": None}, shadow
    catch_all = route_of(admin, namespace)["spec"]["rules"][-1]
    assert catch_all["filters"] == [{"type": "RequestMirror",
                                     "requestMirror": {"backendRef": {"group": "", "kind": "Service", "name": "reviews-v2",
                                                                      "port": 9080}, "percent": 25}}]
    assert [r.get("name") for r in route_of(admin, namespace)["spec"]["rules"]] == [None, None]  # the A/B rule went

    module_runner("traffic_split", namespace=namespace, **CANARY_10)
    assert route_of(admin, namespace)["spec"] == dict(reviews_route["spec"], rules=[
        reviews_route["spec"]["rules"][0],
        {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
         "backendRefs": [{"group": "", "kind": "Service", "name": "reviews-v1", "port": 9080, "weight": 90},
                         {"group": "", "kind": "Service", "name": "reviews-v2", "port": 9080, "weight": 10}]}])
