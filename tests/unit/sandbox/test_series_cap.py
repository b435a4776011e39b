"""Guance caps a DQL answer at 20 series unless the request lifts the cap. The analysis's p99 groups
by version and `le` (two versions x 21 buckets = 42 series): through the client, both versions' p99
come back from a simulator that caps like Guance, on the OpenAPI and on a DataKit."""
from __future__ import annotations

import pytest
import requests

from ansible_collections.canary.istio.plugins.module_utils._analysis import answers
from ansible_collections.canary.istio.plugins.module_utils._analysis import queries
from ansible_collections.canary.istio.plugins.module_utils._guance import client as guance_client
from ansible_collections.canary.istio.plugins.module_utils._guance import queries as guance_queries
from ansible_collections.canary.istio.plugins.module_utils._guance import settings as guance_settings
from sandbox.sim.server import GuanceServer, Simulation

KEY = "sim-key-series-cap-0123"
WINDOW_S = 60


@pytest.fixture(name="sim")
def simulator_with_two_versions():
    sim = Simulation(api_keys={KEY})
    now = sim.clock.now_ms()
    for version, latency in (("v1", 30.0), ("v2", 300.0)):
        labels = {"reporter": "destination", "destination_workload": f"reviews-{version}", "destination_version": version,
                  "destination_workload_namespace": "prod", "destination_service_name": "reviews", "response_code": "200"}
        for i in range(200):
            sim.recorder.request(now - 50_000 + i * 200, labels, latency)
    server = GuanceServer(sim)
    sim.urls = server.start()
    yield sim
    server.stop()


def _latency_query() -> tuple[queries.AnalysisTarget, queries.MetricQuery]:
    target = queries.AnalysisTarget(service="reviews", canary_version="v2", baseline_version="v1", namespace="prod",
                                    window_seconds=WINDOW_S, step_seconds=10)
    return target, queries.build_dql(target)[queries.Q_LATENCY]


@pytest.mark.parametrize("api", ["openapi", "datakit"])
def test_both_versions_p99_come_back_past_the_20_series_cap(sim, api) -> None:
    target, query = _latency_query()
    url = sim.urls["guance_openapi"] if api == "openapi" else sim.urls["datakit"]
    client = guance_client.GuanceClient(guance_settings.make_config(url=url, api=api, api_key=KEY if api == "openapi" else None))
    end = sim.clock.now_ms()
    answer = client.query([guance_queries.Query(query.query, lookback_ms=query.lookback_s * 1000)], end - WINDOW_S * 1000, end)
    series = answer.series[0]
    assert len(series) > 20
    p99 = answers.parse_latency_buckets(series, target.versions, lookback_buckets=queries.DQL_LOOKBACK_BUCKETS)
    assert p99["v1"] is not None and p99["v2"] is not None and p99["v2"] > p99["v1"]


def test_without_lifting_the_cap_one_version_goes_missing(sim) -> None:
    _target, query = _latency_query()
    end = sim.clock.now_ms()
    body = {"queries": [{"qtype": "dql", "query": {"q": query.query, "timeRange": [end - 120_000, end]}}]}
    resp = requests.post(sim.urls["guance_openapi"] + "/api/v1/df/query_data_v1", json=body, headers={"DF-API-KEY": KEY},
                         timeout=10)
    series = resp.json()["content"]["data"][0]["series"]
    assert len(series) == 20
    assert {s["tags"]["destination_version"] for s in series} == {"v1"}  # v2's buckets are cut off
