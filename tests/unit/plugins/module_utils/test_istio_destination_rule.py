# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_istio/destination_rule.py: DestinationRule specs built on the live one."""

from __future__ import annotations

import copy
import json

import pytest

from ansible_collections.canary.istio.plugins.module_utils._istio.common import IstioSpecError, specs_equal
from ansible_collections.canary.istio.plugins.module_utils._istio.destination_rule import (
    build_destination_rule_spec,
    subset_labels,
    subset_names,
)


LIVE = {
    "host": "reviews",
    "exportTo": ["."],
    "trafficPolicy": {"loadBalancer": {"simple": "RANDOM"}},
    "subsets": [
        {"name": "v1", "labels": {"version": "v1"}, "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": 10}}}},
        {"name": "v2", "labels": {"version": "v2"}, "x-extra": "kept"},
        {"name": "v3", "labels": {"version": "v3"}},
    ],
}


class TestBuildSpec:
    def test_new_rule_from_nothing(self):
        spec = build_destination_rule_spec(None, "reviews", [{"name": "v1", "labels": {"version": "v1"}},
                                                             {"name": "v2", "labels": {"version": "v2"}}], None, False)
        assert spec == {"host": "reviews", "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                                                       {"name": "v2", "labels": {"version": "v2"}}]}

    def test_listed_subsets_replace_labels_and_keep_unknown_keys_and_policy(self):
        before = copy.deepcopy(LIVE)
        spec = build_destination_rule_spec(LIVE, "reviews", [{"name": "v2", "labels": {"version": "v2", "track": "canary"}}], None, False)
        assert LIVE == before, "input was mutated"
        assert spec["subsets"][1] == {"name": "v2", "labels": {"version": "v2", "track": "canary"}, "x-extra": "kept"}
        assert spec["subsets"][0] == LIVE["subsets"][0]
        assert spec["subsets"][2] == LIVE["subsets"][2]
        assert spec["trafficPolicy"] == LIVE["trafficPolicy"]
        assert spec["exportTo"] == ["."]

    def test_subset_traffic_policy_is_set_when_given(self):
        policy = {"loadBalancer": {"simple": "LEAST_REQUEST"}}
        spec = build_destination_rule_spec(LIVE, "reviews", [{"name": "v1", "labels": {"version": "v1"}, "traffic_policy": policy}], None, False)
        assert spec["subsets"][0] == {"name": "v1", "labels": {"version": "v1"}, "trafficPolicy": policy}

    def test_purge_subsets_drops_unlisted_and_appends_new_in_order(self):
        spec = build_destination_rule_spec(LIVE, "reviews", [{"name": "v4", "labels": {"version": "v4"}},
                                                             {"name": "v2", "labels": {"version": "v2"}}], None, True)
        assert subset_names(spec) == ["v2", "v4"]
        kept = build_destination_rule_spec(LIVE, "reviews", [{"name": "v4", "labels": {"version": "v4"}}], None, False)
        assert subset_names(kept) == ["v1", "v2", "v3", "v4"]

    def test_rule_level_traffic_policy_set_when_given_kept_otherwise(self):
        policy = {"tls": {"mode": "ISTIO_MUTUAL"}}
        assert build_destination_rule_spec(LIVE, "reviews", [], policy, False)["trafficPolicy"] == policy
        assert build_destination_rule_spec(LIVE, "reviews", [], None, False)["trafficPolicy"] == LIVE["trafficPolicy"]

    def test_same_options_twice_is_a_no_op(self):
        options = [{"name": "v1", "labels": {"version": "v1"}}, {"name": "v2", "labels": {"version": "v2"}, "traffic_policy": None}]
        once = build_destination_rule_spec(None, "reviews", options, {"loadBalancer": {"simple": "RANDOM"}}, True)
        twice = build_destination_rule_spec(once, "reviews", options, {"loadBalancer": {"simple": "RANDOM"}}, True)
        assert specs_equal(once, twice)
        assert once == twice

    def test_label_values_become_strings(self):
        spec = build_destination_rule_spec(None, "reviews", [{"name": "v2", "labels": {"version": 2, "rev": 1.5}}], None, False)
        assert spec["subsets"][0]["labels"] == {"version": "2", "rev": "1.5"}

    def test_purging_everything_leaves_an_empty_list(self):
        assert build_destination_rule_spec(LIVE, "reviews", [], None, True)["subsets"] == []
        assert "subsets" not in build_destination_rule_spec({"host": "reviews"}, "reviews", [], None, True)

    @pytest.mark.parametrize(
        "host, subsets, policy, field, fragment",
        [
            ("", [], None, "host", "give the host"),
            (None, [], None, "host", "give the host"),
            ("reviews", [{"labels": {"version": "v1"}}], None, "subsets", "needs a name"),
            ("reviews", [{"name": "v1", "labels": ["version=v1"]}], None, "subsets", "must be a dict"),
            ("reviews", [{"name": "v1", "labels": {"enabled": True}}], None, "subsets", "quote it"),
            ("reviews", [{"name": "v1", "labels": {"version": "v1"}}, {"name": "v1", "labels": {"version": "v1"}}], None, "subsets",
             "listed more than once"),
            ("reviews", [{"name": "v1"}], None, "subsets", "subset 'v1' has no labels, so it would select every pod"),
            ("reviews", [{"name": "v1", "labels": {}}], None, "subsets", "give the labels of one version, e.g. {version: v1}"),
            ("reviews", ["v1"], None, "subsets", "must be a dict"),
            ("reviews", {"name": "v1"}, None, "subsets", "must be a list"),
            ("reviews", [{"name": "v1", "labels": {"version": "v1"}, "traffic_policy": "RANDOM"}], None, "subsets", "traffic_policy of subset 'v1'"),
            ("reviews", [], "RANDOM", "traffic_policy", "must be a dict"),
        ],
    )
    def test_refusals(self, host, subsets, policy, field, fragment):
        before = copy.deepcopy(LIVE)
        with pytest.raises(IstioSpecError) as err:
            build_destination_rule_spec(LIVE, host, subsets, policy, False)
        assert err.value.option == field
        assert fragment in err.value.message
        assert LIVE == before


class TestSubsetNamesAndLabels:
    def test_subset_names_and_labels(self):
        assert subset_names(LIVE) == ["v1", "v2", "v3"]
        assert subset_names(None) == []
        assert subset_labels(LIVE, "v2") == {"version": "v2"}
        assert subset_labels(LIVE, "v9") is None
        labels = subset_labels(LIVE, "v1")
        labels["version"] = "changed"
        assert LIVE["subsets"][0]["labels"] == {"version": "v1"}, "subset_labels must return a copy"


def _live(*subsets):
    return {"host": "reviews", "subsets": [dict(s) for s in subsets]}


class TestSelectorsNeverWidened:
    """An existing subset's selector is never widened."""

    def test_adding_a_subset_keeps_the_others_byte_equal(self):
        live = _live({"name": "v1", "labels": {"version": "v1", "app": "reviews"}, "x-vendor": {"keep": 1}})
        spec = build_destination_rule_spec(live, "reviews", [{"name": "v2", "labels": {"version": "v2"}}], None, False)
        assert json.dumps(spec["subsets"][0]) == json.dumps(live["subsets"][0])
        same = build_destination_rule_spec(live, "reviews", [{"name": "v1", "labels": {"app": "reviews", "version": "v1"}}], None, False)
        assert json.dumps(same) == json.dumps(live), "the same labels in another order change nothing"

    def test_an_existing_subset_selector_is_never_widened(self):
        live = _live({"name": "v1", "labels": {"version": "v1", "track": "stable"}})
        with pytest.raises(IstioSpecError) as error:
            build_destination_rule_spec(live, "reviews", [{"name": "v1", "labels": {"version": "v1"}}], None, False)
        assert error.value.option == "subsets"
        assert "subset 'v1' selects track=stable,version=v1 today" in error.value.message and "drop track=stable" in error.value.message
        narrowed = build_destination_rule_spec(live, "reviews", [{"name": "v1", "labels": {"version": "v1", "track": "stable", "zone": "a"}}],
                                               None, False)
        assert narrowed["subsets"][0]["labels"] == {"version": "v1", "track": "stable", "zone": "a"}
        moved = build_destination_rule_spec(live, "reviews", [{"name": "v1", "labels": {"version": "v9", "track": "stable"}}], None, False)
        assert moved["subsets"][0]["labels"] == {"version": "v9", "track": "stable"}, "a different selector is the user's choice"


def _as_options(spec):
    return [{"name": s["name"], "labels": s.get("labels"), "traffic_policy": s.get("trafficPolicy")} for s in spec.get("subsets", [])]


class TestBookinfo:
    """On every DestinationRule of Istio's bookinfo sample (tests/unit/conftest.py)."""

    def test_subset_names_and_labels_match_the_manifest(self, bookinfo_destination_rule):
        spec = bookinfo_destination_rule["spec"]
        # A rule may have no subsets at all (bookinfo's egress TLS origination for www.googleapis.com).
        assert subset_names(spec) == [s["name"] for s in spec.get("subsets", [])]
        for subset in spec.get("subsets", []):
            assert subset_labels(spec, subset["name"]) == subset["labels"]

    def test_relisting_the_live_rule_changes_nothing(self, bookinfo_destination_rule):
        spec = bookinfo_destination_rule["spec"]
        before = copy.deepcopy(spec)
        assert build_destination_rule_spec(spec, spec["host"], _as_options(spec), spec.get("trafficPolicy"), True) == spec
        assert build_destination_rule_spec(spec, spec["host"], [], None, False) == spec
        assert spec == before

    def test_adding_a_canary_subset_then_purging_it(self, bookinfo_destination_rule):
        spec = bookinfo_destination_rule["spec"]
        with_canary = build_destination_rule_spec(spec, spec["host"], [{"name": "canary", "labels": {"version": "canary"}}], None, False)
        assert subset_names(with_canary) == subset_names(spec) + ["canary"]
        assert with_canary["subsets"][:-1] == spec.get("subsets", [])
        purged = build_destination_rule_spec(with_canary, spec["host"], _as_options(spec), None, True)
        # A rule that had no subsets is left with an empty list once the canary's is purged (by design:
        # test_istio_destination_rule's test_purging_everything_leaves_an_empty_list).
        assert purged == (spec if "subsets" in spec else dict(spec, subsets=[]))
