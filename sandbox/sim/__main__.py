"""python -m sandbox.sim: the mesh and Guance simulator over the running sandbox, until SIGTERM/SIGINT.

Writes `.sandbox/endpoints.json` (Guance OpenAPI URL and API key, DataKit URL, /metrics URL,
control URL). Traffic per namespace: `--traffic cluster/namespace/service=rate[,jason=0.1]`, or
while it runs `POST <datakit>/__sim/traffic {"cluster":..,"namespace":..,"service":..,"rate":..}`.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from .. import control, cluster as sandbox_cluster, versions
from .live import LiveSimulator, parse_traffic, write_endpoints

ENDPOINTS_FILE = "endpoints.json"


def default_ports() -> tuple[int, int]:
    # Below the first cluster's ports (base + 10 * index, index >= 1), so they never clash.
    base = sandbox_cluster.port_base()
    return base + 1, base + 2


def main(argv: list[str] | None = None) -> int:
    openapi_port, datakit_port = default_ports()
    parser = argparse.ArgumentParser(prog="python -m sandbox.sim", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traffic", action="append", default=[], help="cluster/namespace/service=rate[,jason=share]")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per wall second (fast clock)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--openapi-port", type=int, default=openapi_port)
    parser.add_argument("--datakit-port", type=int, default=datakit_port)
    parser.add_argument("--prometheus-url", default=None, help="the Prometheus beside the simulator (for the prometheus provider)")
    parser.add_argument("--scrape-interval", type=float, default=10.0,
                        help="seconds between the simulated DataKit's scrapes, which DQL and Guance's PromQL read")
    parser.add_argument("--endpoints-file", default=str(versions.STATE_DIR / ENDPOINTS_FILE),
                        help="where to write the URLs and API key (default: .sandbox/endpoints.json)")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between reads of a namespace's routing objects")
    args = parser.parse_args(argv)
    try:
        specs = [parse_traffic(t) for t in args.traffic]
    except ValueError as exc:
        parser.error(str(exc))
    clusters = control.load_clusters()
    if not clusters:
        print("sandbox.sim: the sandbox is not running (python -m sandbox up)", file=sys.stderr)
        return 1
    apis = {c.name: c.admin() for c in clusters}
    unknown = sorted({s.cluster for s in specs} - set(apis))
    if unknown:
        parser.error(f"--traffic names unknown cluster(s) {', '.join(unknown)}; running: {', '.join(sorted(apis))}")
    live = LiveSimulator(apis, speed=args.speed, seed=args.seed, openapi_port=args.openapi_port,
                         datakit_port=args.datakit_port, poll_s=args.poll, prometheus_url=args.prometheus_url,
                         scrape_interval_ms=int(args.scrape_interval * 1000))
    for spec in specs:
        live.add_traffic(spec)
    try:
        endpoints = live.start()
    except OSError as exc:
        print(f"sandbox.sim: cannot listen: {exc}", file=sys.stderr)
        return 1
    endpoints_file = Path(args.endpoints_file)
    write_endpoints(endpoints_file, endpoints)
    print(f"sandbox.sim: Guance OpenAPI {endpoints['guance_openapi']}, DataKit {endpoints['datakit']}, "
          f"metrics {endpoints['metrics']}; API key in {endpoints_file}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    while not stop.wait(1.0):
        pass
    live.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
