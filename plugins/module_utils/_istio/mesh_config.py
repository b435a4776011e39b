# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What Istio's configuration says about one host, read as a sidecar reads it: which
VirtualServices name the host and which of them a sidecar sees, their routes in the order Envoy
tries them (each match its own route), their destinations and mirrors, the DestinationRules merged
as Istio merges them, and the subsets resolved to pods and Deployments by their selectors. Pure.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import copy
import fnmatch
import typing as t

from ansible_collections.canary.istio.plugins.module_utils._istio.common import qualify_host, same_host
from ansible_collections.canary.istio.plugins.module_utils._istio.matches import implies, route_conditions
from ansible_collections.canary.istio.plugins.module_utils._istio.traffic import http_routes, route_weights


DEFAULT_VERSION_LABEL = "version"


# --- small readers ---------------------------------------------------------------------------

def _meta(obj: dict | None) -> dict:
    return ((obj or {}).get("metadata") or {}) if isinstance(obj, dict) else {}


def object_name(obj: dict | None) -> str:
    return _meta(obj).get("name") or "<unnamed>"


def namespace_of(obj: dict | None, default: str | None = None) -> str | None:
    return _meta(obj).get("namespace") or default


def spec_of(obj: dict | None) -> dict:
    spec = (obj or {}).get("spec") if isinstance(obj, dict) else None
    return spec if isinstance(spec, dict) else {}


def config_age_key(obj: dict) -> tuple[str, str, str]:
    """Istio's order for configs of one kind: creation time, then name, then namespace."""
    meta = _meta(obj)
    return (meta.get("creationTimestamp") or "", meta.get("name") or "", meta.get("namespace") or "")


def host_matches(pattern: str, fqdn: str, namespace: str | None) -> bool:
    """Whether a VirtualService host ``pattern`` (read in ``namespace``) names service ``fqdn``."""
    if not isinstance(pattern, str) or not pattern:
        return False
    if "*" in pattern:
        return fnmatch.fnmatchcase(fqdn, pattern.lower()) if pattern.startswith("*") else False
    return same_host(pattern, fqdn, namespace)


def _exported_to(obj: dict, client_namespace: str) -> bool:
    export = spec_of(obj).get("exportTo")
    if not export:
        return True
    own = namespace_of(obj)
    return "*" in export or client_namespace in export or ("." in export and own == client_namespace)


def _binds_mesh(vs: dict) -> bool:
    gateways = spec_of(vs).get("gateways")
    return not gateways or "mesh" in gateways


def label_of(vs_name: str, index: int, route: dict) -> str:
    """How messages name an HTTP route: ``VirtualService 'reviews' route 'jason'`` (or ``#1``)."""
    name = route.get("name") if isinstance(route, dict) else None
    return "VirtualService %r route %s" % (vs_name, repr(name) if name else "#%d" % index)


def selects(labels: dict, selector: dict) -> bool:
    return all(labels.get(key) == str(value) for key, value in (selector or {}).items())


def pod_labels(pod: dict) -> dict:
    return _meta(pod).get("labels") or {}


def template_labels(deployment: dict) -> dict:
    return (((spec_of(deployment).get("template") or {}).get("metadata") or {}).get("labels")) or {}


def is_pod_ready(pod: dict) -> bool:
    """Whether a pod is a ready endpoint: condition Ready=True and not being deleted."""
    if _meta(pod).get("deletionTimestamp"):
        return False  # terminating pods leave the endpoints even while still Ready
    conditions = ((pod or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions if isinstance(c, dict))


# --- which VirtualServices ------------------------------------------------------------------

def virtual_services_for_host(virtual_services: t.Iterable[dict], fqdn: str, client_namespace: str) -> dict:
    """The VirtualServices naming ``fqdn``, split by what a sidecar in ``client_namespace`` does with them.

    ``applied`` (the winner, alone, or none), ``dropped`` (other mesh VirtualServices of the host,
    which Istio ignores for sidecars), ``gateway_only`` and ``not_exported``; each list oldest first.
    """
    naming = [vs for vs in virtual_services or [] if isinstance(vs, dict)
              and any(host_matches(h, fqdn, namespace_of(vs)) for h in spec_of(vs).get("hosts") or [])]
    naming.sort(key=config_age_key)
    mesh = [vs for vs in naming if _binds_mesh(vs) and _exported_to(vs, client_namespace)]
    return {
        "applied": mesh[:1],
        "dropped": mesh[1:],
        "gateway_only": [vs for vs in naming if not _binds_mesh(vs)],
        "not_exported": [vs for vs in naming if _binds_mesh(vs) and not _exported_to(vs, client_namespace)],
    }


# --- routes in Envoy's order -----------------------------------------------------------------

def _destinations(route: dict, namespace: str | None) -> list[dict]:
    """{host, subset, weight} of each destination, weights as Istio reads them, hosts as FQDNs."""
    found = []
    entries = route.get("route") or []
    weights = [100] if len(entries) == 1 else [int(e.get("weight") or 0) for e in entries]
    for entry, weight in zip(entries, weights):
        destination = (entry or {}).get("destination") or {}
        found.append({
            "host": qualify_host(destination.get("host") or "", namespace),
            "subset": destination.get("subset") or "",
            "weight": weight,
        })
    return found


def _mirrors(route: dict, namespace: str | None) -> list[dict]:
    """{host, subset, percent} of the route's mirror (and mirrors) targets."""
    found = []
    if isinstance(route.get("mirror"), dict):
        share = (route.get("mirrorPercentage") or {}).get("value")
        if share is None:
            share = route.get("mirrorPercent", 100)
        found.append((route["mirror"], share))
    for item in route.get("mirrors") or []:
        if isinstance(item, dict) and isinstance(item.get("destination"), dict):
            found.append((item["destination"], (item.get("percentage") or {}).get("value", 100)))
    return [{"host": qualify_host(d.get("host") or "", namespace), "subset": d.get("subset") or "", "percent": p}
            for d, p in found]


def ordered_routes(vs: dict, port: int | None, client_namespace: str) -> tuple[list[dict], list[dict]]:
    """(routes, envoy_routes) of one VirtualService for a sidecar.

    ``routes`` has one entry per HTTP route of the spec: its label, whether any of its matches
    reaches Envoy unshadowed (``reachable``), and what shadows it otherwise. ``envoy_routes`` is
    what Istio sends to Envoy, in order: one per applying match, up to and including the first
    catch-all, each ``{route, conditions, catch_all}`` with ``route`` the index into ``routes``.
    """
    name, namespace = object_name(vs), namespace_of(vs)
    routes: list[dict] = []
    envoy: list[dict] = []
    cut_by: str | None = None
    for index, route in enumerate(http_routes(spec_of(vs))):
        route = route if isinstance(route, dict) else {}
        label = label_of(name, index, route)
        entry = {
            "vs": name,
            "index": index,
            "name": route.get("name"),
            "label": label,
            "match": copy.deepcopy(route.get("match") or []),
            "catch_all": False,
            "reachable": False,
            "shadowed_by": None,
            "destinations": _destinations(route, namespace),
            "weights": route_weights(route) if route.get("route") else {},
            "mirrors": _mirrors(route, namespace),
            "fault": isinstance(route.get("fault"), dict),
            "delegate": copy.deepcopy(route.get("delegate")) if route.get("delegate") else None,
            "applies": True,
        }
        routes.append(entry)
        conds = route_conditions(route, port, client_namespace)
        if not conds:
            entry["applies"] = False  # every match is for another port, gateway or namespace
            continue
        if cut_by is not None:
            entry["shadowed_by"] = cut_by
            continue
        for cond in conds:
            earlier = next((e for e in envoy if implies(cond, e["conditions"])), None)
            if earlier is None:
                entry["reachable"] = True
            elif entry["shadowed_by"] is None:
                entry["shadowed_by"] = routes[earlier["route"]]["label"]
            envoy.append({"route": index, "conditions": cond, "catch_all": not cond})
            if not cond:
                entry["catch_all"] = True
                cut_by = label
                break  # Istio stops here: Envoy would never reach what follows
        if entry["reachable"]:
            entry["shadowed_by"] = None
    return routes, envoy


# --- subsets, pods, versions -----------------------------------------------------------------

def _subsets(destination_rule: dict | None) -> list[dict]:
    return [s for s in spec_of(destination_rule).get("subsets") or [] if isinstance(s, dict) and s.get("name")]


def version_of(labels: dict, version_label: str) -> str | None:
    value = labels.get(version_label)
    return str(value) if value is not None else None


def deployments_by_version(deployments: list[dict], version_label: str) -> dict[str, list[str]]:
    """version -> the names of the Deployments whose pods carry it (by ``version_label``), for
    the Deployments the host's Service selects; a Deployment without the label is left out."""
    out: dict[str, list[str]] = {}
    for deployment in deployments:
        version = version_of(template_labels(deployment), version_label)
        if version is not None:
            out.setdefault(version, []).append(_meta(deployment).get("name"))
    return {version: sorted(names) for version, names in sorted(out.items())}


def describe_subsets(destination_rule: dict | None, pods: list[dict], deployments: list[dict],
                     version_label: str) -> dict[str, dict]:
    """name -> {labels, ready_pods, versions, deployments} for each subset of the rule."""
    result = {}
    for subset in _subsets(destination_rule):
        labels = dict(subset.get("labels") or {})
        chosen = [p for p in pods if selects(pod_labels(p), labels)]
        owners = [d for d in deployments if selects(template_labels(d), labels)]
        versions = {version_of(pod_labels(p), version_label) for p in chosen}
        versions |= {version_of(template_labels(d), version_label) for d in owners}
        result[subset["name"]] = {
            "labels": labels,
            "ready_pods": sum(1 for p in chosen if is_pod_ready(p)),
            "versions": sorted(v for v in versions if v is not None),
            "deployments": sorted(object_name(d) for d in owners),
        }
    return result


def merge_destination_rules(rules: list[dict]) -> dict | None:
    """One DestinationRule standing for several of one host, as Istio merges them for a sidecar:
    the oldest gives everything but subsets; younger rules add subsets whose names are new."""
    if not rules:
        return None
    rules = sorted(rules, key=config_age_key)
    merged = copy.deepcopy(rules[0])
    spec = merged.setdefault("spec", {})
    subsets = list(spec.get("subsets") or [])
    names = {s.get("name") for s in subsets if isinstance(s, dict)}
    for rule in rules[1:]:
        for subset in spec_of(rule).get("subsets") or []:
            if isinstance(subset, dict) and subset.get("name") not in names:
                subsets.append(subset)
                names.add(subset.get("name"))
    if subsets:
        spec["subsets"] = subsets
    return merged
