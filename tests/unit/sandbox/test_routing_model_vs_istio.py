"""The routing model (plugins/module_utils/_istio/routing.py) against Istio's own route computation.

Hypothesis generates sets of VirtualServices for one host (one or two of them, short, `name.ns` and
FQDN hosts, creation times that tie or not, routes with header, uri, port and name-only matches,
weighted destinations, mirrors, faults) and every generated case goes to the Istio route oracle (sandbox/route_oracle_go,
pilot's NewConfigGenTest + Routes): the routes a sidecar gets, in order, their weighted subsets,
mirrors and faults, which are catch-alls, and which one plain traffic takes must be the model's,
case for case.

Without the oracle binary this skips, except under CI or CANARY_ISTIO_REQUIRE_SANDBOX=1 (as `make
test` sets), where it fails.
"""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ansible_collections.canary.istio.plugins.module_utils._istio.routing import host_routing
from sandbox import route_oracle

NS = "prod"
FQDN = "reviews.prod.svc.cluster.local"
PORT = 9080
SUBSETS = ("v1", "v2", "v3")

SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "reviews", "namespace": NS},
           "spec": {"clusterIP": "10.96.0.10", "selector": {"app": "reviews"}, "ports": [{"name": "http", "port": PORT}]}}
RULE = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": "reviews", "namespace": NS},
        "spec": {"host": "reviews", "subsets": [{"name": s, "labels": {"version": s}} for s in SUBSETS]}}


@pytest.fixture(scope="module", autouse=True)
def oracle_built():
    if not route_oracle.available():
        reason = f"ISTIO ROUTE ORACLE NOT BUILT ({route_oracle.binary()} missing): run `make sandbox-build`"
        if os.environ.get("CI") or os.environ.get("CANARY_ISTIO_REQUIRE_SANDBOX"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


_match = st.sampled_from([
    {"headers": {"end-user": {"exact": "jason"}}},
    {"headers": {"end-user": {"exact": "alice"}}},
    {"headers": {"x-canary": {"prefix": "y"}}},
    {"name": "everyone"},
    {"uri": {"prefix": "/"}},
    {"uri": {"prefix": "/api"}},
    {"uri": {"exact": "/api/v1"}},
    {"uri": {"regex": ".*"}},
    {"port": PORT},
    {"port": 9090},
    {"port": 9090, "headers": {"end-user": {"exact": "jason"}}},
    {"headers": {"end-user": {"exact": "jason"}}, "uri": {"prefix": "/api"}},
])


@st.composite
def _destinations(draw) -> list[dict]:
    chosen = draw(st.lists(st.sampled_from(SUBSETS), min_size=1, max_size=2, unique=True))
    if len(chosen) == 1:
        return [{"destination": {"host": draw(st.sampled_from(["reviews", FQDN])), "subset": chosen[0]}}]
    first = draw(st.integers(0, 100))
    return [{"destination": {"host": "reviews", "subset": chosen[0]}, "weight": first},
            {"destination": {"host": "reviews", "subset": chosen[1]}, "weight": 100 - first}]


@st.composite
def _http_route(draw, index: int) -> dict:
    route: dict = {"name": f"r{index}"} if draw(st.booleans()) else {}
    matches = draw(st.lists(_match, max_size=2))
    if matches:
        route["match"] = matches
    route["route"] = draw(_destinations())
    if draw(st.integers(0, 4)) == 0:
        route["mirror"] = {"host": "reviews", "subset": draw(st.sampled_from(SUBSETS))}
        route["mirrorPercentage"] = {"value": draw(st.sampled_from([5, 12.5, 100]))}
    if draw(st.integers(0, 4)) == 0:
        route["fault"] = {"abort": {"httpStatus": 503, "percentage": {"value": 50}}}
    return route


@st.composite
def _virtual_service(draw, name: str) -> dict:
    count = draw(st.integers(1, 4))
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": name, "namespace": NS,
                         "creationTimestamp": draw(st.sampled_from(["2025-01-01T00:00:00Z", "2025-06-01T00:00:00Z"]))},
            "spec": {"hosts": [draw(st.sampled_from(["reviews", "reviews.prod", FQDN]))],
                     "http": [draw(_http_route(i)) for i in range(count)]}}


@st.composite
def _case(draw) -> list[dict]:
    names = draw(st.sampled_from([("a",), ("a", "b"), ("b", "a")]))
    return [draw(_virtual_service(name)) for name in names]


def _model_routes(virtual_services: list[dict]) -> tuple[list[tuple], int | None, str | None]:
    model = host_routing("reviews", NS, virtual_services, [RULE], port=PORT)
    routes = []
    for envoy in model["envoy_routes"]:
        destinations = model["routes"][envoy["route"]]["destinations"]
        # A destination at weight 0 stays in the spec (the release keeps the canary's subset in the
        # route) but Istio leaves it out of Envoy's weighted clusters: it carries no traffic either way.
        route = model["routes"][envoy["route"]]
        routes.append((envoy["catch_all"], [(d["subset"], d["weight"]) for d in destinations if d["weight"] > 0],
                       [(m["subset"], float(m["percent"])) for m in route["mirrors"]], route["fault"]))
    default = next((i for i, e in enumerate(model["envoy_routes"]) if e["catch_all"]), None)
    return routes, default, model["virtual_service"]


def _istio_routes(result: dict) -> tuple[list[tuple], int | None]:
    return ([(r["catch_all"], [(c["subset"], c["weight"]) for c in r["clusters"]],
              [(m["subset"], float(m["percent"])) for m in r.get("mirrors") or []], bool(r.get("fault")))
             for r in result["routes"]], result["default_route"])


# No shrinking: a batch shrinks slowly, and a mismatch is shown whole, case by case.
@settings(max_examples=4, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(_case(), min_size=60, max_size=60))
def test_the_model_routes_as_istio_does(cases):
    results = route_oracle.istio_routes(
        [{"namespace": NS, "objects": [SERVICE, RULE, *vss], "host": FQDN, "port": PORT} for vss in cases])
    compared, mismatches = 0, []
    for virtual_services, result in zip(cases, results):
        if result["error"]:
            continue  # Istio's validation refused the generated objects: nothing to compare
        routes, default = _model_routes(virtual_services)[:2]
        if not routes:
            # No VirtualService applies, or the one in force has no route for this port: Istio's
            # own default route, to the whole Service.
            routes, default = [(True, [("", 100)], [], False)], 0
        if _istio_routes(result) != (routes, default):
            mismatches.append({"objects": virtual_services, "istio": _istio_routes(result), "model": (routes, default)})
        compared += 1
    assert not mismatches, "%d of %d cases differ; the first: %r" % (len(mismatches), compared, mismatches[:2])
    assert compared >= len(cases) * 0.8, "Istio refused most generated cases: the generator is off"
