# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_istio/traffic.py: weights and the route they go to (what traffic_split computes)."""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from ansible_collections.canary.istio.plugins.module_utils._istio.common import IstioSpecError
from ansible_collections.canary.istio.plugins.module_utils._istio.traffic import (
    find_route_index,
    route_weights,
    set_route_weights,
    subsets_with_traffic,
    validate_weights,
    weights_from_canary,
)
from ansible_collections.canary.istio.tests.unit.plugins.module_utils.bookinfo_routes import _catch_all


def _is_int(value):
    """An int that is not a bool (JSON has no bool-as-int)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _dest(subset, weight=None, host="reviews"):
    entry = {"destination": {"host": host, "subset": subset}}
    if weight is not None:
        entry["weight"] = weight
    return entry


def _without_route_of(spec, index):
    """The spec with http[index].route taken out, to compare everything else."""
    stripped = copy.deepcopy(spec)
    stripped["http"][index].pop("route", None)
    return stripped


SUBSETS = ["v1", "v2", "v3", "v2-mysql", "stable", "canary"]
_extra_route_keys = st.fixed_dictionaries(
    {},
    optional={
        "timeout": st.sampled_from(["1s", "250ms", "2m"]),
        "retries": st.fixed_dictionaries({"attempts": st.integers(0, 5)}, optional={"retryOn": st.just("5xx")}),
        "mirror": st.builds(lambda s: {"host": "reviews", "subset": s}, st.sampled_from(SUBSETS)),
        "mirrorPercentage": st.builds(lambda v: {"value": v}, st.floats(0, 100)),
        "headers": st.just({"request": {"set": {"x-a": "1"}}}),
        "fault": st.just({"delay": {"fixedDelay": "5s", "percentage": {"value": 10}}}),
        "x-unknown": st.dictionaries(st.text(min_size=1, max_size=5), st.integers(), max_size=2),
    },
)


@st.composite
def destinations(draw):
    subsets = draw(st.lists(st.sampled_from(SUBSETS), min_size=1, max_size=4, unique=True))
    weighted = draw(st.booleans()) or len(subsets) > 1
    result = []
    for subset in subsets:
        target = {"host": draw(st.sampled_from(["reviews", "reviews.prod.svc.cluster.local"])), "subset": subset}
        if draw(st.booleans()):
            target["port"] = {"number": 9080}
        entry = {"destination": target}
        if weighted:
            entry["weight"] = draw(st.integers(0, 100))
        if draw(st.booleans()):
            entry["headers"] = {"response": {"set": {"x-subset": subset}}}
        result.append(entry)
    return result


@st.composite
def http_route(draw, index, catch_all):
    route = {}
    if draw(st.booleans()):
        route["name"] = "r%d" % index
    if not catch_all:
        route["match"] = draw(st.lists(
            st.one_of(
                st.builds(lambda v: {"headers": {"end-user": {"exact": v}}}, st.text(min_size=1, max_size=6)),
                st.builds(lambda v: {"uri": {"prefix": "/" + v}}, st.text(max_size=6)),
            ),
            min_size=1, max_size=3,
        ))
    route["route"] = draw(destinations())
    route.update(draw(_extra_route_keys))
    return route


@st.composite
def virtual_service_specs(draw):
    """VirtualService specs with at least one catch-all route, anywhere in the list."""
    count = draw(st.integers(1, 5))
    catch_alls = draw(st.sets(st.integers(0, count - 1), min_size=1))
    spec = {"hosts": ["reviews"], "http": [draw(http_route(i, i in catch_alls)) for i in range(count)]}
    if draw(st.booleans()):
        spec["gateways"] = ["mesh"]
    if draw(st.booleans()):
        spec["tcp"] = [{"route": [{"destination": {"host": "reviews", "port": {"number": 9090}}}]}]
    if draw(st.booleans()):
        spec["x-vendor"] = {"keep": draw(st.integers())}
    return spec


@st.composite
def weight_dicts(draw):
    """Valid weights: distinct subsets, non-negative integers summing to 100."""
    subsets = draw(st.lists(st.sampled_from(SUBSETS), min_size=1, max_size=4, unique=True))
    cuts = sorted(draw(st.lists(st.integers(0, 100), min_size=len(subsets) - 1, max_size=len(subsets) - 1)))
    bounds = [0] + cuts + [100]
    return {subset: bounds[i + 1] - bounds[i] for i, subset in enumerate(subsets)}


class TestWeights:
    def test_validate_weights_converts_int_like_values_in_order(self):
        result = validate_weights({"v1": "90", "v2": 10.0, "v3": 0})
        assert result == {"v1": 90, "v2": 10, "v3": 0}
        assert list(result) == ["v1", "v2", "v3"]
        assert all(_is_int(w) for w in result.values())

    @pytest.mark.parametrize(
        "weights, fragment",
        [
            ({"v1": 90, "v2": 9}, "sum to exactly 100, these sum to 99"),
            ({"v1": 90, "v2": 11}, "these sum to 101"),
            ({"v1": 110, "v2": -10}, "cannot be negative"),
            ({"v1": 89.5, "v2": 10.5}, "must be an integer"),
            ({"v1": True, "v2": 99}, "boolean"),
            ({"v1": "ninety", "v2": 10}, "must be an integer"),
            ({"v1": None, "v2": 100}, "must be an integer"),
            ({"": 100}, "non-empty strings"),
            ({1: 100}, "non-empty strings"),
            ({}, "at least one subset"),
            ([("v1", 100)], "at least one subset"),
            (None, "at least one subset"),
        ],
    )
    def test_validate_weights_refusals(self, weights, fragment):
        with pytest.raises(IstioSpecError) as err:
            validate_weights(weights)
        assert err.value.option == "weights"
        assert fragment in err.value.message

    def test_weights_from_canary_splits_100(self):
        assert weights_from_canary("v1", "v2", 10) == {"v1": 90, "v2": 10}
        assert weights_from_canary("v1", "v2", "25") == {"v1": 75, "v2": 25}
        assert weights_from_canary("v1", "v2", 100) == {"v1": 0, "v2": 100}
        assert weights_from_canary("v1", "v2", 0) == {"v1": 100, "v2": 0}

    @pytest.mark.parametrize(
        "args, field, fragment",
        [
            (("v1", "v1", 10), "canary", "both name subset 'v1'"),
            (("v1", "v2", 101), "canary_weight", "from 0 to 100"),
            (("v1", "v2", -1), "canary_weight", "from 0 to 100"),
            (("v1", "v2", 10.5), "canary_weight", "must be an integer"),
            (("v1", "v2", True), "canary_weight", "boolean"),
            (("", "v2", 10), "stable", "name the stable subset"),
            (("v1", None, 10), "canary", "name the canary subset"),
        ],
    )
    def test_weights_from_canary_refusals(self, args, field, fragment):
        with pytest.raises(IstioSpecError) as err:
            weights_from_canary(*args)
        assert err.value.option == field
        assert fragment in err.value.message

    def test_subsets_with_traffic_skips_zero_weights(self):
        assert subsets_with_traffic({"v1": 0, "v2": 70, "v3": 30}) == ["v2", "v3"]
        assert subsets_with_traffic({"v1": 100, "v2": 0}) == ["v1"]


class TestFindingTheRoute:
    def test_find_route_index_defaults_to_the_catch_all(self, complex_virtual_service):
        assert find_route_index(complex_virtual_service) == 3
        assert find_route_index(complex_virtual_service, "chaos") == 2
        assert find_route_index(complex_virtual_service, "jason-v2") == 0

    def test_find_route_index_takes_the_first_route_that_matches_everything(self):
        # Envoy takes the first matching route: route 0 catches all, routes 1 and 2 are never reached.
        spec = {"http": [{"route": [_dest("v1")]}, {"match": [{"uri": {"prefix": "/a"}}], "route": [_dest("v2")]}, {"match": [], "route": [_dest("v3")]}]}
        assert find_route_index(spec) == 0

    def test_find_route_index_refuses_a_named_route_behind_the_catch_all(self):
        spec = {"http": [{"name": "all", "route": [_dest("v1")]}, {"name": "late", "route": [_dest("v2")]}]}
        with pytest.raises(IstioSpecError) as err:
            find_route_index(spec, "late")
        assert err.value.option == "route"
        assert "'late' is never reached" in str(err.value) and "route 'all'" in str(err.value)

    def test_a_match_holding_only_a_name_or_the_root_prefix_is_a_catch_all(self):
        spec = {"http": [{"match": [{"headers": {"x": {"exact": "1"}}}], "route": [_dest("v2")]},
                         {"match": [{"name": "everything"}], "route": [_dest("v1")]},
                         {"route": [_dest("v3")]}]}
        assert find_route_index(spec) == 1
        spec["http"][1]["match"] = [{"uri": {"prefix": "/"}, "ignoreUriCase": True}]
        assert find_route_index(spec) == 1
        spec["http"][1]["match"] = [{"uri": {"prefix": "/api"}}]
        assert find_route_index(spec) == 2

    @pytest.mark.parametrize("match", [[{}], [{"name": "everything"}], [{"uri": {"prefix": "/x"}}, {}]])
    def test_find_route_index_counts_unconditional_match_entries_as_catch_all(self, match):
        spec = {"http": [{"match": [{"headers": {"a": {"exact": "b"}}}], "route": [_dest("v2")]}, {"match": match, "route": [_dest("v1")]}]}
        assert find_route_index(spec) == 1

    def test_find_route_index_without_catch_all_lists_routes(self):
        spec = {"http": [{"name": "api", "match": [{"uri": {"prefix": "/api"}}], "route": [_dest("v1")]},
                         {"match": [{"gateways": ["edge"]}], "route": [_dest("v1")]}]}
        with pytest.raises(IstioSpecError) as err:
            find_route_index(spec)
        assert err.value.option == "route"
        assert "no catch-all" in err.value.message
        assert "api" in err.value.message and "<unnamed #1>" in err.value.message
        with pytest.raises(IstioSpecError) as err:
            find_route_index({"hosts": ["reviews"]})
        assert "Routes: none" in err.value.message

    def test_find_route_index_unknown_name_lists_named_routes(self, complex_virtual_service):
        with pytest.raises(IstioSpecError) as err:
            find_route_index(complex_virtual_service, "canary")
        assert err.value.option == "route"
        for name in ("jason-v2", "api-mirror", "chaos", "default"):
            assert repr(name) in err.value.message
        assert "no HTTP route named 'canary'" in err.value.message

    def test_find_route_index_refuses_duplicate_names(self):
        spec = {"http": [{"name": "a", "route": [_dest("v1")]}, {"name": "a", "route": [_dest("v2")]}]}
        with pytest.raises(IstioSpecError) as err:
            find_route_index(spec, "a")
        assert err.value.option == "route"
        assert "unique" in err.value.message


class TestReadingWeights:
    @pytest.mark.parametrize(
        "route, expected",
        [
            ({"route": [_dest("v1")]}, {"v1": 100}),
            ({"route": [_dest("v1", 40)]}, {"v1": 100}),
            ({"route": [_dest("v1", 90), _dest("v2", 10)]}, {"v1": 90, "v2": 10}),
            ({"route": [_dest("v1", 100), _dest("v2")]}, {"v1": 100, "v2": 0}),
            ({"route": [{"destination": {"host": "reviews"}}]}, {"": 100}),
            ({"route": [_dest("v1", 30), _dest("v1", 30, host="reviews-b"), _dest("v2", 40)]}, {"v1": 60, "v2": 40}),
            ({"redirect": {"uri": "/x"}}, {}),
        ],
    )
    def test_route_weights_reads_as_istio_does(self, route, expected):
        assert route_weights(route) == expected


class TestSettingWeights:
    """On the hand-made VirtualService."""

    def test_set_route_weights_keeps_destination_keys_and_everything_else(self, complex_virtual_service):
        before = copy.deepcopy(complex_virtual_service)
        new = set_route_weights(complex_virtual_service, {"v1": 50, "v2": 50})
        assert complex_virtual_service == before, "input was mutated"
        assert _without_route_of(new, 3) == _without_route_of(before, 3)
        old_dests, new_dests = before["http"][3]["route"], new["http"][3]["route"]
        assert [d["weight"] for d in new_dests] == [50, 50]
        for old, changed in zip(old_dests, new_dests):
            assert {k: v for k, v in changed.items() if k != "weight"} == {k: v for k, v in old.items() if k != "weight"}

    def test_set_route_weights_adds_and_removes_subsets(self, complex_virtual_service):
        new = set_route_weights(complex_virtual_service, {"v1": 80, "v3": 20})
        dests = new["http"][3]["route"]
        assert [d["destination"]["subset"] for d in dests] == ["v1", "v3"]
        assert dests[0] == dict(complex_virtual_service["http"][3]["route"][0], weight=80)
        first = complex_virtual_service["http"][3]["route"][0]["destination"]
        assert dests[1] == {"destination": {"host": first["host"], "port": first["port"], "subset": "v3"}, "weight": 20}

    def test_set_route_weights_keeps_zero_weight_subsets_in_existing_order(self, complex_virtual_service):
        new = set_route_weights(complex_virtual_service, {"v2": 100, "v1": 0})
        assert [(d["destination"]["subset"], d["weight"]) for d in new["http"][3]["route"]] == [("v1", 0), ("v2", 100)]

    def test_set_route_weights_on_a_named_route(self, complex_virtual_service):
        new = set_route_weights(complex_virtual_service, {"v2": 90, "v3": 10}, route="jason-v2")
        assert new["http"][0]["route"] == [_dest("v2", 90), _dest("v3", 10)]
        assert _without_route_of(new, 0) == _without_route_of(complex_virtual_service, 0)

    def test_set_route_weights_leaves_an_unweighted_single_destination_as_it_was(self, complex_virtual_service):
        new = set_route_weights(complex_virtual_service, {"v2": 100}, route="jason-v2")
        assert new == complex_virtual_service

    def test_set_route_weights_from_a_single_destination_writes_every_weight(self):
        spec = {"hosts": ["reviews"], "http": [{"route": [_dest("v1")]}]}
        new = set_route_weights(spec, {"v1": 90, "v2": 10})
        assert new["http"][0]["route"] == [_dest("v1", 90), _dest("v2", 10)]
        back = set_route_weights(new, {"v1": 100})
        assert back["http"][0]["route"] == [_dest("v1", 100)]

    def test_set_route_weights_replaces_a_whole_host_destination(self):
        spec = {"http": [{"route": [{"destination": {"host": "reviews", "port": {"number": 9080}}}]}]}
        new = set_route_weights(spec, {"v1": 90, "v2": 10})
        assert new["http"][0]["route"] == [
            {"destination": {"host": "reviews", "port": {"number": 9080}, "subset": "v1"}, "weight": 90},
            {"destination": {"host": "reviews", "port": {"number": 9080}, "subset": "v2"}, "weight": 10},
        ]

    @pytest.mark.parametrize(
        "spec, weights, route, field, fragment",
        [
            ({"http": [{"name": "r", "redirect": {"uri": "/v2"}}]}, {"v1": 100}, "r", "route", "has no destinations"),
            ({"http": [{"route": [_dest("v1", 50), _dest("v1", 50, host="other")]}]}, {"v1": 100}, None, "route", "more than one destination"),
            ({"http": [{"route": [_dest("v1")]}]}, {"v1": 90}, None, "weights", "sum to exactly 100"),
            ({"http": [{"match": [{"uri": {"exact": "/"}}], "route": [_dest("v1")]}]}, {"v1": 100}, None, "route", "no catch-all"),
            ({"http": [{"route": [_dest("v1")]}]}, {"v1": 100}, "missing", "route", "no HTTP route named 'missing'"),
        ],
    )
    def test_set_route_weights_refusals_leave_the_input_alone(self, spec, weights, route, field, fragment):
        before = copy.deepcopy(spec)
        with pytest.raises(IstioSpecError) as err:
            set_route_weights(spec, weights, route)
        assert err.value.option == field
        assert fragment in err.value.message
        assert spec == before


class TestProperties:
    @settings(max_examples=300, deadline=None)  # pure and fast; no flaky deadline on busy CI hosts
    @given(spec=virtual_service_specs(), weights=weight_dicts())
    def test_property_set_route_weights_changes_only_weights_of_its_route(self, spec, weights):
        before = copy.deepcopy(spec)
        index = find_route_index(spec)
        new = set_route_weights(spec, weights)

        assert spec == before, "input was mutated"
        # Everything outside the route's destination list is byte-for-byte what it was.
        assert json.dumps(_without_route_of(new, index)) == json.dumps(_without_route_of(before, index))

        old_dests = before["http"][index]["route"]
        new_dests = new["http"][index]["route"]
        # Exactly the wanted subsets: existing order kept, new ones appended.
        old_order = [d["destination"]["subset"] for d in old_dests]
        assert [d["destination"]["subset"] for d in new_dests] == (
            [s for s in old_order if s in weights] + [s for s in weights if s not in old_order]
        )
        # Integer weights summing to 100 (a lone destination may carry none: Istio gives it 100).
        written = [d.get("weight") for d in new_dests]
        if len(new_dests) > 1 or written[0] is not None:
            assert all(_is_int(w) for w in written)
            assert sum(written) == 100
        assert route_weights(new["http"][index]) == weights
        # Kept destinations keep every other key; new ones take the first destination's host.
        old_by_subset = {d["destination"]["subset"]: d for d in old_dests}
        for dest in new_dests:
            old = old_by_subset.get(dest["destination"]["subset"])
            if old is not None:
                assert {k: v for k, v in dest.items() if k != "weight"} == {k: v for k, v in old.items() if k != "weight"}
            else:
                assert dest["destination"]["host"] == old_dests[0]["destination"]["host"]
                assert set(dest) == {"destination", "weight"}

    @given(spec=virtual_service_specs(), weights=weight_dicts())
    def test_property_set_route_weights_is_idempotent(self, spec, weights):
        once = set_route_weights(spec, weights)
        assert set_route_weights(once, weights) == once


class TestBookinfo:
    """On every VirtualService of Istio's bookinfo sample (tests/unit/conftest.py)."""

    def test_fixture_inventory(self, istio_fixtures):
        """The parametrized tests below really have manifests to run on."""
        kinds = []
        for path in sorted((istio_fixtures / "bookinfo" / "networking").glob("*.yaml")):
            with path.open(encoding="utf-8") as stream:
                kinds.extend(doc.get("kind") for doc in yaml.safe_load_all(stream) if doc)
        assert kinds.count("VirtualService") > 0
        assert kinds.count("DestinationRule") > 0

    def test_route_weights_sum_to_100(self, bookinfo_virtual_service):
        for route in bookinfo_virtual_service["spec"]["http"]:
            weights = route_weights(route)
            assert sum(weights.values()) == 100
            assert set(weights) == {(d["destination"].get("subset") or "") for d in route["route"]}

    def test_setting_the_current_weights_changes_nothing(self, bookinfo_virtual_service):
        spec = bookinfo_virtual_service["spec"]
        index = _catch_all(spec)
        current = route_weights(spec["http"][index])
        assert set_route_weights(spec, current) == spec

    def test_canary_split_and_back(self, bookinfo_virtual_service):
        spec = bookinfo_virtual_service["spec"]
        index = _catch_all(spec)
        original = route_weights(spec["http"][index])
        stable = next(iter(original))
        split = set_route_weights(spec, {stable: 90, "canary": 10})

        changed = split["http"][index]
        assert route_weights(changed) == {stable: 90, "canary": 10}
        first_host = spec["http"][index]["route"][0]["destination"]["host"]
        assert changed["route"][-1]["destination"] == {"host": first_host, "subset": "canary"}
        for i, route in enumerate(split["http"]):
            if i != index:
                assert route == spec["http"][i]
        assert {k: v for k, v in changed.items() if k != "route"} == {k: v for k, v in spec["http"][index].items() if k != "route"}

        back = set_route_weights(split, original)
        assert route_weights(back["http"][index]) == original
        assert json.dumps({k: v for k, v in back.items() if k != "http"}) == json.dumps({k: v for k, v in spec.items() if k != "http"})
