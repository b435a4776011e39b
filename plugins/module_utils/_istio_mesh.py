# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The pure part of mesh_info: how a host is routed, and what is wrong with it.

The module reads the VirtualServices, the DestinationRule and Ready pod counts; this file turns
them into a report, so every problem it can find is tested without a cluster.

PRIVATE to this collection: may change at any time. Import it through ``_istio``.
"""

from __future__ import annotations

import copy

from ansible_collections.canary.istio.plugins.module_utils._istio_common import qualify_host, same_host
from ansible_collections.canary.istio.plugins.module_utils._istio_destination_rule import subset_names
from ansible_collections.canary.istio.plugins.module_utils._istio_fault import fault_rules
from ansible_collections.canary.istio.plugins.module_utils._istio_traffic import http_routes, route_weights


def _name(obj: dict | None) -> str:
    return ((obj or {}).get("metadata") or {}).get("name") or "<unnamed>"


def _namespace(obj: dict | None) -> str | None:
    return ((obj or {}).get("metadata") or {}).get("namespace")


def _routes_host(vs: dict, host: str) -> bool:
    return any(same_host(h, host, _namespace(vs)) for h in (vs.get("spec") or {}).get("hosts") or [])


def _effective_destinations(route: dict) -> list[tuple[dict, int]]:
    """(destination, weight Istio gives it) for each destination of an HTTP route."""
    destinations = route.get("route") or []
    if len(destinations) == 1:
        return [(destinations[0].get("destination") or {}, 100)]
    return [(d.get("destination") or {}, int(d.get("weight") or 0)) for d in destinations]


def _route_label(vs_name: str, index: int, route: dict) -> str:
    name = route.get("name")
    return "VirtualService %r route %s" % (vs_name, repr(name) if name else "#%d" % index)


def describe_host(
    host: str,
    virtual_services: list[dict],
    destination_rule: dict | None,
    ready_pods_by_subset: dict[str, int],
    namespace: str | None = None,
) -> dict:
    """Routes, subsets, fault rules and problems of ``host``.

    ``virtual_services`` are full objects (metadata and spec); those whose hosts do not name
    ``host`` are ignored, so the module may pass all it finds. A short ``host`` is read in
    ``namespace`` (default: the DestinationRule's), each rule's hosts in the rule's own namespace,
    as Istio reads them. ``ready_pods_by_subset``
    counts Ready pods per DestinationRule subset; a subset missing from it counts as 0.

    Problems found: a route to a subset the DestinationRule lacks (or no DestinationRule); a subset
    that receives traffic with no Ready pod; a route whose weights do not sum to 100; two or more
    VirtualServices for the host. A subset with no Ready pod and no traffic (e.g. the old version
    after a promotion) is listed with ``ready_pods: 0`` but is not a problem.
    """
    service = qualify_host(host, namespace or _namespace(destination_rule))  # compared; `host` is shown
    matching = [vs for vs in virtual_services or [] if isinstance(vs, dict) and _routes_host(vs, service)]
    dr_spec = (destination_rule or {}).get("spec") or {}
    dr_name = _name(destination_rule) if destination_rule else None
    known_subsets = set(subset_names(dr_spec))
    problems: list[str] = []
    routes: list[dict] = []
    faults: list[dict] = []
    traffic_by_subset: dict[str, list[str]] = {}

    if destination_rule and not same_host(dr_spec.get("host") or "", service, _namespace(destination_rule)):
        problems.append("DestinationRule %r is for host %r, not %r" % (dr_name, dr_spec.get("host"), host))
    if len(matching) > 1:
        problems.append(
            "%d VirtualServices route host %r (%s); Istio merges them unpredictably, keep one"
            % (len(matching), host, ", ".join(repr(_name(vs)) for vs in matching))
        )

    for vs in matching:
        vs_name = _name(vs)
        spec = vs.get("spec") or {}
        for index, route in enumerate(http_routes(spec)):
            if not isinstance(route, dict):
                continue
            label = _route_label(vs_name, index, route)
            weights = route_weights(route)
            routes.append({
                "vs": vs_name,
                "name": route.get("name"),
                "match": copy.deepcopy(route.get("match") or []),
                "weights": weights,
            })
            if len(route.get("route") or []) > 1 and sum(weights.values()) != 100:
                problems.append("%s has weights summing to %d, not 100" % (label, sum(weights.values())))
            for destination, weight in _effective_destinations(route):
                subset = destination.get("subset")
                if not subset or not same_host(destination.get("host") or "", service, _namespace(vs)):
                    continue
                if subset not in known_subsets:
                    if destination_rule:
                        problems.append("%s sends to subset %r, which DestinationRule %r does not define" % (label, subset, dr_name))
                    else:
                        problems.append("%s sends to subset %r, but host %r has no DestinationRule" % (label, subset, host))
                elif weight > 0:
                    traffic_by_subset.setdefault(subset, []).append("%s (%d%%)" % (label, weight))
        for rule in fault_rules(spec):
            faults.append(dict(rule, vs=vs_name))

    subsets = []
    for subset in dr_spec.get("subsets") or []:
        if not isinstance(subset, dict) or not subset.get("name"):
            continue
        name = subset["name"]
        ready = int(ready_pods_by_subset.get(name) or 0)
        subsets.append({
            "name": name,
            "labels": dict(subset.get("labels") or {}),
            "ready_pods": ready,
            "receives_traffic": name in traffic_by_subset,
        })
        if ready == 0 and name in traffic_by_subset:
            problems.append(
                "subset %r has no Ready pods but receives traffic from %s" % (name, ", ".join(traffic_by_subset[name]))
            )

    return {
        "host": host,
        "virtual_services": [_name(vs) for vs in matching],
        "destination_rule": dr_name,
        "routes": routes,
        "subsets": subsets,
        "faults": faults,
        "problems": list(dict.fromkeys(problems)),
    }
