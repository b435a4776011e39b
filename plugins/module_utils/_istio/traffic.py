# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Traffic weights: which HTTP route of a VirtualService to change, and its new destinations.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import copy
import typing as t

from ansible_collections.canary.istio.plugins.module_utils._istio.common import IstioSpecError, as_int
from ansible_collections.canary.istio.plugins.module_utils._istio.matches import route_conditions


# --- weights ---------------------------------------------------------------------------------

def validate_weights(weights: t.Any, field: str = "weights") -> dict[str, int]:
    """Weights as Istio needs them: subset -> integer >= 0, summing to exactly 100.

    Int-like strings and integral floats are accepted (Jinja renders numbers as text); the result
    is a new dict of ints in the given order.
    """
    if not isinstance(weights, dict) or not weights:
        raise IstioSpecError(field, "give at least one subset with its weight, e.g. {v1: 90, v2: 10}")
    result: dict[str, int] = {}
    for subset, raw in weights.items():
        if not isinstance(subset, str) or not subset.strip():
            raise IstioSpecError(field, "subset names must be non-empty strings, got %r" % (subset,))
        weight = as_int(raw, field, "the weight of subset %r" % subset)
        if weight < 0:
            raise IstioSpecError(field, "the weight of subset %r is %d; weights cannot be negative" % (subset, weight))
        result[subset] = weight
    total = sum(result.values())
    if total != 100:
        raise IstioSpecError(
            field,
            "weights must sum to exactly 100, these sum to %d (%s)"
            % (total, ", ".join("%s=%d" % item for item in result.items())),
        )
    return result


def weights_from_canary(stable: str, canary: str, canary_weight: int) -> dict[str, int]:
    """``{stable: 100 - w, canary: w}``; both subsets stay in the route, one possibly at weight 0."""
    for field, name in (("stable", stable), ("canary", canary)):
        if not isinstance(name, str) or not name.strip():
            raise IstioSpecError(field, "name the %s subset, e.g. %s: v1" % (field, field))
    if stable == canary:
        raise IstioSpecError("canary", "stable and canary both name subset %r; the canary must be another subset" % stable)
    weight = as_int(canary_weight, "canary_weight", "canary_weight")
    if not 0 <= weight <= 100:
        raise IstioSpecError("canary_weight", "canary_weight is %d; use a percentage from 0 to 100" % weight)
    return {stable: 100 - weight, canary: weight}


def subsets_with_traffic(weights: dict[str, int]) -> list[str]:
    """Subsets that would receive requests (weight above 0), in the given order."""
    return [subset for subset, weight in weights.items() if weight > 0]


# --- routes ----------------------------------------------------------------------------------

def http_routes(spec: dict | None) -> list[dict]:
    """The spec's HTTP routes, [] when there are none."""
    routes = (spec or {}).get("http") or []
    return routes if isinstance(routes, list) else []


def is_catch_all(route: dict) -> bool:
    """Whether an HTTP route matches every request: no match, or a match whose only keys label it
    (``name``, ``statPrefix``) or match every path (uri prefix ``/``)."""
    return any(not conds for conds in route_conditions(route))


def route_names(spec: dict | None) -> list[str]:
    """Names of the HTTP routes, '<unnamed #i>' standing for a route without a name."""
    return [r.get("name") or "<unnamed #%d>" % i for i, r in enumerate(http_routes(spec))]


def find_catch_all_index(spec: dict | None) -> int | None:
    """Index of the first HTTP route that matches every request, or None.

    Envoy takes the first route whose match holds, so this route takes all plain traffic and
    every route after it is never reached (Istio does not even send those to Envoy).
    """
    for index, route in enumerate(http_routes(spec)):
        if isinstance(route, dict) and is_catch_all(route):
            return index
    return None


def _route_label(route: dict, index: int) -> str:
    return repr(route.get("name")) if route.get("name") else "#%d" % index


def find_route_index(spec: dict, route: str | None = None) -> int:
    """Index in ``spec.http`` of the route named ``route``, or of the catch-all when ``route`` is None.

    The catch-all is the first route that matches every request: the route plain traffic takes.
    A named route after it is never reached and is refused, naming the catch-all. Errors name the
    option ``route`` and list the routes that do exist.
    """
    routes = http_routes(spec)
    if route is None:
        index = find_catch_all_index(spec)
        if index is None:
            raise IstioSpecError(
                "route",
                "the VirtualService has no catch-all HTTP route (one without match); name the route to change "
                "with route=<name>. Routes: %s" % (", ".join(route_names(spec)) or "none"),
            )
        return index
    found = [i for i, r in enumerate(routes) if isinstance(r, dict) and r.get("name") == route]
    if not found:
        raise IstioSpecError(
            "route",
            "the VirtualService has no HTTP route named %r; named routes: %s (omit route to change the catch-all)"
            % (route, ", ".join(repr(r.get("name")) for r in routes if r.get("name")) or "none"),
        )
    if len(found) > 1:
        raise IstioSpecError("route", "%d HTTP routes are named %r; Istio needs route names to be unique" % (len(found), route))
    catch_all = find_catch_all_index(spec)
    if catch_all is not None and found[0] > catch_all:
        shadow = _route_label(routes[catch_all], catch_all)
        raise IstioSpecError(
            "route",
            "HTTP route %r is never reached: route %s before it matches every request, and Envoy takes the first "
            "route that matches, so weights set on %r would move no traffic; move %r before %s, or omit route to "
            "change %s" % (route, shadow, route, route, shadow, shadow),
        )
    return found[0]


def destination_subset(destination: dict) -> str:
    """The subset a route destination (an HTTPRouteDestination) sends to; '' for the whole host."""
    return ((destination or {}).get("destination") or {}).get("subset") or ""


def route_weights(route: dict) -> dict[str, int]:
    """subset -> weight as Istio reads an HTTP route.

    A single destination takes all traffic whatever its weight; with several, a missing weight is 0.
    A destination without a subset (the whole host) is keyed ''. Two destinations to the same
    subset add up.
    """
    destinations = route.get("route") or []
    if len(destinations) == 1:
        return {destination_subset(destinations[0]): 100}
    weights: dict[str, int] = {}
    for destination in destinations:
        subset = destination_subset(destination)
        weights[subset] = weights.get(subset, 0) + int(destination.get("weight") or 0)
    return weights


def set_route_weights(spec: dict, weights: dict[str, int], route: str | None = None) -> dict:
    """A new spec whose route ``route`` (the catch-all when None) sends ``weights`` to its subsets.

    Only that route's destination list changes: destinations of subsets in ``weights`` get their
    weight and keep every other key (host, port, headers); subsets new to the route are appended
    with the host and port of the route's first destination; destinations of other subsets are
    removed; subsets at weight 0 stay. A lone destination that had no weight and stays alone keeps
    no weight (Istio reads it as 100), so an unchanged split stays byte-identical.
    """
    weights = validate_weights(weights)
    new_spec = copy.deepcopy(spec)
    index = find_route_index(new_spec, route)
    http_route = new_spec["http"][index]
    label = repr(http_route.get("name")) if http_route.get("name") else "#%d" % index
    current = http_route.get("route") or []
    if not current:
        raise IstioSpecError(
            "route",
            "HTTP route %s has no destinations (it redirects, responds directly or delegates); "
            "there are no weights to set" % label,
        )
    by_subset: dict[str, dict] = {}
    for destination in current:
        subset = destination_subset(destination)
        if subset in weights and subset in by_subset:
            raise IstioSpecError(
                "route",
                "HTTP route %s sends to subset %r through more than one destination; "
                "make it one destination before setting weights" % (label, subset),
            )
        by_subset[subset] = destination

    template = current[0].get("destination") or {}
    new_destinations = []
    for destination in current:
        subset = destination_subset(destination)
        if subset in weights:
            updated = dict(destination)
            updated["weight"] = weights[subset]
            new_destinations.append(updated)
    for subset, weight in weights.items():
        if subset not in by_subset:
            target = {"host": template.get("host")}
            if "port" in template:
                target["port"] = copy.deepcopy(template["port"])
            target["subset"] = subset
            new_destinations.append({"destination": target, "weight": weight})

    if len(new_destinations) == 1 and len(current) == 1 and "weight" not in current[0] and destination_subset(current[0]) in weights:
        # The same lone destination, unweighted before: Istio sends it everything either way.
        del new_destinations[0]["weight"]
    http_route["route"] = new_destinations
    return new_spec
