# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Gateway API backend: a service's mesh traffic routed by an HTTPRoute whose parent is the
Service (GAMMA), weighted between one Service per version.

Istio turns such a route into the service's mesh routing. Its rules are not tried in written
order, as a VirtualService's are: the most specific match wins (an exact path, then the longest
prefix, a method, the most headers, the most query parameters; then the oldest route, its name,
then rule order). A rule without matches matches every path under ``/``, so the rule plain
traffic takes, the catch-all, is the one whose match holds no condition; the Gateway API tries it
last. Each version is served by its own Service, ``<service>-<version>``, which selects that
version's pods; a ``backendRefs`` weight is relative (default 1) and Istio drops backends at
weight 0, answering 500 when every weight is 0.

Istio has no fault injection for HTTPRoutes (no fault filter in the Gateway API; istio/istio
issues 47101 and 54196), so faults stay with VirtualServices.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import copy
import re
import typing as t

from ansible_collections.canary.istio.plugins.module_utils._istio.api import VIRTUAL_SERVICES, istio_path
from ansible_collections.canary.istio.plugins.module_utils._istio.common import IstioSpecError
from ansible_collections.canary.istio.plugins.module_utils._istio.mesh_config import config_age_key
from ansible_collections.canary.istio.plugins.module_utils._istio.traffic import validate_weights
from ansible_collections.canary.istio.plugins.module_utils._k8s.paths import segment

GATEWAY_API_VERSION = "gateway.networking.k8s.io/v1"

HTTP_ROUTE_KIND = "HTTPRoute"

# A backendRef may name at most 16 backends (the CRD's own limit).
MAX_BACKENDS = 16


def http_routes_path(namespace: str, name: str | None = None) -> str:
    """``/apis/gateway.networking.k8s.io/v1/namespaces/prod/httproutes[/reviews]``."""
    path = "/apis/%s/namespaces/%s/httproutes" % (GATEWAY_API_VERSION, segment(namespace, "namespace"))
    return "%s/%s" % (path, segment(name, "name")) if name is not None else path


def version_service(service: str, version: str) -> str:
    """The Service that serves one version: ``reviews`` and ``v2`` -> ``reviews-v2``."""
    return "%s-%s" % (service, version)


# A Service's name is a DNS-1035 label: a version such as v2.1 (valid as a label value) cannot name one.
_SERVICE_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def version_service_problem(service: str, version: str) -> str | None:
    """Why ``version`` cannot have a Service of its own, or None."""
    name = version_service(service, version)
    if _SERVICE_NAME.match(name) and len(name) <= 63:
        return None
    return ("version %r would be served by Service %r, which is not a valid Service name (at most 63 lower-case letters, "
            "digits and '-', starting with a letter); on the Gateway API name versions like v2 or v2-1" % (version, name))


def _is_service_parent(ref: t.Any, route_namespace: str) -> tuple[str, str] | None:
    """(name, namespace) of the Service a parentRef names, or None for a Gateway or anything else."""
    if not isinstance(ref, dict) or ref.get("kind") != "Service" or (ref.get("group") or "") not in ("", "core"):
        return None
    return ref.get("name") or "", ref.get("namespace") or route_namespace


def parent_services(route: dict, namespace: str) -> list[str]:
    """Names of the Services of ``namespace`` the route is attached to as their mesh routing."""
    route_namespace = (route.get("metadata") or {}).get("namespace") or namespace
    parents = [_is_service_parent(ref, route_namespace) for ref in (route.get("spec") or {}).get("parentRefs") or []]
    return [name for name, ns in filter(None, parents) if ns == namespace and name]


def routes_of_service(routes: t.Iterable[dict], service: str, namespace: str) -> list[dict]:
    """The HTTPRoutes that route ``service``'s mesh traffic, oldest first (the Gateway API's order)."""
    return sorted((r for r in routes or [] if service in parent_services(r, namespace)), key=config_age_key)


def route_service(route: dict, namespace: str) -> str:
    """The Service whose versions the route weighs: its parent Service, else (a route of a
    Gateway) its own name."""
    parents = parent_services(route, namespace)
    return parents[0] if parents else (route.get("metadata") or {}).get("name") or ""


def _matches_everything(match: t.Any) -> bool:
    if not isinstance(match, dict):
        return False
    path = match.get("path") or {"type": "PathPrefix", "value": "/"}
    return (path.get("type", "PathPrefix") == "PathPrefix" and path.get("value", "/") == "/"
            and not match.get("headers") and not match.get("queryParams") and not match.get("method"))


_EVERY_PATH = {"type": "PathPrefix", "value": "/"}


def _ref_with_defaults(ref: t.Any, weighted: bool) -> t.Any:
    if not isinstance(ref, dict):
        return ref
    found = dict(ref, group=ref.get("group") or "", kind=ref.get("kind") or "Service")
    if weighted:
        found["weight"] = ref.get("weight", 1)
    return found


def _filter_with_defaults(flt: t.Any) -> t.Any:
    if not isinstance(flt, dict) or not isinstance(flt.get("requestMirror"), dict):
        return flt
    mirror = dict(flt["requestMirror"], backendRef=_ref_with_defaults(flt["requestMirror"].get("backendRef"), False))
    return dict(flt, requestMirror=mirror)


def _match_with_defaults(match: t.Any) -> t.Any:
    if not isinstance(match, dict):
        return match
    found = dict(match, path=dict(_EVERY_PATH, **(match.get("path") or {})))
    if match.get("headers"):
        found["headers"] = [dict({"type": "Exact"}, **h) if isinstance(h, dict) else h for h in match["headers"]]
    return found


def with_defaults(spec: dict | None) -> dict:
    """The route's rules as the API server stores them, with the defaults it fills in for what
    canary.istio writes (a match on every path, Exact headers, Service backends of weight 1), so
    that a rule written again compares equal to the stored one."""
    found = copy.deepcopy(spec or {})
    for rule in rules(found):
        if not isinstance(rule, dict):
            continue
        rule["matches"] = [_match_with_defaults(m) for m in rule.get("matches") or [{}]]
        rule["backendRefs"] = [_ref_with_defaults(r, True) for r in rule.get("backendRefs") or []]
        if rule.get("filters"):
            rule["filters"] = [_filter_with_defaults(f) for f in rule["filters"]]
    return found


def rules(spec: dict | None) -> list[dict]:
    """The route's rules, [] when there are none."""
    found = (spec or {}).get("rules") or []
    return found if isinstance(found, list) else []


def find_catch_all_rule(spec: dict | None) -> int:
    """Index of the rule plain traffic takes: the first whose match holds no condition.

    IstioSpecError (naming ``name``) when no rule takes every request.
    """
    for index, rule in enumerate(rules(spec)):
        if isinstance(rule, dict) and any(_matches_everything(m) for m in rule.get("matches") or [{}]):
            return index
    raise IstioSpecError("name", "the HTTPRoute has no rule that takes every request (one without matches, or a match on "
                                 "path prefix / alone), so plain traffic has no weights to set; add one")


def backend_version(name: str, service: str) -> str:
    """The version a backend Service serves: ``reviews-v2`` of ``reviews`` -> ``v2``; another
    name stands for itself."""
    prefix = service + "-"
    return name[len(prefix):] if name.startswith(prefix) and len(name) > len(prefix) else name


def _is_service_backend(ref: dict) -> bool:
    return (ref.get("group") or "") in ("", "core") and (ref.get("kind") or "Service") == "Service"


def backend_weights(rule: dict, service: str) -> dict[str, int]:
    """version -> percentage of the rule's requests, as Istio shares them.

    Weights are relative (1 when absent); Istio drops a backend at 0. Percentages are rounded, so
    three equal backends read 33 each.
    """
    raw: dict[str, int] = {}
    for ref in rule.get("backendRefs") or []:
        if isinstance(ref, dict):
            version = backend_version(ref.get("name") or "", service)
            raw[version] = raw.get(version, 0) + int(ref.get("weight", 1) or 0)
    total = sum(raw.values())
    return {version: (round(weight * 100 / total) if total else 0) for version, weight in raw.items()}


def set_backend_weights(spec: dict, weights: dict[str, int], service: str) -> dict:
    """A new spec whose catch-all rule sends ``weights`` (version -> percentage) to the versions'
    Services.

    A backend of a version in ``weights`` keeps its port, filters and other keys; a version new to
    the rule gets the port of the rule's first backend; backends of other versions go. Versions at
    0 stay, at weight 0, so the rule keeps naming them. Other rules, matches and filters stay.
    """
    weights = validate_weights(weights)
    if len(weights) > MAX_BACKENDS:
        raise IstioSpecError("weights", "an HTTPRoute rule holds at most %d backends, got %d versions" % (MAX_BACKENDS, len(weights)))
    new_spec = copy.deepcopy(spec)
    index = find_catch_all_rule(new_spec)
    rule = new_spec["rules"][index]
    current = [ref for ref in rule.get("backendRefs") or [] if isinstance(ref, dict)]
    if not current:
        raise IstioSpecError("name", "the HTTPRoute's catch-all rule #%d has no backendRefs (it redirects or answers by itself); "
                                     "there are no weights to set" % index)
    foreign = [ref.get("name") for ref in current if not _is_service_backend(ref)]
    if foreign:
        raise IstioSpecError("name", "the HTTPRoute's catch-all rule #%d sends to %s, which are not Services; canary.istio weighs "
                                     "one Service per version" % (index, ", ".join(repr(f) for f in foreign)))
    by_version = {backend_version(ref.get("name") or "", service): ref for ref in current}
    port = current[0].get("port")
    # The rule's own order first, so an unchanged split is not rewritten.
    order = [v for v in by_version if v in weights] + [v for v in weights if v not in by_version]
    backends = []
    for version in order:
        ref = dict(by_version.get(version) or {"name": version_service(service, version)})
        if port is not None and "port" not in ref:
            ref["port"] = port
        ref["weight"] = weights[version]
        backends.append(ref)
    rule["backendRefs"] = backends
    return new_spec


def mixed_routing_problem(host: str, http_routes: list[str], virtual_services: list[str]) -> str | None:
    """Why a host routed by both HTTPRoutes and VirtualServices is a problem, or None.

    Istio's handling of the pair is not one a release should rely on: weights written to one kind
    may move no traffic while the other routes the host.
    """
    if not http_routes or not virtual_services:
        return None
    return ("host %r is routed by HTTPRoute %s and by VirtualService %s; Istio would let one shadow the other, so weights "
            "written to one may move no traffic. Keep one kind of routing per host (delete the HTTPRoute or the VirtualService)"
            % (host, ", ".join(repr(n) for n in http_routes), ", ".join(repr(n) for n in virtual_services)))


def refuse_mixed_routing(host: str, http_routes: list[str], virtual_services: list[str]) -> None:
    """IstioSpecError (naming ``name``) for a write to a host that both kinds route."""
    problem = mixed_routing_problem(host, http_routes, virtual_services)
    if problem:
        raise IstioSpecError("name", problem + ", or set force=true to write anyway")


# --- the model mesh_info gives of a host routed by HTTPRoutes --------------------------------

ROUTING_KINDS = ("VirtualService", HTTP_ROUTE_KIND)

# The option that says which kind routes the host, shared by the modules that write it.
ROUTING_KIND_OPTION: dict[str, t.Any] = dict(type="str", default="VirtualService", choices=list(ROUTING_KINDS))


def routing_path(kind: str, api_version: str | None, namespace: str, name: str) -> str:
    """The REST path of the object of ``kind`` that routes a host (and carries the release lock)."""
    return http_routes_path(namespace, name) if kind == HTTP_ROUTE_KIND else istio_path(api_version, VIRTUAL_SERVICES, namespace, name)


def _rule_label(route: dict, index: int) -> str:
    return "HTTPRoute %r rule #%d" % ((route.get("metadata") or {}).get("name"), index)


def gateway_routing(host: str, namespace: str, routes: list[dict]) -> dict:
    """Where a host's plain traffic goes by its HTTPRoutes (``routes_of_service``, oldest first).

    The route in force is the oldest; the Gateway API merges every route of the Service by
    precedence, so a header rule of a younger route still takes its requests, but plain traffic
    takes the oldest route's catch-all. ``serving``: the rules that send each version requests.
    """
    names = [(r.get("metadata") or {}).get("name") for r in routes]
    found: dict = {"http_route": names[0] if names else None, "http_routes": names, "serving": {}, "problems": [],
                   "catch_all": None, "version_weights": {}, "default_weights": {}}
    for route in routes:
        service = route_service(route, namespace)
        for index, rule in enumerate(rules(route.get("spec"))):
            if not isinstance(rule, dict):
                continue
            for version, weight in backend_weights(rule, service).items():
                if weight > 0:
                    found["serving"].setdefault(version, []).append(_rule_label(route, index))
    if routes:
        try:
            index = find_catch_all_rule(routes[0].get("spec"))
        except IstioSpecError:
            found["problems"].append("HTTPRoute %r of host %r has no rule that takes every request, so plain traffic gets 404"
                                     % (names[0], host))
        else:
            weights = backend_weights(routes[0]["spec"]["rules"][index], route_service(routes[0], namespace))
            found["catch_all"] = {"vs": None, "http_route": names[0], "index": index, "name": None,
                                  "label": _rule_label(routes[0], index)}
            found["default_weights"] = dict(weights)
            found["version_weights"] = {v: float(w) for v, w in weights.items()}
            if weights and not any(weights.values()):
                found["problems"].append("%s gives every backend weight 0, so Istio answers plain traffic with 500"
                                         % found["catch_all"]["label"])
    return found
