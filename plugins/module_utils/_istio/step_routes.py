# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The routes an A/B or shadow step adds to a VirtualService, and their removal.

An A/B step is a route named ``canary-match-<canary>`` that sends the requests of one match to
the canary subset. Envoy takes the first route whose match holds, so it goes before the first
route that may take any of those requests (the catch-all at the latest). It keeps the other
settings (timeout, retries, header rewrites) of the first route that surely took all of them until
now (the catch-all when no other can be shown to), so only the destination differs for them.

A shadow step is a ``mirror`` of the weighted route to the canary subset with a
``mirrorPercentage``; Envoy sends the copy and discards its answer.

Sticky sessions: the canary's destination on the weighted route adds a ``Set-Cookie``
(``canary-istio-<service>=<canary>``) to its answers, and a route ``canary-sticky-<canary>`` before
the others sends the requests that carry it to the canary. A user who reached the canary once
stays on it; the weights decide only for users who have not. (Istio's consistent hashing in a
DestinationRule picks a pod within a subset, after the weights chose the subset: it cannot do this.)

All are the release's own: every weight write of the route (the next step, the promotion, a
rollback, the analysis's fast route back) removes those that point at a subset it writes unless it
asks for them again, so no such route outlives the step that made it.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import copy
import typing as t

from ansible_collections.canary.istio.plugins.module_utils._istio.common import IstioSpecError
from ansible_collections.canary.istio.plugins.module_utils._istio.fault import fault_rule_position
from ansible_collections.canary.istio.plugins.module_utils._istio.matches import conditions, may_overlap, route_conditions
from ansible_collections.canary.istio.plugins.module_utils._istio.traffic import find_route_index, http_routes, set_route_weights

MATCH_ROUTE_PREFIX = "canary-match-"
STICKY_ROUTE_PREFIX = "canary-sticky-"
STICKY_COOKIE_PREFIX = "canary-istio-"
# Characters RE2 reads as operators: escaped in a cookie name or version matched literally.
_REGEX_SPECIAL = frozenset(".^$*+?()[]{}|\\")
# What a matching request's route does not take over from the route it is placed before.
_NOT_COPIED = ("name", "match", "route", "mirror", "mirrors", "mirrorPercentage", "mirrorPercent", "fault", "delegate")


def match_route_name(subset: str) -> str:
    return MATCH_ROUTE_PREFIX + subset


def sticky_route_name(subset: str) -> str:
    return STICKY_ROUTE_PREFIX + subset


def sticky_cookie_name(host: str) -> str:
    """The cookie that keeps a user of ``host`` on the canary: one per service, so that canaries of
    two services released at once do not share it."""
    return STICKY_COOKIE_PREFIX + (host or "").split(".")[0]


def _set_cookie(cookie: str, subset: str, max_age: int) -> str:
    return "%s=%s; Max-Age=%d; Path=/" % (cookie, subset, max_age)


def _mirror_subset(route: dict) -> str | None:
    mirror = route.get("mirror")
    return (mirror.get("subset") or "") if isinstance(mirror, dict) else None


def clear_step_routes(spec: dict, route: str | None, subsets: t.Iterable[str]) -> dict:
    """A new spec without the A/B routes and the mirror of ``route`` that point at ``subsets``."""
    subsets = set(subsets)
    new_spec = copy.deepcopy(spec)
    names = {match_route_name(subset) for subset in subsets} | {sticky_route_name(subset) for subset in subsets}
    if "http" in new_spec and isinstance(new_spec["http"], list):
        new_spec["http"] = [r for r in new_spec["http"] if not (isinstance(r, dict) and r.get("name") in names)]
    weighted = new_spec["http"][find_route_index(new_spec, route)]
    if _mirror_subset(weighted) in subsets:
        for key in ("mirror", "mirrorPercentage", "mirrorPercent"):
            weighted.pop(key, None)
    for entry in weighted.get("route") or []:
        _drop_sticky_cookie(entry, subsets)
    return new_spec


def _drop_sticky_cookie(entry: dict, subsets: set[str]) -> None:
    """Remove the Set-Cookie a sticky step added to a destination of one of ``subsets``."""
    target = entry.get("destination") or {}
    subset = target.get("subset") or ""
    added = ((entry.get("headers") or {}).get("response") or {}).get("add") or {}
    cookie = added.get("Set-Cookie")
    if subset not in subsets or not isinstance(cookie, str):
        return
    if not cookie.startswith("%s=%s;" % (sticky_cookie_name(target.get("host") or ""), subset)):
        return
    del added["Set-Cookie"]
    response = entry["headers"]["response"]
    if not added:
        del response["add"]
    if not response:
        del entry["headers"]["response"]
    if not entry["headers"]:
        del entry["headers"]


def _canary_destination(weighted: dict, canary: str) -> dict:
    template = ((weighted.get("route") or [{}])[0].get("destination")) or {}
    target = {"host": template.get("host")}
    if "port" in template:
        target["port"] = copy.deepcopy(template["port"])
    target["subset"] = canary
    return target


def first_overlapping(routes: list[dict], match_conditions: dict | None) -> int:
    """Index of the first route that may take some request of the match (the catch-all at the
    latest): the A/B route goes there, so every matching request reaches the canary."""
    for index, route in enumerate(routes):
        if isinstance(route, dict) and any(may_overlap(match_conditions or {}, c) for c in route_conditions(route)):
            return index
    return len(routes)


def add_match_route(spec: dict, route: str | None, canary: str, match: dict) -> dict:
    """A new spec with the A/B route for ``canary`` in the place where it takes ``match``'s requests."""
    new_spec = copy.deepcopy(spec)
    routes = http_routes(new_spec)
    weighted = routes[find_route_index(new_spec, route)]
    position = first_overlapping(routes, conditions(match))
    # Its other settings come from the route the matching requests took until now.
    taker = fault_rule_position(routes, conditions(match))[1]
    base = taker if taker is not None else weighted
    new_route = {"name": match_route_name(canary), "match": [copy.deepcopy(match)]}
    new_route.update({k: copy.deepcopy(v) for k, v in base.items() if k not in _NOT_COPIED})
    new_route["route"] = [{"destination": _canary_destination(weighted, canary)}]
    routes.insert(position, new_route)
    return new_spec


def add_sticky(spec: dict, route: str | None, canary: str, max_age: int) -> dict:
    """A new spec where the canary's answers on ``route`` set a cookie, and a route before it sends
    the requests that carry the cookie to the canary: a user who reached the canary stays on it."""
    new_spec = copy.deepcopy(spec)
    routes = http_routes(new_spec)
    weighted = routes[find_route_index(new_spec, route)]
    target = _canary_destination(weighted, canary)
    cookie = sticky_cookie_name(target.get("host") or "")
    for entry in weighted.get("route") or []:
        if (entry.get("destination") or {}).get("subset") == canary:
            entry.setdefault("headers", {}).setdefault("response", {}).setdefault("add", {})["Set-Cookie"] = \
                _set_cookie(cookie, canary, max_age)
    pair = "".join("\\" + c if c in _REGEX_SPECIAL else c for c in "%s=%s" % (cookie, canary))
    match = {"headers": {"cookie": {"regex": "^(.*?;\\s*)?(%s)(;.*)?$" % pair}}}
    sticky = {"name": sticky_route_name(canary), "match": [match]}
    sticky.update({k: copy.deepcopy(v) for k, v in weighted.items() if k not in _NOT_COPIED})
    sticky["route"] = [{"destination": target}]
    routes.insert(first_overlapping(routes, conditions(match)), sticky)
    return new_spec


def add_mirror(spec: dict, route: str | None, canary: str, percent: float) -> dict:
    """A new spec whose ``route`` mirrors ``percent`` of its requests to ``canary``."""
    new_spec = copy.deepcopy(spec)
    index = find_route_index(new_spec, route)
    weighted = new_spec["http"][index]
    if weighted.get("mirrors"):
        raise IstioSpecError("canary_mirror", "HTTP route %s already mirrors its requests (mirrors); remove that mirror first, "
                             "a shadow step adds its own" % (repr(weighted.get("name")) if weighted.get("name") else "#%d" % index))
    if _mirror_subset(weighted) not in (None, canary):
        raise IstioSpecError("canary_mirror", "HTTP route %s already mirrors to subset %r, and Istio mirrors a route to one "
                             "destination; remove that mirror first" % (
                                 repr(weighted.get("name")) if weighted.get("name") else "#%d" % index, _mirror_subset(weighted)))
    weighted["mirror"] = _canary_destination(weighted, canary)
    weighted.pop("mirrorPercent", None)
    weighted["mirrorPercentage"] = {"value": percent}
    return new_spec


def set_release_routes(spec: dict, weights: dict[str, int], route: str | None = None, canary: str | None = None,
                       match: dict | None = None, mirror: float | None = None, sticky: int | None = None) -> dict:
    """A new spec with ``weights`` on ``route`` and, for ``canary``, exactly the A/B route, mirror
    and sticky cookie asked for: those of a subset in ``weights`` that are not asked for are removed.

    ``sticky``: seconds a user who reached the canary stays on it (the cookie's Max-Age)."""
    if (match or mirror or sticky) and canary not in weights:
        raise IstioSpecError("canary", "an A/B, shadow or sticky step needs the canary subset named (stable, canary and canary_weight)")
    new_spec = clear_step_routes(set_route_weights(spec, weights, route), route, weights)
    if match:
        new_spec = add_match_route(new_spec, route, canary, match)
    if mirror:
        new_spec = add_mirror(new_spec, route, canary, mirror)
    if sticky:
        new_spec = add_sticky(new_spec, route, canary, sticky)
    return new_spec


def step_routes_of(spec: dict, route: str | None, canary: str | None) -> dict:
    """For ``canary``: the A/B route's name, the mirrored percent and the sticky route's name (None
    for each that is not there)."""
    if not canary:
        return {"match": None, "mirror": None, "sticky": None}
    names = {r.get("name") for r in http_routes(spec) if isinstance(r, dict)}
    weighted = http_routes(spec)[find_route_index(spec, route)]
    mirror = None
    if _mirror_subset(weighted) == canary:
        mirror = (weighted.get("mirrorPercentage") or {}).get("value", weighted.get("mirrorPercent", 100))
    return {"match": match_route_name(canary) if match_route_name(canary) in names else None, "mirror": mirror,
            "sticky": sticky_route_name(canary) if sticky_route_name(canary) in names else None}
