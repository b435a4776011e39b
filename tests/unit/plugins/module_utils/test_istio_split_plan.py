# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_istio/split_plan.py: traffic_split's options to weights, and the plan of a change."""

from __future__ import annotations

import pytest

from ansible_collections.canary.istio.plugins.module_utils._istio import split_plan as sp
from ansible_collections.canary.istio.plugins.module_utils._istio.common import IstioSpecError


CANARY = dict(weights=None, stable="v1", canary="v2", canary_weight=10)


def _named(name, host="reviews", created="2026-01-01T00:00:00Z", gateways=None):
    spec = {"hosts": [host], "http": [{"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}]}
    if gateways:
        spec["gateways"] = gateways
    return {"metadata": {"name": name, "namespace": "prod", "creationTimestamp": created}, "spec": spec}


def test_weights_from_either_form():
    assert sp.wanted_weights(CANARY) == {"v1": 90, "v2": 10}
    assert sp.wanted_weights(dict(CANARY, weights={"v1": "75", "v2": 25.0}, stable=None, canary=None)) == {"v1": 75, "v2": 25}


@pytest.mark.parametrize("params,field", [
    (dict(CANARY, canary="v1"), "canary"),
    (dict(CANARY, canary_weight=-1), "canary_weight"),
    (dict(CANARY, weights={"v1": 50, "v2": 49}), "weights"),
    (dict(CANARY, weights={}), "weights"),
])
def test_bad_weights_name_the_option(params, field):
    with pytest.raises(IstioSpecError) as err:
        sp.wanted_weights(params)
    assert err.value.option == field


def test_option_naming_blames_the_option_the_user_wrote():
    assert sp.option_naming("v2", CANARY) == "canary"
    assert sp.option_naming("v1", CANARY) == "stable"
    assert sp.option_naming("v2", dict(CANARY, weights={"v1": 90, "v2": 10})) == "weights"


def test_plan_of_the_catch_all(complex_virtual_service):
    plan = sp.plan_split(complex_virtual_service, {"v1": 50, "v2": 50}, None, "prod")
    assert plan.route == "default"
    assert plan.previous_weights == {"v1": 90, "v2": 10}
    assert plan.host == "reviews"
    assert [d["weight"] for d in plan.new_spec["http"][3]["route"]] == [50, 50]
    assert plan.new_spec["http"][:3] == complex_virtual_service["http"][:3]


def test_plan_labels_an_unnamed_route_by_index():
    spec = {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}]}
    plan = sp.plan_split(spec, {"v1": 90, "v2": 10}, None, "prod")
    assert (plan.route, plan.previous_weights) == (0, {"v1": 100})


def test_same_host_written_two_ways_is_one_host():
    spec = {"http": [{"route": [
        {"destination": {"host": "reviews", "subset": "v1"}, "weight": 100},
        {"destination": {"host": "reviews.prod.svc.cluster.local", "subset": "v2"}, "weight": 0},
    ]}]}
    assert sp.plan_split(spec, {"v1": 90, "v2": 10}, None, "prod").host == "reviews"


def test_a_route_to_two_hosts_is_refused():
    spec = {"http": [{"name": "split", "route": [
        {"destination": {"host": "reviews", "subset": "v1"}, "weight": 100},
        {"destination": {"host": "reviews-next", "subset": "v2"}, "weight": 0},
    ]}]}
    with pytest.raises(IstioSpecError, match="'reviews', 'reviews-next'") as err:
        sp.plan_split(spec, {"v1": 90, "v2": 10}, None, "prod")
    assert err.value.option == "route"


def test_missing_subsets_in_the_order_given():
    dr_spec = {"host": "reviews", "subsets": [{"name": "v1"}, {"name": "v2"}]}
    assert sp.missing_subsets({"v3": 0, "v1": 90, "v0": 10}, dr_spec) == ["v3", "v0"]
    assert sp.missing_subsets({"v1": 100}, dr_spec) == []


def test_several_virtual_services_for_a_host():
    listed = [_named("young", created="2026-02-01T00:00:00Z"), _named("old", host="reviews.prod.svc.cluster.local"),
              _named("edge", gateways=["prod/edge"]), _named("other", host="ratings")]
    names = sp.mesh_virtual_services(listed, "reviews", "prod")
    assert names == ["old", "young"]
    ignored = sp.several_virtual_services_problem(names, "young", "reviews", force=True)
    assert ignored.startswith("name: Istio ignores VirtualService 'young'") and "'old'" in ignored
    trap = sp.several_virtual_services_problem(names, "old", "reviews", force=False)
    assert "VirtualServices 'old', 'young' all name host 'reviews'" in trap and "force=true" in trap
    assert sp.several_virtual_services_problem(names, "old", "reviews", force=True) is None
    assert sp.several_virtual_services_problem(["old"], "old", "reviews", force=False) is None
