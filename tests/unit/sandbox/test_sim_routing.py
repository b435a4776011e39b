"""Routing as Envoy does it: bookinfo manifests and hand-made rules against hand-made pods."""
from __future__ import annotations

import math
import random
from collections import Counter

import pytest
import yaml

from sandbox import versions
from sandbox.sim import bookinfo
from sandbox.sim.routing import Mesh, Request, parse_duration_ms, route_request, workload_of

NETWORKING = versions.BOOKINFO_DIR / "networking"
JASON = {"end-user": "jason"}


def manifest(name: str) -> list[dict]:
    path = NETWORKING / f"{name}.yaml"
    if not path.is_file():
        pytest.skip(f"bookinfo fixture {path} missing: run `python -m sandbox build`")
    with path.open(encoding="utf-8") as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc]


def mesh_of(*names: str, not_ready: tuple[str, ...] = (), extra: tuple[dict, ...] = ()) -> Mesh:
    objects = [obj for name in names for obj in manifest(name)] + list(extra)
    return Mesh("bookinfo",
                virtual_services=[o for o in objects if o["kind"] == "VirtualService"],
                destination_rules=[o for o in objects if o["kind"] == "DestinationRule"],
                services=bookinfo.all_services(), pods=bookinfo.all_pods(not_ready=not_ready))


def versions(mesh: Mesh, request: Request, n: int, seed: int = 7) -> Counter:
    rng = random.Random(seed)
    return Counter(route_request(mesh, request, rng).version for _i in range(n))


def test_90_10_split_is_within_binomial_tolerance():
    mesh = mesh_of("virtual-service-reviews-90-10", "destination-rule-all")
    n = 4000
    got = versions(mesh, Request("reviews"), n)
    # 4 standard deviations of Binomial(4000, 0.1): 400 +- 76; a wrong split (e.g. 50/50, 80/20) lands far outside.
    tolerance = 4 * math.sqrt(n * 0.1 * 0.9)
    assert set(got) == {"v1", "v2"}
    assert abs(got["v2"] - 0.1 * n) <= tolerance, got
    assert got["v1"] + got["v2"] == n


def test_a_mesh_that_ignores_virtual_services_sends_to_every_ready_pod():
    mesh = mesh_of("virtual-service-reviews-90-10", "destination-rule-all")
    mesh.ignore_virtual_services = True
    got = versions(mesh, Request("reviews"), 3000)
    # bookinfo's reviews has one Ready pod per version: a third each, whatever the 90/10 says.
    assert set(got) == {"v1", "v2", "v3"}
    assert all(abs(count - 1000) <= 4 * math.sqrt(3000 / 3 * 2 / 3) for count in got.values()), got


def test_same_seed_same_choices_other_seed_differs():
    mesh = mesh_of("virtual-service-reviews-50-v3", "destination-rule-all")
    seq = [route_request(mesh, Request("reviews"), rng).version for rng in [random.Random(1)] for _i in range(50)]
    again = [route_request(mesh, Request("reviews"), rng).version for rng in [random.Random(1)] for _i in range(50)]
    other = [route_request(mesh, Request("reviews"), rng).version for rng in [random.Random(2)] for _i in range(50)]
    assert seq == again
    assert seq != other


def test_header_route_takes_exactly_the_matching_requests():
    mesh = mesh_of("virtual-service-reviews-jason-v2-v3", "destination-rule-all")
    rng = random.Random(3)
    for i in range(400):
        jason = i % 3 == 0
        headers = dict(JASON) if jason else ({"end-user": "jasonx"} if i % 3 == 1 else {})
        got = route_request(mesh, Request("reviews", headers=headers), rng)
        assert got.version == ("v2" if jason else "v3"), (headers, got)


def test_delay_for_jason_only():
    mesh = mesh_of("virtual-service-ratings-test-delay", "destination-rule-all")
    rng = random.Random(5)
    jason = [route_request(mesh, Request("ratings", "reviews-v2", JASON), rng) for _i in range(100)]
    others = [route_request(mesh, Request("ratings", "reviews-v2", {"end-user": "bob"}), rng) for _i in range(100)]
    assert all(r.delay_ms >= 7000 and r.reached_pod and r.version == "v1" for r in jason)
    assert all(r.delay_ms == 0 and r.reached_pod for r in others)


def test_abort_for_jason_is_500_without_a_pod():
    mesh = mesh_of("virtual-service-ratings-test-abort", "destination-rule-all")
    got = route_request(mesh, Request("ratings", "reviews-v2", JASON), random.Random(0))
    assert (got.status, got.pod, got.response_flags) == (500, None, "FI")
    assert route_request(mesh, Request("ratings", "reviews-v2"), random.Random(0)).status is None


def test_abort_percentage_is_honoured():
    vs = {"kind": "VirtualService", "metadata": {"name": "reviews"},
          "spec": {"hosts": ["reviews"], "http": [{"fault": {"abort": {"httpStatus": 503, "percentage": {"value": 25}}},
                                                  "route": [{"destination": {"host": "reviews", "subset": "v1"}}]}]}}
    mesh = mesh_of("destination-rule-all", extra=(vs,))
    rng = random.Random(11)
    n = 2000
    aborted = sum(route_request(mesh, Request("reviews"), rng).status == 503 for _i in range(n))
    assert abs(aborted - 0.25 * n) <= 4 * math.sqrt(n * 0.25 * 0.75)


def test_subset_without_ready_pod_is_503_uh():
    mesh = mesh_of("virtual-service-reviews-v3", "destination-rule-all", not_ready=("reviews-v3",))
    got = route_request(mesh, Request("reviews"), random.Random(0))
    assert (got.status, got.subset, got.response_flags) == (503, "v3", "UH")


def test_subset_missing_from_destination_rule_is_503_nr():
    mesh = mesh_of("virtual-service-reviews-v3", "destination-rule-reviews")
    mesh.destination_rules[0]["spec"]["subsets"] = [{"name": "v1", "labels": {"version": "v1"}}]
    got = route_request(mesh, Request("reviews"), random.Random(0))
    assert (got.status, got.response_flags) == (503, "NR")


def test_no_virtual_service_spreads_over_all_ready_pods():
    mesh = mesh_of(not_ready=("reviews-v1",))
    got = versions(mesh, Request("reviews"), 600)
    assert set(got) == {"v2", "v3"}
    assert min(got.values()) > 200


def test_uri_and_regex_matches_and_fallthrough_404():
    vs = {"kind": "VirtualService", "metadata": {"name": "reviews"},
          "spec": {"hosts": ["reviews.bookinfo.svc.cluster.local"], "http": [
              {"match": [{"uri": {"prefix": "/api"}, "headers": {"x-canary": {"regex": "ye[s]+"}}}],
               "route": [{"destination": {"host": "reviews", "subset": "v2"}}]},
              {"match": [{"uri": {"exact": "/reviews/1"}}], "route": [{"destination": {"host": "reviews", "subset": "v3"}}]}]}}
    mesh = mesh_of("destination-rule-all", extra=(vs,))
    rng = random.Random(0)
    assert route_request(mesh, Request("reviews", uri="/api/x", headers={"X-Canary": "yess"}), rng).version == "v2"
    assert route_request(mesh, Request("reviews", uri="/api/x", headers={"x-canary": "yes!"}), rng).version is None
    assert route_request(mesh, Request("reviews", uri="/reviews/1"), rng).version == "v3"
    assert route_request(mesh, Request("reviews", uri="/reviews/2"), rng).status == 404


def test_gateway_only_virtual_service_does_not_apply_to_the_mesh():
    vs = {"kind": "VirtualService", "metadata": {"name": "edge"},
          "spec": {"hosts": ["*"], "gateways": ["bookinfo-gateway"],
                   "http": [{"route": [{"destination": {"host": "reviews", "subset": "v3"}}]}]}}
    mesh = mesh_of("virtual-service-all-v1", "destination-rule-all", extra=(vs,))
    assert versions(mesh, Request("reviews"), 50) == Counter({"v1": 50})


def test_duration_and_workload_names():
    assert parse_duration_ms("7s") == 7000
    assert parse_duration_ms("0.5s") == 500
    assert parse_duration_ms("100ms") == 100
    with pytest.raises(ValueError, match="fixedDelay"):
        parse_duration_ms("7 seconds")
    assert workload_of(bookinfo.make_pod("reviews", "v2")) == "reviews-v2"


def _reviews_vs(spec: dict) -> dict:
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "reviews", "namespace": "bookinfo", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": spec}


def _release_spec(**step) -> dict:
    """The reviews VirtualService as the collection writes an A/B or shadow step (v1 keeps 100%)."""
    from ansible_collections.canary.istio.plugins.module_utils._istio.step_routes import set_release_routes

    start = {"hosts": ["reviews"], "http": [{"name": "default", "route": [{"destination": {"host": "reviews", "subset": "v1"}}]}]}
    return set_release_routes(start, {"v1": 100, "v2": 0}, None, canary="v2", **step)


def test_an_ab_step_sends_jason_alone_to_the_canary():
    spec = _release_spec(match={"headers": {"end-user": {"exact": "jason"}}})
    mesh = mesh_of("destination-rule-all", extra=(_reviews_vs(spec),))
    assert versions(mesh, Request("reviews", headers=JASON), 500) == Counter({"v2": 500})
    assert versions(mesh, Request("reviews", headers={"end-user": "ana"}), 500) == Counter({"v1": 500})


def test_a_cookie_ab_step_finds_the_cookie_among_others():
    spec = _release_spec(match={"headers": {"cookie": {"regex": "^(.*?;\\s*)?(user=jason)(;.*)?$"}}})
    mesh = mesh_of("destination-rule-all", extra=(_reviews_vs(spec),))
    assert versions(mesh, Request("reviews", headers={"cookie": "theme=dark; user=jason"}), 200) == Counter({"v2": 200})
    assert versions(mesh, Request("reviews", headers={"cookie": "user=jasonette"}), 200) == Counter({"v1": 200})


def test_a_mirror_copies_its_share_to_the_canary_and_the_answer_still_comes_from_stable():
    spec = _release_spec(mirror=25)
    mesh = mesh_of("destination-rule-all", extra=(_reviews_vs(spec),))
    rng = random.Random(3)
    routes = [route_request(mesh, Request("reviews"), rng) for _i in range(4000)]
    assert Counter(r.version for r in routes) == Counter({"v1": 4000})
    copies = [copy for r in routes for copy in r.mirrors]
    assert {c.version for c in copies} == {"v2"} and all(c.reached_pod for c in copies)
    assert abs(len(copies) - 1000) <= 4 * math.sqrt(4000 * 0.25 * 0.75), len(copies)


# --- Gateway API (GAMMA): HTTPRoutes whose parent is the Service ------------------------------

def _version_service(version: str) -> dict:
    return {"kind": "Service", "metadata": {"name": f"reviews-{version}", "namespace": "bookinfo"},
            "spec": {"selector": {"app": "reviews", "version": version}, "ports": [{"port": 9080, "name": "http"}]}}


def _http_route(name: str, rules: list[dict], created: str = "2026-01-01T00:00:00Z", parent: str = "reviews") -> dict:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": "bookinfo", "creationTimestamp": created},
            "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": parent, "port": 9080}], "rules": rules}}


def _gamma_mesh(*routes: dict, vs: tuple[dict, ...] = ()) -> Mesh:
    return Mesh("bookinfo", virtual_services=list(vs), destination_rules=[], http_routes=list(routes),
                services=bookinfo.all_services() + [_version_service(v) for v in ("v1", "v2", "v3")],
                pods=bookinfo.all_pods())


WEIGHTED = {"backendRefs": [{"name": "reviews-v1", "port": 9080, "weight": 90}, {"name": "reviews-v2", "port": 9080, "weight": 10}]}
JASON_RULE = {"matches": [{"headers": [{"name": "end-user", "value": "jason"}]}],
              "backendRefs": [{"name": "reviews-v3", "port": 9080}]}


def test_an_http_route_weighs_its_backend_services():
    got = versions(_gamma_mesh(_http_route("reviews", [WEIGHTED])), Request("reviews"), 4000)
    assert set(got) == {"v1", "v2"}
    assert abs(got["v2"] - 400) <= 4 * math.sqrt(4000 * 0.1 * 0.9), got


def test_the_rule_with_more_headers_goes_first_whatever_its_place():
    mesh = _gamma_mesh(_http_route("reviews", [WEIGHTED, JASON_RULE]))
    assert versions(mesh, Request("reviews", headers=JASON), 300) == Counter({"v3": 300})
    assert set(versions(mesh, Request("reviews", headers={"end-user": "ana"}), 300)) == {"v1", "v2"}


def test_routes_of_another_parent_or_a_virtual_service_leave_the_http_route_out():
    other = _http_route("ratings", [{"backendRefs": [{"name": "reviews-v3", "port": 9080}]}], parent="ratings")
    assert set(versions(_gamma_mesh(other), Request("reviews"), 200)) == {"v1", "v2", "v3"}  # plain Service
    vs = {"kind": "VirtualService", "metadata": {"name": "reviews", "creationTimestamp": "2026-01-01T00:00:00Z"},
          "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews"}}]}]}}
    mesh = _gamma_mesh(_http_route("reviews", [JASON_RULE]), vs=(vs,))
    assert set(versions(mesh, Request("reviews", headers=JASON), 200)) == {"v1", "v2", "v3"}


def test_all_zero_weights_answer_500_and_a_request_mirror_copies_its_percent():
    zero = {"backendRefs": [{"name": "reviews-v1", "port": 9080, "weight": 0}]}
    route = route_request(_gamma_mesh(_http_route("reviews", [zero])), Request("reviews"), random.Random(1))
    assert route.status == 500 and not route.reached_pod
    mirrored = dict(WEIGHTED, filters=[{"type": "RequestMirror",
                                        "requestMirror": {"backendRef": {"name": "reviews-v3", "port": 9080}, "percent": 50}}])
    rng = random.Random(2)
    routes = [route_request(_gamma_mesh(_http_route("reviews", [mirrored])), Request("reviews"), rng) for _i in range(2000)]
    copies = [copy for r in routes for copy in r.mirrors]
    assert {c.version for c in copies} == {"v3"} and abs(len(copies) - 1000) <= 4 * math.sqrt(500), len(copies)


def test_each_request_mirror_of_a_rule_copies_its_own_share_by_percent_or_fraction():
    mirrors = [{"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "reviews-v3", "port": 9080}, "percent": 100}},
               {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "reviews-v2", "port": 9080},
                                                           "fraction": {"numerator": 12500, "denominator": 100000}}}]
    rng = random.Random(3)
    mesh = _gamma_mesh(_http_route("reviews", [dict(WEIGHTED, filters=mirrors)]))
    routes = [route_request(mesh, Request("reviews"), rng) for _i in range(4000)]
    by_version = {}
    for copy in (c for r in routes for c in r.mirrors):
        by_version[copy.version] = by_version.get(copy.version, 0) + 1
    assert by_version["v3"] == 4000  # every request, whatever the other filter drew
    assert abs(by_version["v2"] - 500) <= 4 * math.sqrt(4000 * 0.125 * 0.875), by_version
