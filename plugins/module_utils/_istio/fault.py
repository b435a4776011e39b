# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fault rules: named, header-matched HTTP routes with an Istio ``fault`` block.

A fault rule is inserted just before the first route that would take all of its requests (the
catch-all at the latest: Envoy takes the first route whose match holds, so a rule after it never
fires) and sends its requests where that route does, so only the fault differs for them.
Removing it gives back the VirtualService as it was before the rule was added.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import copy
import typing as t

from ansible_collections.canary.istio.plugins.module_utils._istio.common import (
    IstioSpecError,
    as_int,
    as_number,
    validate_duration,
)
from ansible_collections.canary.istio.plugins.module_utils._istio.matches import (
    conditions,
    implies,
    may_overlap,
    route_conditions,
)
from ansible_collections.canary.istio.plugins.module_utils._istio.traffic import http_routes

STRING_MATCH_KINDS = ("exact", "prefix", "regex")
DEFAULT_PERCENTAGE = 100


# --- validation ------------------------------------------------------------------------------

def validate_percentage(value: t.Any, field: str) -> int | float:
    """A fault percentage as Istio accepts it: 0, or from 0.0001 to 100."""
    number = as_number(value, field, "percentage")
    if number < 0 or number > 100 or 0 < number < 0.0001:
        raise IstioSpecError(field, "percentage %r must be 0 or between 0.0001 and 100" % (value,))
    return number


def validate_http_status(value: t.Any, field: str) -> int:
    """An abort status as Istio accepts it: 200 to 599."""
    status = as_int(value, field, "http_status")
    if not 200 <= status <= 599:
        raise IstioSpecError(field, "http_status %d is outside 200-599; use e.g. 500 or 503" % status)
    return status


def validate_fault(delay: dict | None, abort: dict | None) -> None:
    """Check a fault as Istio does; raises IstioSpecError naming e.g. ``delay.fixed_delay``.

    ``delay`` is ``{fixed_delay, percentage}``, ``abort`` is ``{http_status, percentage}`` (module
    option form); at least one is needed. A missing percentage means 100.
    """
    if not delay and not abort:
        raise IstioSpecError("delay", "give a delay (fixed_delay) and/or an abort (http_status); a fault needs at least one")
    if delay:
        if not isinstance(delay, dict):
            raise IstioSpecError("delay", "delay must be a dict with fixed_delay and percentage, got %r" % (delay,))
        if delay.get("fixed_delay") is None:
            raise IstioSpecError("delay.fixed_delay", "a delay needs fixed_delay, a duration such as '7s' or '500ms'")
        validate_duration(delay["fixed_delay"], "delay.fixed_delay")
        if delay.get("percentage") is not None:
            validate_percentage(delay["percentage"], "delay.percentage")
    if abort:
        if not isinstance(abort, dict):
            raise IstioSpecError("abort", "abort must be a dict with http_status and percentage, got %r" % (abort,))
        if abort.get("http_status") is None:
            raise IstioSpecError("abort.http_status", "an abort needs http_status, e.g. 500 or 503")
        validate_http_status(abort["http_status"], "abort.http_status")
        if abort.get("percentage") is not None:
            validate_percentage(abort["percentage"], "abort.percentage")


# --- conversion between module options and Istio's HTTPFaultInjection -------------------------

def fault_to_istio(delay: dict | None, abort: dict | None) -> dict:
    """Istio's ``fault`` block from module-form delay/abort (validated here first)."""
    validate_fault(delay, abort)
    fault: dict[str, dict] = {}
    if delay:
        percentage = delay.get("percentage")
        fault["delay"] = {
            "fixedDelay": delay["fixed_delay"],
            "percentage": {"value": DEFAULT_PERCENTAGE if percentage is None else as_number(percentage, "delay.percentage", "percentage")},
        }
    if abort:
        percentage = abort.get("percentage")
        fault["abort"] = {
            "httpStatus": as_int(abort["http_status"], "abort.http_status", "http_status"),
            "percentage": {"value": DEFAULT_PERCENTAGE if percentage is None else as_number(percentage, "abort.percentage", "percentage")},
        }
    return fault


def _percentage_from_istio(block: dict) -> int | float | None:
    if isinstance(block.get("percentage"), dict):
        return block["percentage"].get("value")
    return block.get("percent")  # deprecated integer form


def fault_from_istio(fault: dict) -> tuple[dict | None, dict | None]:
    """(delay, abort) in module form from Istio's ``fault`` block; unknown kinds are passed through."""
    delay = abort = None
    if isinstance(fault.get("delay"), dict):
        raw = fault["delay"]
        delay = {"fixed_delay": raw.get("fixedDelay"), "percentage": _percentage_from_istio(raw)}
        if "exponentialDelay" in raw:
            delay["exponential_delay"] = raw["exponentialDelay"]
    if isinstance(fault.get("abort"), dict):
        raw = fault["abort"]
        abort = {"http_status": raw.get("httpStatus"), "percentage": _percentage_from_istio(raw)}
        for istio_key, option in (("grpcStatus", "grpc_status"), ("http2Error", "http2_error")):
            if istio_key in raw:
                abort[option] = raw[istio_key]
    return delay, abort


def string_match_to_istio(value: t.Any, field: str) -> dict:
    """A StringMatch ``{exact|prefix|regex: str}``; a bare string means exact."""
    if isinstance(value, str):
        return {"exact": value}
    if not isinstance(value, dict):
        raise IstioSpecError(field, "expected {exact: ...}, {prefix: ...} or {regex: ...}, got %r" % (value,))
    given = {k: v for k, v in value.items() if v is not None}
    unknown = sorted(set(given) - set(STRING_MATCH_KINDS))
    if unknown:
        raise IstioSpecError(field, "unknown match kind %s; use one of exact, prefix, regex" % ", ".join(map(repr, unknown)))
    if len(given) != 1:
        raise IstioSpecError(field, "give exactly one of exact, prefix or regex, got %s" % (sorted(given) or "none"))
    kind, text = next(iter(given.items()))
    if not isinstance(text, str):
        raise IstioSpecError(field, "the %s value must be a string, got %r" % (kind, text))
    return {kind: text}


def headers_match_to_istio(headers: t.Any, field: str = "headers") -> dict:
    """``{header: StringMatch}`` with header names as written (Istio lower-cases them itself)."""
    if not isinstance(headers, dict):
        raise IstioSpecError(field, "expected a dict of header name to {exact|prefix|regex: value}, got %r" % (headers,))
    result = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not name.strip():
            raise IstioSpecError(field, "header names must be non-empty strings, got %r" % (name,))
        result[name] = string_match_to_istio(value, "%s.%s" % (field, name))
    return result


# --- fault rules in a VirtualService ---------------------------------------------------------

def _route_index_by_name(spec: dict, name: str) -> int | None:
    for index, route in enumerate(http_routes(spec)):
        if isinstance(route, dict) and route.get("name") == name:
            return index
    return None


def _check_is_fault_rule(route: dict, name: str) -> None:
    if "fault" not in route:
        raise IstioSpecError(
            "name",
            "HTTP route %r exists and is not a fault rule (it has no fault); choose another name so it is left alone" % name,
        )


def upsert_fault_rule(
    spec: dict,
    name: str,
    headers: dict[str, dict],
    delay: dict | None,
    abort: dict | None,
    destinations: list[dict] | None = None,
    uri: dict | None = None,
) -> dict:
    """A new spec with the fault rule ``name`` added where it fires, or updated.

    The rule matches ``headers`` (and ``uri``), carries the fault, and goes just before the first
    route that would take all its requests (the catch-all at the latest), routing like it unless
    ``destinations`` (Istio HTTPRouteDestination dicts) are given. An existing rule stays where
    it is when it fires there, and moves otherwise. A route named ``name`` that has no fault is
    someone else's and is refused.
    """
    if not isinstance(name, str) or not name.strip():
        raise IstioSpecError("name", "name the fault rule, e.g. name: ratings-delay-jason; it is the route's name")
    match: dict[str, t.Any] = {}
    if headers:
        match["headers"] = headers_match_to_istio(headers, "headers")
    if uri:
        match["uri"] = string_match_to_istio(uri, "uri")
    if not match:
        raise IstioSpecError("headers", "a fault rule needs a header (or uri) match; without one it would hit all traffic")
    fault = fault_to_istio(delay, abort)

    new_spec = copy.deepcopy(spec) if spec else {}
    routes = new_spec.setdefault("http", [])
    existing = _route_index_by_name(new_spec, name)
    if existing is not None:
        _check_is_fault_rule(routes[existing], name)
    others = [r for i, r in enumerate(routes) if i != existing]
    position, taker = fault_rule_position(others, conditions(match))
    if destinations is not None:
        if not destinations:
            raise IstioSpecError("destinations", "give at least one destination, or omit destinations to copy the catch-all's")
        route_to = copy.deepcopy(destinations)
    elif taker is not None:
        # The requests of the rule would otherwise go where this route sends them: keep that,
        # so the fault is the only thing that changes for them.
        route_to = copy.deepcopy(taker.get("route"))
        if not route_to:
            raise IstioSpecError("destinations", "route %s, which takes the rule's requests, has no destinations to copy; give "
                                 "destinations" % _label(taker, others.index(taker)))
    else:
        raise IstioSpecError("destinations", "the VirtualService has no catch-all route to copy destinations from; give destinations")

    if existing is not None:
        rule = routes[existing]
        rule["match"] = [match]
        rule["fault"] = fault
        rule["route"] = route_to
        if _rule_reaches(routes, existing):
            return new_spec  # where it is, no earlier route takes all its requests: it stays
        del routes[existing]
        routes.insert(fault_rule_position(routes, conditions(match))[0], rule)
    else:
        routes.insert(position, {"name": name, "match": [match], "fault": fault, "route": route_to})
    return new_spec


def _label(route: dict, index: int) -> str:
    return repr(route.get("name")) if route.get("name") else "#%d" % index


def fault_rule_position(routes: list[dict], rule_conditions: dict | None) -> tuple[int, dict | None]:
    """(index to insert a fault rule at, the route whose requests it takes over or None).

    Envoy takes the first route whose match holds, so a rule placed after a route that takes all
    of its requests never fires: it goes just before the first such route (the catch-all at the
    latest), and routes like it.
    """
    for index, route in enumerate(routes):
        if not isinstance(route, dict):
            continue
        if rule_conditions is not None and any(implies(rule_conditions, c) for c in route_conditions(route)):
            return index, route
    return len(routes), None


def _rule_reaches(routes: list[dict], index: int) -> bool:
    """Whether no route before ``index`` takes every request of the rule at ``index``."""
    rule = routes[index]
    for cond in route_conditions(rule):
        if not any(implies(cond, earlier) for route in routes[:index] for earlier in route_conditions(route)):
            return True
    return False


def fault_rule_overlaps(spec: dict, name: str) -> list[str]:
    """Labels of routes before the fault rule ``name`` that may take some of its requests (a
    request matching both goes there, without the fault); [] when the rule fires for all."""
    routes = http_routes(spec)
    index = _route_index_by_name(spec, name)
    if index is None:
        return []
    found = []
    for cond in route_conditions(routes[index]):
        for position, route in enumerate(routes[:index]):
            if any(may_overlap(cond, earlier) for earlier in route_conditions(route)):
                found.append("route %s" % _label(route, position))
    return list(dict.fromkeys(found))


def remove_fault_rule(spec: dict, name: str) -> dict:
    """A new spec without the fault rule ``name``; an unchanged copy when there is none."""
    new_spec = copy.deepcopy(spec) if spec else {}
    index = _route_index_by_name(new_spec, name)
    if index is None:
        return new_spec
    _check_is_fault_rule(new_spec["http"][index], name)
    del new_spec["http"][index]
    if not new_spec["http"]:
        # upsert created the list for this rule alone; give back the spec without it.
        del new_spec["http"]
    return new_spec


def fault_rules(spec: dict) -> list[dict]:
    """The HTTP routes that carry a fault: ``{name, match, delay, abort}`` with delay/abort in module form."""
    rules = []
    for route in http_routes(spec):
        if isinstance(route, dict) and isinstance(route.get("fault"), dict):
            delay, abort = fault_from_istio(route["fault"])
            rules.append({"name": route.get("name"), "match": copy.deepcopy(route.get("match") or []), "delay": delay, "abort": abort})
    return rules
