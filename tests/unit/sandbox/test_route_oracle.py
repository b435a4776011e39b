"""The Istio route oracle on hand-written cases: it works, and these are the Istio facts it shows.

All cases go to the oracle in one batch (one process), as model-comparison tests will send theirs.
Without the binary these tests skip, except under CI or CANARY_ISTIO_REQUIRE_SANDBOX=1 (as `make test`
sets), where a missing binary is a failure: the oracle is never silently skipped there.
"""
from __future__ import annotations

import os

import pytest

from sandbox import route_oracle

NS = "prod"
REVIEWS = "reviews.prod.svc.cluster.local"
JASON = {"headers": {"end-user": {"exact": "jason"}}}


def service(name: str = "reviews", namespace: str = NS) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"clusterIP": "10.96.0.10", "selector": {"app": name},
                     "ports": [{"name": "http", "port": 9080}]}}


def virtual_service(http: list[dict], name: str = "reviews", hosts: tuple[str, ...] = ("reviews",),
                    namespace: str = NS, created: str | None = None) -> dict:
    metadata = {"name": name, "namespace": namespace}
    if created:
        metadata["creationTimestamp"] = created
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": metadata,
            "spec": {"hosts": list(hosts), "http": http}}


def destination_rule() -> dict:
    return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": "reviews", "namespace": NS},
            "spec": {"host": "reviews", "subsets": [{"name": f"v{i}", "labels": {"version": f"v{i}"}}
                                                    for i in (1, 2, 3)]}}


def to(subset: str, weight: int | None = None) -> dict:
    destination = {"destination": {"host": "reviews", "subset": subset}}
    if weight is not None:
        destination["weight"] = weight
    return destination


def case(*objects: dict, host: str = REVIEWS, port: int = 9080) -> dict:
    return {"namespace": NS, "objects": [service(), destination_rule(), *objects],
            "host": host, "port": port}


CASES = {
    # (a) routes after the first catch-all
    "no_match_first": case(virtual_service([{"route": [to("v1")]},
                                            {"match": [JASON], "route": [to("v2")]}])),
    "prefix_slash_first": case(virtual_service([{"match": [{"uri": {"prefix": "/"}}], "route": [to("v1")]},
                                                {"match": [JASON], "route": [to("v2")]}])),
    "header_then_default": case(virtual_service([{"match": [JASON], "route": [to("v2")]},
                                                 {"route": [to("v1")]}])),
    # (b) a match holding only a name
    "name_only_match": case(virtual_service([{"name": "primary", "match": [{"name": "everyone"}],
                                              "route": [to("v1")]},
                                             {"match": [JASON], "route": [to("v2")]}])),
    # (c) two VirtualServices for one host: the older is newer by name, older by timestamp
    "two_vs": case(
        virtual_service([{"route": [to("v2")]}], name="a-newer", created="2025-06-01T00:00:00Z"),
        virtual_service([{"match": [JASON], "route": [to("v3")]}, {"route": [to("v1")]}],
                        name="z-older", created="2024-01-01T00:00:00Z")),
    "two_vs_swapped": case(
        virtual_service([{"route": [to("v2")]}], name="a-newer", created="2024-01-01T00:00:00Z"),
        virtual_service([{"match": [JASON], "route": [to("v3")]}, {"route": [to("v1")]}],
                        name="z-older", created="2025-06-01T00:00:00Z")),
    # (d) a weighted split, a mirror and a fault
    "split_90_10": case(virtual_service([{"route": [to("v1", 90), to("v2", 10)],
                                          "mirror": {"host": "reviews", "subset": "v3"},
                                          "mirrorPercentage": {"value": 12.5}}])),
    "fault": case(virtual_service([{"fault": {"abort": {"httpStatus": 503, "percentage": {"value": 5}}},
                                    "route": [to("v1")]}])),
    # (e) short host vs FQDN, and where a short host resolves
    "short_host": case(virtual_service([{"route": [to("v1")]}], hosts=("reviews",))),
    "fqdn_host": case(virtual_service([{"route": [to("v1")]}], hosts=(REVIEWS,))),
    "short_host_other_namespace": case(virtual_service([{"route": [to("v1")]}], namespace="other")),
    "fqdn_host_other_namespace": case(virtual_service([{"route": [to("v1")]}], namespace="other",
                                                      hosts=(REVIEWS,))),
    # errors are per case; the batch goes on
    "no_virtual_service": case(),
    "unknown_host": case(host="ratings.prod.svc.cluster.local"),
    "invalid_vs": case(virtual_service([{"route": []}])),
}


def _must_run() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("CANARY_ISTIO_REQUIRE_SANDBOX"))


@pytest.fixture(scope="module", name="results")
def oracle_results() -> dict[str, dict]:
    """Istio's answer for every case in CASES, by case name, from one oracle run."""
    if not route_oracle.available():
        reason = (f"ISTIO ROUTE ORACLE NOT BUILT ({route_oracle.binary()} missing): "
                  "run `make sandbox-build`")
        if _must_run():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return dict(zip(CASES, route_oracle.istio_routes(list(CASES.values()))))


def subsets(route: dict) -> list[tuple[str, int]]:
    return [(c["subset"], c["weight"]) for c in route["clusters"]]


# (a) Istio stops translating a VirtualService at its first catch-all: later routes never reach Envoy.

def test_routes_after_a_matchless_route_are_dropped(results):
    r = results["no_match_first"]
    assert r["error"] is None
    assert [subsets(x) for x in r["routes"]] == [[("v1", 100)]]
    assert r["routes"][0]["catch_all"] and r["routes"][0]["match"] == {"prefix": "/"}
    assert r["default_route"] == 0


def test_a_prefix_slash_match_is_a_catch_all_too(results):
    r = results["prefix_slash_first"]
    assert [subsets(x) for x in r["routes"]] == [[("v1", 100)]]
    assert r["routes"][0]["catch_all"]


def test_a_catch_all_after_matched_routes_is_kept_last(results):
    r = results["header_then_default"]
    assert [subsets(x) for x in r["routes"]] == [[("v2", 100)], [("v1", 100)]]
    assert [x["catch_all"] for x in r["routes"]] == [False, True]
    assert r["routes"][0]["match"]["headers"] == [{"name": "end-user", "stringMatch": {"exact": "jason"}}]
    assert r["default_route"] == 1


# (b) A match that only names itself matches everything, so it also cuts off later routes.

def test_a_name_only_match_is_a_catch_all(results):
    r = results["name_only_match"]
    assert [subsets(x) for x in r["routes"]] == [[("v1", 100)]]
    route = r["routes"][0]
    assert route["catch_all"] and route["match"]["prefix"] == "/" and "headers" not in route["match"]
    assert route["name"] == "primary.everyone"  # Envoy route name: <http name>.<match name>


# (c) Sidecars take one VirtualService per host: the oldest wins whole; nothing is merged.

def test_the_oldest_virtual_service_wins_whole(results):
    r = results["two_vs"]  # z-older: jason -> v3, rest -> v1; a-newer: all -> v2
    assert [subsets(x) for x in r["routes"]] == [[("v3", 100)], [("v1", 100)]]


def test_creation_time_not_name_decides(results):
    r = results["two_vs_swapped"]
    assert [subsets(x) for x in r["routes"]] == [[("v2", 100)]]


# (d) Weights go to Envoy as given, one outbound|port|subset|host cluster per destination.

def test_weights_become_subset_clusters(results):
    r = results["split_90_10"]
    (route,) = r["routes"]
    assert route["clusters"] == [
        {"cluster": f"outbound|9080|v1|{REVIEWS}", "subset": "v1", "host": REVIEWS, "weight": 90},
        {"cluster": f"outbound|9080|v2|{REVIEWS}", "subset": "v2", "host": REVIEWS, "weight": 10},
    ]
    assert route["mirrors"] == [
        {"cluster": f"outbound|9080|v3|{REVIEWS}", "subset": "v3", "host": REVIEWS, "percent": 12.5}]
    assert route["fault"] is False and route["action"] == "route"


def test_a_fault_is_flagged(results):
    assert results["fault"]["routes"][0]["fault"] is True


# (e) A short host resolves in the VirtualService's own namespace.

def test_short_host_and_fqdn_give_the_same_routes(results):
    short, fqdn = results["short_host"], results["fqdn_host"]
    assert short["routes"] == fqdn["routes"] and subsets(short["routes"][0]) == [("v1", 100)]
    assert {REVIEWS, "reviews", "reviews.prod", "10.96.0.10"} <= set(short["domains"])


def test_a_short_host_in_another_namespace_names_another_service(results):
    # "reviews" in namespace other is reviews.other.svc.cluster.local: prod's reviews keeps Istio's
    # default route (one cluster without subset).
    r = results["short_host_other_namespace"]
    assert [x["name"] for x in r["routes"]] == ["default"]
    assert r["routes"][0]["clusters"] == [
        {"cluster": f"outbound|9080||{REVIEWS}", "subset": "", "host": REVIEWS, "weight": 100}]


def test_an_fqdn_host_from_another_namespace_applies(results):
    assert subsets(results["fqdn_host_other_namespace"]["routes"][0]) == [("v1", 100)]


# Errors stay in their case.

def test_a_service_without_virtual_service_gets_the_default_route(results):
    r = results["no_virtual_service"]
    assert r["error"] is None and [x["name"] for x in r["routes"]] == ["default"]
    assert r["default_route"] == 0


def test_a_host_without_virtual_host_is_an_error(results):
    r = results["unknown_host"]
    assert r["routes"] == [] and r["default_route"] is None
    assert "no virtual host for ratings.prod.svc.cluster.local" in r["error"]


def test_istio_validation_rejects_a_route_without_destinations(results):
    r = results["invalid_vs"]
    assert r["routes"] == [] and "invalid" in r["error"]


def test_a_missing_binary_says_how_to_build_it(monkeypatch, tmp_path):
    monkeypatch.setattr(route_oracle.versions, "route_oracle_binary", lambda: tmp_path / "nope")
    with pytest.raises(route_oracle.RouteOracleError, match="run `make sandbox-build`"):
        route_oracle.istio_routes([CASES["short_host"]])
