# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every transform on every VirtualService and DestinationRule of Istio's bookinfo sample.

``bookinfo_virtual_service`` / ``bookinfo_destination_rule`` are parametrized in
tests/unit/conftest.py over bookinfo's ``networking/*.yaml`` as ``sandbox build`` takes them from
istio.io/istio on the Go module proxy (skipped, loudly, when absent; a failure under CI). Expected values are read from the manifests themselves.
"""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from ansible_collections.canary.istio.plugins.module_utils._istio.common import IstioSpecError, specs_equal
from ansible_collections.canary.istio.plugins.module_utils._istio.destination_rule import (
    build_destination_rule_spec,
    subset_labels,
    subset_names,
)
from ansible_collections.canary.istio.plugins.module_utils._istio.fault import (
    fault_rules,
    remove_fault_rule,
    upsert_fault_rule,
    validate_fault,
)
from ansible_collections.canary.istio.plugins.module_utils._istio.traffic import (
    find_catch_all_index,
    find_route_index,
    route_weights,
    set_route_weights,
)
from ansible_collections.canary.istio.plugins.module_utils._istio.virtual_service import build_virtual_service_spec
from ansible_collections.canary.istio.plugins.module_utils._istio.routing import host_routing


def _catch_all(spec):
    index = find_catch_all_index(spec)
    if index is None:
        with pytest.raises(IstioSpecError) as err:
            find_route_index(spec)
        assert err.value.option == "route"
        pytest.skip("not applicable: no catch-all route in this VirtualService (refusal checked)")
    return index


def _destination_rules(istio_fixtures):
    rules = {}
    with (istio_fixtures / "bookinfo" / "networking" / "destination-rule-all.yaml").open(encoding="utf-8") as stream:
        for doc in yaml.safe_load_all(stream):
            if doc and doc.get("kind") == "DestinationRule":
                rules[doc["spec"]["host"]] = doc
    return rules


# --- VirtualServices -------------------------------------------------------------------------


def test_fixture_inventory(istio_fixtures):
    """The parametrized tests below really have manifests to run on."""
    kinds = []
    for path in sorted((istio_fixtures / "bookinfo" / "networking").glob("*.yaml")):
        with path.open(encoding="utf-8") as stream:
            kinds.extend(doc.get("kind") for doc in yaml.safe_load_all(stream) if doc)
    assert kinds.count("VirtualService") > 0
    assert kinds.count("DestinationRule") > 0


def test_route_weights_sum_to_100(bookinfo_virtual_service):
    for route in bookinfo_virtual_service["spec"]["http"]:
        weights = route_weights(route)
        assert sum(weights.values()) == 100
        assert set(weights) == {(d["destination"].get("subset") or "") for d in route["route"]}


def test_setting_the_current_weights_changes_nothing(bookinfo_virtual_service):
    spec = bookinfo_virtual_service["spec"]
    index = _catch_all(spec)
    current = route_weights(spec["http"][index])
    assert set_route_weights(spec, current) == spec


def test_canary_split_and_back(bookinfo_virtual_service):
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


def test_fault_rule_round_trip(bookinfo_virtual_service):
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


def test_fixture_faults_are_read_and_rebuilt(bookinfo_virtual_service):
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


def test_default_subset_already_in_place_changes_nothing(bookinfo_virtual_service):
    spec = bookinfo_virtual_service["spec"]
    index = _catch_all(spec)
    weights = route_weights(spec["http"][index])
    if len(weights) != 1 or "" in weights:
        pytest.skip("not applicable: the catch-all splits traffic; default_subset would change it")
    assert build_virtual_service_spec(spec, spec["hosts"], None, None, next(iter(weights))) == spec


def test_the_routing_model_finds_no_problem_with_bookinfo_rules(bookinfo_virtual_service, istio_fixtures):
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


# --- DestinationRules ------------------------------------------------------------------------


def _as_options(spec):
    return [{"name": s["name"], "labels": s.get("labels"), "traffic_policy": s.get("trafficPolicy")} for s in spec.get("subsets", [])]


def test_subset_names_and_labels_match_the_manifest(bookinfo_destination_rule):
    spec = bookinfo_destination_rule["spec"]
    # A rule may have no subsets at all (bookinfo's egress TLS origination for www.googleapis.com).
    assert subset_names(spec) == [s["name"] for s in spec.get("subsets", [])]
    for subset in spec.get("subsets", []):
        assert subset_labels(spec, subset["name"]) == subset["labels"]


def test_relisting_the_live_rule_changes_nothing(bookinfo_destination_rule):
    spec = bookinfo_destination_rule["spec"]
    before = copy.deepcopy(spec)
    assert build_destination_rule_spec(spec, spec["host"], _as_options(spec), spec.get("trafficPolicy"), True) == spec
    assert build_destination_rule_spec(spec, spec["host"], [], None, False) == spec
    assert spec == before


def test_adding_a_canary_subset_then_purging_it(bookinfo_destination_rule):
    spec = bookinfo_destination_rule["spec"]
    with_canary = build_destination_rule_spec(spec, spec["host"], [{"name": "canary", "labels": {"version": "canary"}}], None, False)
    assert subset_names(with_canary) == subset_names(spec) + ["canary"]
    assert with_canary["subsets"][:-1] == spec.get("subsets", [])
    purged = build_destination_rule_spec(with_canary, spec["host"], _as_options(spec), None, True)
    # A rule that had no subsets is left with an empty list once the canary's is purged (by design:
    # test_istio_destination_rule's test_purging_everything_leaves_an_empty_list).
    assert purged == (spec if "subsets" in spec else dict(spec, subsets=[]))
