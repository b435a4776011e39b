# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""traffic_split on an HTTPRoute (``kind: HTTPRoute``), and the check both kinds share: one kind
of routing per host.

The split's promises are the VirtualService's: nothing is written when the route already has the
weights; a version that would get traffic must have its Service (refused even with ``force``,
since Istio answers 500 for a missing backend) and a Ready pod behind it (unless ``force``); a
host routed by both an HTTPRoute and a VirtualService is refused (unless ``force``, which the
rollback sets, so traffic can always go back). Writes carry the resourceVersion and are applied
again to a fresh read after a 409.

API requests: 1 read when nothing changes (the HTTPRoute); for a change 1 LIST of VirtualServices
plus 2 reads per version that gets traffic (its Service, its pods) and 1 write; with ``force``,
1 read per version that gets traffic and 1 write.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import typing as t

from ansible_collections.canary.istio.plugins.module_utils._errors import CanaryError, doing
from ansible_collections.canary.istio.plugins.module_utils._istio.api import VIRTUAL_SERVICES, istio_path
from ansible_collections.canary.istio.plugins.module_utils._istio.common import specs_equal
from ansible_collections.canary.istio.plugins.module_utils._istio.http_route import (
    find_catch_all_rule,
    http_routes_path,
    refuse_mixed_routing,
    route_service,
    routes_of_service,
    version_service,
    version_service_problem,
)
from ansible_collections.canary.istio.plugins.module_utils._istio.http_route_steps import set_step_rules, step_rules_of
from ansible_collections.canary.istio.plugins.module_utils._istio.mesh_reads import (
    ServiceRef,
    list_http_routes,
    ready_pods_by_subset,
    service_of_host,
)
from ansible_collections.canary.istio.plugins.module_utils._istio.owned_objects import spec_diff
from ansible_collections.canary.istio.plugins.module_utils._istio.route_writes import backend_weights_of, write_backend_weights
from ansible_collections.canary.istio.plugins.module_utils._istio.split_plan import mesh_virtual_services, option_naming
from ansible_collections.canary.istio.plugins.module_utils._istio.traffic import subsets_with_traffic
from ansible_collections.canary.istio.plugins.module_utils._k8s.errors import K8sNotFoundError
from ansible_collections.canary.istio.plugins.module_utils._k8s.paths import services_path
from ansible_collections.canary.istio.plugins.module_utils._k8s.transport import K8sClient


def http_routes_of_host(client: K8sClient, host: str, namespace: str) -> list[str]:
    """Names of the HTTPRoutes that route ``host``'s mesh traffic (one LIST; none when the
    cluster does not serve the Gateway API)."""
    service = service_of_host(host, namespace)
    if service is None:
        return []
    with doing("listing the HTTPRoutes of namespace %s" % service.namespace):
        listed = list_http_routes(client, service.namespace)
    return [(r.get("metadata") or {}).get("name") for r in routes_of_service(listed, service.name, service.namespace)]


def virtual_services_of_host(client: K8sClient, api_version: str | None, host: str, namespace: str) -> list[str]:
    """Names of the mesh VirtualServices of ``namespace`` that name ``host`` (one LIST)."""
    with doing("listing the VirtualServices of namespace %s" % namespace):
        listed = client.list(istio_path(api_version, VIRTUAL_SERVICES, namespace)).get("items") or []
    return mesh_virtual_services(listed, host, namespace)


def _check_backends(client: K8sClient, params: t.Mapping[str, t.Any], service: str, weights: dict[str, int],
                    step: t.Mapping[str, t.Any] | None) -> None:
    """CanaryError when a version that would get traffic has no Service, or (unless force) no Ready pod
    (the canary of an A/B or shadow step gets requests at weight 0)."""
    namespace = params["namespace"]
    missing, empty = [], []
    receiving = subsets_with_traffic(weights)
    if step and (step.get("match") or step.get("mirror")) and step["canary"] not in receiving:
        receiving.append(step["canary"])
    for version in receiving:
        backend = ServiceRef(version_service(service, version), namespace)
        if params["force"]:
            with doing("reading Service %s/%s" % (namespace, backend.name)):
                try:
                    client.get(services_path(namespace, backend.name))
                except K8sNotFoundError:
                    missing.append(version)
            continue
        with doing("counting the Ready pods of Service %s/%s" % (namespace, backend.name)):
            ready = ready_pods_by_subset(client, backend, {version: {}})
        if not ready.service_found:
            missing.append(version)
        elif ready.problem:
            raise CanaryError("force: cannot check that %s has Ready pods: %s; fix the Service, or set force=true to route "
                              "anyway" % (version, ready.problem), "force")
        elif ready.counts[version] == 0:
            empty.append(version)
    if missing:
        option = option_naming(missing[0], params)
        raise CanaryError(
            "%s: version %s has no Service of its own (%s in namespace %s), so Istio would answer its share of the requests "
            "with 500; create it (the create_rules role does, selecting the version's pods)"
            % (option, ", ".join(repr(v) for v in missing), ", ".join(version_service(service, v) for v in missing), namespace),
            option)
    if empty:
        option = option_naming(empty[0], params)
        raise CanaryError(
            "%s: version %s has no Ready pod behind Service %s; wait until its Deployment is Ready, or set force=true to send "
            "traffic anyway" % (option, ", ".join(repr(v) for v in empty), ", ".join(version_service(service, v) for v in empty)),
            option)


def split_http_route(client: K8sClient, params: t.Mapping[str, t.Any], weights: dict[str, int], check_mode: bool,
                     diff: bool, step: t.Mapping[str, t.Any] | None = None) -> dict[str, t.Any]:
    """traffic_split's answer for the HTTPRoute ``params['name']``; CanaryError for whatever stops it."""
    namespace, name = params["namespace"], params["name"]
    path = http_routes_path(namespace, name)
    try:
        with doing("reading HTTPRoute %s/%s" % (namespace, name)):
            live = client.get(path)
    except K8sNotFoundError:
        raise CanaryError("name: HTTPRoute %s/%s not found; create it first (the create_rules role does with "
                          "canary_routing=gateway_api)" % (namespace, name), "name") from None
    service = route_service(live, namespace)
    for version in weights:
        problem = version_service_problem(service, version)
        if problem:
            option = option_naming(version, params)
            raise CanaryError("%s: %s" % (option, problem), option)
    live_spec = live.get("spec") or {}
    index = find_catch_all_rule(live_spec)
    step_options = {key: value for key, value in (step or {}).items() if key in ("canary", "match", "mirror")}
    new_spec = set_step_rules(live_spec, weights, service, **step_options)
    response: dict[str, t.Any] = dict(changed=False, route=index, previous_weights=backend_weights_of(live, namespace))
    if params["canary"]:
        response["step_routes"] = step_rules_of(new_spec, service, params["canary"])
    label = "HTTPRoute %s/%s" % (namespace, name)
    if specs_equal(new_spec, live_spec):
        response["weights"] = response["previous_weights"]
        if diff:
            response["diff"] = spec_diff(live, live, label)
        return response

    if not params["force"]:
        refuse_mixed_routing(service, [name], virtual_services_of_host(client, params["api_version"], service, namespace))
    _check_backends(client, params, service, weights, step)
    with doing("updating %s" % label):
        result = write_backend_weights(client, path, weights, dry_run=check_mode, live=live, step=step)
    response.update(changed=result.changed, previous_weights=backend_weights_of(result.before, namespace),
                    weights=backend_weights_of(result.after, namespace))
    if params["canary"]:
        response["step_routes"] = step_rules_of((result.after or {}).get("spec") or {}, service, params["canary"])
    if diff:
        response["diff"] = spec_diff(result.before, result.after, label)
    return response
