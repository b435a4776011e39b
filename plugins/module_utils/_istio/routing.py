# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the traffic of one host goes, by Envoy's rules: the one model every module asks.

Given the VirtualServices and DestinationRules that may concern a host, the host's Service pods
and its Deployments, ``host_routing`` answers as a sidecar in ``client_namespace`` would be
configured by Istio:

* which VirtualServices name the host (short name read in the rule's namespace, ``name.ns``,
  FQDN, wildcards), which of those a sidecar sees (``exportTo``, ``gateways`` with ``mesh``), and
  which one wins: Istio does not merge several VirtualServices of one host for sidecars, the
  oldest (then the first by name) is used whole and the others are dropped;
* the winner's routes in the order Envoy tries them (each match its own Envoy route), the first
  that matches every request (the effective catch-all) and the routes it or an earlier route
  shadows entirely;
* each route's destinations, mirrors and faults, the subsets resolved to pods and Deployments by
  the DestinationRule's selectors (a subset's identity is its selector, not its name);
* which versions get default traffic and at what weight, and for every version and Deployment,
  every route, fault rule or mirror that still sends it requests.

Pure: no I/O. The modules read, call this, and decide from its answer; its property tests compare
it with Istio's own route computation (sandbox/route_oracle).

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import typing as t

from ansible_collections.canary.istio.plugins.module_utils._istio.common import qualify_host, same_host

from ansible_collections.canary.istio.plugins.module_utils._istio.release_steps import steps_to_run
from ansible_collections.canary.istio.plugins.module_utils._istio.mesh_config import (
    DEFAULT_VERSION_LABEL,
    describe_subsets,
    is_pod_ready,
    merge_destination_rules,
    namespace_of,
    object_name,
    ordered_routes,
    pod_labels,
    selects,
    spec_of,
    template_labels,
    version_of,
    virtual_services_for_host,
)


# --- the model -------------------------------------------------------------------------------

class _Backends:
    """The host's pods and Deployments, and what a destination of a route reaches among them."""

    def __init__(self, fqdn: str, subsets: dict[str, dict], pods: list[dict], deployments: list[dict], version_label: str):
        self.fqdn = fqdn
        self.subsets = subsets
        self.pods = pods
        self.version_label = version_label
        found = {version_of(pod_labels(p), version_label) for p in pods}
        found |= {version_of(template_labels(d), version_label) for d in deployments}
        self.versions = sorted(v for v in found if v)
        self.deployments = sorted(object_name(d) for d in deployments)

    def reach(self, destination: dict) -> tuple[list[str], list[str]] | None:
        """(versions, deployments) a destination reaches; None for another host."""
        if destination["host"] != self.fqdn:
            return None
        if not destination["subset"]:
            return self.versions, self.deployments
        subset = self.subsets.get(destination["subset"])
        if subset is None:
            return [], []
        return subset["versions"], subset["deployments"]

    def version_shares(self, destination: dict) -> dict[str, float]:
        """version -> share of the destination's weight, split by Ready pods when it reaches several."""
        if destination["subset"]:
            subset = self.subsets.get(destination["subset"])
            if subset is None:
                return {}
            selector, versions = subset["labels"], subset["versions"]
        else:
            selector, versions = {}, self.versions
        if len(versions) == 1:
            return {versions[0]: float(destination["weight"])}
        ready = [version_of(pod_labels(p), self.version_label) for p in self.pods
                 if is_pod_ready(p) and selects(pod_labels(p), selector)]
        ready = [v for v in ready if v is not None]
        if not ready:
            return {}
        return {v: destination["weight"] * ready.count(v) / len(ready) for v in sorted(set(ready))}


def choose_virtual_service(candidates: list[dict], port: int | None, client_namespace: str) -> tuple[dict | None, list[dict], list[dict]]:
    """(VirtualService in force, its routes, its Envoy routes) among those naming the host, oldest first.

    The oldest with a route for this port wins: Istio builds each port's routes apart, so one
    whose every match is for another port leaves this port to the next. None of them having a
    route for the port leaves the oldest, with no Envoy route (Istio's default route applies).
    """
    for candidate in candidates:
        routes, envoy = ordered_routes(candidate, port, client_namespace)
        if envoy:
            return candidate, routes, envoy
    if not candidates:
        return None, [], []
    routes, envoy = ordered_routes(candidates[0], port, client_namespace)
    return candidates[0], routes, envoy


def _sends_to(route: dict, fqdn: str, subset: str) -> bool:
    return any(d["host"] == fqdn and d["subset"] == subset and (d["weight"] > 0 or len(route["destinations"]) == 1)
               for d in route["destinations"])


def route_findings(routes: list[dict], backends: _Backends, rule: dict | None, host: str) -> tuple[list[str], dict, dict]:
    """(problems, version -> what sends it requests, Deployment -> the same) from the routes."""
    problems: list[str] = []
    serving: dict[str, list[str]] = {}
    serving_deployments: dict[str, list[str]] = {}

    def serve(target: dict, reason: str) -> None:
        reached = backends.reach(target)
        for version in (reached or ([], []))[0]:
            serving.setdefault(version, []).append(reason)
        for name in (reached or ([], []))[1]:
            serving_deployments.setdefault(name, []).append(reason)

    for route in routes:
        if not route["applies"]:
            continue
        if route["delegate"]:
            problems.append("%s delegates to VirtualService %r; canary.istio does not follow delegates, so the traffic "
                            "it sends is unknown here" % (route["label"], route["delegate"].get("name")))
        if route["shadowed_by"] and not route["reachable"]:
            # A fault rule placed in front of the route it copies is how fault injection works:
            # the shadow is intended, and lifts when the rule is removed.
            if not shadowed_by_fault_rule(routes, route):
                problems.append("%s is never reached: %s takes its requests first" % (route["label"], route["shadowed_by"]))
            continue
        total = sum(d["weight"] for d in route["destinations"])
        if len(route["destinations"]) > 1 and total != 100:
            problems.append("%s has weights summing to %d, not 100" % (route["label"], total))
        for destination in route["destinations"]:
            if destination["host"] == backends.fqdn and destination["subset"] and destination["subset"] not in backends.subsets:
                problems.append("%s sends to subset %r, which %s" % (
                    route["label"], destination["subset"],
                    "DestinationRule %r does not define" % object_name(rule) if rule else "has no DestinationRule for host %r" % host))
        reason = ("fault rule of %s" if route["fault"] else "%s") % route["label"]
        for destination in route["destinations"]:
            if destination["weight"] > 0 or len(route["destinations"]) == 1:
                serve(destination, "%s %s(%d%%)" % (reason, _subset_text(destination), destination["weight"]))
        for mirror in route["mirrors"]:
            serve(mirror, "%s mirrors %s%s%% of its requests" % (reason, _subset_text(mirror), mirror["percent"]))
    return problems, serving, serving_deployments


def default_traffic(catch_all: dict | None, backends: _Backends) -> tuple[dict[str, int], dict[str, float]]:
    """(subset -> weight, version -> share) of plain traffic: the catch-all's destinations to the host."""
    subsets: dict[str, int] = {}
    versions: dict[str, float] = {}
    if catch_all is None or catch_all["delegate"]:
        return subsets, versions
    for destination in catch_all["destinations"]:
        if destination["host"] != backends.fqdn:
            continue
        subsets[destination["subset"]] = subsets.get(destination["subset"], 0) + destination["weight"]
        for version, share in backends.version_shares(destination).items():
            versions[version] = round(versions.get(version, 0.0) + share, 3)
    return subsets, versions


def subset_findings(subsets: dict[str, dict], routes: list[dict], fqdn: str, pods_counted: bool) -> list[str]:
    """Problems of the subsets; sets each subset's ``receives_traffic``."""
    problems = []
    for name, subset in subsets.items():
        if not subset["labels"]:
            problems.append("subset %r has no labels, so it selects every pod of the Service" % name)
        if len(subset["versions"]) > 1:
            problems.append("subset %r selects pods of %d versions (%s)" % (name, len(subset["versions"]), ", ".join(subset["versions"])))
        receives = [r["label"] for r in routes if r["reachable"] and _sends_to(r, fqdn, name)]
        subset["receives_traffic"] = bool(receives)
        if pods_counted and receives and subset["ready_pods"] == 0:
            problems.append("subset %r has no Ready pods but receives traffic from %s" % (name, ", ".join(receives)))
    return problems


def host_routing(
    host: str,
    namespace: str,
    virtual_services: t.Iterable[dict],
    destination_rules: t.Iterable[dict] = (),
    pods: t.Iterable[dict] | None = None,
    deployments: t.Iterable[dict] = (),
    port: int | None = None,
    client_namespace: str | None = None,
    version_label: str = DEFAULT_VERSION_LABEL,
) -> dict:
    """Where the traffic of ``host`` (a short name read in ``namespace``) goes; see the module docstring.

    ``destination_rules`` are those that define the host, oldest first (their subsets merged, the
    oldest definition of a name winning); ``pods`` the Service's pods (None: not counted);
    ``deployments`` the Deployments whose pods the Service selects. Returns a dict of plain data.
    """
    fqdn = qualify_host(host, namespace)
    client_namespace = client_namespace or namespace
    rules = [r for r in destination_rules or [] if isinstance(r, dict)]
    rule = merge_destination_rules(rules)
    pod_list = list(pods or [])
    deployment_list = [d for d in deployments or [] if isinstance(d, dict)]
    subsets = describe_subsets(rule, pod_list, deployment_list, version_label)
    backends = _Backends(fqdn, subsets, pod_list, deployment_list, version_label)

    chosen = virtual_services_for_host(virtual_services, fqdn, client_namespace)
    candidates = chosen["applied"] + chosen["dropped"]
    vs, routes, envoy = choose_virtual_service(candidates, port, client_namespace)
    problems: list[str] = []
    if len(candidates) > 1:
        problems.append(
            "%d VirtualServices route host %r for the mesh (%s): Istio uses one whole, %r (the oldest with a route "
            "for this port), and ignores the others; keep one"
            % (len(candidates), host, ", ".join(repr(object_name(v)) for v in candidates), object_name(vs)))
    if vs is not None and not envoy:
        problems.append("VirtualService %r has no route that applies to port %s of host %r: Istio then sends plain traffic "
                        "to every pod of the Service, as if there were no VirtualService" % (object_name(vs), port, host))
    catch_all = next((routes[e["route"]] for e in envoy if e["catch_all"]), None)
    found, serving, serving_deployments = route_findings(routes, backends, rule, host)
    problems += found
    default_subsets, default_versions = default_traffic(catch_all, backends)
    problems += subset_findings(subsets, routes, fqdn, pods is not None)
    for rule_obj in rules:
        if not same_host(spec_of(rule_obj).get("host") or "", fqdn, namespace_of(rule_obj, namespace)):
            problems.append("DestinationRule %r is for host %r, not %r" % (object_name(rule_obj), spec_of(rule_obj).get("host"), host))

    return {
        "host": host,
        "fqdn": fqdn,
        "traffic": traffic_sentence(default_versions, catch_all),
        "port": port,
        "client_namespace": client_namespace,
        "virtual_service": object_name(vs) if vs else None,
        "virtual_services": [object_name(v) for v in candidates],
        "dropped_virtual_services": [object_name(v) for v in candidates if v is not vs],
        "gateway_virtual_services": [object_name(v) for v in chosen["gateway_only"]],
        "destination_rule": object_name(rule) if rule else None,
        "destination_rules": [object_name(r) for r in rules],
        "routes": routes,
        "envoy_routes": [dict(e, label=routes[e["route"]]["label"]) for e in envoy],
        "catch_all": {k: catch_all[k] for k in ("vs", "index", "name", "label")} if catch_all else None,
        "default_weights": default_subsets,
        "version_weights": default_versions,
        "subsets": [dict(subset, name=name) for name, subset in subsets.items()],
        "serving": serving,
        "serving_deployments": serving_deployments,
        "problems": list(dict.fromkeys(problems)),
    }


def traffic_sentence(version_weights: dict[str, float], catch_all: dict | None) -> str:
    """'traffic now: v1 90%, v2 10% (VirtualService 'reviews' route #0)', for final messages."""
    if catch_all is None:
        return "traffic now: no route takes plain traffic"
    if not version_weights:
        return "traffic now: %s sends plain traffic to no pod of a known version" % catch_all["label"]
    shares = ", ".join("%s %s%%" % (v, ("%g" % round(w, 1))) for v, w in sorted(version_weights.items(), key=lambda i: -i[1]))
    return "traffic now: %s (%s)" % (shares, catch_all["label"])


def shadowed_by_fault_rule(routes: list[dict], route: dict) -> bool:
    """Whether what shadows ``route`` is a header-matched fault rule sending where ``route`` sends
    (a fault rule for everyone, a catch-all, leaves the routes after it dead like any other)."""
    shadow = next((r for r in routes if r["label"] == route["shadowed_by"]), None)
    return bool(shadow and shadow["fault"] and not shadow["catch_all"] and shadow["destinations"] == route["destinations"])


def _subset_text(destination: dict) -> str:
    return "to subset %r " % destination["subset"] if destination["subset"] else "to the whole host "


# --- what a release needs to know ------------------------------------------------------------

def release_state(model: dict, stable: str, canary: str, steps: list[dict], allow_weight_decrease: bool = False) -> dict:
    """Where a canary release of ``canary`` over ``stable`` stands, read from the model.

    ``live_weight`` is the canary version's share of plain traffic (the effective catch-all,
    through the subsets' selectors), ``traffic_moved`` whether any route, fault rule or mirror
    sends the canary requests (then a failure must roll back), and ``plan_to_run`` the steps (as
    ``release_steps`` reads them) a resumed release still runs: those not below the live weight,
    unless decreasing is allowed. ``steps_to_run`` and ``skipped_steps`` give their weights.
    """
    live = model.get("version_weights", {}).get(canary, 0.0)
    live_weight = int(round(live))
    to_run = steps_to_run(steps, live_weight, allow_weight_decrease)
    skipped = [step for step in steps if step not in to_run]
    return {
        "live_weight": live_weight,
        "stable_weight": int(round(model.get("version_weights", {}).get(stable, 0.0))),
        "traffic_moved": bool(model.get("serving", {}).get(canary)),
        "canary_served_by": list(model.get("serving", {}).get(canary, [])),
        "plan_to_run": to_run,
        "steps_to_run": [step["weight"] for step in to_run],
        "skipped_steps": [step["weight"] for step in skipped],
        "skipped_labels": [step["label"] for step in skipped],
        "has_virtual_service": model.get("virtual_service") is not None,
        "has_routing": model.get("virtual_service") is not None or model.get("http_route") is not None,
    }
