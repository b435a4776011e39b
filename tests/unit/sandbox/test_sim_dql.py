"""DQL evaluator against hand-computed answers from hand-made rows and recorded requests."""
from __future__ import annotations

import pytest

from sandbox.sim.dql import DqlError, evaluate, parse
from sandbox.sim.record import Point, Recorder

T0 = 1_699_999_980_000  # a whole minute, so 1m buckets start at T0
NOW = T0 + 600_000

# (service, version, duration µs, status, http code, trace id) at T0 + i seconds
SPANS = [("reviews", "v1", 100, "ok", "200", "a"), ("reviews", "v1", 200, "ok", "200", "a"),
         ("reviews", "v1", 300, "ok", "200", "b"), ("reviews", "v1", 400, "ok", "200", "c"),
         ("reviews", "v2", 1000, "ok", "200", "d"), ("reviews", "v2", 2000, "ok", "200", "e"),
         ("reviews", "v2", 3000, "error", "503", "f"), ("ratings", "v1", 50, "error", "500", "f")]


@pytest.fixture(name="rec")
def recorder_with_data() -> Recorder:
    rec = Recorder(scrape_interval_ms=10_000)
    for i, (svc, ver, dur, status, code, trace) in enumerate(SPANS):
        rec.add("T", Point(svc, {"service": svc, "version": ver, "status": status, "http_status_code": code},
                           {"duration": dur, "trace_id": trace}, T0 + i * 1000))
        rec.add("L", Point(svc, {"service": svc, "version": ver, "status": "error" if status == "error" else "info"},
                           {"message": f"span {i}"}, T0 + i * 1000))
    rec.add("E", Point("custom", {"df_source": "custom", "df_status": "info"}, {"df_title": "Canary started"}, T0 + 1))
    rec.add("E", Point("monitor", {"df_source": "monitor", "df_status": "warning"}, {"df_title": "CPU high"}, T0 + 2))
    labels = {"reporter": "destination", "destination_service_name": "reviews", "source_workload": "productpage-v1"}
    for k in range(120):  # reviews-v1: one request per second for two minutes, 30 ms each
        v1 = dict(labels, destination_workload="reviews-v1", destination_version="v1", response_code="200")
        rec.request(T0 + k * 1000 + 500, v1, 30.0)
    for k in range(10):  # reviews-v2: ten requests, four of them 500s, 70 ms each
        v2 = dict(labels, destination_workload="reviews-v2", destination_version="v2", response_code="500" if k < 4 else "200")
        rec.request(T0 + 5000 + k * 1000, v2, 70.0)
    return rec


def run(rec: Recorder, text: str, **kw):
    return evaluate(text, rec.rows_between, NOW, **kw)


def by_tags(result, column: str) -> dict:
    col = None
    out = {}
    for s in result.series:
        col = s["columns"].index(column)
        out[tuple(s["tags"].values())] = [row[col] for row in s["values"]]
    assert col is not None or not result.series
    return out


def test_trace_counts_by_service_and_version(rec):
    result = run(rec, "T::`reviews`:(count(`*`) AS `spans`) [10m] BY `service`, `version`")
    assert by_tags(result, "spans") == {("reviews", "v1"): [4], ("reviews", "v2"): [3]}
    assert result.series[0]["columns"] == ["time", "spans"]
    assert result.series[0]["values"][0][0] is None  # no time bucket on T::
    errors = run(rec, "T::`reviews`:(count(`*`) AS `errors`) { `status` = 'error' } [10m] BY `service`, `version`")
    assert by_tags(errors, "errors") == {("reviews", "v2"): [1]}


def test_percentile_of_duration(rec):
    result = run(rec, "T::`reviews`:(percentile(`duration`, 99) AS `p99_us`) [10m] BY `version`")
    # linear interpolation: v1 [100..400] rank 2.97 -> 397; v2 [1000, 2000, 3000] rank 1.98 -> 2980
    assert by_tags(result, "p99_us") == {("v1",): [pytest.approx(397)], ("v2",): [pytest.approx(2980)]}


def test_count_distinct_with_comparison_and_regex_source(rec):
    result = run(rec, "T::RE(`.*`):(COUNT_DISTINCT(`trace_id`)) {`http_status_code` >= '500'} BY `service`")
    assert by_tags(result, "count_distinct(trace_id)") == {("ratings",): [1], ("reviews",): [1]}
    total = run(rec, "T::re(`.*`):(count(`trace_id`) AS n, sum(duration) AS d, avg(duration) AS a, min(duration) AS lo, "
                     "max(duration) AS hi) [10m]")
    (row,) = total.series[0]["values"]
    assert row[1:] == [8, 7050, pytest.approx(7050 / 8), 50, 3000]


def test_filters_in_not_in_or_and_numbers(rec):
    def count(where):
        result = run(rec, f"T::re(`.*`):(count(`*`) AS c) {{ {where} }} [10m]")
        return result.series[0]["values"][0][1] if result.series else 0
    assert count("duration > 250") == 5
    assert count("duration <= 200") == 3
    assert count("version IN ['v2', 'v9']") == 3
    assert count("version NOT IN ['v1']") == 3  # ratings is v1 too
    assert count("service != 'reviews'") == 1
    assert count("status = 'error' || duration < 150") == 3
    assert count("(version = 'v1' || version = 'v2'), status = 'ok'") == 6
    assert count("version = re('v.')") == 8
    assert count("version = re('v')") == 0  # whole-value match outside M::
    assert count("missing_field != 'x'") == 8
    assert count("missing_field = 'x'") == 0


def test_logs_and_events(rec):
    result = run(rec, "L::re(`.*`):(count(`*`) AS `errors`) { `service` = 'reviews', `status` = 'error' } [10m] BY `service`")
    assert by_tags(result, "errors") == {("reviews",): [1]}
    events = run(rec, "E::re(`.*`):(`df_title`, `df_status`, `df_source`) { `df_source` = 'custom' } [1h] LIMIT 20")
    assert events.series[0]["columns"] == ["time", "df_title", "df_status", "df_source"]
    assert events.series[0]["values"] == [[T0 + 1, "Canary started", "info", "custom"]]


def test_time_range_forms_and_interval_buckets(rec):
    def spans(text, **kw):
        result = run(rec, text, **kw)
        return result.series[0]["values"] if result.series else []
    assert spans(f"T::reviews:(count(*) AS c) [{T0}:{T0 + 2000}]") == [[None, 3]]
    assert spans(f"T::reviews:(count(*) AS c) [{T0 // 1000}:{T0 // 1000 + 1}]") == [[None, 2]]  # seconds
    assert spans("T::reviews:(count(*) AS c) [1h]", time_range=[T0 + 4000, T0 + 6000]) == [[None, 3]]  # request wins
    assert spans(f"T::reviews:(count(*) AS c) [{T0}:{T0 + 5999}:2s]") == [[T0 + 4000, 2], [T0 + 2000, 2], [T0, 2]]
    assert spans("T::reviews:(count(*) AS c) [1m]") == []  # all spans are older than NOW - 1m


def test_interval_buckets_sit_on_the_interval_grid_with_align_time(rec):
    """Spans at T0 + 0..6 s, range from T0 + 1 s: with align_time the buckets sit on multiples of
    2 s (the first one cut by the range), without it they count from the range's start; either
    way each is labelled at its start."""
    text = f"T::reviews:(count(*) AS c) [{T0 + 1000}:{T0 + 6999}:2s]"
    aligned = [[t - T0, n] for t, n in run(rec, text, align_time=True).series[0]["values"]]
    assert aligned == [[6000, 1], [4000, 2], [2000, 2], [0, 1]]
    from_start = [[t - T0, n] for t, n in run(rec, text).series[0]["values"]]
    assert from_start == [[5000, 2], [3000, 2], [1000, 2]]


def test_limit_slimit_offset_and_listing(rec):
    listing = run(rec, "T::reviews:(duration, version) LIMIT 2")
    assert listing.series[0]["values"] == [[T0 + 6000, 3000, "v2"], [T0 + 5000, 2000, "v2"]]
    assert run(rec, "T::reviews:(duration) ORDER BY time ASC LIMIT 1").series[0]["values"] == [[T0, 100]]
    assert run(rec, "T::reviews:(duration) LIMIT 1 OFFSET 1").series[0]["values"] == [[T0 + 5000, 2000]]
    grouped = run(rec, "T::reviews:(count(*) AS c) BY version SLIMIT 1")
    assert [s["tags"] for s in grouped.series] == [{"version": "v1"}]
    assert [s["tags"] for s in run(rec, "T::reviews:(count(*) AS c) BY version SLIMIT 1 SOFFSET 1").series] == [{"version": "v2"}]
    assert len(run(rec, "T::reviews:(count(*) AS c) BY version", slimit=1).series) == 1
    assert len(run(rec, "T::reviews:(count(*) AS c) BY version", default_slimit=20).series) == 2


def test_istio_prom_counters_and_buckets(rec):
    window = [T0, T0 + 120_000]
    result = run(rec, "M::`istio_prom`:(max(`istio_requests_total`) AS `c`) { `reporter` = 'destination' } BY `destination_version`",
                 time_range=window)
    assert by_tags(result, "c") == {("v1",): [120], ("v2",): [6]}  # v2's 200 series holds 6, its 500 series 4
    assert result.series[0]["name"] == "istio_prom"
    errors = run(rec, "M::`istio_prom`:(max(`istio_requests_total`) AS `c`) { `reporter` = 'destination', "
                      "`destination_workload` = re(`reviews-.*`), `response_code` = re(`5..`) } [10m] BY `destination_version`",
                 time_range=window)
    assert by_tags(errors, "c") == {("v2",): [4]}
    buckets = run(rec, "M::`istio_prom`:(max(`istio_request_duration_milliseconds_bucket`) AS `c`) "
                       "{ `reporter` = 'destination', `destination_workload` = re(`reviews-.*`) } [10m] BY `destination_version`, `le`",
                  time_range=window)
    got = by_tags(buckets, "c")
    assert got[("v1", "25")] == [0] and got[("v1", "50")] == [120] and got[("v1", "+Inf")] == [120]
    assert got[("v2", "50")] == [0] and got[("v2", "100")] == [6]


def test_istio_prom_rate_rollup(rec):
    result = run(rec, "M::`istio_prom`:(sum(`istio_requests_total`) AS `rps`) { `reporter` = 'destination', "
                      "`destination_workload` = re(`reviews-.*`) } [10m::1m:rate] BY `destination_version`",
                 time_range=[T0, T0 + 120_000])
    # v1: one request per second -> 1/s in each 1m bucket (and in the one-scrape bucket at the range end)
    assert by_tags(result, "rps")[("v1",)] == [pytest.approx(1.0)] * 3
    assert [row[0] for row in result.series[0]["values"]] == [T0 + 120_000, T0 + 60_000, T0]
    increase = run(rec, "M::istio_prom:(sum(istio_requests_total) AS n) { reporter = 'destination' } [10m::1m:increase] "
                        "BY destination_version", time_range=[T0, T0 + 60_000 - 1])
    # v2: 500s at 5..8 s, 200s at 9..14 s; scrapes in [T0, T0+60s) at 10..50 s (no series at T0).
    # 500 series: 4,4,4,4,4 -> +0; 200 series: 2,6,6,6,6 -> +4 (the first scrape has no earlier value to increase from).
    assert by_tags(increase, "n")[("v2",)] == [4]


@pytest.mark.parametrize("text, message", [
    ("M::cpu:(foo(usage))", "unsupported function foo"),
    ("T::x:(count(*)) { exists(a) }", "unsupported filter function exists"),
    ("R::x:(count(*))", "unsupported namespace"),
    ("T::x:(count(*)) BY a HAVING c > 1", "unsupported DQL clause"),
    ("T::x:(count(*), duration)", "cannot mix"),
    ("T::x:(count(*)) [10m::1m:rate]", r"metrics \(M::\) only"),
    ("M::x:(sum(a)) [10m::1m:bogus]", "unsupported rollup"),
    ("T::x:(count(*)) { a = 'b' ", "parse error"),
    ("T::x:(percentile(a, 150))", "0..100"),
    ("", "empty query"),
    ("T::x:(count(*)) LIMIT ten", "whole number"),
])
def test_unsupported_syntax_is_an_error(text, message):
    with pytest.raises(DqlError, match=message):
        parse(text) if "rollup" not in message and "M::" not in message else evaluate(text, lambda ns, s, e: [], NOW)


def test_conditions_are_anded(rec):
    result = run(rec, "T::reviews:(count(*) AS c) [10m]", conditions="{ version = 'v2' }")
    assert result.series[0]["values"] == [[None, 3]]


def test_whole_window_increase_and_rows_without_the_field(rec):
    # [:::increase] over the whole window uses the scrape just before it as the base: requests in (T0+10s, T0+60s]
    result = run(rec, "M::istio_prom:(sum(istio_requests_total) AS n) { reporter = 'destination' } [:::increase] BY destination_version",
                 time_range=[T0 + 10_001, T0 + 60_000])
    # v1: one per second at 10.5 .. 59.5 s; v2: its 200s at 11, 12, 13 and 14 s (the 500s all came before the base)
    assert by_tags(result, "n") == {("v1",): [50], ("v2",): [4]}
    # bucket fields live on points with `le`; the _sum/_count point (no `le`) makes no group
    buckets = run(rec, "M::istio_prom:(max(istio_request_duration_milliseconds_bucket) AS c) BY le", time_range=[T0, T0 + 60_000])
    assert "" not in {s["tags"]["le"] for s in buckets.series}
