# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_istio/fault.py: fault validation and fault rules (what fault_injection computes)."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.canary.istio.plugins.module_utils._istio.common import IstioSpecError, specs_equal
from ansible_collections.canary.istio.plugins.module_utils._istio.fault import (
    fault_rule_overlaps,
    fault_rules,
    remove_fault_rule,
    upsert_fault_rule,
    validate_fault,
)
from ansible_collections.canary.istio.plugins.module_utils._istio.matches import conditions, implies, route_conditions
from ansible_collections.canary.istio.plugins.module_utils._istio.traffic import find_catch_all_index
from ansible_collections.canary.istio.tests.unit.plugins.module_utils.bookinfo_routes import _catch_all
from ansible_collections.canary.istio.tests.unit.plugins.module_utils.test_istio_traffic import virtual_service_specs


DELAY_7S = {"fixed_delay": "7s", "percentage": 100}


class TestValidation:
    @pytest.mark.parametrize(
        "delay, abort",
        [
            ({"fixed_delay": "7s", "percentage": 100}, None),
            ({"fixed_delay": "1ms", "percentage": 0}, None),
            ({"fixed_delay": "1.5s", "percentage": 0.0001}, None),
            ({"fixed_delay": "1m", "percentage": "50"}, None),
            ({"fixed_delay": "500ms"}, None),
            (None, {"http_status": 200, "percentage": 100.0}),
            (None, {"http_status": 599}),
            (None, {"http_status": "503", "percentage": 12.5}),
            ({"fixed_delay": "2s", "percentage": 10}, {"http_status": 500, "percentage": 10}),
        ],
    )
    def test_validate_fault_accepts_what_istio_accepts(self, delay, abort):
        assert validate_fault(delay, abort) is None

    @pytest.mark.parametrize(
        "delay, abort, field, fragment",
        [
            (None, None, "delay", "at least one"),
            ({}, {}, "delay", "at least one"),
            ({"percentage": 100}, None, "delay.fixed_delay", "needs fixed_delay"),
            ({"fixed_delay": "0s"}, None, "delay.fixed_delay", "minimum of 1ms"),
            ({"fixed_delay": "500us"}, None, "delay.fixed_delay", "minimum of 1ms"),
            ({"fixed_delay": "7"}, None, "delay.fixed_delay", "no unit"),
            ({"fixed_delay": "seven"}, None, "delay.fixed_delay", "not a duration"),
            ({"fixed_delay": 7}, None, "delay.fixed_delay", "duration string"),
            ({"fixed_delay": "1.0001s"}, None, "delay.fixed_delay", "millisecond precision"),
            ({"fixed_delay": "7s", "percentage": 100.5}, None, "delay.percentage", "0 or between 0.0001 and 100"),
            ({"fixed_delay": "7s", "percentage": -1}, None, "delay.percentage", "0 or between 0.0001 and 100"),
            ({"fixed_delay": "7s", "percentage": 0.00001}, None, "delay.percentage", "0 or between 0.0001 and 100"),
            ({"fixed_delay": "7s", "percentage": "lots"}, None, "delay.percentage", "must be a number"),
            ({"fixed_delay": "7s", "percentage": True}, None, "delay.percentage", "boolean"),
            ({"fixed_delay": "7s", "percentage": float("nan")}, None, "delay.percentage", "finite"),
            (None, {"percentage": 100}, "abort.http_status", "needs http_status"),
            (None, {"http_status": 199}, "abort.http_status", "outside 200-599"),
            (None, {"http_status": 600}, "abort.http_status", "outside 200-599"),
            (None, {"http_status": 500.5}, "abort.http_status", "must be an integer"),
            (None, {"http_status": 503, "percentage": 101}, "abort.percentage", "0 or between 0.0001 and 100"),
            ("7s", None, "delay", "must be a dict"),
            (None, 503, "abort", "must be a dict"),
        ],
    )
    def test_validate_fault_refusals(self, delay, abort, field, fragment):
        with pytest.raises(IstioSpecError) as err:
            validate_fault(delay, abort)
        assert err.value.option == field
        assert fragment in err.value.message


JASON = {"end-user": {"exact": "jason"}}
FAULT_X = {"x-fault": {"exact": "yes"}}


class TestFaultRules:
    def test_upsert_places_the_rule_just_before_the_catch_all(self, complex_virtual_service):
        before = copy.deepcopy(complex_virtual_service)
        new = upsert_fault_rule(complex_virtual_service, "fault-x", FAULT_X, DELAY_7S, None)
        assert complex_virtual_service == before, "input was mutated"
        names = [r.get("name") for r in new["http"]]
        assert names == ["jason-v2", "api-mirror", "chaos", "fault-x", "default"]
        rule = new["http"][3]
        assert rule == {
            "name": "fault-x",
            "match": [{"headers": {"x-fault": {"exact": "yes"}}}],
            "fault": {"delay": {"fixedDelay": "7s", "percentage": {"value": 100}}},
            "route": before["http"][3]["route"],
        }
        assert rule["route"] is not new["http"][4]["route"], "destinations must be a copy, not shared"
        assert [r for r in new["http"] if r.get("name") != "fault-x"] == before["http"]
        assert {k: v for k, v in new.items() if k != "http"} == {k: v for k, v in before.items() if k != "http"}

    def test_upsert_places_the_rule_before_an_earlier_route_that_takes_all_its_requests(self, complex_virtual_service):
        # jason-v2 sends every jason request to v2: a jason fault after it would never fire.
        new = upsert_fault_rule(complex_virtual_service, "jason-delay", JASON, DELAY_7S, None)
        assert [r.get("name") for r in new["http"]] == ["jason-delay", "jason-v2", "api-mirror", "chaos", "default"]
        assert new["http"][0]["route"] == complex_virtual_service["http"][0]["route"], "jason still goes to v2"
        assert fault_rule_overlaps(new, "jason-delay") == []

    def test_a_rule_after_the_first_catch_all_is_moved_where_it_fires(self):
        spec = {"hosts": ["r"], "http": [{"route": [{"destination": {"host": "r", "subset": "v1"}}]},
                                         {"name": "f", "match": [{"headers": FAULT_X}],
                                          "fault": {"delay": {"fixedDelay": "1s", "percentage": {"value": 100}}},
                                          "route": [{"destination": {"host": "r", "subset": "v1"}}]}]}
        new = upsert_fault_rule(spec, "f", FAULT_X, DELAY_7S, None)
        assert [r.get("name") for r in new["http"]] == ["f", None]

    def test_overlapping_earlier_routes_are_named(self):
        spec = {"hosts": ["r"], "http": [{"name": "canary-testers", "match": [{"headers": {"x-group": {"exact": "t"}}}],
                                          "route": [{"destination": {"host": "r", "subset": "v2"}}]},
                                         {"route": [{"destination": {"host": "r", "subset": "v1"}}]}]}
        new = upsert_fault_rule(spec, "f", FAULT_X, DELAY_7S, None)
        assert [r.get("name") for r in new["http"]] == ["canary-testers", "f", None]
        assert fault_rule_overlaps(new, "f") == ["route 'canary-testers'"]
        disjoint = upsert_fault_rule(spec, "f", {"x-group": {"exact": "other"}}, DELAY_7S, None)
        assert fault_rule_overlaps(disjoint, "f") == []

    def test_upsert_builds_abort_with_uri_and_given_destinations(self, complex_virtual_service):
        destinations = [{"destination": {"host": "reviews", "subset": "v1"}}]
        new = upsert_fault_rule(
            complex_virtual_service, "abort-api", {"x-test": {"prefix": "fail"}, "x-user": "bob"},
            None, {"http_status": 503, "percentage": 50.5}, destinations=destinations, uri={"prefix": "/api"},
        )
        rule = new["http"][3]
        assert rule["match"] == [{"headers": {"x-test": {"prefix": "fail"}, "x-user": {"exact": "bob"}}, "uri": {"prefix": "/api"}}]
        assert rule["fault"] == {"abort": {"httpStatus": 503, "percentage": {"value": 50.5}}}
        assert rule["route"] == destinations

    def test_upsert_updates_an_existing_rule_in_place(self, complex_virtual_service):
        added = upsert_fault_rule(complex_virtual_service, "jason-delay", FAULT_X, DELAY_7S, None)
        added["http"][3]["timeout"] = "30s"  # someone else's addition to our route survives an update
        updated = upsert_fault_rule(added, "jason-delay", {"end-user": {"exact": "mary"}}, {"fixed_delay": "2s", "percentage": 10},
                                    {"http_status": 500, "percentage": 5})
        assert [r.get("name") for r in updated["http"]] == [r.get("name") for r in added["http"]]
        rule = updated["http"][3]
        assert rule["match"] == [{"headers": {"end-user": {"exact": "mary"}}}]
        assert rule["fault"] == {
            "delay": {"fixedDelay": "2s", "percentage": {"value": 10}},
            "abort": {"httpStatus": 500, "percentage": {"value": 5}},
        }
        assert rule["timeout"] == "30s"
        assert upsert_fault_rule(updated, "jason-delay", {"end-user": {"exact": "mary"}}, {"fixed_delay": "2s", "percentage": 10},
                                 {"http_status": 500, "percentage": 5}) == updated

    def test_upsert_follows_the_catch_all_after_a_weight_change(self, complex_virtual_service):
        added = upsert_fault_rule(complex_virtual_service, "jason-delay", FAULT_X, DELAY_7S, None)
        added["http"][4]["route"] = [{"destination": {"host": "reviews", "subset": "v2"}}]
        again = upsert_fault_rule(added, "jason-delay", FAULT_X, DELAY_7S, None)
        assert again["http"][3]["route"] == [{"destination": {"host": "reviews", "subset": "v2"}}]

    def test_upsert_on_bookinfo_ratings_matches_the_bookinfo_delay_rule(self):
        spec = {"hosts": ["ratings"], "http": [{"route": [{"destination": {"host": "ratings", "subset": "v1"}}]}]}
        new = upsert_fault_rule(spec, "jason-delay", JASON, {"fixed_delay": "7s", "percentage": 100.0}, None)
        assert new["http"][0]["fault"] == {"delay": {"fixedDelay": "7s", "percentage": {"value": 100}}}
        assert new["http"][1] == spec["http"][0]

    def test_upsert_without_catch_all_needs_destinations(self):
        spec = {"http": [{"match": [{"uri": {"prefix": "/a"}}], "route": [{"destination": {"host": "r"}}]}]}
        with pytest.raises(IstioSpecError) as err:
            upsert_fault_rule(spec, "f", JASON, DELAY_7S, None)
        assert err.value.option == "destinations"
        assert "no catch-all" in err.value.message
        dests = [{"destination": {"host": "r", "subset": "v1"}}]
        new = upsert_fault_rule(spec, "f", JASON, DELAY_7S, None, destinations=dests)
        assert [r.get("name") for r in new["http"]] == [None, "f"]
        assert remove_fault_rule(new, "f") == spec

    def test_upsert_and_remove_on_an_empty_spec(self):
        dests = [{"destination": {"host": "r", "subset": "v1"}}]
        new = upsert_fault_rule({"hosts": ["r"]}, "f", JASON, DELAY_7S, None, destinations=dests)
        assert new["http"][0]["name"] == "f"
        assert remove_fault_rule(new, "f") == {"hosts": ["r"]}

    @pytest.mark.parametrize(
        "kwargs, field, fragment",
        [
            ({"name": ""}, "name", "name the fault rule"),
            ({"name": None}, "name", "name the fault rule"),
            ({"headers": {}}, "headers", "needs a header (or uri) match"),
            ({"headers": None}, "headers", "needs a header (or uri) match"),
            ({"headers": {"end-user": {"exact": "a", "prefix": "b"}}}, "headers.end-user", "exactly one of"),
            ({"headers": {"end-user": {"suffix": "a"}}}, "headers.end-user", "unknown match kind"),
            ({"headers": {"end-user": {"exact": 7}}}, "headers.end-user", "must be a string"),
            ({"headers": {"end-user": ["jason"]}}, "headers.end-user", "expected {exact"),
            ({"headers": ["end-user"]}, "headers", "expected a dict"),
            ({"uri": {"glob": "/x"}}, "uri", "unknown match kind"),
            ({"delay": None, "abort": None}, "delay", "at least one"),
            ({"abort": {"http_status": 700}}, "abort.http_status", "outside 200-599"),
            ({"destinations": []}, "destinations", "at least one destination"),
            ({"name": "chaos"}, "name", "not a fault rule"),
            ({"name": "default"}, "name", "not a fault rule"),
        ],
    )
    def test_upsert_refusals(self, complex_virtual_service, kwargs, field, fragment):
        args = {"name": "jason-delay", "headers": JASON, "delay": DELAY_7S, "abort": None}
        args.update(kwargs)
        if kwargs.get("name") == "chaos":
            complex_virtual_service["http"][2].pop("fault")  # make 'chaos' an ordinary route
        before = copy.deepcopy(complex_virtual_service)
        with pytest.raises(IstioSpecError) as err:
            upsert_fault_rule(complex_virtual_service, **args)
        assert err.value.option == field
        assert fragment in err.value.message
        assert complex_virtual_service == before

    def test_remove_missing_rule_returns_an_unchanged_copy(self, complex_virtual_service):
        result = remove_fault_rule(complex_virtual_service, "absent")
        assert result == complex_virtual_service
        assert result is not complex_virtual_service

    def test_remove_refuses_a_route_that_is_not_a_fault_rule(self, complex_virtual_service):
        with pytest.raises(IstioSpecError) as err:
            remove_fault_rule(complex_virtual_service, "default")
        assert err.value.option == "name"
        assert "not a fault rule" in err.value.message

    def test_fault_rules_summarises_in_module_form(self, complex_virtual_service):
        spec = upsert_fault_rule(complex_virtual_service, "jason-delay", FAULT_X, {"fixed_delay": "7s", "percentage": 25}, None)
        spec["http"][0]["fault"] = {"delay": {"fixedDelay": "1s", "percent": 50}, "abort": {"grpcStatus": "UNAVAILABLE", "percentage": {"value": 1}}}
        assert fault_rules(spec) == [
            {"name": "jason-v2", "match": spec["http"][0]["match"],
             "delay": {"fixed_delay": "1s", "percentage": 50},
             "abort": {"http_status": None, "percentage": 1, "grpc_status": "UNAVAILABLE"}},
            {"name": "chaos", "match": [{"headers": {"x-chaos": {"exact": "abort"}}}],
             "delay": None, "abort": {"http_status": 503, "percentage": 50}},
            {"name": "jason-delay", "match": [{"headers": FAULT_X}],
             "delay": {"fixed_delay": "7s", "percentage": 25}, "abort": None},
        ]
        assert fault_rules({"hosts": ["x"]}) == []


_string_match = st.one_of(
    st.builds(lambda v: {"exact": v}, st.text(min_size=1, max_size=8)),
    st.builds(lambda v: {"prefix": v}, st.text(min_size=1, max_size=8)),
    st.builds(lambda v: {"regex": v}, st.sampled_from(["^a.*", "b+", "[0-9]{2}"])),
)
_headers = st.dictionaries(st.sampled_from(["end-user", "x-test", "x-fault"]), _string_match, min_size=1, max_size=3)
_delay = st.one_of(
    st.none(),
    st.fixed_dictionaries({"fixed_delay": st.sampled_from(["7s", "1ms", "1.5s", "2m", "250ms"])},
                          optional={"percentage": st.one_of(st.integers(0, 100), st.floats(0.0001, 100))}),
)
_abort = st.one_of(
    st.none(),
    st.fixed_dictionaries({"http_status": st.integers(200, 599)}, optional={"percentage": st.integers(0, 100)}),
)


class TestProperties:
    @settings(max_examples=300, deadline=None)  # pure and fast; no flaky deadline on busy CI hosts
    @given(spec=virtual_service_specs(), name=st.text(alphabet="abcdefghij-", min_size=1, max_size=10),
           headers=_headers, delay=_delay, abort=_abort, data=st.data())
    def test_property_remove_undoes_upsert(self, spec, name, headers, delay, abort, data):
        name = "fault-" + name  # generated routes are named r<N>: no clash
        if delay is None and abort is None:
            delay = DELAY_7S
        uri = data.draw(st.one_of(st.none(), _string_match))
        before = copy.deepcopy(spec)
        catch_all = find_catch_all_index(spec)

        added = upsert_fault_rule(spec, name, headers, delay, abort, uri=uri)

        assert spec == before, "input was mutated"
        at = [r.get("name") for r in added["http"]].index(name)
        # Placed no later than the first catch-all, before the route that would take its requests,
        # and routing like that route; every other route keeps its order.
        assert at <= catch_all
        assert added["http"][at + 1] == spec["http"][at]
        assert added["http"][at]["route"] == spec["http"][at]["route"]
        assert added["http"][:at] + added["http"][at + 1:] == spec["http"]
        rule_conditions = conditions(added["http"][at]["match"][0])
        assert not any(implies(rule_conditions, c) for r in added["http"][:at] for c in route_conditions(r)), "the rule never fires"
        assert upsert_fault_rule(added, name, headers, delay, abort, uri=uri) == added
        restored = remove_fault_rule(added, name)
        assert restored == before
        assert json.dumps(restored) == json.dumps(before)


class TestBookinfo:
    """On every VirtualService of Istio's bookinfo sample (tests/unit/conftest.py)."""

    def test_fault_rule_round_trip(self, bookinfo_virtual_service):
        spec = bookinfo_virtual_service["spec"]
        _catch_all(spec)
        added = upsert_fault_rule(spec, "jason-delay", {"end-user": {"exact": "jason"}}, {"fixed_delay": "7s", "percentage": 100}, None)
        # Before the first route that takes jason's requests (bookinfo's own jason route, else the
        # catch-all), routing like it: the fault is the only change for those requests.
        index = next(i for i, r in enumerate(spec["http"])
                     if not r.get("match") or any(m.get("headers") == {"end-user": {"exact": "jason"}} for m in r["match"]))
        assert added["http"][index]["name"] == "jason-delay"
        assert added["http"][index]["route"] == spec["http"][index]["route"]
        assert added["http"][index + 1] == spec["http"][index]
        assert len(fault_rules(added)) == len(fault_rules(spec)) + 1
        assert remove_fault_rule(added, "jason-delay") == spec

    def test_fixture_faults_are_read_and_rebuilt(self, bookinfo_virtual_service):
        spec = bookinfo_virtual_service["spec"]
        raw_faults = [r for r in spec["http"] if "fault" in r]
        summaries = fault_rules(spec)
        assert len(summaries) == len(raw_faults)
        for raw, summary in zip(raw_faults, summaries):
            assert summary["match"] == raw.get("match", [])
            delay, abort = summary["delay"], summary["abort"]
            if "delay" in raw["fault"]:
                assert delay == {"fixed_delay": raw["fault"]["delay"]["fixedDelay"], "percentage": raw["fault"]["delay"]["percentage"]["value"]}
            if "abort" in raw["fault"]:
                assert abort == {"http_status": raw["fault"]["abort"]["httpStatus"], "percentage": raw["fault"]["abort"]["percentage"]["value"]}
            validate_fault(delay, abort)  # what Istio accepted, we accept
            if raw.get("match"):
                # Rebuilding the same rule from its summary yields the same fault block.
                headers = raw["match"][0]["headers"]
                rebuilt = upsert_fault_rule({"http": [{"route": raw["route"]}]}, "rebuilt", headers, delay, abort)
                assert specs_equal(rebuilt["http"][0]["fault"], raw["fault"])
                assert rebuilt["http"][0]["match"] == raw["match"]
