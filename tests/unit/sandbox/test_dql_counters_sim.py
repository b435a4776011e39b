# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The analysis' DQL counter queries against the simulator's DataKit-style scrapes.

`canary_analysis` runs its `main()` in this process against an in-process simulator (no
cluster), whose `istio_prom` points are cumulative counters scraped every 10 s. The requests are
placed relative to the last scrape, so what each scrape holds is known exactly: the canary's 503s
begin half a scrape interval before the newest scrape, so their series exists in that scrape only.

Here rather than in tests/unit/plugins: `ansible-test units` runs tests/unit/plugins in a copied
tree where the `sandbox` package is not importable.
"""
from __future__ import annotations

import json

import pytest

from sandbox.sim.record import Recorder
from sandbox.sim.server import GuanceServer, Simulation

from ansible_collections.canary.istio.tests.unit.plugins.modules.module_main import run_main

KEY = "sim-key-0d9c8b7a6f5e4d3c"
SCRAPE_MS = 10_000
WINDOW_S = 60
HISTORY_MS = 180_000


def labels(version: str, code: str) -> dict:
    return {"reporter": "destination", "source_workload": "productpage-v1", "source_workload_namespace": "shop",
            "destination_workload": f"reviews-{version}", "destination_workload_namespace": "shop",
            "destination_service": "reviews.shop.svc.cluster.local", "destination_service_name": "reviews",
            "destination_service_namespace": "shop", "destination_version": version, "response_code": code}


@pytest.fixture(name="sim")
def simulator_with_a_late_regression():
    """v1 and v2 at one request a second for three minutes; v2 answers 503 from 5 s before the
    newest scrape on (5 errors in that scrape, none in any earlier one)."""
    sim = Simulation(api_keys={KEY}, recorder=Recorder(scrape_interval_ms=SCRAPE_MS))
    sim.faults.rate_limit = 10_000
    now = sim.clock.now_ms()
    last_scrape = now // SCRAPE_MS * SCRAPE_MS
    regression = last_scrape - SCRAPE_MS // 2
    for t in range(last_scrape - HISTORY_MS + 500, last_scrape, 1000):
        sim.recorder.request(t, labels("v1", "200"), 20.0)
        sim.recorder.request(t, labels("v2", "503" if t >= regression else "200"), 20.0)
    server = GuanceServer(sim)
    sim.urls = server.start()
    yield sim
    server.stop()


def analyse(sim: Simulation, monkeypatch, capsys, api: str = "openapi") -> dict:
    from ansible_collections.canary.istio.plugins.modules import canary_analysis

    args = {"service": "reviews", "namespace": "shop", "canary_version": "v2", "baseline_version": "v1",
            "istio_query_language": "dql", "scrape_interval": SCRAPE_MS // 1000, "window": WINDOW_S,
            "min_requests": 20, "retry_budget": 0, "checks": [{"metric": "request_success_rate", "min": 99}]}
    if api == "datakit":
        args.update(api="datakit", url=sim.urls["datakit"])
    else:
        args.update(url=sim.urls["guance_openapi"], api_key=KEY)
    result, _err = run_main(canary_analysis.main, args, monkeypatch, capsys, clear_env=("GUANCE_", "K8S_AUTH_"))
    assert KEY not in json.dumps(result)
    return result


@pytest.mark.parametrize("api", ["openapi", "datakit"])
def test_errors_seen_in_one_scrape_only_fail_the_round(sim, monkeypatch, capsys, api) -> None:
    result = analyse(sim, monkeypatch, capsys, api)
    assert result.get("failed") is True and result["verdict"] == "fail", result.get("msg")
    numbers = result["rounds"][0]["numbers"]
    # the whole 60 s window is counted (one a second), not the 50 s between its first and last scrape
    assert 55 <= numbers["v2"]["request_count"] <= 65, numbers
    assert 55 <= numbers["v1"]["request_count"] <= 65, numbers
    # the 503 series born in the newest scrape counts in full: 5 of about 60
    assert numbers["v2"]["request_success_rate"] == pytest.approx(100 - 500 / numbers["v2"]["request_count"])
    assert numbers["v1"]["request_success_rate"] == 100


def test_the_counter_queries_reach_two_scrapes_before_the_window(sim, monkeypatch, capsys) -> None:
    analyse(sim, monkeypatch, capsys)
    (_method, _path, body), = [seen for seen in sim.requests_seen if seen[1].endswith("query_data_v1")]
    query = json.loads(body)["queries"][0]["query"]
    start, end = query["timeRange"]
    assert end - start == WINDOW_S * 1000 + 2 * SCRAPE_MS
    assert "[80s::10s:last]" in query["q"]
