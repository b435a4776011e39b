# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What traffic_split and mesh_info read about a host besides its VirtualService.

The DestinationRule that defines the host's subsets, the selector of the host's Service, and the
Ready pods of each subset: a subset's endpoints are the Service's pods that also carry the
subset's labels, which is how Istio builds them. Reading and counting live in one place so the
module that refuses to send traffic to an empty subset and the module that reports one agree.

Reads per call: ``find_destination_rules`` 1 (a LIST), ``ready_pods_by_subset`` 2 (the Service,
then one LIST of its pods whatever the number of subsets). The pure parts (matching, merging,
readiness, counting) are separate functions, tested without a cluster.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import typing as t

from ansible_collections.canary.istio.plugins.module_utils._istio import qualify_host, same_host
from ansible_collections.canary.istio.plugins.module_utils._k8s import (
    DESTINATION_RULES,
    K8sClient,
    K8sNotFoundError,
    istio_path,
    pods_path,
    services_path,
)

_CLUSTER_SUFFIX = ".svc.cluster.local"


class ServiceRef(t.NamedTuple):
    """The Kubernetes Service behind an Istio host."""

    name: str
    namespace: str


class ReadyPods(t.NamedTuple):
    """Ready pods per subset, and why they could not be counted (None when they were)."""

    counts: dict[str, int]
    problem: str | None


# --- pure ------------------------------------------------------------------------------------

def service_of_host(host: str, namespace: str) -> ServiceRef | None:
    """The Service a host names, its short name read in ``namespace``; None for a host outside the
    cluster (a ServiceEntry's) or a wildcard, which have no pods to count."""
    fqdn = qualify_host(host, namespace)
    if "*" in fqdn or not fqdn.endswith(_CLUSTER_SUFFIX):
        return None
    name, service_namespace = fqdn[: -len(_CLUSTER_SUFFIX)].split(".", 1)
    return ServiceRef(name, service_namespace)


def _created(obj: dict) -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    return (metadata.get("creationTimestamp") or "", metadata.get("name") or "")


def destination_rules_for_host(rules: t.Iterable[dict], host: str, namespace: str) -> list[dict]:
    """The DestinationRules (full objects) that define ``host``, oldest first.

    Rules with a ``workloadSelector`` apply to some client workloads only and are left out.
    Each rule's short host is read in the rule's own namespace, as Istio reads it.
    """
    service = qualify_host(host, namespace)
    found = []
    for rule in rules or []:
        spec = (rule or {}).get("spec") or {}
        rule_namespace = (rule.get("metadata") or {}).get("namespace") or namespace
        if spec.get("workloadSelector") or not same_host(spec.get("host") or "", service, rule_namespace):
            continue
        found.append(rule)
    return sorted(found, key=_created)


def merge_destination_rules(rules: list[dict]) -> dict | None:
    """One DestinationRule standing for several of the same host, as Istio merges them.

    The oldest rule gives the metadata and every other key; subsets of younger rules are added
    unless the name is taken (the oldest definition wins). None when there is no rule.
    """
    if not rules:
        return None
    merged = dict(rules[0])
    spec = dict(merged.get("spec") or {})
    subsets = list(spec.get("subsets") or [])
    names = {s.get("name") for s in subsets if isinstance(s, dict)}
    for rule in rules[1:]:
        for subset in (rule.get("spec") or {}).get("subsets") or []:
            if isinstance(subset, dict) and subset.get("name") not in names:
                subsets.append(subset)
                names.add(subset.get("name"))
    if subsets:
        spec["subsets"] = subsets
    merged["spec"] = spec
    return merged


def is_pod_ready(pod: dict) -> bool:
    """Whether a pod would be a ready endpoint: condition Ready=True and not being deleted."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False  # terminating pods leave the endpoints even while still Ready
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions if isinstance(c, dict))


def _has_labels(pod: dict, labels: dict[str, str]) -> bool:
    pod_labels = (pod.get("metadata") or {}).get("labels") or {}
    return all(pod_labels.get(key) == str(value) for key, value in labels.items())


def count_ready_pods(pods: t.Iterable[dict], subset_labels: dict[str, dict[str, str]]) -> dict[str, int]:
    """subset -> number of Ready pods carrying the subset's labels, for every subset given.

    ``pods`` are already the Service's (selected by its selector); a subset with no labels
    selects all of them, as in Istio.
    """
    pods = list(pods or [])
    ready = [pod for pod in pods if is_pod_ready(pod)]
    return {name: sum(1 for pod in ready if _has_labels(pod, labels or {})) for name, labels in subset_labels.items()}


# --- reads -----------------------------------------------------------------------------------

def find_destination_rules(client: K8sClient, api_version: str, namespace: str, host: str) -> list[dict]:
    """The DestinationRules of ``namespace`` that define ``host``, oldest first (one LIST).

    Only the given namespace is read: the one of the host's Service, where the release identity
    has its rights. Rules exported from other namespaces or the mesh root are not seen.
    """
    listed = client.list(istio_path(api_version, DESTINATION_RULES, namespace))
    items = listed.get("items") or []
    for item in items:
        item.setdefault("metadata", {}).setdefault("namespace", namespace)
    return destination_rules_for_host(items, host, namespace)


def ready_pods_by_subset(client: K8sClient, service: ServiceRef, subset_labels: dict[str, dict[str, str]]) -> ReadyPods:
    """Ready pods of each subset of ``service`` (two reads: the Service, then its pods).

    When the pods cannot be counted (no such Service, or a Service without a selector whose
    endpoints are managed by hand) every count is 0 and ``problem`` says why.
    """
    zero = {name: 0 for name in subset_labels}
    try:
        obj = client.get(services_path(service.namespace, service.name))
    except K8sNotFoundError:
        return ReadyPods(zero, "there is no Service %r in namespace %r, so no pod serves the host" % (service.name, service.namespace))
    selector = (obj.get("spec") or {}).get("selector") or {}
    if not selector:
        return ReadyPods(
            zero,
            "Service %r in namespace %r has no selector (its endpoints are set by hand), so its pods cannot be counted"
            % (service.name, service.namespace),
        )
    pods = client.list(pods_path(service.namespace), label_selector=selector).get("items") or []
    return ReadyPods(count_ready_pods(pods, subset_labels), None)
