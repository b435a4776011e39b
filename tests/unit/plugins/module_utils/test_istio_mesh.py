# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The pure part of mesh_info: routes, subsets, faults and the problems found."""

from __future__ import annotations

import copy

from ansible_collections.canary.istio.plugins.module_utils._istio import describe_host


def _vs(name, spec, namespace="prod"):
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def _dr(subsets, host="reviews", name="reviews", namespace="prod"):
    return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"host": host, "subsets": [{"name": s, "labels": {"version": s}} for s in subsets]}}


def _split(v1, v2, host="reviews"):
    return {"hosts": [host], "http": [{"route": [
        {"destination": {"host": host, "subset": "v1"}, "weight": v1},
        {"destination": {"host": host, "subset": "v2"}, "weight": v2},
    ]}]}


def test_healthy_canary_has_no_problems(complex_virtual_service):
    vs = _vs("reviews", complex_virtual_service)
    report = describe_host("reviews", [vs], _dr(["v1", "v2", "v3"]), {"v1": 3, "v2": 1, "v3": 1})
    assert report["problems"] == []
    assert report["virtual_services"] == ["reviews"]
    assert report["destination_rule"] == "reviews"
    assert [(r["name"], r["weights"]) for r in report["routes"]] == [
        ("jason-v2", {"v2": 100}), ("api-mirror", {"v1": 100}), ("chaos", {"v1": 100}), ("default", {"v1": 90, "v2": 10}),
    ]
    assert all(r["vs"] == "reviews" for r in report["routes"])
    assert report["routes"][0]["match"] == complex_virtual_service["http"][0]["match"]
    assert report["subsets"] == [
        {"name": "v1", "labels": {"version": "v1"}, "ready_pods": 3, "receives_traffic": True},
        {"name": "v2", "labels": {"version": "v2"}, "ready_pods": 1, "receives_traffic": True},
        {"name": "v3", "labels": {"version": "v3"}, "ready_pods": 1, "receives_traffic": False},
    ]
    assert [(f["vs"], f["name"], f["abort"]["http_status"]) for f in report["faults"]] == [("reviews", "chaos", 503)]


def test_route_to_a_subset_missing_from_the_rule():
    report = describe_host("reviews", [_vs("reviews", _split(90, 10))], _dr(["v1"]), {"v1": 2})
    assert report["problems"] == ["VirtualService 'reviews' route #0 sends to subset 'v2', which DestinationRule 'reviews' does not define"]


def test_subsets_without_a_destination_rule():
    report = describe_host("reviews", [_vs("reviews", _split(90, 10))], None, {})
    assert report["destination_rule"] is None and report["subsets"] == []
    assert len(report["problems"]) == 2
    assert all("host 'reviews' has no DestinationRule" in p for p in report["problems"])


def test_subset_with_traffic_but_no_ready_pods():
    report = describe_host("reviews", [_vs("reviews", _split(90, 10))], _dr(["v1", "v2"]), {"v1": 2, "v2": 0})
    assert report["problems"] == ["subset 'v2' has no Ready pods but receives traffic from VirtualService 'reviews' route #0 (10%)"]
    missing_count = describe_host("reviews", [_vs("reviews", _split(90, 10))], _dr(["v1", "v2"]), {"v1": 2})
    assert missing_count["problems"] == report["problems"], "a subset missing from the counts has 0 Ready pods"


def test_idle_subset_without_pods_is_not_a_problem():
    report = describe_host("reviews", [_vs("reviews", _split(0, 100))], _dr(["v1", "v2"]), {"v1": 0, "v2": 2})
    assert report["problems"] == []
    assert report["subsets"][0] == {"name": "v1", "labels": {"version": "v1"}, "ready_pods": 0, "receives_traffic": False}


def test_weights_not_summing_to_100():
    report = describe_host("reviews", [_vs("reviews", _split(80, 10))], _dr(["v1", "v2"]), {"v1": 1, "v2": 1})
    assert report["problems"] == ["VirtualService 'reviews' route #0 has weights summing to 90, not 100"]


def test_two_virtual_services_for_one_host_in_any_spelling():
    first = _vs("reviews", _split(90, 10))
    second = _vs("reviews-fqdn", {"hosts": ["reviews.prod.svc.cluster.local"], "http": [{"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}]})
    other = _vs("ratings", {"hosts": ["ratings"], "http": [{"route": [{"destination": {"host": "ratings", "subset": "v9"}}]}]})
    elsewhere = _vs("reviews-staging", _split(50, 50), namespace="staging")
    report = describe_host("reviews", [first, second, other, elsewhere], _dr(["v1", "v2"]), {"v1": 1, "v2": 1})
    assert report["virtual_services"] == ["reviews", "reviews-fqdn"]
    assert report["problems"] == ["2 VirtualServices route host 'reviews' ('reviews', 'reviews-fqdn'); Istio merges them unpredictably, keep one"]
    assert {r["vs"] for r in report["routes"]} == {"reviews", "reviews-fqdn"}


def test_destinations_to_other_hosts_are_not_checked_against_this_rule():
    spec = {"hosts": ["reviews"], "http": [{"route": [
        {"destination": {"host": "reviews", "subset": "v1"}, "weight": 50},
        {"destination": {"host": "reviews-next.other.svc.cluster.local", "subset": "blue"}, "weight": 50},
    ]}]}
    report = describe_host("reviews", [_vs("reviews", spec)], _dr(["v1"]), {"v1": 1})
    assert report["problems"] == []


def test_rule_for_another_host_is_reported():
    report = describe_host("reviews", [], _dr(["v1"], host="ratings", name="ratings"), {"v1": 1})
    assert report["problems"] == ["DestinationRule 'ratings' is for host 'ratings', not 'reviews'"]


def test_inputs_are_not_mutated(complex_virtual_service):
    vs, dr, pods = _vs("reviews", complex_virtual_service), _dr(["v1", "v2"]), {"v1": 1}
    before = copy.deepcopy((vs, dr, pods))
    report = describe_host("reviews", [vs], dr, pods)
    report["routes"][0]["match"].append("x")
    report["subsets"][0]["labels"]["x"] = "y"
    assert (vs, dr, pods) == before


def test_short_host_is_read_in_the_given_namespace():
    staging = _vs("reviews", _split(50, 50), namespace="staging")
    prod = _vs("reviews", _split(90, 10), namespace="prod")
    report = describe_host("reviews", [staging, prod], None, {}, namespace="staging")
    assert [r["weights"] for r in report["routes"]] == [{"v1": 50, "v2": 50}]
    assert report["host"] == "reviews"
