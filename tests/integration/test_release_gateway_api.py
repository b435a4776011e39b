"""A whole release on the Gateway API (canary_routing=gateway_api, or detected from an HTTPRoute
attached to the Service), on the sandbox with the simulator, which routes by HTTPRoutes as Istio
does in a mesh (GAMMA): the same steps, analysis, promotion and rollback as on a VirtualService.
"""
from __future__ import annotations

import pytest

from sandbox.api import collection_path

from release_runs import APP, HTTP_ROUTES, RATE, Release, healthy_versions, sim_post, weights  # pylint: disable=import-error

pytestmark = pytest.mark.integration


@pytest.fixture
def service_versions(endpoints):
    """(stable, canary) unique to the test, healthy, and valid in a Service's name (no '.')."""
    return healthy_versions(endpoints, separator="-")


def _route(rel: Release) -> dict:
    return rel.admin.get(f"{HTTP_ROUTES.format(ns=rel.namespace)}/{APP}")


def _service(rel: Release, version: str) -> dict:
    return rel.admin.get(f"{collection_path('Service', rel.namespace)}/{APP}-{version}", ok_missing=True)


def _no_istio_objects(rel: Release) -> None:
    for kind in ("VirtualService", "DestinationRule"):
        assert rel.admin.get(collection_path(kind, rel.namespace)).get("items") == [], kind


def test_a_release_on_the_gateway_api_creates_its_route_and_promotes(admin, namespace, endpoints, service_versions,
                                                                     release_kubeconfig):
    stable, canary = service_versions
    rel = Release(admin, endpoints, namespace, stable, canary).wait_ready()
    rel.traffic(RATE)
    run = rel.start(release_kubeconfig, rel.analysis("guance"), canary_routing="gateway_api").finish()
    run.assert_promoted()
    route = _route(rel)
    assert route["spec"]["parentRefs"] == [{"group": "", "kind": "Service", "name": APP}]
    assert weights(admin, namespace) == {canary: 100}
    # Each version had its own Service (selecting its pods); the retired one's is gone with it.
    assert _service(rel, canary)["spec"]["selector"] == {"app": APP, "version": canary}
    assert not _service(rel, stable)
    _no_istio_objects(rel)
    # The analysis judged the canary on the requests the route sent it.
    result = run.last_analysis()
    assert result["verdict"] == "pass" and result["step_weight"] == 100, result
    assert f"traffic now: {canary} 100% (HTTPRoute '{APP}' rule #0)" in run.out


def test_a_failing_canary_on_a_detected_http_route_is_routed_back_by_the_analysis(
        admin, namespace, endpoints, service_versions, release_kubeconfig):
    stable, canary = service_versions
    rel = Release(admin, endpoints, namespace, stable, canary).wait_ready()
    # The user's own route: the stable version's Service, and jason's rule kept apart.
    admin.apply_manifest([{"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"{APP}-{stable}"},
                           "spec": {"selector": {"app": APP, "version": stable}, "ports": [{"name": "http", "port": 9080}]}},
                          {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": APP},
                           "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": APP, "port": 9080}],
                                    "rules": [{"matches": [{"headers": [{"name": "end-user", "value": "jason"}]}],
                                               "backendRefs": [{"name": f"{APP}-{stable}", "port": 9080}]},
                                              {"backendRefs": [{"name": f"{APP}-{stable}", "port": 9080}]}]}}], namespace)
    jason_rule = _route(rel)["spec"]["rules"][0]
    rel.profile(canary, error_rate=0.3)
    rel.traffic(RATE)
    run = rel.start(release_kubeconfig, rel.analysis("guance")).finish()  # no canary_routing: detected
    assert run.code != 0, run.out[-3000:]
    assert f"Rolled back: 100% of traffic is on {stable}" in run.out, run.out[-3000:]
    assert weights(admin, namespace) == {stable: 100, canary: 0}
    assert run.weights_seen == [50, 0], run.seen
    result = run.last_analysis()
    assert result["verdict"] == "fail" and result["rollback"]["weights"] == {stable: 100, canary: 0}, result
    assert result["rollback"]["kind"] == "HTTPRoute" and result["rollback"]["changed"], result["rollback"]
    assert _route(rel)["spec"]["rules"][0] == jason_rule
    _no_istio_objects(rel)


def test_an_ab_step_for_jason_on_the_gateway_api_is_judged_on_his_requests_then_the_weights_follow(
        admin, namespace, endpoints, service_versions, release_kubeconfig):
    stable, canary = service_versions
    rel = Release(admin, endpoints, namespace, stable, canary).wait_ready()
    sim_post(endpoints, "traffic", {"cluster": "sandbox-1", "namespace": namespace, "service": APP, "rate": RATE,
                                    "jason_share": 0.3})
    run = rel.start(release_kubeconfig, rel.analysis("guance"), canary_routing="gateway_api",
                    canary_steps=[{"match": {"headers": {"end-user": {"exact": "jason"}}}}, 50, 100]).finish()
    run.assert_promoted_after([0, 50, 100])
    _preview, ab, *rest = run.analysis_results()
    # jason's requests reached the canary through the A/B rule while plain traffic stayed on the stable version.
    assert ab["step_weight"] is None and ab["verdict"] == "pass", ab["reason"]
    assert ab["rounds"][-1]["numbers"][canary]["request_count"] >= 10, ab["rounds"][-1]["numbers"]
    assert [r["step_weight"] for r in rest] == [50, 100]
    assert [r.get("name") for r in _route(rel)["spec"]["rules"]] == [None]  # the promotion removed the A/B rule


@pytest.mark.parametrize("overrides,words", [
    ({"canary_sticky": 600}, "canary_sticky: sticky sessions are written to VirtualServices only"),
    ({"canary_version": "v2.1"}, "canary_version: on the Gateway API each version is served by Service reviews-<version>"),
])
def test_what_the_gateway_api_backend_does_not_write_is_refused_before_any_change(
        admin, namespace, endpoints, service_versions, release_kubeconfig, overrides, words):
    stable, canary = service_versions
    rel = Release(admin, endpoints, namespace, stable, canary).wait_ready()
    run = rel.start(release_kubeconfig, rel.analysis("guance"), canary_routing="gateway_api", **overrides).finish()
    assert run.code != 0 and words in " ".join(run.out.split()), run.out[-3000:]
    assert not admin.get(f"{HTTP_ROUTES.format(ns=namespace)}/{APP}", ok_missing=True)
    assert not _service(rel, stable) and not _service(rel, canary)
    _no_istio_objects(rel)


def test_a_release_of_the_other_kind_is_refused_on_a_host_already_routed(
        admin, namespace, endpoints, service_versions, release_kubeconfig):
    stable, canary = service_versions
    rel = Release(admin, endpoints, namespace, stable, canary).wait_ready()
    admin.apply_manifest([{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": APP},
                           "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": APP}],
                                    "rules": [{"backendRefs": [{"name": f"{APP}-{stable}", "port": 9080}]}]}}], namespace)
    before = _route(rel)
    run = rel.start(release_kubeconfig, rel.analysis("guance"), canary_routing="virtual_service").finish()
    said = " ".join(run.out.split())
    assert run.code != 0 and f"canary_routing: {APP} is routed by HTTPRoute {APP}" in said, run.out[-3000:]
    assert "Set canary_routing=gateway_api" in said
    _no_istio_objects(rel)
    assert _route(rel) == before
