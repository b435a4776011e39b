# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_istio/owned_objects.py: the whole object to write, its result and its diff."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.canary.istio.plugins.module_utils._istio.common import IstioSpecError
from ansible_collections.canary.istio.plugins.module_utils._istio.owned_objects import (
    result_object,
    spec_diff,
    vs_diff,
    wanted_object,
)


PARAMS = {"name": "reviews", "namespace": "prod", "api_version": "networking.istio.io/v1beta1",
          "labels": {"team": "books"}, "annotations": None}
LIVE = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "prod", "resourceVersion": "7", "labels": {"app": "reviews"},
                     "annotations": {"owner": "someone else"}},
        "spec": {"hosts": ["reviews"]}, "status": {}}


class TestWantedObject:
    def test_a_missing_object_is_created_whole_with_the_asked_api_version(self):
        assert wanted_object(None, PARAMS, "VirtualService", {"hosts": ["reviews"]}) == {
            "apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
            "metadata": {"name": "reviews", "namespace": "prod", "labels": {"team": "books"}},
            "spec": {"hosts": ["reviews"]}}

    def test_a_live_object_keeps_its_other_metadata_and_is_none_when_nothing_changes(self):
        wanted = wanted_object(copy.deepcopy(LIVE), PARAMS, "VirtualService", {"hosts": ["reviews", "reviews.prod"]})
        assert wanted["metadata"]["labels"] == {"app": "reviews", "team": "books"}
        assert wanted["metadata"]["annotations"] == {"owner": "someone else"}
        assert wanted["metadata"]["resourceVersion"] == "7" and wanted["apiVersion"] == "networking.istio.io/v1"
        assert wanted["spec"] == {"hosts": ["reviews", "reviews.prod"]}
        assert wanted_object(wanted, PARAMS, "VirtualService", {"hosts": ["reviews", "reviews.prod"]}) is None
        # A label alone is a change too.
        relabelled = wanted_object(wanted, dict(PARAMS, labels={"team": "shelves"}), "VirtualService", wanted["spec"])
        assert relabelled["metadata"]["labels"]["team"] == "shelves"

    def test_label_values_that_are_not_text_are_refused_naming_the_option(self):
        with pytest.raises(IstioSpecError) as error:
            wanted_object(None, dict(PARAMS, annotations={"flag": True}), "VirtualService", {})
        assert error.value.option == "annotations" and "quote it in YAML" in str(error.value)
        assert wanted_object(None, dict(PARAMS, labels={"tier": 2}), "VirtualService", {})["metadata"]["labels"] == {"tier": "2"}


class TestDiffsAndResults:
    def test_spec_diff_and_result_show_no_metadata_noise(self):
        before = {"metadata": {"managedFields": [{"manager": "x"}], "name": "reviews"}, "spec": {"hosts": ["a"]}, "status": {"x": 1}}
        assert spec_diff(before, None, "VirtualService prod/reviews") == {
            "before": {"hosts": ["a"]}, "after": {},
            "before_header": "VirtualService prod/reviews (spec)", "after_header": "VirtualService prod/reviews (spec)"}
        assert vs_diff({"hosts": ["a"]}, {"hosts": ["b"]}, "prod", "reviews") == {
            "before": {"hosts": ["a"]}, "after": {"hosts": ["b"]},
            "before_header": "VirtualService prod/reviews (spec)", "after_header": "VirtualService prod/reviews (spec)"}
        assert result_object(before)["metadata"] == {"name": "reviews"} and before["metadata"]["managedFields"]
        assert result_object(None) == {}

    def test_spec_diff_has_the_spec_alone_with_a_header(self):
        diff = vs_diff({"a": 1}, {"a": 2}, "prod", "reviews")
        assert diff == {"before": {"a": 1}, "after": {"a": 2},
                        "before_header": "VirtualService prod/reviews (spec)", "after_header": "VirtualService prod/reviews (spec)"}
