# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_analysis/answers.py: from the providers' series to per-version numbers."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.canary.istio.plugins.module_utils._analysis import answers as an_answers
from ansible_collections.canary.istio.plugins.module_utils._analysis import terms as an_terms


def s(tags: dict, rows: list, columns: tuple = ("time", "v")) -> dict:
    return {"name": "x", "tags": tags, "columns": list(columns), "rows": rows}


class TestCounters:
    def test_counter_increase_handles_resets(self) -> None:
        assert an_answers.counter_increase([10, 15, 20]) == 10
        assert an_answers.counter_increase([10, 15, 3, 8]) == 5 + 3 + 5
        assert an_answers.counter_increase([7]) == 0
        assert an_answers.counter_increase([]) == 0

    @given(st.lists(st.floats(0, 1e9), min_size=1, max_size=30))
    def test_counter_increase_properties(self, values) -> None:
        grown = an_answers.counter_increase(values)
        assert grown >= 0
        if values == sorted(values):
            assert math.isclose(grown, values[-1] - values[0], rel_tol=1e-9, abs_tol=1e-6)


class TestHistograms:
    def test_histogram_quantile_like_prometheus(self) -> None:
        buckets = {5.0: 0, 10.0: 50, 25.0: 90, 50.0: 100, math.inf: 100}
        # rank 99 lies in (25, 50]: 25 + 25 * (99 - 90) / 10
        assert an_answers.histogram_quantile(0.99, buckets) == pytest.approx(47.5)
        # rank 25 in (5, 10]: 5 + 5 * 25/50
        assert an_answers.histogram_quantile(0.25, buckets) == pytest.approx(7.5)
        # first bucket starts at 0
        assert an_answers.histogram_quantile(0.5, {1.0: 10, math.inf: 10}) == pytest.approx(0.5)
        # rank in +Inf: the highest finite bound
        assert an_answers.histogram_quantile(0.99, {1.0: 10, math.inf: 100}) == 1.0
        assert an_answers.histogram_quantile(0.99, {1.0: 0, math.inf: 0}) is None
        assert an_answers.histogram_quantile(0.99, {1.0: 5, 2.0: 10}) is None  # no +Inf bucket
        # non-monotonic counts are made monotonic
        assert an_answers.histogram_quantile(0.5, {1.0: 10, 2.0: 8, math.inf: 20}) == pytest.approx(an_answers.histogram_quantile(
            0.5, {1.0: 10, 2.0: 10, math.inf: 20}))
        with pytest.raises(an_terms.AnalysisError):
            an_answers.histogram_quantile(1.5, buckets)

    @settings(max_examples=200, deadline=None)
    @given(increments=st.lists(st.integers(0, 1000), min_size=2, max_size=10), q=st.floats(0, 1))
    def test_histogram_quantile_stays_in_its_bucket_range(self, increments, q) -> None:
        bounds = [0.5 * 2 ** i for i in range(len(increments) - 1)] + [math.inf]
        cumulative, total = [], 0
        for inc in increments:
            total += inc
            cumulative.append(total)
        value = an_answers.histogram_quantile(q, dict(zip(bounds, cumulative)))
        if total == 0:
            assert value is None
            return
        assert value is not None
        assert 0 <= value <= bounds[-2]
        higher = an_answers.histogram_quantile(min(1.0, q + 0.1), dict(zip(bounds, cumulative)))
        assert higher >= value - 1e-9

    def test_histogram_bins_and_mean(self) -> None:
        canary = {10.0: 2.0, 100.0: 6.0, float("inf"): 8.0}
        baseline = {10.0: 1.0, 50.0: 3.0, 100.0: 3.0, float("inf"): 4.0}
        bounds, (c_bins, b_bins) = an_answers.histogram_bins(canary, baseline)
        assert bounds == [10.0, 50.0, 100.0, float("inf")]
        assert c_bins == [2.0, 0.0, 4.0, 2.0]  # no 50 bound in the canary's: its 10-100 count stays in the 100 bin
        assert b_bins == [1.0, 2.0, 0.0, 1.0]
        # Each observation at its bucket's middle, the +Inf ones at the highest finite bound.
        assert an_answers.histogram_mean(canary) == pytest.approx((2 * 5 + 4 * 55 + 2 * 100) / 8)
        assert an_answers.histogram_mean({10.0: 1.0}) is None and an_answers.histogram_mean({10.0: 0.0, float("inf"): 0.0}) is None
        # Counts that dip (buckets not read atomically) are made monotonic, never negative bins.
        assert an_answers.histogram_bins({10.0: 5.0, 20.0: 4.0, float("inf"): 6.0})[1][0] == [5.0, 0.0, 1.0]


class TestRequests:
    def test_requests_from_promql_increase(self) -> None:
        series = [
            s({"destination_version": "v2", "response_code": "200"}, [[1, "95"]]),
            s({"destination_version": "v2", "response_code": "503"}, [[1, "5"]]),
            s({"destination_version": "v1", "response_code": "200"}, [[1, "900"]]),
            s({"destination_version": "v9", "response_code": "500"}, [[1, "900"]]),  # not ours
        ]
        out = an_answers.parse_requests(series, ["v2", "v1"], counter=False)
        assert out["v2"] == {"request_count": 100, "request_error_rate": 5.0, "request_success_rate": 95.0}
        assert out["v1"]["request_error_rate"] == 0.0

    def test_requests_from_dql_counters_newest_first(self) -> None:
        series = [
            s({"destination_version": "v2", "response_code": "200"}, [[3000, 180], [2000, 150], [1000, 100]]),
            s({"destination_version": "v2", "response_code": "500"}, [[3000, 30], [1000, 10]]),
        ]
        out = an_answers.parse_requests(series, ["v2", "v1"], counter=True)
        assert out["v2"]["request_count"] == 100
        assert out["v2"]["request_error_rate"] == 20.0
        # no series for v1: zero requests and no rate, never "100% success"
        assert out["v1"] == {"request_count": 0, "request_error_rate": None, "request_success_rate": None}

    def test_dql_counters_with_lookback_count_the_whole_window_and_new_series(self) -> None:
        """Buckets 1000 and 2000 are before the window (lookback 2), 3000 and 4000 inside it."""
        series = [
            # long-lived: grows from its value at the window's start (2000), not from the oldest bucket
            s({"destination_version": "v2", "response_code": "200"}, [[4000, 190], [3000, 150], [2000, 100], [1000, 60]]),
            # missed the scrape of the last lookback bucket: grows from the one before, never from 0
            s({"destination_version": "v1", "response_code": "200"}, [[4000, 5000], [3000, 4990], [1000, 4900]]),
            # a response code first seen in the window: its first value counts in full
            s({"destination_version": "v2", "response_code": "503"}, [[4000, 10]]),
        ]
        out = an_answers.parse_requests(series, ["v2", "v1"], counter=True, lookback_buckets=2)
        assert out["v2"]["request_count"] == 90 + 10
        assert out["v2"]["request_error_rate"] == 10.0
        assert out["v1"]["request_count"] == 100
        # without the lookback the new series was invisible and the first bucket's growth too
        assert an_answers.parse_requests(series, ["v2", "v1"], counter=True)["v2"]["request_count"] == 130

    def test_dql_lookback_on_an_answer_that_does_not_reach_back_undercounts(self) -> None:
        """A service younger than the lookback: the first buckets answered are taken as the lookback,
    so the round sees less, never more (an undercount can only make it inconclusive)."""
        series = [s({"destination_version": "v2", "response_code": "200"}, [[4000, 30], [3000, 20]])]
        assert an_answers.parse_requests(series, ["v2"], counter=True, lookback_buckets=2)["v2"]["request_count"] == 0
        series.append(s({"destination_version": "v2", "response_code": "500"}, [[5000, 5]]))
        assert an_answers.window_increase(series, 2) == [0, 5]

    def test_dql_lookback_never_takes_a_bucket_inside_the_window_as_the_base(self) -> None:
        """Buckets labelled at their start (align_time), step 1000, window from 2500. Every series
    missed the scrape of bucket 1000: counting two buckets would take 3000, inside the window,
    as the base; the window's start keeps the base at 2000 (its scrape was before 2500)."""
        series = [s({"destination_version": "v2", "response_code": "200"}, [[5000, 190], [4000, 150], [3000, 120], [2000, 100]]),
                  s({"destination_version": "v2", "response_code": "503"}, [[5000, 7], [4000, 3]])]
        assert an_answers.window_increase(series, 2) == [70, 7]  # by count alone: 20 requests lost
        assert an_answers.window_increase(series, 2, window_start_ms=2500) == [90, 7]
        out = an_answers.parse_requests(series, ["v2"], counter=True, lookback_buckets=2, window_start_ms=2500)
        assert out["v2"]["request_count"] == 97
        # a bucket before the window's start but after the counted lookback is left as it was
        assert an_answers.window_increase(series, 2, window_start_ms=3500) == [70, 7]


class TestLatency:
    def test_latency_from_dql_buckets_with_a_new_canary(self) -> None:
        """The canary's bucket series all start inside the window: counted from 0, so its p99 is seen."""
        old = [s({"destination_version": "v1", "le": le}, [[3000, 100], [2000, 50], [1000, 40]]) for le in ("10", "+Inf")]
        new = [s({"destination_version": "v2", "le": le}, [[3000, end]]) for le, end in (("10", 1), ("100", 100), ("+Inf", 100))]
        out = an_answers.parse_latency_buckets(old + new, ["v2", "v1"], lookback_buckets=2)
        assert out["v2"] == pytest.approx(10 + 90 * 98 / 99)  # rank 99 of 100, inside (10, 100]
        assert out["v1"] == pytest.approx(9.9)
        assert an_answers.parse_latency_buckets(old + new, ["v2", "v1"])["v2"] is None

    def test_latency_from_dql_buckets(self) -> None:
        rows = {"10": (0, 50), "50": (0, 90), "100": (0, 99), "500": (0, 100), "+Inf": (0, 100)}
        series = [s({"destination_version": "v2", "le": le}, [[2000, end], [1000, start]]) for le, (start, end) in rows.items()]
        out = an_answers.parse_latency_buckets(series, ["v2", "v1"])
        # rank 99 of 100 is reached exactly at le=100
        assert out["v2"] == pytest.approx(100.0)
        assert out["v1"] is None

    def test_latency_from_promql_nan_is_no_data(self) -> None:
        series = [s({"destination_version": "v2"}, [[1, "NaN"]]), s({"destination_version": "v1"}, [[1, "42.5"]])]
        assert an_answers.parse_latency_promql(series, ["v2", "v1"]) == {"v2": None, "v1": 42.5}


class TestTracesLogsAndCustomValues:
    def test_traces_and_logs(self) -> None:
        spans = [
            {"tags": {"version": "v2", "status": "ok"}, "columns": ["time", "spans"], "rows": [[None, 90]]},
            {"tags": {"version": "v2", "status": "error"}, "columns": ["time", "spans"], "rows": [[None, 10]]},
        ]
        assert an_answers.parse_traces(spans, ["v2", "v1"]) == {"v2": 10.0, "v1": None}
        logs = [{"tags": {"version": "v2"}, "columns": ["time", "errors"], "rows": [[None, 4]]}]
        assert an_answers.parse_logs(logs, ["v2", "v1"]) == {"v2": 4, "v1": 0}

    def test_custom_values(self) -> None:
        by_version = [s({"version": "v2"}, [[2, 3.0], [1, 9.0]]), s({"version": "v1"}, [[1, 1.0]])]
        assert an_answers.custom_values(by_version, ["v2", "v1"], "version") == {"v2": 3.0, "v1": 1.0}
        assert an_answers.custom_values([s({}, [[1, 7]])], ["v2", "v1"]) == {"v2": 7, "v1": None}
        assert an_answers.custom_values([], ["v2"]) == {"v2": None}
        with pytest.raises(an_terms.AnalysisError, match="returned 2 series"):
            an_answers.custom_values(by_version, ["v2", "v1"])
        with pytest.raises(an_terms.AnalysisError, match="several series for version 'v2'"):
            an_answers.custom_values(by_version + [s({"version": "v2"}, [[1, 1]])], ["v2", "v1"], "version")

    def test_series_points_tolerates_odd_rows(self) -> None:
        series = {"columns": ["time", "a", "b"], "rows": [[2, None, 1], [1, "x", 2], "junk", [3, 5]]}
        assert an_answers.series_points(series) == [(3.0, 5.0)]
        assert an_answers.series_points(series, "b") == [(1.0, 2.0), (2.0, 1.0)]
        assert an_answers.series_points({"columns": ["time"], "rows": [[1]]}) == []
        assert an_answers.series_tag({"columns": ["time", "host"], "rows": [[1, "h1"]]}, "host") == "h1"
