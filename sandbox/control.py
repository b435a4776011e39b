"""`up`, `status` and `down` for the whole sandbox: several clusters, their state file and kubeconfigs."""
from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import yaml

from . import build, cluster, procs, versions
from .sim import service as sim_service

STATE_FILE = "state.json"


def state_path() -> Path:
    return versions.STATE_DIR / STATE_FILE


def load_clusters() -> list[cluster.Cluster]:
    try:
        data = json.loads(state_path().read_text())
    except FileNotFoundError:
        return []
    return [cluster.Cluster(**entry) for entry in data["clusters"]]


def _save(clusters: list[cluster.Cluster]) -> None:
    versions.STATE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = state_path().with_suffix(".tmp")
    tmp.write_text(json.dumps({"clusters": [c.to_dict() for c in clusters]}, indent=2))
    os.chmod(tmp, 0o600)
    os.replace(tmp, state_path())


def _write_kubeconfigs(clusters: list[cluster.Cluster]) -> None:
    for filename, token_of in (("kubeconfig", lambda c: c.admin_token),
                               ("kubeconfig-release", lambda c: c.release_token)):
        doc = cluster.kubeconfig_doc(
            [(c.name, c.server, str(c.ca_file), token_of(c)) for c in clusters], clusters[0].name)
        path = versions.STATE_DIR / filename
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        os.chmod(path, 0o600)


def up(count: int = 1) -> list[cluster.Cluster]:
    running = load_clusters()
    if running:
        if len(running) >= count and all(cluster.is_healthy(c) for c in running):
            print(f"sandbox is already running ({len(running)} cluster(s)); "
                  f"kubeconfig: {versions.STATE_DIR / 'kubeconfig'}")
            if not all(sim_service.status(versions.STATE_DIR).values()):
                # The clusters outlived the simulator (killed, or a sandbox from before it existed).
                sim_service.stop(versions.STATE_DIR)
                _start_simulator()
            return running
        # A partial or dead sandbox: start over rather than patch it up.
        print("sandbox state found but not healthy or too few clusters; restarting it")
        down(quiet=True)
    build.build_all()
    if versions.STATE_DIR.exists():
        shutil.rmtree(versions.STATE_DIR)
    clusters = [cluster.Cluster.new(i, versions.STATE_DIR) for i in range(1, count + 1)]
    errors: list[BaseException] = []
    t0 = time.monotonic()

    def bring_up(c: cluster.Cluster) -> None:
        try:
            cluster.start(c, on_step=lambda text: print(f"[sandbox up] {c.name}: {text}", flush=True))
        except BaseException as exc:  # noqa: BLE001 - reported below, per cluster
            errors.append(exc)

    # Clusters start in parallel: most of a start is waiting on readiness, not CPU.
    threads = [threading.Thread(target=bring_up, args=(c,)) for c in clusters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        for c in clusters:
            cluster.stop(c)
        raise errors[0]
    _save(clusters)
    _write_kubeconfigs(clusters)
    try:
        _start_simulator()
    except BaseException:
        down(quiet=True)
        raise
    print(f"sandbox up: {count} cluster(s) in {time.monotonic() - t0:.1f}s; "
          f"kubeconfig: {versions.STATE_DIR / 'kubeconfig'} "
          f"(release token: {versions.STATE_DIR / 'kubeconfig-release'})")
    return clusters


def stop_component(c: cluster.Cluster, name: str, kill: bool = False) -> None:
    """Stop etcd or kube-apiserver of a running cluster (`kill`: SIGKILL, a crash); see start_component."""
    cluster.stop_component(c, name, kill)


def start_component(c: cluster.Cluster, name: str) -> None:
    """Start again a component stopped by `stop_component` and keep its new PID in the state file."""
    cluster.start_component(c, name)
    _save([c if other.index == c.index else other for other in load_clusters()])


def _start_simulator() -> dict:
    """The mesh and Guance simulator and its Prometheus, over the clusters just started (sandbox/sim)."""
    endpoints = sim_service.start(versions.STATE_DIR)
    print(f"simulator: Guance OpenAPI {endpoints['guance_openapi']}, DataKit {endpoints['datakit']}, "
          f"Prometheus {endpoints['prometheus']}; URLs and API key in {versions.STATE_DIR / 'endpoints.json'}", flush=True)
    return endpoints


def status() -> int:
    clusters = load_clusters()
    if not clusters:
        print("sandbox is not running")
        return 1
    healthy = True
    for c in clusters:
        comps = cluster.component_status(c)
        ok = cluster.is_healthy(c)
        healthy &= ok
        parts = " ".join(f"{name}={'up' if alive else 'DOWN'}" for name, alive in comps.items())
        print(f"{c.name}: {'ready' if ok else 'NOT READY'} {c.server} {parts} audit={c.audit_log}")
    for name, alive in sim_service.status(versions.STATE_DIR).items():
        healthy &= alive
        print(f"{name}: {'up' if alive else 'DOWN'}")
    return 0 if healthy else 1


def down(quiet: bool = False) -> None:
    clusters = load_clusters()
    sim_service.stop(versions.STATE_DIR)
    for c in clusters:
        cluster.stop(c)
    if versions.STATE_DIR.exists():
        shutil.rmtree(versions.STATE_DIR)
    if not quiet:
        print(f"sandbox down: stopped {len(clusters)} cluster(s)" if clusters else "sandbox was not running")


__all__ = ["up", "down", "status", "load_clusters", "procs", "stop_component", "start_component"]
