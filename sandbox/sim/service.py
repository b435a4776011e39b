"""Start, check and stop the simulator and its Prometheus as detached processes of the sandbox.

For `python -m sandbox up/status/down`: `start(state_dir)` runs `python -m sandbox.sim` and
Prometheus (scraping its `/metrics`), waits until both answer, and leaves their PIDs in
`<state_dir>/sim/pids.json`; `endpoints.json` (URLs and the Guance API key) is written by the
simulator itself. Ports: CANARY_ISTIO_SANDBOX_PORT_BASE + 1 (OpenAPI), + 2 (DataKit), + 3 (Prometheus).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import requests

from .. import cluster as sandbox_cluster, procs, versions
from . import prometheus

START_TIMEOUT = 30
# The simulated DataKit (what DQL and Guance's PromQL read) and the real Prometheus scrape alike,
# so that the sandbox's short analysis windows hold several scrapes whichever the language.
SCRAPE_INTERVAL_S = 2


def ports() -> dict[str, int]:
    base = sandbox_cluster.port_base()
    return {"openapi": base + 1, "datakit": base + 2, "prometheus": base + 3}


def _pids_file(state_dir: Path) -> Path:
    return state_dir / "sim" / "pids.json"


def _pids(state_dir: Path) -> dict:
    try:
        return json.loads(_pids_file(state_dir).read_text())
    except FileNotFoundError:
        return {}


def start(state_dir: Path, traffic: tuple[str, ...] = (), speed: float = 1.0) -> dict:
    """Start the simulator and Prometheus; returns the endpoints (as in endpoints.json)."""
    port = ports()
    sim_dir = state_dir / "sim"
    sim_dir.mkdir(parents=True, exist_ok=True)
    endpoints_file = state_dir / "endpoints.json"
    endpoints_file.unlink(missing_ok=True)
    for name in ("openapi", "datakit"):
        procs.ensure_port_free(port[name], f"simulator {name}")
    # `-c` with the repository on sys.path, so the start does not depend on the caller's working directory.
    bootstrap = f"import sys; sys.path.insert(0, {str(versions.REPO_ROOT)!r}); from sandbox.sim.__main__ import main; sys.exit(main())"
    argv = [sys.executable, "-c", bootstrap, "--openapi-port", str(port["openapi"]), "--datakit-port", str(port["datakit"]),
            "--endpoints-file", str(endpoints_file), "--speed", str(speed),
            "--prometheus-url", f"http://127.0.0.1:{port['prometheus']}", "--scrape-interval", str(SCRAPE_INTERVAL_S)]
    for spec in traffic:
        argv += ["--traffic", spec]
    log = sim_dir / "sim.log"
    pid = procs.start("sandbox.sim", argv, log)
    pids = {"sim": pid}
    _pids_file(state_dir).write_text(json.dumps(pids))
    datakit = f"http://127.0.0.1:{port['datakit']}"
    procs.wait_until("the simulator's DataKit /v1/ping", lambda: endpoints_file.exists()
                     and requests.get(datakit + "/v1/ping", timeout=1).status_code == 200, START_TIMEOUT, pid, "sandbox.sim", log)
    endpoints = json.loads(endpoints_file.read_text())
    pids["prometheus"] = prometheus.start(sim_dir / "prometheus", endpoints["metrics"], port["prometheus"], scrape_interval_s=SCRAPE_INTERVAL_S)
    _pids_file(state_dir).write_text(json.dumps(pids))
    return endpoints


def status(state_dir: Path) -> dict[str, bool]:
    pids = _pids(state_dir)
    return {"simulator": bool(pids.get("sim")) and procs.alive(pids["sim"], sys.executable),
            "prometheus": bool(pids.get("prometheus")) and procs.alive(pids["prometheus"], str(prometheus.find_binary(fetch=False)))}


def stop(state_dir: Path) -> None:
    pids = _pids(state_dir)
    if pids.get("prometheus"):
        procs.stop(pids["prometheus"], str(prometheus.find_binary(fetch=False)))
    if pids.get("sim"):
        procs.stop(pids["sim"], sys.executable)
    _pids_file(state_dir).unlink(missing_ok=True)
