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

from ansible_collections.canary.istio.plugins.module_utils._istio.common import qualify_host, same_host
from ansible_collections.canary.istio.plugins.module_utils._istio.http_route import http_routes_path, routes_of_service
from ansible_collections.canary.istio.plugins.module_utils._istio.mesh_config import config_age_key, is_pod_ready
from ansible_collections.canary.istio.plugins.module_utils._istio.api import (
    DESTINATION_RULES,
    VIRTUAL_SERVICES,
    istio_path,
)
from ansible_collections.canary.istio.plugins.module_utils._k8s.errors import K8sNotFoundError
from ansible_collections.canary.istio.plugins.module_utils._k8s.paths import deployments_path, pods_path, services_path
from ansible_collections.canary.istio.plugins.module_utils._k8s.transport import K8sClient

_CLUSTER_SUFFIX = ".svc.cluster.local"


class ServiceRef(t.NamedTuple):
    """The Kubernetes Service behind an Istio host."""

    name: str
    namespace: str


class HostState(t.NamedTuple):
    """Everything the routing model needs about one host, as read from the cluster."""

    virtual_services: list[dict]
    destination_rules: list[dict]
    pods: list[dict] | None  # the Service's pods; None when they cannot be found
    deployments: list[dict]  # the Deployments whose pods the Service selects
    port: int | None  # the Service's port when it has exactly one
    problems: list[str]
    http_routes: list[dict] = []  # the Gateway API HTTPRoutes attached to the Service, oldest first


class ReadyPods(t.NamedTuple):
    """Ready pods per subset, and why they could not be counted (None when they were)."""

    counts: dict[str, int]
    problem: str | None
    service_found: bool = True


# --- pure ------------------------------------------------------------------------------------

def service_of_host(host: str, namespace: str) -> ServiceRef | None:
    """The Service a host names, its short name read in ``namespace``; None for a host outside the
    cluster (a ServiceEntry's) or a wildcard, which have no pods to count."""
    fqdn = qualify_host(host, namespace)
    if "*" in fqdn or not fqdn.endswith(_CLUSTER_SUFFIX):
        return None
    name, service_namespace = fqdn[: -len(_CLUSTER_SUFFIX)].split(".", 1)
    return ServiceRef(name, service_namespace)


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
    return sorted(found, key=config_age_key)


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
        return ReadyPods(zero, "there is no Service %r in namespace %r, so no pod serves the host" % (service.name, service.namespace),
                         service_found=False)
    selector = (obj.get("spec") or {}).get("selector") or {}
    if not selector:
        return ReadyPods(
            zero,
            "Service %r in namespace %r has no selector (its endpoints are set by hand), so its pods cannot be counted"
            % (service.name, service.namespace),
        )
    pods = client.list(pods_path(service.namespace), label_selector=selector).get("items") or []
    return ReadyPods(count_ready_pods(pods, subset_labels), None)


def _with_namespace(items: list[dict], namespace: str) -> list[dict]:
    for item in items:
        item.setdefault("metadata", {}).setdefault("namespace", namespace)
    return items


def selects_template(deployment: dict, selector: dict[str, str]) -> bool:
    """Whether a Service with ``selector`` selects the pods of ``deployment``."""
    labels = ((((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels")) or {}
    return bool(selector) and all(labels.get(k) == str(v) for k, v in selector.items())


def list_http_routes(client: K8sClient, namespace: str) -> list[dict]:
    """The HTTPRoutes of ``namespace`` (one LIST); none when the cluster does not serve the Gateway API."""
    try:
        return _with_namespace(client.list(http_routes_path(namespace)).get("items") or [], namespace)
    except K8sNotFoundError:
        return []


def read_host(client: K8sClient, api_version: str, host: str, namespace: str) -> HostState:
    """One host's VirtualServices, DestinationRules, HTTPRoutes, Service pods and Deployments (six
    reads: two Istio LISTs, the HTTPRoutes, the Service, its pods, the namespace's Deployments).

    Only the host's namespace is read (where the release identity has its rights): rules that
    other namespaces export to it are not seen.
    """
    service = service_of_host(host, namespace)
    rule_namespace = service.namespace if service else namespace
    virtual_services = _with_namespace(client.list(istio_path(api_version, VIRTUAL_SERVICES, namespace)).get("items") or [], namespace)
    rules = find_destination_rules(client, api_version, rule_namespace, host)
    if service is None:
        return HostState(virtual_services, rules, None, [], None,
                         ["host %r is not a Service of this cluster, so its pods cannot be counted" % host])
    http_routes = routes_of_service(list_http_routes(client, service.namespace), service.name, service.namespace)
    try:
        obj = client.get(services_path(service.namespace, service.name))
    except K8sNotFoundError:
        # No Service, no endpoints: no pod serves the host, whatever the subsets select.
        return HostState(virtual_services, rules, [], [], None,
                         ["there is no Service %r in namespace %r, so no pod serves the host" % (service.name, service.namespace)],
                         http_routes)
    spec = obj.get("spec") or {}
    ports = [p.get("port") for p in spec.get("ports") or [] if isinstance(p, dict)]
    port = ports[0] if len(ports) == 1 else None
    selector = spec.get("selector") or {}
    if not selector:
        return HostState(virtual_services, rules, None, [], port, [
            "Service %r in namespace %r has no selector (its endpoints are set by hand), so its pods cannot be counted"
            % (service.name, service.namespace)], http_routes)
    pods = client.list(pods_path(service.namespace), label_selector=selector).get("items") or []
    deployments = [d for d in client.list(deployments_path(service.namespace)).get("items") or [] if selects_template(d, selector)]
    return HostState(virtual_services, rules, pods, deployments, port, [], http_routes)
