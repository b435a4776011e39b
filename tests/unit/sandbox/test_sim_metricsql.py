"""Guance's PromQL as a MetricsQL engine answers it (sandbox/sim/metricsql.py): no extrapolation,
growth counted from the last sample before the window, counter resets taken out, a series born in
the window counted from zero. The analysis's own queries, through the client and the OpenAPI,
count exactly what the scrapes hold."""
from __future__ import annotations

import math

import pytest

from ansible_collections.canary.istio.plugins.module_utils._analysis import answers
from ansible_collections.canary.istio.plugins.module_utils._analysis import queries
from ansible_collections.canary.istio.plugins.module_utils._guance import client as guance_client
from ansible_collections.canary.istio.plugins.module_utils._guance import queries as guance_queries
from ansible_collections.canary.istio.plugins.module_utils._guance import settings as guance_settings
from sandbox.sim import metricsql
from sandbox.sim.record import ManualClock, Point, Recorder
from sandbox.sim.server import GuanceServer, Simulation

T0 = 1_700_000_000_000
SCRAPE_MS = 10_000
COUNTER = "istio_prom:istio_requests_total"
LABELS = {"reporter": "destination", "destination_service_name": "reviews", "destination_workload_namespace": "shop"}


def points(field: str, tags: dict, samples: list[tuple[int, float]]) -> list[Point]:
    return [Point("istio_prom", dict(tags), {field: value}, T0 + t) for t, value in samples]


def ask(text: str, rows: list[Point], at: int) -> dict[tuple, float]:
    def rows_of(namespace, lo, hi, keep):
        return [p for p in rows if namespace == "M" and lo <= p.time <= hi and keep(p.measurement, p.tags)]

    answer = metricsql.query(text, rows_of, [T0 + at])
    return {tuple(sorted(s["tags"].items())): s["values"][0][1] for s in answer}


def test_increase_counts_from_the_last_sample_before_the_window_without_extrapolating():
    # scrapes every 10 s; the window (35 s, 95 s] holds 40..90, the sample before it is 30 s
    rows = points("istio_requests_total", {"v": "1"}, [(t * 1000, 3.0 * t) for t in range(0, 100, 10)])
    assert ask(f"increase({COUNTER}[60s])", rows, 95_000) == {(("v", "1"),): 270.0 - 90.0}
    # Prometheus would extrapolate the 50 s between the first and last samples inside to 60 s: 180
    assert ask(f"rate({COUNTER}[60s])", rows, 95_000) == {(("v", "1"),): 180.0 / 60}


def test_a_counter_reset_is_taken_out_and_a_series_born_in_the_window_counts_from_zero():
    restarted = points("istio_requests_total", {"pod": "a"}, [(0, 50.0), (10_000, 60.0), (20_000, 4.0), (30_000, 9.0)])
    born = points("istio_requests_total", {"pod": "b"}, [(20_000, 5.0), (30_000, 7.0)])
    out = ask(f"increase({COUNTER}[25s])", restarted + born, 30_000)
    assert out == {(("pod", "a"),): 10.0 + 4.0 + 5.0, (("pod", "b"),): 7.0}
    # no sample before the window and one inside: no rate (a rate needs two samples)
    assert ask(f"rate({COUNTER}[15s])", born, 20_000) == {}


def test_selectors_offsets_aggregations_and_set_operators():
    rows = (points("istio_requests_total", {"v": "1", "code": "200"}, [(0, 10.0), (60_000, 70.0)])
            + points("istio_requests_total", {"v": "2", "code": "503"}, [(60_000, 4.0)]))
    assert ask(f'{COUNTER}{{code=~"5.."}}', rows, 60_000) == {(("code", "503"), ("v", "2")): 4.0}
    assert ask(f'{COUNTER}{{v!="1"}} offset 60s', rows, 60_000) == {}
    # the analysis's new-series term: a series absent one window ago counts in full
    new = ask(f"sum by (v) (({COUNTER} unless {COUNTER} offset 60s) or increase({COUNTER}[60s]))", rows, 60_000)
    assert new == {(("v", "1"),): 60.0, (("v", "2"),): 4.0}
    assert ask(f"sum({COUNTER}) / 2 > 30", rows, 60_000) == {(): 37.0}
    assert ask(f"count without (code) ({COUNTER}) * 10", rows, 60_000) == {(("v", "1"),): 10.0, (("v", "2"),): 10.0}


def test_histogram_quantile_interpolates_in_the_bucket_that_holds_the_rank():
    buckets = [("10", 90.0), ("100", 99.0), ("+Inf", 100.0)]
    rows = [p for le, n in buckets for p in points("istio_request_duration_milliseconds_bucket", {"le": le}, [(0, 0.0), (60_000, n)])]
    bucket = "istio_prom:istio_request_duration_milliseconds_bucket"
    p50 = ask(f"histogram_quantile(0.5, sum by (le) (increase({bucket}[60s])))", rows, 60_000)[()]
    assert p50 == pytest.approx(10 * 50 / 90)
    p99 = ask(f"histogram_quantile(0.99, sum by (le) (increase({bucket}[60s])))", rows, 60_000)[()]
    assert p99 == pytest.approx(100.0)
    assert math.isnan(ask(f"histogram_quantile(0.99, sum by (le) (increase({bucket}[60s] offset 1h)))", rows,
                          60_000).get((), math.nan))


@pytest.mark.parametrize("text, message", [
    (f"topk(2, {COUNTER})", "topk"), (f"increase({COUNTER})", "range vector"), (f"{COUNTER}[5m]", "needs a function"),
    (f"rate({COUNTER}[5m:1m])", "bad duration"), (f"{COUNTER}{{v=1}}", "quoted string"), ("sum(", "ends too early"),
])
def test_what_the_engine_does_not_take_is_an_error_naming_it(text, message):
    with pytest.raises(metricsql.PromqlError, match=message):
        ask(text, [], 0)


@pytest.fixture(name="sim")
def simulator_with_a_regression():
    """v1 and v2 at one request a second; v2's 503s start 25 s before now (a new series)."""
    # 3.7 s past a scrape: the window's start falls between scrapes
    sim = Simulation(api_keys={"k-metricsql"}, recorder=Recorder(scrape_interval_ms=SCRAPE_MS), clock=ManualClock(T0 + 3_700))
    sim.faults.rate_limit = 10_000
    now = sim.clock.now_ms()
    for t in range(now - 300_000, now, 1000):
        for version in ("v1", "v2"):
            code = "503" if version == "v2" and t >= now - 25_000 else "200"
            labels = dict(LABELS, destination_workload=f"reviews-{version}", destination_version=version, response_code=code)
            sim.recorder.request(t, labels, 20.0)
    server = GuanceServer(sim)
    sim.urls = server.start()
    yield sim
    server.stop()


def test_the_analysis_promql_counts_what_the_scrapes_hold(sim):
    """Through the client and the OpenAPI: each version's count is exactly the growth between the
    scrape before the window and the last scrape in it; the new 503 series counts in full."""
    target = queries.AnalysisTarget(service="reviews", canary_version="v2", baseline_version="v1", namespace="shop",
                                    window_seconds=60)
    query = queries.build_promql(target, metric_prefix="istio_prom:")[queries.Q_REQUESTS]
    client = guance_client.GuanceClient(guance_settings.make_config(url=sim.urls["guance_openapi"], api_key="k-metricsql", retry_budget=0))
    end = sim.clock.now_ms()
    series = client.query([guance_queries.Query(query.query, qtype="promql")], end - 60_000, end).series[0]
    numbers = answers.parse_requests(series, ["v2", "v1"], counter=False)
    last_scrape = end // SCRAPE_MS * SCRAPE_MS
    before = (end - 60_000) // SCRAPE_MS * SCRAPE_MS
    expected = (last_scrape - before) // 1000  # one request a second per version between the two scrapes
    assert numbers["v1"]["request_count"] == expected
    assert numbers["v2"]["request_count"] == expected
    errors = len(range(end - 25_000, last_scrape + 1, 1000))
    assert numbers["v2"]["request_error_rate"] == pytest.approx(100.0 * errors / expected)


def test_a_query_replays_only_the_series_its_selectors_can_match(sim):
    """Another namespace's traffic is left out of the replayed scrapes, and the answer is the one
    every series would give: the filter only saves work."""
    now = sim.clock.now_ms()
    for t in range(now - 300_000, now, 1000):
        sim.recorder.request(t, dict(LABELS, destination_workload_namespace="elsewhere", destination_workload="reviews-v1",
                                     destination_version="v1", response_code="200"), 20.0)
    text = 'sum by (destination_version) (increase(istio_prom:istio_requests_total{namespace="shop"}[60s]))'
    namespaces = set()

    def filtered(namespace, lo, hi, keep):
        rows = sim.recorder.rows_between(namespace, lo, hi, keep)
        namespaces.update(p.tags["namespace"] for p in rows)
        return rows

    def everything(namespace, lo, hi, _keep):
        return sim.recorder.rows_between(namespace, lo, hi)

    answer = metricsql.query(text, filtered, [now])
    assert namespaces == {"shop"}
    assert answer == metricsql.query(text, everything, [now]) and {s["tags"]["destination_version"] for s in answer} == {"v1", "v2"}
