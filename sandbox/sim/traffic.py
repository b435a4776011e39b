"""Simulated traffic: behaviour profiles per version and the driver that sends, routes and records requests.

One call `Simulator.send(...)` is one user request from a source workload: the client sidecar
routes it (`routing.route_request`), the chosen version answers by its `Profile`, versions that
call further services (bookinfo: reviews v2/v3 -> ratings) do so with the same headers, and every
hop is recorded as Istio reports it:
- reporter="source" by the client sidecar (duration includes an injected delay);
- reporter="destination" by the server sidecar, only when a pod was reached (fault aborts and 503s
  made by the client sidecar have no destination report, and their destination workload and
  version are "unknown", as in Istio);
- a mirrored copy (a route's `mirror`) only by the server sidecar that received it, with its own
  server span and log line: the client discards the copy's answer;
- a server span per hop that reached a pod (service = app, version), a client span with status
  error for a hop that did not; a log line per hop.
"""
from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass, field, replace
from typing import Callable

from . import bookinfo
from .record import Point, Recorder
from .routing import CLUSTER_SUFFIX, PORT_OF_SERVICES, Mesh, Request, Route, route_request

PORT = PORT_OF_SERVICES


@dataclass(frozen=True)
class Profile:
    """How one version answers: share of errors (with which code) and a log-normal latency."""

    error_rate: float = 0.0
    error_code: int = 500
    latency_ms: float = 20.0  # median of the service's own time
    latency_sigma: float = 0.4  # log-normal shape; 0 = always latency_ms

    def __post_init__(self):
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError(f"error_rate must be within 0..1, got {self.error_rate}")
        if self.latency_ms < 0 or self.latency_sigma < 0:
            raise ValueError("latency_ms and latency_sigma must be >= 0")


class Profiles:
    """Profiles by (namespace, service, version), changeable while traffic runs; '*' is a wildcard.

    A namespace's own profile wins over the global one, so tests running side by side in their own
    namespaces can give the same version different behaviour without meeting."""

    def __init__(self, default: Profile | None = None):
        self._lock = threading.Lock()
        self._by_key: dict[tuple[str, str, str], Profile] = {("*", "*", "*"): default or Profile()}

    def set(self, service: str, version: str = "*", namespace: str = "*", **settings) -> Profile:
        """Replace the named settings of (namespace, service, version); the rest keep their current values."""
        with self._lock:
            key = (namespace, service, version)
            current = self._by_key.get(key) or self._lookup(namespace, service, version)
            profile = replace(current, **settings)
            self._by_key[key] = profile
            return profile

    def reset(self) -> None:
        with self._lock:
            default = self._by_key[("*", "*", "*")]
            self._by_key = {("*", "*", "*"): default}

    def _lookup(self, namespace: str, service: str, version: str) -> Profile:
        for ns in (namespace, "*"):
            for key in ((ns, service, version), (ns, service, "*"), (ns, "*", version), (ns, "*", "*")):
                if key in self._by_key:
                    return self._by_key[key]
        raise KeyError((namespace, service, version))  # unreachable: ("*", "*", "*") always exists

    def get(self, service: str, version: str, namespace: str = "*") -> Profile:
        with self._lock:
            return self._lookup(namespace, service, version)

    def as_dict(self) -> dict:
        """``service/version`` for global profiles, ``namespace/service/version`` for a namespace's own."""
        with self._lock:
            return {(f"{s}/{v}" if n == "*" else f"{n}/{s}/{v}"): vars(p) for (n, s, v), p in self._by_key.items()}


@dataclass
class TrafficSpec:
    """Requests per simulated second from `source_workload` to `service` in one cluster's namespace."""

    cluster: str
    namespace: str
    service: str = "reviews"
    source_workload: str = "productpage-v1"
    rate: float = 10.0
    jason_share: float = 0.0  # share of requests carrying `end-user: jason`
    uri: str = "/reviews/0"
    # Requests come from this many users, each keeping the cookies the answers set (0: no users,
    # no cookies). `changes` counts, per "v1->v2", the times a user's request reached another
    # version than the user's request before.
    users: int = 0
    changes: dict = field(default_factory=dict, compare=False)
    next_ms: int | None = field(default=None, compare=False)
    _jars: dict = field(default_factory=dict, compare=False, repr=False)
    _last: dict = field(default_factory=dict, compare=False, repr=False)


@dataclass
class Hop:
    status: int
    duration_ms: float  # as seen by the client sidecar
    version: str | None = None  # of the pod that answered, None when none did
    set_cookie: str | None = None


def _remember(spec: TrafficSpec, user: int, hop: Hop) -> None:
    """Keep the cookie the answer set, and count the user's change of version."""
    if hop.set_cookie:
        name, _sep, value = hop.set_cookie.split(";", 1)[0].partition("=")
        spec._jars.setdefault(user, {})[name.strip()] = value.strip()
    before = spec._last.get(user)
    if hop.version is not None:
        if before is not None and before != hop.version:
            key = "%s->%s" % (before, hop.version)
            spec.changes[key] = spec.changes.get(key, 0) + 1
        spec._last[user] = hop.version


class Simulator:
    """Sends requests through `mesh_of(cluster, namespace)` and records them in `recorder`."""

    def __init__(self, mesh_of: Callable[[str, str], Mesh], recorder: Recorder, profiles: Profiles | None = None,
                 seed: int = 0, calls: Callable[[str, str | None], list[str]] = bookinfo.downstream_calls):
        self.mesh_of = mesh_of
        self.recorder = recorder
        self.profiles = profiles or Profiles()
        self.rng = random.Random(seed)
        self.calls = calls
        self.specs: list[TrafficSpec] = []
        # (cluster, namespace) whose VirtualServices the simulated mesh ignores.
        self.ignoring: set[tuple[str, str]] = set()
        self._ids = random.Random(seed + 1)
        self._lock = threading.Lock()

    # -- traffic at a rate ------------------------------------------------------------------------
    def run_until(self, now_ms: int) -> int:
        """Send every request due before `now_ms` by each spec's rate; returns how many were sent."""
        sent = 0
        with self._lock:
            specs = list(self.specs)
        for spec in specs:
            if spec.rate <= 0:
                spec.next_ms = None
                continue
            step = 1000.0 / spec.rate
            if spec.next_ms is None:
                spec.next_ms = now_ms
            while spec.next_ms <= now_ms:
                jason = self.rng.random() < spec.jason_share
                headers = {"end-user": "jason"} if jason else {}
                user = self.rng.randrange(spec.users) if spec.users > 0 else None
                if user is not None and spec._jars.get(user):
                    headers["cookie"] = "; ".join("%s=%s" % item for item in spec._jars[user].items())
                hop = self.send(spec.cluster, spec.namespace, spec.service, spec.next_ms, spec.source_workload, headers,
                                spec.uri)
                if user is not None:
                    _remember(spec, user, hop)
                spec.next_ms += max(1, int(round(step)))
                sent += 1
        return sent

    # -- one request ------------------------------------------------------------------------------
    def send(self, cluster: str, namespace: str, service: str, time_ms: int, source_workload: str = "productpage-v1",
             headers: dict | None = None, uri: str = "/") -> Hop:
        """One user request entering `source_workload` and calling `service`; returns the call's result."""
        mesh = self.mesh_of(cluster, namespace)
        if (cluster, namespace) in self.ignoring:
            mesh = replace(mesh, ignore_virtual_services=True)
        trace_id = "%032x" % self._ids.getrandbits(128)
        root_id = self._span_id()
        source_app, source_version = _app_version(source_workload)
        hop = self._call(mesh, cluster, source_workload, service, dict(headers or {}), uri, time_ms + 1, trace_id, root_id)
        own = 1.0 + hop.duration_ms
        status = 200 if hop.status < 500 else 500
        self._span(source_app, source_version, f"GET {uri}", status, time_ms, own, trace_id, root_id, "0", namespace)
        return hop

    def _call(self, mesh: Mesh, cluster: str, source_workload: str, host: str, headers: dict, uri: str,
              start_ms: float, trace_id: str, parent_id: str) -> Hop:
        route = route_request(mesh, Request(host, source_workload, headers, uri), self.rng)
        for copy in route.mirrors:
            self._mirrored(mesh, cluster, source_workload, copy, headers, uri, start_ms, trace_id)
        ns = mesh.namespace
        labels = {"source_workload": source_workload, "source_workload_namespace": ns,
                  "destination_service": f"{route.service}.{ns}.{CLUSTER_SUFFIX}", "destination_service_name": route.service,
                  "destination_service_namespace": ns, "destination_cluster": cluster, "response_flags": route.response_flags}
        resource = f"{route.service}.{ns}.{CLUSTER_SUFFIX}:{PORT}/*"
        if not route.reached_pod:
            duration = route.delay_ms + 0.5
            labels.update(reporter="source", destination_workload="unknown", destination_workload_namespace="unknown",
                          destination_version="unknown", response_code=str(route.status))
            self.recorder.request(int(start_ms), labels, duration)
            app, version = _app_version(source_workload)
            span_id = self._span_id()
            self._span(app, version, resource, route.status, start_ms, duration, trace_id, span_id, parent_id, ns, "exit")
            self._log(app, version, route.status, start_ms, f"outbound {resource} {route.status} {route.response_flags} "
                      f"{int(duration)}ms", ns)
            return Hop(route.status, duration)
        server_start = start_ms + route.delay_ms
        span_id = self._span_id()
        status, server = self._serve(mesh, cluster, route, headers, uri, server_start, trace_id, span_id)
        client = route.delay_ms + server + 0.3
        labels.update(destination_workload=route.workload, destination_workload_namespace=ns,
                      destination_version=route.version, response_code=str(status))
        self.recorder.request(int(start_ms), dict(labels, reporter="source"), client)
        self.recorder.request(int(server_start), dict(labels, reporter="destination"), server)
        self._span(route.service, route.version, resource, status, server_start, server, trace_id, span_id, parent_id, ns)
        self._log(route.service, route.version, status, server_start,
                  f'"GET {uri} HTTP/1.1" {status} {route.response_flags} {int(server)}ms from {source_workload}', ns)
        return Hop(status, client, route.version, route.set_cookie)

    def _serve(self, mesh: Mesh, cluster: str, route: Route, headers: dict, uri: str, start_ms: float, trace_id: str,
               span_id: str) -> tuple[int, float]:
        """The pod's answer to a request that reached it: its status, and its own time plus the calls
        it makes on (what its server sidecar measures)."""
        profile = self.profiles.get(route.service, route.version, mesh.namespace)
        own = profile.latency_ms * math.exp(profile.latency_sigma * self.rng.gauss(0.0, 1.0))
        status = profile.error_code if self.rng.random() < profile.error_rate else 200
        elapsed = own / 2
        for callee in self.calls(route.service, route.version):
            child = self._call(mesh, cluster, route.workload, callee, headers, uri, start_ms + elapsed, trace_id, span_id)
            elapsed += child.duration_ms
        return status, own + (elapsed - own / 2)

    def _mirrored(self, mesh: Mesh, cluster: str, source_workload: str, copy: Route, headers: dict, uri: str,
                  start_ms: float, trace_id: str) -> None:
        """The copy a route's mirror sends: the receiving pod answers (and calls on) as for any
        request and its server sidecar reports it; the client never sees the answer, so nothing
        is reported on the client side."""
        ns = mesh.namespace
        span_id = self._span_id()
        status, server = self._serve(mesh, cluster, copy, headers, uri, start_ms, trace_id, span_id)
        labels = {"source_workload": source_workload, "source_workload_namespace": ns, "reporter": "destination",
                  "destination_service": f"{copy.service}.{ns}.{CLUSTER_SUFFIX}", "destination_service_name": copy.service,
                  "destination_service_namespace": ns, "destination_cluster": cluster, "response_flags": "-",
                  "destination_workload": copy.workload, "destination_workload_namespace": ns,
                  "destination_version": copy.version, "response_code": str(status)}
        self.recorder.request(int(start_ms), labels, server)
        self._span(copy.service, copy.version, f"{copy.service}.{ns}.{CLUSTER_SUFFIX}:{PORT}/*", status, start_ms, server,
                   trace_id, span_id, "0", ns)
        self._log(copy.service, copy.version, status, start_ms,
                  f'"GET {uri} HTTP/1.1" {status} - {int(server)}ms from {source_workload} (mirrored)', ns)

    def _span_id(self) -> str:
        return "%016x" % self._ids.getrandbits(64)

    def _span(self, service: str, version: str, resource: str, status: int, start_ms: float, duration_ms: float,
              trace_id: str, span_id: str, parent_id: str, namespace: str, span_type: str = "entry") -> None:
        start_us = int(start_ms * 1000)
        tags = {"service": service, "version": version, "env": "sandbox", "project": service, "namespace": namespace,
                "resource": resource, "status": "error" if status >= 500 else "ok", "http_status_code": str(status),
                "http_method": "GET", "span_type": span_type, "source_type": "web"}
        fields = {"duration": int(round(duration_ms * 1000)), "start": start_us, "trace_id": trace_id,
                  "span_id": span_id, "parent_id": parent_id}
        self.recorder.add("T", Point(service, tags, fields, int(start_ms)))

    def _log(self, service: str, version: str, status: int, time_ms: float, message: str, namespace: str) -> None:
        tags = {"service": service, "version": version, "namespace": namespace, "index": "default",
                "status": "error" if status >= 500 else ("warning" if status >= 400 else "info")}
        self.recorder.add("L", Point(service, tags, {"message": message}, int(time_ms)))


def _app_version(workload: str) -> tuple[str, str]:
    """productpage-v1 -> (productpage, v1); a name without a version suffix -> (name, unknown)."""
    app, sep, version = workload.rpartition("-")
    if sep and version.startswith("v") and version[1:].isdigit():
        return app, version
    return workload, "unknown"
