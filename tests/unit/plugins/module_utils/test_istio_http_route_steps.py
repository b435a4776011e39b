# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_istio/http_route_steps.py: the A/B rule and the mirror of a step on an HTTPRoute."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.canary.istio.plugins.module_utils._istio import http_route_steps as hs
from ansible_collections.canary.istio.plugins.module_utils._istio.common import IstioSpecError
from ansible_collections.canary.istio.plugins.module_utils._istio.release_steps import match_condition

HEADER_SET = {"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x-from", "value": "mesh"}]}}
USER_MIRROR = {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "audit", "port": 80}}}
TESTERS = {"name": "testers", "matches": [{"path": {"type": "PathPrefix", "value": "/beta"}}],
           "backendRefs": [{"name": "reviews-v1", "port": 9080}]}


def _spec():
    return {"parentRefs": [{"group": "", "kind": "Service", "name": "reviews"}],
            "rules": [copy.deepcopy(TESTERS),
                      {"filters": [copy.deepcopy(HEADER_SET), copy.deepcopy(USER_MIRROR)], "timeouts": {"request": "3s"},
                       "backendRefs": [{"name": "reviews-v1", "port": 9080, "weight": 100}]}]}


JASON = match_condition({"headers": {"end-user": {"exact": "jason"}}}, "canary_match")


def test_an_ab_step_is_a_header_rule_to_the_canary_keeping_the_catch_alls_settings():
    new = hs.set_step_rules(_spec(), {"v1": 100, "v2": 0}, "reviews", canary="v2", match=JASON)
    ab = new["rules"][0]
    assert ab == {"name": "canary-match-v2", "matches": [{"headers": [{"name": "end-user", "type": "Exact", "value": "jason"}]}],
                  "filters": [HEADER_SET], "timeouts": {"request": "3s"}, "backendRefs": [{"name": "reviews-v2", "port": 9080}]}
    assert new["rules"][1] == TESTERS  # the user's rules stay
    assert [(b["name"], b["weight"]) for b in new["rules"][2]["backendRefs"]] == [("reviews-v1", 100), ("reviews-v2", 0)]
    assert hs.step_rules_of(new, "reviews", "v2") == {"match": "canary-match-v2", "mirror": None, "sticky": None}
    # Written again, the same spec; the next weight removes the A/B rule and nothing else.
    assert hs.set_step_rules(new, {"v1": 100, "v2": 0}, "reviews", canary="v2", match=JASON) == new
    after = hs.set_step_rules(new, {"v1": 50, "v2": 50}, "reviews")
    assert [r.get("name") for r in after["rules"]] == ["testers", None]
    assert after["rules"][1]["filters"] == [HEADER_SET, USER_MIRROR]


def test_a_shadow_step_is_a_request_mirror_of_the_catch_all_removed_by_the_next_write():
    new = hs.set_step_rules(_spec(), {"v1": 100, "v2": 0}, "reviews", canary="v2", mirror=100)
    catch_all = new["rules"][1]
    assert catch_all["filters"] == [HEADER_SET, USER_MIRROR,
                                    {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "reviews-v2", "port": 9080},
                                                                                "percent": 100}}]
    assert hs.step_rules_of(new, "reviews", "v2")["mirror"] == 100
    half = hs.set_step_rules(_spec(), {"v1": 100, "v2": 0}, "reviews", canary="v2", mirror=12.5)
    assert half["rules"][1]["filters"][-1]["requestMirror"]["fraction"] == {"numerator": 12500, "denominator": 100000}
    assert hs.step_rules_of(half, "reviews", "v2")["mirror"] == 12.5
    back = hs.set_step_rules(new, {"v1": 100, "v2": 0}, "reviews")
    assert back["rules"][1]["filters"] == [HEADER_SET, USER_MIRROR]  # the user's own mirror stays


def test_cookie_and_prefix_matches_become_regular_expressions():
    cookie = match_condition({"cookie": "user=jason"}, "canary_match")
    assert hs.gateway_header_matches(cookie) == [{"name": "cookie", "type": "RegularExpression",
                                                  "value": cookie["headers"]["cookie"]["regex"]}]
    prefix = match_condition({"headers": {"x-tier": {"prefix": "beta.1"}}}, "canary_match")
    assert hs.gateway_header_matches(prefix) == [{"name": "x-tier", "type": "RegularExpression", "value": "beta\\.1.*"}]


def test_a_step_without_the_canary_in_the_weights_is_refused():
    with pytest.raises(IstioSpecError) as err:
        hs.set_step_rules(_spec(), {"v1": 100}, "reviews", canary="v2", match=JASON)
    assert err.value.option == "canary"


def test_the_same_step_on_the_route_as_stored_with_the_api_servers_defaults_changes_nothing():
    written = hs.set_step_rules(_spec(), {"v1": 100, "v2": 0}, "reviews", canary="v2", match=JASON, mirror=50)
    stored = copy.deepcopy(written)  # as the API server keeps it: its defaults filled in
    for rule in stored["rules"]:
        rule.setdefault("matches", [{}])
        for match in rule["matches"]:
            match.setdefault("path", {"type": "PathPrefix", "value": "/"})
            for header in match.get("headers") or []:
                header.setdefault("type", "Exact")
        for ref in rule["backendRefs"]:
            ref.update(group="", kind="Service", weight=ref.get("weight", 1))
        for flt in rule.get("filters") or []:
            if flt["type"] == "RequestMirror":
                flt["requestMirror"]["backendRef"].update(group="", kind="Service")
    assert stored != written
    assert hs.set_step_rules(stored, {"v1": 100, "v2": 0}, "reviews", canary="v2", match=JASON, mirror=50) == stored
    # A real change is still one.
    moved = hs.set_step_rules(stored, {"v1": 90, "v2": 10}, "reviews", canary="v2", match=JASON, mirror=50)
    assert [b["weight"] for b in moved["rules"][-1]["backendRefs"]] == [90, 10]
