# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_istio/step_routes.py: the A/B route and the mirror of a step, and their removal."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.canary.istio.plugins.module_utils._istio.common import IstioSpecError
from ansible_collections.canary.istio.plugins.module_utils._istio.routing import host_routing
from ansible_collections.canary.istio.plugins.module_utils._istio.step_routes import set_release_routes, step_routes_of
from ansible_collections.canary.istio.tests.unit.plugins.module_utils.istio_objects import pod

JASON = {"headers": {"end-user": {"exact": "jason"}}}


def _spec(*before: dict, catch_all: dict | None = None) -> dict:
    default = catch_all or {"name": "default", "timeout": "3s", "retries": {"attempts": 2},
                            "route": [{"destination": {"host": "reviews", "port": {"number": 9080}, "subset": "v1"}}]}
    return {"hosts": ["reviews"], "http": [copy.deepcopy(r) for r in before] + [default]}


def _vs(spec: dict) -> dict:
    return {"metadata": {"name": "reviews", "namespace": "prod", "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": spec}


def _pods() -> list[dict]:
    return [pod("reviews-%s-1" % v, {"app": "reviews", "version": v}) for v in ("v1", "v2")]


def _dr() -> dict:
    return {"metadata": {"name": "reviews", "namespace": "prod"},
            "spec": {"host": "reviews", "subsets": [{"name": v, "labels": {"version": v}} for v in ("v1", "v2")]}}


class TestAB:
    def test_the_ab_route_goes_before_the_catch_all_and_keeps_its_settings(self):
        spec = set_release_routes(_spec(), {"v1": 100, "v2": 0}, None, canary="v2", match=JASON)
        ab, default = spec["http"]
        assert ab == {"name": "canary-match-v2", "match": [JASON], "timeout": "3s", "retries": {"attempts": 2},
                      "route": [{"destination": {"host": "reviews", "port": {"number": 9080}, "subset": "v2"}}]}
        assert default["name"] == "default" and [d["weight"] for d in default["route"]] == [100, 0]
        assert step_routes_of(spec, None, "v2") == {"match": "canary-match-v2", "mirror": None, "sticky": None}

    def test_the_routing_model_sees_jason_on_the_canary_and_plain_traffic_on_stable(self):
        spec = set_release_routes(_spec(), {"v1": 100, "v2": 0}, None, canary="v2", match=JASON)
        model = host_routing("reviews", "prod", [_vs(spec)], [_dr()], _pods())
        assert model["version_weights"] == {"v1": 100.0, "v2": 0.0} and model["catch_all"]["name"] == "default"
        assert model["serving"]["v2"] == ["VirtualService 'reviews' route 'canary-match-v2' to subset 'v2' (100%)"]
        assert model["problems"] == []

    def test_the_ab_route_goes_before_a_route_that_may_take_some_of_its_requests(self):
        # A route for every tester comes first: jason's requests would stop there. A route that
        # cannot see them (another header value) stays before it.
        testers = {"name": "testers", "match": [{"headers": {"end-user": {"regex": ".+"}}}],
                   "route": [{"destination": {"host": "reviews", "subset": "v1"}}]}
        ana = {"name": "ana", "match": [{"headers": {"end-user": {"exact": "ana"}}}],
               "route": [{"destination": {"host": "reviews", "subset": "v1"}}]}
        spec = set_release_routes(_spec(ana, testers), {"v1": 100, "v2": 0}, None, canary="v2", match=JASON)
        assert [r["name"] for r in spec["http"]] == ["ana", "canary-match-v2", "testers", "default"]

    def test_a_write_without_the_step_removes_it_and_gives_back_the_spec(self):
        start = set_release_routes(_spec(), {"v1": 100, "v2": 0}, None)
        with_ab = set_release_routes(start, {"v1": 100, "v2": 0}, None, canary="v2", match=JASON)
        assert set_release_routes(with_ab, {"v1": 100, "v2": 0}, None) == start
        moved_on = set_release_routes(with_ab, {"v1": 90, "v2": 10}, None, canary="v2")
        assert [r["name"] for r in moved_on["http"]] == ["default"]

    def test_a_promotion_by_weights_alone_removes_the_canarys_routes(self):
        with_ab = set_release_routes(_spec(), {"v1": 100, "v2": 0}, None, canary="v2", match=JASON)
        promoted = set_release_routes(with_ab, {"v2": 100})
        assert [r["name"] for r in promoted["http"]] == ["default"]

    def test_another_subsets_ab_route_and_a_users_own_routes_stay(self):
        theirs = {"name": "canary-match-v3", "match": [JASON], "route": [{"destination": {"host": "reviews", "subset": "v3"}}]}
        mine = {"name": "beta", "match": [{"headers": {"beta": {"exact": "1"}}}], "route": [{"destination": {"host": "reviews", "subset": "v2"}}]}
        spec = set_release_routes(_spec(theirs, mine), {"v1": 90, "v2": 10}, None, canary="v2")
        assert [r["name"] for r in spec["http"]] == ["canary-match-v3", "beta", "default"]

    def test_the_same_step_twice_is_the_same_spec(self):
        once = set_release_routes(_spec(), {"v1": 90, "v2": 10}, None, canary="v2", match=JASON)
        assert set_release_routes(once, {"v1": 90, "v2": 10}, None, canary="v2", match=JASON) == once


class TestMirror:
    def test_a_shadow_step_mirrors_the_weighted_route_to_the_canary(self):
        spec = set_release_routes(_spec(), {"v1": 100, "v2": 0}, None, canary="v2", mirror=100)
        default = spec["http"][0]
        assert default["mirror"] == {"host": "reviews", "port": {"number": 9080}, "subset": "v2"}
        assert default["mirrorPercentage"] == {"value": 100}
        assert step_routes_of(spec, None, "v2") == {"match": None, "mirror": 100, "sticky": None}
        model = host_routing("reviews", "prod", [_vs(spec)], [_dr()], _pods())
        assert model["serving"]["v2"] == ["VirtualService 'reviews' route 'default' mirrors to subset 'v2' 100% of its requests"]

    def test_the_next_step_removes_the_mirror_and_a_users_mirror_elsewhere_stays(self):
        with_mirror = set_release_routes(_spec(), {"v1": 100, "v2": 0}, None, canary="v2", mirror=50)
        assert "mirror" not in set_release_routes(with_mirror, {"v1": 90, "v2": 10}, None, canary="v2")["http"][0]
        theirs = _spec(catch_all={"name": "default", "mirror": {"host": "audit"}, "route": [{"destination": {"host": "reviews", "subset": "v1"}}]})
        kept = set_release_routes(theirs, {"v1": 90, "v2": 10}, None, canary="v2")
        assert kept["http"][0]["mirror"] == {"host": "audit"}

    def test_a_route_that_mirrors_elsewhere_is_refused(self):
        theirs = _spec(catch_all={"name": "default", "mirror": {"host": "audit"}, "route": [{"destination": {"host": "reviews", "subset": "v1"}}]})
        with pytest.raises(IstioSpecError, match="^canary_mirror: HTTP route 'default' already mirrors to subset ''"):
            set_release_routes(theirs, {"v1": 100, "v2": 0}, None, canary="v2", mirror=10)

    def test_a_step_needs_the_canary_among_the_weights(self):
        with pytest.raises(IstioSpecError, match="^canary: "):
            set_release_routes(_spec(), {"v1": 100}, None, canary="v2", mirror=10)


class TestSticky:
    def test_the_canary_sets_a_cookie_and_a_route_before_the_others_takes_its_holders(self):
        spec = set_release_routes(_spec(), {"v1": 90, "v2.1": 10}, None, canary="v2.1", sticky=3600)
        sticky, default = spec["http"]
        assert sticky["name"] == "canary-sticky-v2.1" and sticky["timeout"] == "3s"
        assert sticky["match"] == [{"headers": {"cookie": {"regex": "^(.*?;\\s*)?(canary-istio-reviews=v2\\.1)(;.*)?$"}}}]
        assert sticky["route"] == [{"destination": {"host": "reviews", "port": {"number": 9080}, "subset": "v2.1"}}]
        stable, canary = default["route"]
        assert "headers" not in stable
        assert canary["headers"] == {"response": {"add": {"Set-Cookie": "canary-istio-reviews=v2.1; Max-Age=3600; Path=/"}}}
        assert step_routes_of(spec, None, "v2.1") == {"match": None, "mirror": None, "sticky": "canary-sticky-v2.1"}

    def test_the_promotion_and_a_plain_write_take_the_cookie_and_route_away_and_keep_a_users_headers(self):
        start = set_release_routes(_spec(), {"v1": 90, "v2": 10}, None)
        start["http"][-1]["route"][1]["headers"] = {"response": {"add": {"x-served-by": "v2"}}}
        sticky = set_release_routes(start, {"v1": 90, "v2": 10}, None, canary="v2", sticky=60)
        assert sticky["http"][-1]["route"][1]["headers"]["response"]["add"] == {
            "x-served-by": "v2", "Set-Cookie": "canary-istio-reviews=v2; Max-Age=60; Path=/"}
        assert set_release_routes(sticky, {"v1": 90, "v2": 10}, None, canary="v2") == start
        promoted = set_release_routes(sticky, {"v2": 100})
        assert [r["name"] for r in promoted["http"]] == ["default"]
        assert promoted["http"][0]["route"][0]["headers"] == {"response": {"add": {"x-served-by": "v2"}}}
