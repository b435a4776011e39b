"""The analysis's request query against a real Prometheus: a response_code series born inside the
window (a canary's first 5xx) counts in full, even when every sample of it is the same.

A small /metrics endpoint of the test's own serves istio_requests_total for one canary: 200s from
the start, then one 503 whose counter stays at 1. `increase()` of that series is 0 (its samples
never change), so a query that prefers `increase()` loses the error; the analysis's query counts it.
"""
from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from ansible_collections.canary.istio.plugins.module_utils._analysis import queries
from sandbox.sim import prometheus

pytestmark = pytest.mark.integration

WINDOW_S = 10
LABELS = ('reporter="destination",destination_workload="details-api-v1.2",destination_version="v1.2",'
          'destination_workload_namespace="prod"')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Counters:
    """istio_requests_total per response code, served in the text format."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {"200": 0.0}
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                with outer.lock:
                    outer.values["200"] += 10  # 10 more successful requests per scrape
                    lines = [f'istio_requests_total{{{LABELS},response_code="{code}"}} {value}'
                             for code, value in outer.values.items()]
                body = ("# TYPE istio_requests_total counter\n" + "\n".join(lines) + "\n").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/metrics"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


def _query(url: str, promql: str) -> dict[str, float]:
    answer = requests.post(f"{url}/api/v1/query", data={"query": promql}, timeout=10).json()
    assert answer["status"] == "success", answer
    return {r["metric"].get("response_code", ""): float(r["value"][1]) for r in answer["data"]["result"]}


def test_a_503_series_born_in_the_window_counts_in_full(tmp_path):
    counters = Counters()
    port = _free_port()
    pid = prometheus.start(tmp_path / "prometheus", counters.url, port, scrape_interval_s=1)
    url = f"http://127.0.0.1:{port}"
    try:
        # The 200 series older than the window, then the canary's one 5xx, scraped several times at 1.
        time.sleep(WINDOW_S + 3)
        with counters.lock:
            counters.values["503"] = 1.0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _query(url, 'count_over_time(istio_requests_total{response_code="503"}[1m])') \
                .get("503", 0) < 3:
            time.sleep(0.5)
        target = queries.AnalysisTarget(service="details-api", canary_version="v1.2", baseline_version=None,
                                        window_seconds=WINDOW_S, namespace="prod")
        counted = _query(url, queries.build_promql(target)[queries.Q_REQUESTS].query)
        selector = queries.build_promql(target)[queries.Q_REQUESTS].query.split("increase(", 1)[1].split("[", 1)[0]
        preferring_increase = _query(url, f"sum by (destination_version, response_code) (increase({selector}[{WINDOW_S}s]) "
                                          f"or ({selector} unless {selector} offset {WINDOW_S}s))")
    finally:
        prometheus.stop(pid)
        counters.httpd.shutdown()
    assert preferring_increase.get("503") == 0.0  # the query this replaces lost the error
    assert counted["503"] == 1.0 and counted["200"] > 0
