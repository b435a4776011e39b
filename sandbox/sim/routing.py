"""Route one simulated request the way an Envoy sidecar does under Istio (pure; no I/O).

Inputs are the live Kubernetes/Istio objects of one namespace as plain dicts (a `Mesh`); the
output is a `Route`: which subset, pod and workload took the request, plus the fault outcome.
Randomness comes only from the `random.Random` the caller passes, so a seed fixes every choice.

Envoy facts this follows:
- the first VirtualService whose `hosts` name the destination (short name, `name.ns`, FQDN or a
  `*` wildcard) applies, and within it the first `http` route whose `match` list has one entry
  matching (all conditions of an entry must hold); a route without `match` matches everything;
- header conditions `exact`/`prefix`/`regex` (RE2, whole value), uri `exact`/`prefix`/`regex`,
  `method`; `withoutHeaders` negates;
- weighted choice among `route[]` destinations (a lone destination without weight takes 100);
- fault delay first, then abort, each with its own percentage (absent percentage = 100 %);
- a subset missing from the DestinationRule, an unknown host, or a subset without a Ready pod
  gives 503 without reaching any pod (response flags NR / UH);
- a destination's `headers.response` Set-Cookie is on the answer of the requests it took;
- with no VirtualService for the host, the HTTPRoutes whose parentRef is its Service (GAMMA): the
  match that holds first in the Gateway API's order (exact path, then the longest prefix, a method,
  the most headers, the most query parameters, then the oldest route and its name, then rule order;
  a rule without matches is a prefix `/`), header `Exact`/`RegularExpression`, weighted
  `backendRefs` (weight 1 when absent; all zero answers 500) to a Service, whose own selector picks
  the pods, and a `RequestMirror` filter (its `percent`, 100 when absent);
- a route's `mirror` copies the request (share `mirrorPercentage`, 100 % when absent) to its own
  destination after the route's choice; a copy that finds no pod is dropped silently.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field, replace
from typing import Mapping

CLUSTER_SUFFIX = "svc.cluster.local"
PORT_OF_SERVICES = 9080  # the port the simulated services serve on (bookinfo's)


@dataclass(frozen=True)
class Request:
    """One HTTP request leaving `source_workload`'s sidecar for service `host`."""

    host: str
    source_workload: str = "productpage-v1"
    headers: Mapping[str, str] = field(default_factory=dict)
    uri: str = "/"
    method: str = "GET"


@dataclass(frozen=True)
class Route:
    """What the client sidecar did with a request."""

    service: str
    status: int | None  # set when the sidecar answered itself (fault abort, 503); None = reached a pod
    delay_ms: float = 0.0
    subset: str | None = None
    pod: str | None = None
    workload: str | None = None
    version: str | None = None
    response_flags: str = "-"
    route_name: str | None = None
    # Copies of the request the sidecar also sent (the route's `mirror`, an HTTPRoute rule's
    # RequestMirror filters); their answers are discarded.
    mirrors: "tuple[Route, ...]" = ()
    # A Set-Cookie the route destination adds to the answer (`headers.response.add`/`set`).
    set_cookie: str | None = None

    @property
    def reached_pod(self) -> bool:
        return self.status is None


@dataclass
class Mesh:
    """The objects of one namespace that routing reads (items as returned by the API server)."""

    namespace: str
    virtual_services: list[dict] = field(default_factory=list)
    destination_rules: list[dict] = field(default_factory=list)
    services: list[dict] = field(default_factory=list)
    pods: list[dict] = field(default_factory=list)
    # Gateway API HTTPRoutes; those whose parentRef is a Service route its mesh traffic (GAMMA).
    http_routes: list[dict] = field(default_factory=list)
    # A mesh that does not apply the namespace's VirtualServices (a sidecar missing, a broken
    # istiod): requests go to every Ready pod of the Service, whatever the weights say.
    ignore_virtual_services: bool = False


def short_host(host: str, namespace: str) -> str | None:
    """The Service name `host` designates inside `namespace`, or None when it points elsewhere."""
    parts = host.split(".")
    if len(parts) == 1:
        return host
    if parts[1] != namespace:
        return None
    rest = ".".join(parts[2:])
    if rest in ("", "svc", CLUSTER_SUFFIX):
        return parts[0]
    return None


def host_matches(pattern: str, service: str, namespace: str) -> bool:
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return f"{service}.{namespace}.{CLUSTER_SUFFIX}".endswith(pattern[1:])
    return short_host(pattern, namespace) == service


def _created(obj: dict) -> tuple[str, str]:
    meta = obj.get("metadata", {})
    return (meta.get("creationTimestamp") or "", meta.get("name") or "")


def find_virtual_service(mesh: Mesh, service: str) -> dict | None:
    """The VirtualService that applies to sidecar traffic for `service` (oldest wins, as in Istio)."""
    for vs in sorted(mesh.virtual_services, key=_created):
        spec = vs.get("spec", {})
        gateways = spec.get("gateways") or ["mesh"]
        if "mesh" not in gateways:
            continue
        if any(host_matches(h, service, mesh.namespace) for h in spec.get("hosts", [])):
            return vs
    return None


def string_matches(cond: Mapping, value: str | None) -> bool:
    """Istio StringMatch: one of exact / prefix / regex (RE2 full match)."""
    if value is None:
        return False
    if "exact" in cond:
        return value == cond["exact"]
    if "prefix" in cond:
        return value.startswith(cond["prefix"])
    if "regex" in cond:
        return re.fullmatch(cond["regex"], value) is not None
    return True  # an empty StringMatch only requires presence


def request_matches(match: Mapping, request: Request) -> bool:
    """All conditions of one HTTPMatchRequest hold for `request`."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    for name, cond in (match.get("headers") or {}).items():
        if not string_matches(cond or {}, headers.get(name.lower())):
            return False
    for name, cond in (match.get("withoutHeaders") or {}).items():
        if string_matches(cond or {}, headers.get(name.lower())):
            return False
    if "uri" in match:
        uri = request.uri
        cond = match["uri"]
        if match.get("ignoreUriCase"):
            uri = uri.lower()
            cond = {k: v.lower() for k, v in cond.items()}
        if not string_matches(cond, uri):
            return False
    if "method" in match and not string_matches(match["method"], request.method):
        return False
    return True


def select_http_route(vs: dict, request: Request) -> dict | None:
    for route in vs.get("spec", {}).get("http") or []:
        matches = route.get("match")
        if not matches or any(request_matches(m, request) for m in matches):
            return route
    return None


def parse_duration_ms(text: str) -> float:
    """Protobuf Duration text as Istio writes it ("7s", "0.5s", "100ms", "1m") in milliseconds."""
    found = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h)\s*", str(text))
    if not found:
        raise ValueError(f"fixedDelay {text!r} is not a duration like 7s or 100ms")
    scale = {"ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}[found.group(2)]
    return float(found.group(1)) * scale


def _fires(fault: Mapping, rng: random.Random) -> bool:
    if "percentage" in fault:
        percent = float((fault.get("percentage") or {}).get("value", 0))
    elif "percent" in fault:  # the deprecated integer form
        percent = float(fault["percent"])
    else:
        percent = 100.0
    return rng.random() * 100.0 < percent


def choose_destination(route: dict, rng: random.Random) -> dict:
    """The route's destination entry (HTTPRouteDestination) the weights pick."""
    destinations = route.get("route") or []
    if not destinations:
        raise ValueError("http route has no destinations")
    if len(destinations) == 1:
        return destinations[0]
    weights = [int(d.get("weight", 0)) for d in destinations]
    if sum(weights) <= 0:
        weights = [1] * len(destinations)
    return rng.choices(destinations, weights=weights)[0]


def _answer_cookie(entry: Mapping) -> str | None:
    response = (entry.get("headers") or {}).get("response") or {}
    for key in ("set", "add"):
        for name, value in (response.get(key) or {}).items():
            if name.lower() == "set-cookie":
                return str(value)
    return None


def pod_ready(pod: dict) -> bool:
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return False
    for cond in pod.get("status", {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def _labels_match(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def workload_of(pod: dict) -> str:
    """Istio's workload name: the Deployment (ReplicaSet owner minus its hash), else app-version."""
    meta = pod.get("metadata", {})
    labels = meta.get("labels") or {}
    for owner in meta.get("ownerReferences") or []:
        name = owner.get("name", "")
        if owner.get("kind") == "ReplicaSet":
            suffix = labels.get("pod-template-hash")
            if suffix and name.endswith("-" + suffix):
                return name[: -len(suffix) - 1]
            return name.rsplit("-", 1)[0]
        if name:
            return name
    if labels.get("app") and labels.get("version"):
        return f"{labels['app']}-{labels['version']}"
    return meta.get("name", "unknown")


def find_service(mesh: Mesh, name: str) -> dict | None:
    for svc in mesh.services:
        if svc.get("metadata", {}).get("name") == name:
            return svc
    return None


def subset_labels(mesh: Mesh, service: str, subset: str) -> dict | None:
    """The labels of `subset` in the DestinationRule for `service` (oldest rule first), or None."""
    for dr in sorted(mesh.destination_rules, key=_created):
        spec = dr.get("spec", {})
        if not host_matches(spec.get("host", ""), service, mesh.namespace):
            continue
        for entry in spec.get("subsets") or []:
            if entry.get("name") == subset:
                return dict(entry.get("labels") or {})
    return None


def endpoints(mesh: Mesh, service: str, subset_selector: Mapping[str, str] | None = None) -> list[dict]:
    """Ready pods behind `service` (its selector), narrowed to a subset's labels when given."""
    svc = find_service(mesh, service)
    if svc is None:
        return []
    selector = svc.get("spec", {}).get("selector") or {}
    if not selector:
        return []  # a selector-less Service has no pod endpoints here
    found = []
    for pod in mesh.pods:
        labels = pod.get("metadata", {}).get("labels") or {}
        if _labels_match(selector, labels) and _labels_match(subset_selector or {}, labels) and pod_ready(pod):
            found.append(pod)
    return sorted(found, key=lambda p: p["metadata"]["name"])


def _to_pod(mesh: Mesh, target: str, subset: str | None, rng: random.Random, delay_ms: float = 0.0,
            route_name: str | None = None) -> Route:
    """The destination `target`/`subset` resolved to one Ready pod, or the sidecar's own 503."""
    if find_service(mesh, target) is None:
        return Route(target, 503, delay_ms, subset=subset, response_flags="NR", route_name=route_name)
    selector = None
    if subset is not None:
        selector = subset_labels(mesh, target, subset)
        if selector is None:
            return Route(target, 503, delay_ms, subset=subset, response_flags="NR", route_name=route_name)
    pods = endpoints(mesh, target, selector)
    if not pods:
        return Route(target, 503, delay_ms, subset=subset, response_flags="UH", route_name=route_name)
    pod = rng.choice(pods)
    labels = pod["metadata"].get("labels") or {}
    return Route(target, None, delay_ms, subset=subset, pod=pod["metadata"]["name"], workload=workload_of(pod),
                 version=labels.get("version", "unknown"), route_name=route_name)


def _mirror_of(mesh: Mesh, http: Mapping, service: str, rng: random.Random) -> Route | None:
    mirror = http.get("mirror")
    if not isinstance(mirror, Mapping):
        return None
    if "mirrorPercentage" in http:
        percent = float((http.get("mirrorPercentage") or {}).get("value", 0))
    else:
        percent = float(http.get("mirrorPercent", 100))  # the deprecated integer form
    if rng.random() * 100.0 >= percent:
        return None
    target = short_host(mirror.get("host", service), mesh.namespace) or mirror.get("host", service)
    copy = _to_pod(mesh, target, mirror.get("subset"), rng)
    return copy if copy.reached_pod else None


# --- Gateway API (GAMMA): HTTPRoutes whose parent is the Service ---------------------------------

def _parent_is_service(ref: Mapping, service: str, route_namespace: str, namespace: str) -> bool:
    return ((ref.get("group") or "") in ("", "core") and ref.get("kind") == "Service" and ref.get("name") == service
            and (ref.get("namespace") or route_namespace) == namespace and ref.get("port") in (None, PORT_OF_SERVICES))


def http_routes_for(mesh: Mesh, service: str) -> list[dict]:
    """The HTTPRoutes of the namespace attached to `service` as their parent, oldest first."""
    found = []
    for route in mesh.http_routes:
        route_ns = route.get("metadata", {}).get("namespace") or mesh.namespace
        if any(_parent_is_service(ref, service, route_ns, mesh.namespace) for ref in route.get("spec", {}).get("parentRefs") or []):
            found.append(route)
    return sorted(found, key=_created)


def _precedence(match: Mapping) -> tuple:
    path = match.get("path") or {"type": "PathPrefix", "value": "/"}
    kind = path.get("type", "PathPrefix")
    rank = {"Exact": 0, "PathPrefix": 1}.get(kind, 2)
    return (rank, -len(path.get("value", "/")) if rank == 1 else 0, 0 if match.get("method") else 1,
            -len(match.get("headers") or []), -len(match.get("queryParams") or []))


def _value_matches(cond: Mapping, value: str | None) -> bool:
    if value is None:
        return False
    if cond.get("type", "Exact") == "RegularExpression":
        return re.fullmatch(cond.get("value", ""), value) is not None
    return value == cond.get("value")


def gateway_match_holds(match: Mapping, request: Request) -> bool:
    path = match.get("path") or {"type": "PathPrefix", "value": "/"}
    uri = request.uri.split("?", 1)[0]
    kind, value = path.get("type", "PathPrefix"), path.get("value", "/")
    if kind == "Exact" and uri != value:
        return False
    if kind == "PathPrefix" and not (value == "/" or uri == value.rstrip("/") or uri.startswith(value.rstrip("/") + "/")):
        return False
    if kind == "RegularExpression" and re.fullmatch(value, uri) is None:
        return False
    headers = {k.lower(): v for k, v in request.headers.items()}
    if any(not _value_matches(h, headers.get(str(h.get("name", "")).lower())) for h in match.get("headers") or []):
        return False
    return not (match.get("method") and match["method"] != request.method)


def select_gateway_rule(routes: list[dict], request: Request) -> dict | None:
    """The rule of the first match that holds, in the Gateway API's order across the routes."""
    candidates = []
    for order, route in enumerate(routes):  # routes come oldest first (then by name)
        for index, rule in enumerate(route.get("spec", {}).get("rules") or []):
            for match in rule.get("matches") or [{}]:
                candidates.append((_precedence(match), order, index, match, rule))
    for _rank, _order, _index, match, rule in sorted(candidates, key=lambda c: c[:3]):
        if gateway_match_holds(match, request):
            return rule
    return None


def _gateway_mirrors(mesh: Mesh, service: str, rule: Mapping, rng: random.Random) -> tuple[Route, ...]:
    """A copy for each RequestMirror filter that fires (its `percent`, or its `fraction`; all when neither)."""
    copies = []
    for flt in rule.get("filters") or []:
        if flt.get("type") != "RequestMirror":
            continue
        mirror = flt.get("requestMirror") or {}
        fraction = mirror.get("fraction")
        percent = (100.0 * fraction.get("numerator", 0) / fraction.get("denominator", 100) if fraction
                   else float(mirror.get("percent", 100)))
        if rng.random() * 100.0 >= percent:
            continue
        copy = _to_pod(mesh, (mirror.get("backendRef") or {}).get("name", ""), None, rng)
        if copy.reached_pod:
            copies.append(replace(copy, service=service))
    return tuple(copies)


def route_by_gateway(mesh: Mesh, service: str, routes: list[dict], request: Request, rng: random.Random) -> Route:
    rule = select_gateway_rule(routes, request)
    if rule is None:
        return Route(service, 404, response_flags="NR")
    backends = rule.get("backendRefs") or []
    weights = [int(b.get("weight", 1)) for b in backends]
    if not backends or sum(weights) <= 0:
        return Route(service, 500, response_flags="NR")
    backend = backends[0] if len(backends) == 1 else rng.choices(backends, weights=weights)[0]
    chosen = _to_pod(mesh, backend.get("name", ""), None, rng, route_name=rule.get("name"))
    # The request was for `service`: its behaviour, spans and logs are the service's, whichever
    # backend Service (reviews-v2) picked the pod.
    return replace(chosen, service=service if chosen.reached_pod else chosen.service, mirrors=_gateway_mirrors(mesh, service, rule, rng))


def route_request(mesh: Mesh, request: Request, rng: random.Random) -> Route:
    """Route `request` like the client sidecar: rule choice, weights, faults, endpoint pick."""
    service = short_host(request.host, mesh.namespace) or request.host
    vs = None if mesh.ignore_virtual_services else find_virtual_service(mesh, service)
    if vs is None and not mesh.ignore_virtual_services:
        gateway_routes = http_routes_for(mesh, service)
        if gateway_routes:
            return route_by_gateway(mesh, service, gateway_routes, request, rng)
    delay_ms = 0.0
    subset = None
    route_name = None
    target = service
    if vs is not None:
        http = select_http_route(vs, request)
        if http is None:
            return Route(service, 404, response_flags="NR")
        route_name = http.get("name")
        fault = http.get("fault") or {}
        if "delay" in fault and _fires(fault["delay"], rng):
            delay_ms = parse_duration_ms(fault["delay"].get("fixedDelay", "0s"))
        if "abort" in fault and _fires(fault["abort"], rng):
            status = int(fault["abort"].get("httpStatus", 503))
            return Route(service, status, delay_ms, response_flags="FI", route_name=route_name)
        entry = choose_destination(http, rng)
        dest = entry["destination"]
        target = short_host(dest.get("host", service), mesh.namespace) or dest.get("host", service)
        subset = dest.get("subset")
        chosen = _to_pod(mesh, target, subset, rng, delay_ms, route_name)
        return replace(chosen, mirrors=tuple(filter(None, [_mirror_of(mesh, http, service, rng)])),
                       set_cookie=_answer_cookie(entry) if chosen.reached_pod else None)
    return _to_pod(mesh, target, subset, rng, delay_ms, route_name)
