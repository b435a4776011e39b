# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_istio/mesh_reads.py: which DestinationRule, which Service, which pods are Ready."""

from __future__ import annotations

import pytest

from ansible_collections.canary.istio.plugins.module_utils._istio import mesh_reads as reads
from ansible_collections.canary.istio.plugins.module_utils._k8s.errors import K8sNotFoundError
from ansible_collections.canary.istio.tests.unit.plugins.module_utils.istio_objects import dr, pod


class FakeClient:
    def __init__(self, service=None):
        self.service = service
        self.calls = []
        self.pods = [pod("p1", {"app": "reviews", "version": "v1"}), pod("p2", {"app": "reviews", "version": "v2"}, ready=False)]

    def get(self, path):
        self.calls.append(("get", path, None))
        if self.service is None:
            raise K8sNotFoundError(404, "NotFound", "not found", "GET", path)
        return self.service

    def list(self, path, label_selector=None):
        self.calls.append(("list", path, label_selector))
        return {"items": self.pods}


@pytest.mark.parametrize("host,namespace,expected", [
    ("reviews", "prod", ("reviews", "prod")),
    ("reviews.prod", "other", None),  # a dotted name is taken as written, as Istio does
    ("reviews.prod.svc", "other", None),
    ("reviews.prod.svc.cluster.local", "other", ("reviews", "prod")),
    ("Reviews.Prod.svc.cluster.local.", "other", ("reviews", "prod")),
    ("api.example.com", "prod", None),
    ("*.prod.svc.cluster.local", "prod", None),
])
def test_service_of_host(host, namespace, expected):
    found = reads.service_of_host(host, namespace)
    assert (tuple(found) if found else None) == expected


def test_rules_for_the_host_oldest_first_without_workload_selectors():
    rules = [
        dr("young", "reviews.prod.svc.cluster.local", ["v3"], created="2026-03-01T00:00:00Z"),
        dr("ratings", "ratings", ["v1"]),
        dr("old", "reviews", ["v1", "v2"], created="2026-02-01T00:00:00Z"),
        dr("sidecar-only", "reviews", ["v9"], workloadSelector={"matchLabels": {"app": "productpage"}}),
        dr("other-namespace-short-name", "reviews", ["v8"], namespace="staging"),
    ]
    found = reads.destination_rules_for_host(rules, "reviews", "prod")
    assert [r["metadata"]["name"] for r in found] == ["old", "young"]


def test_count_ready_pods_per_subset():
    pods = [
        pod("v1-a", {"app": "reviews", "version": "v1"}),
        pod("v1-b", {"app": "reviews", "version": "v1"}),
        pod("v1-c", {"app": "reviews", "version": "v1"}, ready=False),
        pod("v2-a", {"app": "reviews", "version": "v2"}, deleting=True),
        pod("v3-a", {"app": "reviews", "version": "v3", "track": "beta"}),
    ]
    counts = reads.count_ready_pods(pods, {
        "v1": {"version": "v1"}, "v2": {"version": "v2"}, "v3-beta": {"version": "v3", "track": "beta"},
        "v4": {"version": "v4"}, "all": {},
    })
    assert counts == {"v1": 2, "v2": 0, "v3-beta": 1, "v4": 0, "all": 3}


def test_ready_pods_lists_the_services_pods_once_for_all_subsets():
    client = FakeClient({"spec": {"selector": {"app": "reviews"}}})
    result = reads.ready_pods_by_subset(client, reads.ServiceRef("reviews", "prod"),
                                        {"v1": {"version": "v1"}, "v2": {"version": "v2"}})
    assert result == ({"v1": 1, "v2": 0}, None, True)
    assert client.calls == [("get", "/api/v1/namespaces/prod/services/reviews", None),
                            ("list", "/api/v1/namespaces/prod/pods", {"app": "reviews"})]


@pytest.mark.parametrize("service,words", [
    (None, "there is no Service 'reviews' in namespace 'prod'"),
    ({"spec": {"ports": [{"port": 9080}]}}, "has no selector"),
])
def test_ready_pods_that_cannot_be_counted_say_why(service, words):
    client = FakeClient(service)
    result = reads.ready_pods_by_subset(client, reads.ServiceRef("reviews", "prod"), {"v1": {"version": "v1"}})
    assert result.counts == {"v1": 0} and words in result.problem
    assert result.service_found is (words == "has no selector")
    assert [c[0] for c in client.calls] == ["get"]  # no pod list without a selector
