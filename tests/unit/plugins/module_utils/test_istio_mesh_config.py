# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_istio/mesh_config.py: DestinationRules of one host merged, and Ready pods."""

from __future__ import annotations

import pytest

from ansible_collections.canary.istio.plugins.module_utils._istio import mesh_reads as reads
from ansible_collections.canary.istio.plugins.module_utils._istio.mesh_config import merge_destination_rules
from ansible_collections.canary.istio.tests.unit.plugins.module_utils.istio_objects import dr, pod


def test_merge_keeps_the_oldest_subset_of_a_name_and_adds_the_others():
    old = dr("old", "reviews", ["v1", "v2"], trafficPolicy={"tls": {"mode": "ISTIO_MUTUAL"}})
    young = dr("young", "reviews", ["v2", "v3"])
    young["spec"]["subsets"][0]["labels"] = {"version": "shadow"}
    merged = merge_destination_rules([old, young])
    assert merged["metadata"]["name"] == "old"
    assert merged["spec"]["trafficPolicy"] == {"tls": {"mode": "ISTIO_MUTUAL"}}
    assert merged["spec"]["subsets"] == [{"name": "v1", "labels": {"version": "v1"}},
                                         {"name": "v2", "labels": {"version": "v2"}},
                                         {"name": "v3", "labels": {"version": "v3"}}]
    assert [s["name"] for s in old["spec"]["subsets"]] == ["v1", "v2"]  # inputs untouched
    assert merge_destination_rules([]) is None


@pytest.mark.parametrize("obj,ready", [
    (pod("a", {}), True),
    (pod("a", {}, ready=False), False),
    (pod("a", {}, deleting=True), False),
    ({"metadata": {}, "status": {}}, False),
    ({"metadata": {}}, False),
])
def test_is_pod_ready(obj, ready):
    assert reads.is_pod_ready(obj) is ready
