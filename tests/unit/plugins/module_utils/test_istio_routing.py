# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_istio/routing.py: where a host's traffic goes by Envoy's rules (hand cases and properties)."""

from __future__ import annotations

import copy

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from ansible_collections.canary.istio.plugins.module_utils._istio.release_steps import read_steps
from ansible_collections.canary.istio.plugins.module_utils._istio.routing import host_routing, release_state
from ansible_collections.canary.istio.plugins.module_utils._istio.traffic import route_weights


def _vs(name, spec, namespace="prod", created="2026-01-01T00:00:00Z"):
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created}, "spec": spec}


def _dr(subsets, host="reviews", name="reviews", namespace="prod"):
    """subsets: names (selector version=<name>) or (name, labels) pairs."""
    items = [{"name": s, "labels": {"version": s}} if isinstance(s, str) else {"name": s[0], "labels": s[1]} for s in subsets]
    return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"host": host, "subsets": items}}


def _pod(version, ready=True, app="reviews", name=None):
    return {"metadata": {"name": name or "%s-%s" % (app, version), "labels": {"app": app, "version": version}},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def _deployment(version, app="reviews"):
    return {"metadata": {"name": "%s-%s" % (app, version)},
            "spec": {"template": {"metadata": {"labels": {"app": app, "version": version}}}}}


def _dest(subset, weight=None, host="reviews"):
    entry = {"destination": {"host": host, "subset": subset}}
    if weight is not None:
        entry["weight"] = weight
    return entry


def _split(v1, v2, host="reviews"):
    return {"hosts": [host], "http": [{"route": [_dest("v1", v1, host), _dest("v2", v2, host)]}]}


def _model(virtual_services, rules=(), pods=None, deployments=(), **kwargs):
    return host_routing("reviews", "prod", virtual_services, list(rules), pods, deployments, **kwargs)


JASON = [{"headers": {"end-user": {"exact": "jason"}}}]


class TestWhatMeshInfoReported:
    """What mesh_info reported before, now from the model."""

    def test_healthy_canary_has_no_problems(self, complex_virtual_service):
        pods = [_pod("v1"), _pod("v1", name="b"), _pod("v2"), _pod("v3")]
        report = _model([_vs("reviews", complex_virtual_service)], [_dr(["v1", "v2", "v3"])], pods,
                        [_deployment(v) for v in ("v1", "v2", "v3")])
        assert report["problems"] == []
        assert report["virtual_service"] == "reviews" and report["virtual_services"] == ["reviews"]
        assert [(r["name"], r["weights"]) for r in report["routes"]] == [
            ("jason-v2", {"v2": 100}), ("api-mirror", {"v1": 100}), ("chaos", {"v1": 100}), ("default", {"v1": 90, "v2": 10}),
        ]
        assert report["catch_all"]["name"] == "default"
        assert report["default_weights"] == {"v1": 90, "v2": 10}
        assert report["version_weights"] == {"v1": 90.0, "v2": 10.0}
        subsets = {s["name"]: (s["ready_pods"], s["versions"], s["receives_traffic"]) for s in report["subsets"]}
        assert subsets == {"v1": (2, ["v1"], True), "v2": (1, ["v2"], True), "v3": (1, ["v3"], False)}
        # v3 gets no weight anywhere, but the api-mirror route mirrors 12.5% to it: it still serves.
        assert report["serving"]["v3"] == ["VirtualService 'reviews' route 'api-mirror' mirrors to subset 'v3' 12.5% of its requests"]
        assert any("fault rule of VirtualService 'reviews' route 'chaos'" in r for r in report["serving"]["v1"])
        assert report["serving_deployments"]["reviews-v3"] == report["serving"]["v3"]

    def test_route_to_a_subset_missing_from_the_rule(self):
        report = _model([_vs("reviews", _split(90, 10))], [_dr(["v1"])], [_pod("v1")])
        assert report["problems"] == ["VirtualService 'reviews' route #0 sends to subset 'v2', which DestinationRule 'reviews' does not define"]

    def test_subsets_without_a_destination_rule(self):
        report = _model([_vs("reviews", _split(90, 10))])
        assert report["destination_rule"] is None and report["subsets"] == []
        assert len(report["problems"]) == 2
        assert all("has no DestinationRule for host 'reviews'" in p for p in report["problems"])

    def test_subset_with_traffic_but_no_ready_pods(self):
        report = _model([_vs("reviews", _split(90, 10))], [_dr(["v1", "v2"])], [_pod("v1"), _pod("v2", ready=False)])
        assert report["problems"] == ["subset 'v2' has no Ready pods but receives traffic from VirtualService 'reviews' route #0"]
        uncounted = _model([_vs("reviews", _split(90, 10))], [_dr(["v1", "v2"])], None)
        assert uncounted["problems"] == [], "pods that were not read are not reported as missing"

    def test_idle_subset_without_pods_is_not_a_problem(self):
        report = _model([_vs("reviews", _split(0, 100))], [_dr(["v1", "v2"])], [_pod("v2")])
        assert report["problems"] == []
        assert report["subsets"][0]["ready_pods"] == 0 and report["subsets"][0]["receives_traffic"] is False

    def test_weights_not_summing_to_100(self):
        report = _model([_vs("reviews", _split(80, 10))], [_dr(["v1", "v2"])], [_pod("v1"), _pod("v2")])
        assert report["problems"] == ["VirtualService 'reviews' route #0 has weights summing to 90, not 100"]

    def test_destinations_to_other_hosts_are_not_checked_against_this_rule(self):
        spec = {"hosts": ["reviews"], "http": [{"route": [
            _dest("v1", 50), _dest("blue", 50, host="reviews-next.other.svc.cluster.local")]}]}
        report = _model([_vs("reviews", spec)], [_dr(["v1"])], [_pod("v1")])
        assert report["problems"] == []
        assert report["default_weights"] == {"v1": 50}

    def test_rule_for_another_host_is_reported(self):
        report = _model([], [_dr(["v1"], host="ratings", name="ratings")], [_pod("v1")])
        assert report["problems"] == ["DestinationRule 'ratings' is for host 'ratings', not 'reviews'"]

    def test_inputs_are_not_mutated(self, complex_virtual_service):
        vs, dr, pods = _vs("reviews", complex_virtual_service), _dr(["v1", "v2"]), [_pod("v1")]
        before = copy.deepcopy((vs, dr, pods))
        report = _model([vs], [dr], pods)
        report["routes"][0]["match"].append("x")
        report["subsets"][0]["labels"]["x"] = "y"
        assert (vs, dr, pods) == before

    def test_short_host_is_read_in_the_given_namespace(self):
        staging = _vs("reviews", _split(50, 50), namespace="staging")
        prod = _vs("reviews", _split(90, 10), namespace="prod")
        report = host_routing("reviews", "staging", [staging, prod])
        assert [r["weights"] for r in report["routes"]] == [{"v1": 50, "v2": 50}]
        assert report["fqdn"] == "reviews.staging.svc.cluster.local"


class TestEnvoysOrder:
    """The first route that matches wins."""

    def test_a_catch_all_first_shadows_every_later_route(self):
        spec = {"hosts": ["reviews"], "http": [
            {"name": "all", "route": [_dest("v1")]},
            {"name": "jason", "match": JASON, "route": [_dest("v2")]},
            {"name": "split", "route": [_dest("v1", 90), _dest("v2", 10)]},
        ]}
        report = _model([_vs("reviews", spec)], [_dr(["v1", "v2"])], [_pod("v1"), _pod("v2")], [_deployment("v1"), _deployment("v2")])
        assert report["catch_all"]["name"] == "all"
        assert report["version_weights"] == {"v1": 100.0}
        assert [r["reachable"] for r in report["routes"]] == [True, False, False]
        assert report["routes"][2]["shadowed_by"] == "VirtualService 'reviews' route 'all'"
        assert "v2" not in report["serving"] and "reviews-v2" not in report["serving_deployments"]
        assert [e["route"] for e in report["envoy_routes"]] == [0], "Istio sends nothing after the first catch-all"
        assert "VirtualService 'reviews' route 'split' is never reached: VirtualService 'reviews' route 'all' takes its requests first" in report["problems"]

    def test_a_header_route_before_the_catch_all_serves_its_version(self):
        spec = {"hosts": ["reviews"], "http": [
            {"name": "jason", "match": JASON, "route": [_dest("v2")]},
            {"route": [_dest("v1")]},
        ]}
        report = _model([_vs("reviews", spec)], [_dr(["v1", "v2"])], [_pod("v1"), _pod("v2")])
        assert report["version_weights"] == {"v1": 100.0}
        assert report["serving"]["v2"] == ["VirtualService 'reviews' route 'jason' to subset 'v2' (100%)"]
        state = release_state(report, "v1", "v2", read_steps([10, 50, 100]))
        assert state["live_weight"] == 0 and state["traffic_moved"] is True

    def test_match_holding_only_a_name_is_a_catch_all(self):
        spec = {"hosts": ["reviews"], "http": [
            {"name": "named", "match": [{"name": "everything"}], "route": [_dest("v1")]},
            {"route": [_dest("v1", 50), _dest("v2", 50)]},
        ]}
        report = _model([_vs("reviews", spec)], [_dr(["v1", "v2"])])
        assert report["catch_all"]["name"] == "named"
        assert report["default_weights"] == {"v1": 100}

    def test_a_later_match_implied_by_an_earlier_one_is_shadowed(self):
        spec = {"hosts": ["reviews"], "http": [
            {"name": "api", "match": [{"uri": {"prefix": "/api"}}], "route": [_dest("v1")]},
            {"name": "api-v2", "match": [{"uri": {"prefix": "/api/v2"}}], "route": [_dest("v2")]},
            {"route": [_dest("v1")]},
        ]}
        report = _model([_vs("reviews", spec)], [_dr(["v1", "v2"])])
        assert report["routes"][1]["reachable"] is False
        assert report["routes"][1]["shadowed_by"] == "VirtualService 'reviews' route 'api'"

    def test_port_match_is_decided_for_the_service_port(self):
        spec = {"hosts": ["reviews"], "http": [
            {"name": "other-port", "match": [{"port": 9090}], "route": [_dest("v2")]},
            {"name": "this-port", "match": [{"port": 9080}], "route": [_dest("v1", 80), _dest("v2", 20)]},
            {"route": [_dest("v1")]},
        ]}
        report = _model([_vs("reviews", spec)], [_dr(["v1", "v2"])], port=9080)
        assert report["catch_all"]["name"] == "this-port"
        assert report["default_weights"] == {"v1": 80, "v2": 20}
        assert report["routes"][0]["applies"] is False
        unknown = _model([_vs("reviews", spec)], [_dr(["v1", "v2"])])
        assert unknown["catch_all"]["index"] == 2, "with the port unknown a port match is a condition"

    def test_gateway_only_virtual_service_does_not_route_the_mesh(self):
        gateway = _vs("edge", dict(_split(50, 50), gateways=["prod/edge"]), created="2025-01-01T00:00:00Z")
        mesh = _vs("reviews", _split(90, 10))
        report = _model([gateway, mesh], [_dr(["v1", "v2"])])
        assert report["virtual_service"] == "reviews" and report["gateway_virtual_services"] == ["edge"]
        assert report["default_weights"] == {"v1": 90, "v2": 10}

    def test_two_virtual_services_for_one_host_oldest_wins_whole(self):
        young = _vs("reviews", _split(90, 10), created="2026-02-01T00:00:00Z")
        old = _vs("reviews-fqdn", {"hosts": ["reviews.prod.svc.cluster.local"], "http": [{"route": [_dest("v1")]}]},
                  created="2026-01-01T00:00:00Z")
        other = _vs("ratings", {"hosts": ["ratings"], "http": [{"route": [_dest("v9", host="ratings")]}]})
        report = _model([young, old, other], [_dr(["v1", "v2"])])
        assert report["virtual_service"] == "reviews-fqdn"
        assert report["virtual_services"] == ["reviews-fqdn", "reviews"] and report["dropped_virtual_services"] == ["reviews"]
        assert report["default_weights"] == {"v1": 100}
        assert {r["vs"] for r in report["routes"]} == {"reviews-fqdn"}
        assert any("Istio uses one whole, 'reviews-fqdn' (the oldest with a route for this port)" in p for p in report["problems"])

    def test_same_age_virtual_services_are_ordered_by_name(self):
        b = _vs("b", _split(90, 10))
        a = _vs("a", _split(50, 50))
        assert _model([b, a])["virtual_service"] == "a"

    def test_wildcard_and_export_to(self):
        wildcard = _vs("all-prod", {"hosts": ["*.prod.svc.cluster.local"], "http": [{"route": [_dest("v1")]}]})
        assert _model([wildcard])["virtual_service"] == "all-prod"
        private = _vs("reviews", dict(_split(90, 10), exportTo=["."]), namespace="prod")
        assert host_routing("reviews", "prod", [private], client_namespace="shop")["virtual_service"] is None
        assert host_routing("reviews", "prod", [private])["virtual_service"] == "reviews"

    def test_subset_names_unlike_version_labels(self):
        spec = {"hosts": ["reviews"], "http": [{"route": [_dest("stable", 70), _dest("canary", 30)]}]}
        rule = _dr([("stable", {"version": "v1"}), ("canary", {"version": "v2"})])
        report = _model([_vs("reviews", spec)], [rule], [_pod("v1"), _pod("v2")], [_deployment("v1"), _deployment("v2")])
        assert report["version_weights"] == {"v1": 70.0, "v2": 30.0}
        assert release_state(report, "v1", "v2", read_steps([10, 30, 50, 100]))["steps_to_run"] == [30, 50, 100]

    def test_a_subset_selecting_two_versions_is_a_problem_and_splits_by_ready_pods(self):
        spec = {"hosts": ["reviews"], "http": [{"route": [_dest("all")]}]}
        rule = _dr([("all", {"app": "reviews"})])
        report = _model([_vs("reviews", spec)], [rule], [_pod("v1"), _pod("v1", name="b"), _pod("v2")])
        assert report["version_weights"] == {"v1": 66.667, "v2": 33.333}
        assert "subset 'all' selects pods of 2 versions (v1, v2)" in report["problems"]
        empty = _dr([("none", {})])
        assert "subset 'none' has no labels, so it selects every pod of the Service" in _model([], [empty])["problems"]

    def test_delegate_is_reported_not_followed(self):
        spec = {"hosts": ["reviews"], "http": [{"delegate": {"name": "reviews-team", "namespace": "team"}}]}
        report = _model([_vs("reviews", spec)])
        assert report["default_weights"] == {} and report["version_weights"] == {}
        assert any("delegates to VirtualService 'reviews-team'" in p for p in report["problems"])

    def test_release_state_resumes_from_the_live_weight(self):
        report = _model([_vs("reviews", _split(50, 50))], [_dr(["v1", "v2"])], [_pod("v1"), _pod("v2")])
        state = release_state(report, "v1", "v2", read_steps([10, 50, 100]))
        assert state == {"live_weight": 50, "stable_weight": 50, "traffic_moved": True,
                         "canary_served_by": ["VirtualService 'reviews' route #0 to subset 'v2' (50%)"],
                         "steps_to_run": [50, 100], "skipped_steps": [10], "skipped_labels": ["10%"],
                         "plan_to_run": [{"kind": "weight", "weight": 50, "label": "50%"},
                                         {"kind": "weight", "weight": 100, "label": "100%"}],
                         "has_virtual_service": True, "has_routing": True}
        assert release_state(report, "v1", "v2", read_steps([10, 50, 100]), allow_weight_decrease=True)["steps_to_run"] == [10, 50, 100]
        assert release_state(_model([]), "v1", "v2", read_steps([10]))["has_virtual_service"] is False


_headers = st.sampled_from([{"end-user": {"exact": "jason"}}, {"end-user": {"exact": "alice"}}, {"x-canary": {"prefix": "y"}}])
_match = st.one_of(
    st.builds(lambda h: {"headers": h}, _headers),
    st.just({"name": "only-a-name"}),
    st.just({"uri": {"prefix": "/"}}),
    st.just({"uri": {"prefix": "/api"}}),
)
_route = st.builds(
    lambda matches, w: ({"match": matches} if matches else {}) | {"route": [_dest("v1", 100 - w), _dest("v2", w)]},
    st.lists(_match, max_size=2),
    st.integers(0, 100),
)


class TestProperties:
    @settings(max_examples=200)
    @given(st.lists(_route, min_size=1, max_size=5))
    def test_properties_of_the_order(self, routes):
        report = _model([_vs("reviews", {"hosts": ["reviews"], "http": routes})], [_dr(["v1", "v2"])], [_pod("v1"), _pod("v2")])
        envoy = report["envoy_routes"]
        # Nothing reaches Envoy after the first catch-all, and the default traffic is that route's.
        firsts = [i for i, e in enumerate(envoy) if e["catch_all"]]
        assert not firsts or firsts[0] == len(envoy) - 1
        if report["catch_all"] is None:
            assert report["default_weights"] == {}
        else:
            index = report["catch_all"]["index"]
            assert report["default_weights"] == report["routes"][index]["weights"]
            assert sum(report["default_weights"].values()) == 100
            assert all(not r["reachable"] for r in report["routes"][index + 1:])
        # A version is served exactly when a reachable route gives it weight.
        for version in ("v1", "v2"):
            expected = any(r["reachable"] and r["weights"].get(version, 0) > 0 for r in report["routes"])
            assert (version in report["serving"]) == expected
        # Appending a route never changes where plain traffic goes once a catch-all exists.
        more = routes + [{"route": [_dest("v2")]}]
        again = _model([_vs("reviews", {"hosts": ["reviews"], "http": more})], [_dr(["v1", "v2"])], [_pod("v1"), _pod("v2")])
        if report["catch_all"] is not None:
            assert again["default_weights"] == report["default_weights"]

    def test_a_match_on_the_service_port_alone_is_a_catch_all(self):
        # Envoy builds the route table per port: a match that only names the port the Service serves
        # matches every request on it, so routes after it are never reached (Istio agrees, see the
        # route oracle); on another port it matches nothing of this Service.
        spec = {"hosts": ["reviews"], "http": [
            {"name": "by-port", "match": [{"port": 9080}], "route": [_dest("v1")]},
            {"name": "rest", "route": [_dest("v1", 50), _dest("v2", 50)]},
        ]}
        on_port = _model([_vs("reviews", spec)], [_dr(["v1", "v2"])], port=9080)
        assert on_port["catch_all"]["name"] == "by-port"
        assert on_port["default_weights"] == {"v1": 100}
        rest = next(r for r in on_port["routes"] if r["name"] == "rest")
        assert rest["reachable"] is False
        other_port = _model([_vs("reviews", spec)], [_dr(["v1", "v2"])], port=9081)
        assert other_port["catch_all"]["name"] == "rest"
        assert other_port["default_weights"] == {"v1": 50, "v2": 50}


def _destination_rules(istio_fixtures):
    rules = {}
    with (istio_fixtures / "bookinfo" / "networking" / "destination-rule-all.yaml").open(encoding="utf-8") as stream:
        for doc in yaml.safe_load_all(stream):
            if doc and doc.get("kind") == "DestinationRule":
                rules[doc["spec"]["host"]] = doc
    return rules


class TestBookinfo:
    """On every VirtualService of Istio's bookinfo sample (tests/unit/conftest.py)."""

    def test_the_routing_model_finds_no_problem_with_bookinfo_rules(self, bookinfo_virtual_service, istio_fixtures):
        spec = bookinfo_virtual_service["spec"]
        host = spec["hosts"][0]
        rules = _destination_rules(istio_fixtures)
        if host not in rules:
            pytest.skip("not applicable: no DestinationRule for host %r in destination-rule-all.yaml" % host)
        rule = rules[host]
        namespace = "default"
        bookinfo_virtual_service = dict(bookinfo_virtual_service, metadata=dict(bookinfo_virtual_service["metadata"], namespace=namespace))
        rule = dict(rule, metadata=dict(rule.get("metadata") or {}, namespace=namespace))
        everyone_ready = [{"metadata": {"name": "%s-%d" % (host, i), "labels": dict(subset.get("labels") or {})},
                           "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
                          for i, subset in enumerate(rule["spec"].get("subsets") or [])]
        report = host_routing(host, namespace, [bookinfo_virtual_service], [rule], everyone_ready)
        # Bookinfo's own samples hold dead routes (fault-injection-details-v1: a route without match
        # first, then another): Envoy never reaches a route after the first one without match.
        first = next((i for i, r in enumerate(spec["http"]) if not r.get("match")), len(spec["http"]))
        dead = ["never reached" in p for p in report["problems"]]
        assert sum(dead) == len(spec["http"]) - first - 1 if first < len(spec["http"]) else sum(dead) == 0
        assert [p for p in report["problems"] if "never reached" not in p] == []
        assert [r["weights"] for r in report["routes"]] == [route_weights(r) for r in spec["http"]]

        nobody_ready = host_routing(host, namespace, [bookinfo_virtual_service], [rule], [])
        with_traffic = {subset for r in spec["http"] for subset, weight in route_weights(r).items() if subset and weight > 0}
        no_pods = [p for p in nobody_ready["problems"] if "never reached" not in p]
        assert len(no_pods) == len(with_traffic)
        assert all("no Ready pods" in p for p in no_pods)
