# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a traffic split of one HTTP route means, and what must hold before it is written: the route
and its host, one VirtualService in use for that host, the subsets defined in its DestinationRule,
Ready pods behind every subset that would get traffic. Each refusal names the option to fix.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import typing as t

from ansible_collections.canary.istio.plugins.module_utils._errors import CanaryError, doing
from ansible_collections.canary.istio.plugins.module_utils._istio.common import IstioSpecError, qualify_host, same_host
from ansible_collections.canary.istio.plugins.module_utils._istio.destination_rule import subset_labels, subset_names
from ansible_collections.canary.istio.plugins.module_utils._istio.mesh_reads import find_destination_rules, ready_pods_by_subset, service_of_host
from ansible_collections.canary.istio.plugins.module_utils._istio.mesh_config import (
    merge_destination_rules,
    virtual_services_for_host,
)
from ansible_collections.canary.istio.plugins.module_utils._istio.release_steps import match_condition
from ansible_collections.canary.istio.plugins.module_utils._istio.step_routes import set_release_routes
from ansible_collections.canary.istio.plugins.module_utils._istio.traffic import (
    find_route_index,
    route_weights,
    subsets_with_traffic,
    validate_weights,
    weights_from_canary,
)
from ansible_collections.canary.istio.plugins.module_utils._k8s.transport import format_label_selector


class Plan(t.NamedTuple):
    """What a change to the route means, computed from one read of the VirtualService."""

    route: str | int
    previous_weights: dict[str, int]
    new_spec: dict
    host: str


def wanted_step(params: t.Mapping[str, t.Any]) -> dict[str, t.Any] | None:
    """``{canary, match, mirror, sticky}`` of an A/B, shadow or sticky step from ``canary_match``,
    ``canary_mirror`` and ``canary_sticky``, or None."""
    if params.get("canary_match") is None and params.get("canary_mirror") is None and not params.get("canary_sticky"):
        return None
    sticky = params.get("canary_sticky") or None
    if sticky is not None and sticky < 0:
        raise CanaryError("canary_sticky: the seconds a user stays on the canary cannot be negative, got %d; 0 for none" % sticky,
                          "canary_sticky")
    if sticky and not params.get("canary"):
        raise CanaryError("canary_sticky: sticky sessions keep users on the canary; name it with stable, canary and "
                          "canary_weight", "canary_sticky")
    mirror = params.get("canary_mirror")
    if mirror is not None and not 0 < mirror <= 100:
        raise CanaryError("canary_mirror: the share of requests to mirror is above 0 and at most 100, got %g" % mirror, "canary_mirror")
    match = match_condition(params["canary_match"], "canary_match") if params.get("canary_match") is not None else None
    return {"canary": params["canary"], "match": match, "mirror": mirror, "sticky": sticky}


def wanted_weights(params: t.Mapping[str, t.Any]) -> dict[str, int]:
    """subset -> weight from either ``weights`` or ``stable``/``canary``/``canary_weight``."""
    if params.get("weights") is not None:
        return validate_weights(params["weights"], "weights")
    return weights_from_canary(params["stable"], params["canary"], params["canary_weight"])


def option_naming(subset: str, params: t.Mapping[str, t.Any]) -> str:
    """The option through which the user named ``subset``, for error messages."""
    if params.get("weights") is None:
        return "canary" if subset == params.get("canary") else "stable"
    return "weights"


def plan_split(spec: dict, weights: dict[str, int], route: str | None, namespace: str, step: t.Mapping[str, t.Any] | None = None) -> Plan:
    """The new spec, the route's label and weights before, and the host the subsets belong to.

    ``step``: ``{canary, match, mirror}`` of an A/B or shadow step (see ``step_routes``).

    Raises IstioSpecError (naming the option) when the route is missing or cannot be weighted,
    or when the weighted destinations go to more than one host.
    """
    index = find_route_index(spec, route)
    old_route = spec["http"][index]
    new_spec = set_release_routes(spec, weights, route, **(step or {}))
    label: str | int = old_route.get("name") or index
    hosts: list[str] = []
    # The index may differ in the new spec: an A/B route comes or goes before the route.
    for destination in new_spec["http"][find_route_index(new_spec, route)].get("route") or []:
        host = (destination.get("destination") or {}).get("host") or ""
        if not any(same_host(host, known, namespace) for known in hosts):
            hosts.append(host)
    if len(hosts) != 1 or not hosts[0]:
        raise IstioSpecError(
            "route",
            "HTTP route %r sends the subsets to %s; traffic_split weighs the subsets of one host, "
            "so point the route's destinations at one host first" % (label, ", ".join(repr(h) for h in hosts) or "no host"),
        )
    return Plan(label, route_weights(old_route), new_spec, hosts[0])


def mesh_virtual_services(virtual_services: list[dict], host: str, namespace: str) -> list[str]:
    """Names of the mesh VirtualServices that name ``host``, oldest (the one Istio uses) first."""
    chosen = virtual_services_for_host(virtual_services, qualify_host(host, namespace), namespace)
    return [(vs.get("metadata") or {}).get("name") for vs in chosen["applied"] + chosen["dropped"]]


def several_virtual_services_problem(names: list[str], name: str, host: str, force: bool) -> str | None:
    """Why ``name`` must not be changed when several VirtualServices name its host, or None.

    Writing one that Istio ignores moves no traffic, force or not. Writing the one in use does,
    but the other is a trap (delete one and the other's routes take over): refused unless
    ``force``, which the rollback sets, so that traffic can always go back.
    """
    if len(names) < 2:
        return None
    if names[0] != name:
        return ("name: Istio ignores VirtualService %r for host %r in the mesh: VirtualService %r names the same host and is "
                "older, and sidecars use only the oldest, whole, so weights written to %r would move no traffic; keep one "
                "VirtualService per host (delete or merge %r)" % (name, host, names[0], name, name))
    if not force:
        return ("name: VirtualServices %s all name host %r for the mesh; Istio uses %r whole and ignores the others, which "
                "take over if it goes; keep one VirtualService per host, or set force=true to change %r anyway"
                % (", ".join(repr(n) for n in names), host, name, name))
    return None


def missing_subsets(weights: dict[str, int], dr_spec: dict | None) -> list[str]:
    """Subsets named in ``weights`` that the DestinationRule does not define, in order."""
    defined = set(subset_names(dr_spec))
    return [subset for subset in weights if subset not in defined]


def subsets_defined(client, params: t.Mapping[str, t.Any], plan: Plan, weights: dict[str, int]) -> dict:
    """The merged DestinationRule of the host; CanaryError when a subset is not in it."""
    service = service_of_host(plan.host, params["namespace"])
    dr_namespace = service.namespace if service else params["namespace"]
    with doing("listing the DestinationRules of namespace %s" % dr_namespace):
        rules = find_destination_rules(client, params["api_version"], dr_namespace, plan.host)
    rule = merge_destination_rules(rules)
    if rule is None:
        option = option_naming(next(iter(weights)), params)
        raise CanaryError(
            "%s: no DestinationRule in namespace %s defines host %r, so its subsets %s do not exist; create it "
            "with canary.istio.destination_rule first" % (option, dr_namespace, plan.host, ", ".join(weights)),
            option)
    missing = missing_subsets(weights, rule["spec"])
    if missing:
        option = option_naming(missing[0], params)
        names = [(r.get("metadata") or {}).get("name") for r in rules]
        raise CanaryError(
            "%s: subset %s is not defined in DestinationRule %s of host %r (it defines: %s); add it with "
            "canary.istio.destination_rule first" % (
                option, ", ".join(repr(s) for s in missing), ", ".join(repr(n) for n in names), plan.host,
                ", ".join(subset_names(rule["spec"])) or "no subsets"),
            option, missing_subsets=missing)
    return rule


def check_ready_pods(client, params: t.Mapping[str, t.Any], plan: Plan, weights: dict[str, int], rule: dict) -> None:
    """CanaryError when a subset that would get traffic has no Ready pod (the canary of an A/B or
    shadow step gets requests at weight 0)."""
    receiving = subsets_with_traffic(weights)
    step_canary = params.get("canary") if params.get("canary_match") or params.get("canary_mirror") else None
    if step_canary and step_canary not in receiving:
        receiving.append(step_canary)
    if not receiving:
        return
    service = service_of_host(plan.host, params["namespace"])
    if service is None:
        raise CanaryError(
            "force: host %r is not a Service of this cluster, so the Ready pods of %s cannot be counted; set "
            "force=true to route to it anyway" % (plan.host, ", ".join(receiving)), "force")
    labels = {subset: subset_labels(rule["spec"], subset) or {} for subset in receiving}
    with doing("counting the Ready pods of Service %s/%s" % (service.namespace, service.name)):
        ready = ready_pods_by_subset(client, service, labels)
    if ready.problem:
        raise CanaryError(
            "force: cannot check that %s have Ready pods: %s; fix the Service, or set force=true to route "
            "anyway" % (", ".join(receiving), ready.problem), "force")
    empty = [subset for subset in receiving if ready.counts.get(subset, 0) == 0]
    if empty:
        option = option_naming(empty[0], params)
        details = "; ".join(
            "%s would get %d%%%s (pods of Service %s/%s with %s)"
            % (subset, weights[subset], " and the A/B or mirrored requests" if subset == step_canary else "",
               service.namespace, service.name, format_label_selector(labels[subset]) or "any labels")
            for subset in empty
        )
        raise CanaryError(
            "%s: subset %s has no Ready pod: %s. Wait until its Deployment is Ready, or set force=true to send "
            "traffic anyway" % (option, ", ".join(repr(s) for s in empty), details),
            option, ready_pods=ready.counts)
