# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_istio/fault_options.py: fault_injection's options to the new spec."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.canary.istio.plugins.module_utils._istio import fault_options as fo
from ansible_collections.canary.istio.plugins.module_utils._istio.common import IstioSpecError


# As AnsibleModule hands them over: unset suboptions are None, percentages floats.
PARAMS = dict(
    name="ratings", namespace="prod", rule="delay-jason", state="present",
    headers={"end-user": {"exact": "jason"}}, uri=None,
    delay={"fixed_delay": "7s", "percentage": 100.0}, abort=None, destinations=None,
)
RATINGS = {"hosts": ["ratings"], "http": [{"route": [{"destination": {"host": "ratings", "subset": "v1"}}]}]}


def test_present_inserts_the_rule_before_the_catch_all():
    spec = fo.changed_spec(RATINGS, PARAMS)
    assert spec["http"][0] == {
        "name": "delay-jason",
        "match": [{"headers": {"end-user": {"exact": "jason"}}}],
        "fault": {"delay": {"fixedDelay": "7s", "percentage": {"value": 100}}},
        "route": [{"destination": {"host": "ratings", "subset": "v1"}}],
    }
    assert spec["http"][1] == RATINGS["http"][0]
    assert fo.changed_spec(spec, dict(PARAMS, state="absent")) == RATINGS


def test_uri_suboptions_left_unset_are_ignored():
    spec = fo.changed_spec(RATINGS, dict(PARAMS, uri={"exact": None, "prefix": "/ratings", "regex": None}))
    assert spec["http"][0]["match"] == [{"headers": {"end-user": {"exact": "jason"}}, "uri": {"prefix": "/ratings"}}]


def test_destinations_option_in_istio_form_with_the_catch_alls_host():
    destinations = [{"host": None, "subset": "v2", "port": 9080, "weight": None}]
    spec = fo.changed_spec(RATINGS, dict(PARAMS, destinations=destinations))
    assert spec["http"][0]["route"] == [{"destination": {"host": "ratings", "subset": "v2", "port": {"number": 9080}}}]


def test_bad_destinations_name_the_option():
    destinations = [{"host": None, "subset": "v1", "port": None, "weight": 70},
                    {"host": None, "subset": "v2", "port": None, "weight": 70}]
    with pytest.raises(IstioSpecError) as err:
        fo.changed_spec(RATINGS, dict(PARAMS, destinations=destinations))
    assert err.value.option == "destinations"


def test_a_route_that_is_not_a_fault_rule_is_blamed_on_the_rule_option():
    spec = copy.deepcopy(RATINGS)
    spec["http"][0]["name"] = "default"
    for state in ("present", "absent"):
        with pytest.raises(IstioSpecError) as err:
            fo.changed_spec(spec, dict(PARAMS, rule="default", state=state))
        assert err.value.option == "rule" and "not a fault rule" in str(err.value)


@pytest.mark.parametrize("spec,host", [
    (RATINGS, "ratings"),
    ({"hosts": ["ratings.prod.svc.cluster.local"], "http": [{"match": [{"uri": {"prefix": "/"}}], "route": []}]},
     "ratings.prod.svc.cluster.local"),
    ({}, ""),
])
def test_default_host(spec, host):
    assert fo.default_host(spec) == host


def test_find_rule():
    spec = fo.changed_spec(RATINGS, PARAMS)
    assert fo.find_rule(spec, "delay-jason")["fault"]["delay"]["fixedDelay"] == "7s"
    assert fo.find_rule(spec, "other") is None
