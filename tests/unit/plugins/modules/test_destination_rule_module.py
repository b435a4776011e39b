# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/modules/destination_rule.py: options, as Ansible validates them, into the DestinationRule to write."""
# Not test_destination_rule.py: tests/integration has that name, and test names are unique (test_code_layout.py).

from __future__ import annotations

import copy

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.canary.istio.plugins.module_utils._istio.common import IstioSpecError
from ansible_collections.canary.istio.plugins.modules import destination_rule as dr


LIVE = {
    "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
    "metadata": {"name": "reviews", "namespace": "prod", "resourceVersion": "7",
                 "labels": {"team": "a"}, "annotations": {"note": "keep"}},
    "spec": {"host": "reviews", "trafficPolicy": {"loadBalancer": {"simple": "RANDOM"}},
             "subsets": [{"name": "v1", "labels": {"version": "v1"}}, {"name": "v3", "labels": {"version": "v3"}}]},
}


def validated(**params) -> dict:
    params.setdefault("name", "reviews")
    params.setdefault("namespace", "prod")
    params.setdefault("service_host", "reviews")
    result = ArgumentSpecValidator(dr.argument_spec()).validate(params)
    assert result.error_messages == []
    return result.validated_parameters


def test_a_new_rule_is_a_whole_object_in_the_chosen_api_version():
    obj = dr.wanted_destination_rule(None, validated(
        subsets=[{"name": "v1", "labels": {"version": 1}}], api_version="networking.istio.io/v1beta1",
        annotations={"owner": "release"}))
    assert obj == {"apiVersion": "networking.istio.io/v1beta1", "kind": "DestinationRule",
                   "metadata": {"name": "reviews", "namespace": "prod", "annotations": {"owner": "release"}},
                   "spec": {"host": "reviews", "subsets": [{"name": "v1", "labels": {"version": "1"}}]}}


def test_nothing_to_write_when_everything_asked_for_is_there():
    params = validated(subsets=[{"name": "v3", "labels": {"version": "v3"}}], labels={"team": "a"})
    assert dr.wanted_destination_rule(copy.deepcopy(LIVE), params) is None
    # purge_subsets acts on the list given; no list, nothing to purge.
    assert dr.wanted_destination_rule(copy.deepcopy(LIVE), validated(purge_subsets=True)) is None


def test_an_update_merges_subsets_and_metadata_and_keeps_the_resource_version():
    wanted = dr.wanted_destination_rule(copy.deepcopy(LIVE), validated(
        subsets=[{"name": "v2", "labels": {"version": "v2"}, "traffic_policy": {"tls": {"mode": "ISTIO_MUTUAL"}}}],
        labels={"app": "reviews"}))
    assert wanted["metadata"] == dict(LIVE["metadata"], labels={"team": "a", "app": "reviews"})
    assert wanted["spec"]["trafficPolicy"] == LIVE["spec"]["trafficPolicy"]
    assert wanted["spec"]["subsets"] == LIVE["spec"]["subsets"] + [
        {"name": "v2", "labels": {"version": "v2"}, "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}]
    purged = dr.wanted_destination_rule(copy.deepcopy(LIVE), validated(subsets=[{"name": "v3", "labels": {"version": "v3"}}], purge_subsets=True))
    assert [s["name"] for s in purged["spec"]["subsets"]] == ["v3"]


@pytest.mark.parametrize("params, field, words", [
    (dict(service_host=""), "service_host", "service_host: reviews"),
    (dict(subsets=[{"name": "v1", "labels": {"version": "v1"}}, {"name": "v1", "labels": {"version": "v1"}}]), "subsets",
     "'v1' is listed more than once"),
    (dict(subsets=[{"name": "v1", "labels": {}}]), "subsets", "subset 'v1' has no labels"),
    (dict(annotations={"a": ["x"]}), "annotations", "the value of 'a' must be a string"),
    (dict(labels={"a": True}), "labels", "must be a string"),
])
def test_bad_options_name_the_option(params, field, words):
    with pytest.raises(IstioSpecError) as error:
        dr.wanted_destination_rule(None, validated(**params))
    assert error.value.option == field and words in error.value.message
