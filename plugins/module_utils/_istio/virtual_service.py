# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""VirtualService specs: typed route options (snake_case) built into Istio HTTPRoutes (camelCase).

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import copy
import typing as t

from ansible_collections.canary.istio.plugins.module_utils._istio.common import (
    IstioSpecError,
    as_int,
    validate_duration,
)
from ansible_collections.canary.istio.plugins.module_utils._istio.fault import (
    fault_to_istio,
    headers_match_to_istio,
    string_match_to_istio,
    validate_percentage,
)
from ansible_collections.canary.istio.plugins.module_utils._istio.traffic import (
    find_catch_all_index,
    route_weights,
    validate_weights,
)

# Module option -> (Istio key, converter kind) for an HTTPMatchRequest.
_MATCH_KEYS = {
    "headers": ("headers", "headers"),
    "without_headers": ("withoutHeaders", "headers"),
    "query_params": ("queryParams", "headers"),
    "uri": ("uri", "string"),
    "method": ("method", "string"),
    "authority": ("authority", "string"),
    "scheme": ("scheme", "string"),
    "ignore_uri_case": ("ignoreUriCase", "plain"),
    "port": ("port", "plain"),
    "source_labels": ("sourceLabels", "plain"),
    "source_namespace": ("sourceNamespace", "plain"),
    "gateways": ("gateways", "plain"),
    "name": ("name", "plain"),
}


def _match_to_istio(match: t.Any, field: str) -> dict:
    if not isinstance(match, dict):
        raise IstioSpecError(field, "each match must be a dict such as {headers: {end-user: {exact: jason}}}, got %r" % (match,))
    result: dict[str, t.Any] = {}
    for option, value in match.items():
        if value is None:
            continue
        if option not in _MATCH_KEYS:
            raise IstioSpecError(field, "unknown match key %r; use %s" % (option, ", ".join(sorted(_MATCH_KEYS))))
        istio_key, kind = _MATCH_KEYS[option]
        if kind == "headers":
            result[istio_key] = headers_match_to_istio(value, "%s.%s" % (field, option))
        elif kind == "string":
            result[istio_key] = string_match_to_istio(value, "%s.%s" % (field, option))
        else:
            result[istio_key] = copy.deepcopy(value)
    return result


def _destination_to_istio(item: t.Any, default_host: str, field: str) -> dict:
    if not isinstance(item, dict):
        raise IstioSpecError(field, "each destination must be a dict such as {subset: v1, weight: 90}, got %r" % (item,))
    host = item.get("host") or default_host
    if not isinstance(host, str) or not host:
        raise IstioSpecError(field, "a destination needs a host (none given and no default host)")
    target: dict[str, t.Any] = {"host": host}
    if item.get("subset") is not None:
        target["subset"] = item["subset"]
    if item.get("port") is not None:
        port = item["port"]
        target["port"] = copy.deepcopy(port) if isinstance(port, dict) else {"number": as_int(port, field, "port")}
    destination: dict[str, t.Any] = {"destination": target}
    if item.get("weight") is not None:
        destination["weight"] = as_int(item["weight"], field, "weight")
        if destination["weight"] < 0:
            raise IstioSpecError(field, "weight %d is negative; weights are 0 to 100" % destination["weight"])
    if item.get("headers") is not None:
        destination["headers"] = copy.deepcopy(item["headers"])
    return destination


def _check_destination_weights(destinations: list[dict], field: str) -> None:
    weights = [d.get("weight") for d in destinations]
    if len(destinations) == 1:
        if weights[0] not in (None, 100):
            raise IstioSpecError(field, "a single destination receives all traffic; omit its weight or set 100, not %d" % weights[0])
        return
    if any(w is None for w in weights):
        raise IstioSpecError(field, "with several destinations give each a weight, summing to 100")
    if sum(weights) != 100:
        raise IstioSpecError(field, "destination weights must sum to exactly 100, these sum to %d" % sum(weights))


def http_route_from_options(opts: dict, default_host: str, field: str = "http") -> dict:
    """An Istio HTTPRoute from the module's typed route options; keys left None are omitted.

    ``opts``: name, match, destinations ({host?, subset?, weight?, port?, headers?}; host defaults to
    ``default_host``), timeout, retries {attempts, per_try_timeout, retry_on}, fault {delay, abort},
    mirror {host?, subset?, port?}, mirror_percentage, headers (Istio form, passed through).
    ``field`` prefixes error fields, e.g. ``http[2]``.
    """
    if not isinstance(opts, dict):
        raise IstioSpecError(field, "each route must be a dict with destinations, got %r" % (opts,))
    route: dict[str, t.Any] = {}
    if opts.get("name") is not None:
        route["name"] = opts["name"]
    if opts.get("match"):
        matches = opts["match"]
        if not isinstance(matches, list):
            raise IstioSpecError(field + ".match", "match must be a list of match conditions, got %r" % (matches,))
        route["match"] = [_match_to_istio(m, "%s.match" % field) for m in matches]

    destinations = opts.get("destinations")
    if not destinations or not isinstance(destinations, list):
        raise IstioSpecError(field + ".destinations", "a route needs at least one destination, e.g. [{subset: v1}]")
    route["route"] = [_destination_to_istio(d, default_host, field + ".destinations") for d in destinations]
    _check_destination_weights(route["route"], field + ".destinations")

    if opts.get("timeout") is not None:
        route["timeout"] = validate_duration(opts["timeout"], field + ".timeout")
    retries = opts.get("retries")
    if retries is not None:
        if not isinstance(retries, dict):
            raise IstioSpecError(field + ".retries", "retries must be a dict {attempts, per_try_timeout, retry_on}, got %r" % (retries,))
        istio_retries: dict[str, t.Any] = {}
        if retries.get("attempts") is not None:
            istio_retries["attempts"] = as_int(retries["attempts"], field + ".retries.attempts", "attempts")
            if istio_retries["attempts"] < 0:
                raise IstioSpecError(field + ".retries.attempts", "attempts cannot be negative")
        if retries.get("per_try_timeout") is not None:
            istio_retries["perTryTimeout"] = validate_duration(retries["per_try_timeout"], field + ".retries.per_try_timeout")
        if retries.get("retry_on") is not None:
            retry_on = retries["retry_on"]
            istio_retries["retryOn"] = ",".join(retry_on) if isinstance(retry_on, list) else retry_on
        route["retries"] = istio_retries
    fault = opts.get("fault")
    if fault is not None:
        if not isinstance(fault, dict):
            raise IstioSpecError(field + ".fault", "fault must be a dict {delay, abort}, got %r" % (fault,))
        try:
            route["fault"] = fault_to_istio(fault.get("delay"), fault.get("abort"))
        except IstioSpecError as exc:
            raise IstioSpecError("%s.fault.%s" % (field, exc.option), exc.message) from None
    mirror = opts.get("mirror")
    if mirror is not None:
        if not isinstance(mirror, dict):
            raise IstioSpecError(field + ".mirror", "mirror must be a dict {host, subset}, got %r" % (mirror,))
        route["mirror"] = _destination_to_istio(mirror, default_host, field + ".mirror")["destination"]
    if opts.get("mirror_percentage") is not None:
        route["mirrorPercentage"] = {"value": validate_percentage(opts["mirror_percentage"], field + ".mirror_percentage")}
    if opts.get("headers") is not None:
        route["headers"] = copy.deepcopy(opts["headers"])
    return route


def _catch_all_to_subset(spec: dict, host: str, subset: str) -> None:
    """Point the catch-all route (appended if missing) at ``subset`` alone; other routes stay."""
    routes = spec.setdefault("http", [])
    index = find_catch_all_index(spec)
    if index is None:
        routes.append({"route": [{"destination": {"host": host, "subset": subset}}]})
        return
    catch_all = routes[index]
    other_action = sorted(k for k in ("redirect", "directResponse", "delegate") if k in catch_all)
    if other_action:
        raise IstioSpecError(
            "default_subset",
            "the catch-all route uses %s instead of destinations; give http routes instead of default_subset" % other_action[0],
        )
    if route_weights(catch_all) == {subset: 100}:
        return  # already all on that subset, however it is written
    kept = [d for d in catch_all.get("route") or [] if (d.get("destination") or {}).get("subset") == subset]
    if kept:
        destination = copy.deepcopy(kept[0])
        destination.pop("weight", None)
    else:
        destination = {"destination": {"host": host, "subset": subset}}
    catch_all["route"] = [destination]


def build_virtual_service_spec(
    live_spec: dict | None,
    hosts: list[str],
    gateways: list[str] | None,
    http: list[dict] | None,
    default_subset: str | None,
) -> dict:
    """The VirtualService spec wanted, built on the live one.

    Sets ``hosts``, ``gateways`` (when given) and the HTTP routes; every other key (tcp, tls,
    exportTo...) is kept. ``http`` (routes already in Istio form) replaces the route list.
    ``default_subset`` makes the catch-all route send everything to that subset of ``hosts[0]``
    (a new route when there is none); the other routes, e.g. fault rules, stay.
    """
    if not hosts or not isinstance(hosts, list) or not all(isinstance(h, str) and h for h in hosts):
        raise IstioSpecError("hosts", "give at least one host, e.g. hosts: [reviews]")
    if http is not None and default_subset is not None:
        raise IstioSpecError("default_subset", "give either http routes or default_subset, not both")
    if http is None and default_subset is None:
        raise IstioSpecError("http", "give http routes, or default_subset to send all traffic to one subset")
    if default_subset is not None and (not isinstance(default_subset, str) or not default_subset.strip()):
        raise IstioSpecError("default_subset", "default_subset must name a subset, e.g. v1")
    if http is not None and not isinstance(http, list):
        raise IstioSpecError("http", "http must be a list of routes, got %r" % (http,))

    spec = copy.deepcopy(live_spec) if live_spec else {}
    spec["hosts"] = list(hosts)
    if gateways is not None:
        spec["gateways"] = list(gateways)
    if http is not None:
        spec["http"] = copy.deepcopy(http)
    else:
        _catch_all_to_subset(spec, hosts[0], default_subset)
    return spec


# --- the virtual_service module's typed routes ----------------------------------------------

def drop_none(value: t.Any) -> t.Any:
    """``value`` without the None that Ansible puts in every suboption the user did not set."""
    if isinstance(value, dict):
        return {k: drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_none(v) for v in value]
    return value


def _route_field(index: int, route: dict) -> str:
    """``http[1]``, and the route's name when it has one, so an error points at the right route."""
    name = route.get("name")
    return "http[%d]" % index if not name else "http[%d] (route %r)" % (index, name)


def _check_route_weights(route: dict, field: str) -> None:
    """Several destinations: integer weights summing to 100, as validate_weights checks a split."""
    destinations = route.get("destinations") or []
    if len(destinations) < 2:
        return  # a lone destination takes everything; http_route_from_options checks its weight
    weights: dict[str, t.Any] = {}
    for position, destination in enumerate(destinations):
        key = destination.get("subset") or destination.get("host") or "destination #%d" % position
        if key in weights:
            key = "%s (destination #%d)" % (key, position)
        if destination.get("weight") is None:
            raise IstioSpecError(
                field + ".destinations",
                "%s has no weight; with several destinations give each a weight, summing to 100" % key,
            )
        weights[key] = destination["weight"]
    validate_weights(weights, field + ".destinations")


def istio_http_routes(http: list[dict], default_host: str) -> list[dict]:
    """Istio HTTPRoutes from the typed O(http) option; errors name the route by index and name."""
    if not http:
        raise IstioSpecError("http", "give at least one route, or default_subset to send all traffic to one subset")
    names = [r.get("name") for r in http if r.get("name")]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise IstioSpecError("http", "route name %s is used more than once; Istio needs unique route names"
                             % ", ".join(map(repr, duplicates)))
    routes = []
    for index, options in enumerate(http):
        options = drop_none(options)
        field = _route_field(index, options)
        _check_route_weights(options, field)
        try:
            routes.append(http_route_from_options(options, default_host, "http[%d]" % index))
        except IstioSpecError as exc:
            # http_route_from_options names the position; add the name, which people recognise.
            raise IstioSpecError(exc.option.replace("http[%d]" % index, field, 1), exc.message) from None
    return routes
