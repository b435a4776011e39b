"""The simulator on the live sandbox: poll each cluster's routing objects and send traffic at the set rates.

`MeshWatcher` lists VirtualServices, DestinationRules, HTTPRoutes, Services and pods of every namespace that
has traffic, at most every `poll_s` seconds per namespace, through the admin `AdminApi`; the last
good snapshot stays in use when a poll fails (a namespace being deleted, an API hiccup), so a
change to a VirtualService takes effect within `poll_s` plus one tick.
`LiveSimulator` ties watcher, simulator, recorder and server together and runs the loop.
"""
from __future__ import annotations

import json
import os
import secrets
import threading
import time
from pathlib import Path

from ..api import AdminApi, ApiError, collection_path
from .record import Clock, Recorder
from .routing import Mesh
from .server import GuanceServer, Simulation
from .traffic import Profiles, Simulator, TrafficSpec

KINDS = {"virtual_services": "VirtualService", "destination_rules": "DestinationRule", "services": "Service", "pods": "Pod",
         "http_routes": "HTTPRoute"}
# Kinds a cluster may not serve (the Gateway API's CRDs not installed): none of them, then.
OPTIONAL_KINDS = {"HTTPRoute"}


class MeshWatcher:
    """Cached `Mesh` snapshots per (cluster, namespace), refreshed by polling."""

    def __init__(self, apis: dict[str, AdminApi], poll_s: float = 1.0):
        self.apis = apis
        self.poll_s = poll_s
        self._cache: dict[tuple[str, str], tuple[float, Mesh]] = {}
        self._lock = threading.Lock()
        self.errors: dict[tuple[str, str], str] = {}

    def fetch(self, cluster: str, namespace: str) -> Mesh:
        api = self.apis[cluster]
        mesh = Mesh(namespace)
        for attr, kind in KINDS.items():
            setattr(mesh, attr, api.get(collection_path(kind, namespace), ok_missing=kind in OPTIONAL_KINDS).get("items", []))
        return mesh

    def mesh_of(self, cluster: str, namespace: str) -> Mesh:
        key = (cluster, namespace)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < self.poll_s:
            return cached[1]
        try:
            mesh = self.fetch(cluster, namespace)
            self.errors.pop(key, None)
        except (ApiError, OSError, KeyError, ValueError) as exc:
            self.errors[key] = str(exc)
            if cached is not None:
                return cached[1]
            return Mesh(namespace)  # nothing known yet: every request gets 503 (no Service)
        with self._lock:
            self._cache[key] = (time.monotonic(), mesh)
        return mesh


class LiveSimulator:
    """Server + traffic loop over the running sandbox clusters."""

    def __init__(self, apis: dict[str, AdminApi], *, speed: float = 1.0, seed: int = 0, api_key: str | None = None,
                 openapi_port: int = 0, datakit_port: int = 0, poll_s: float = 1.0, tick_s: float = 0.1,
                 prometheus_url: str | None = None, scrape_interval_ms: int = 10_000):
        self.watcher = MeshWatcher(apis, poll_s)
        self.clock = Clock(speed=speed)
        self.recorder = Recorder(scrape_interval_ms=scrape_interval_ms)
        self.simulator = Simulator(self.watcher.mesh_of, self.recorder, Profiles(), seed=seed)
        self.api_key = api_key or secrets.token_hex(16)
        self.sim = Simulation(recorder=self.recorder, clock=self.clock, simulator=self.simulator,
                              api_keys={self.api_key}, prometheus_url=prometheus_url)
        self.server = GuanceServer(self.sim, openapi_port=openapi_port, datakit_port=datakit_port)
        self.tick_s = tick_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add_traffic(self, spec: TrafficSpec) -> None:
        with self.simulator._lock:  # pylint: disable=protected-access
            self.simulator.specs.append(spec)

    def endpoints(self) -> dict:
        urls = self.server.urls
        return {"guance_openapi": urls["guance_openapi"], "guance_api_key": self.api_key, "datakit": urls["datakit"],
                "metrics": urls["metrics"], "control": urls["datakit"] + "/__sim", "prometheus": self.sim.prometheus_url,
                "clock_speed": self.clock.speed}

    def start(self) -> dict:
        self.server.start()
        self._thread = threading.Thread(target=self._loop, name="mesh-traffic", daemon=True)
        self._thread.start()
        return self.endpoints()

    def _loop(self) -> None:
        last_prune = 0.0
        while not self._stop.is_set():
            now = self.clock.now_ms()
            self.simulator.run_until(now)
            if time.monotonic() - last_prune > 60:
                self.recorder.prune(now)
                self.forget_gone_workloads()
                last_prune = time.monotonic()
            self._stop.wait(self.tick_s)

    def forget_gone_workloads(self) -> int:
        """Drop the /metrics series of workloads whose Deployment (or namespace) is gone; one list
        of Deployments per namespace that has series. A namespace that cannot be read keeps its."""
        present: dict[tuple[str, str], set[str] | None] = {}
        for cluster, namespace, _workload in self.recorder.series_places():
            key = (cluster, namespace)
            if key in present or cluster not in self.watcher.apis:
                continue
            try:
                items = self.watcher.apis[cluster].get(collection_path("Deployment", namespace), ok_missing=True).get("items")
                present[key] = {d["metadata"]["name"] for d in items or []}
            except (ApiError, OSError, KeyError, ValueError):
                present[key] = None

        def gone(cluster: str, namespace: str, workload: str | None) -> bool:
            names = present.get((cluster, namespace))
            # No workload: requests that reached no pod; they go with their namespace's last Deployment.
            return names is not None and (workload not in names if workload is not None else not names)

        return self.recorder.forget_series(gone)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.server.stop()


def write_endpoints(path: Path, endpoints: dict) -> None:
    """`endpoints.json` (mode 0600: it holds the API key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(endpoints, indent=2) + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def parse_traffic(text: str) -> TrafficSpec:
    """`cluster/namespace/service=rate[,jason=share][,source=workload]`, e.g. `sandbox-1/prod/reviews=10,jason=0.1`."""
    target, sep, options = text.partition("=")
    parts = target.split("/")
    if not sep or len(parts) != 3 or not all(parts):
        raise ValueError(f"--traffic {text!r}: expected cluster/namespace/service=rate[,jason=0.1][,source=productpage-v1]")
    values = options.split(",")
    spec = TrafficSpec(parts[0], parts[1], parts[2], rate=float(values[0]))
    for option in values[1:]:
        key, eq, value = option.partition("=")
        if not eq or key not in ("jason", "source", "uri"):
            raise ValueError(f"--traffic {text!r}: unknown option {option!r} (jason=, source=, uri=)")
        if key == "jason":
            spec.jason_share = float(value)
        elif key == "source":
            spec.source_workload = value
        else:
            spec.uri = value
    if spec.rate < 0 or not 0 <= spec.jason_share <= 1:
        raise ValueError(f"--traffic {text!r}: rate must be >= 0 and jason within 0..1")
    return spec
