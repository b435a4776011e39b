# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_report/content.py: records to the series, markers and rows a report is drawn from."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.canary.istio.plugins.module_utils._report import content as r
from ansible_collections.canary.istio.plugins.module_utils._report import records as rr
from ansible_collections.canary.istio.tests.unit.plugins.module_utils.report_samples import (
    T0,
    header,
    promoted_release,
    rolled_back_release,
)


def report_of(records: list, **overrides) -> r.Report:
    normalised = rr.normalise_records(records)
    return r.build_report(header(**overrides), normalised, rr.outcome_from_records(normalised),
                          normalised[-1].get("message") if normalised else None)


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def test_traffic_series_and_markers_of_a_promoted_release() -> None:
    report = report_of(promoted_release())
    assert report.versions == ["v1", "v2"]
    assert [(p.time, p.weights) for p in report.traffic] == [
        (at(0), {"v1": 100, "v2": 0}), (at(20), {"v1": 90, "v2": 10}), (at(115), {"v1": 75, "v2": 25}),
        (at(210), {"v1": 50, "v2": 50}), (at(305), {"v1": 0, "v2": 100})]
    assert [(m.time, m.event, m.label) for m in report.markers] == [(at(305), "promoted", "promoted")]
    assert report.final_weights == {"v1": 0, "v2": 100}
    assert (report.started, report.ended) == (at(0), at(305))
    assert report.outcome_label == "promoted" and report.baseline_version == "v1"


def test_metric_series_hold_each_version_per_round_with_bounds_and_verdicts() -> None:
    report = report_of(rolled_back_release())
    assert [m.metric for m in report.metrics] == ["request_success_rate", "request_duration_p99", "request_error_rate"]
    p99 = report.metrics[1]
    assert p99.title == "request_duration_p99 (ms)"
    # Four rounds (two per step), measured at the end of each round's window.
    times = [at(45), at(75), at(110), at(140)]
    assert p99.values["v2"] == [(times[0], None), (times[1], 190.0), (times[2], 210.0), (times[3], 460.0)]
    assert p99.values["v1"] == [(times[0], 160.0), (times[1], 170.0), (times[2], 175.0), (times[3], 180.0)]
    assert p99.bound_kinds() == ["max 500", "baseline \u00d7 1.5"]
    relative = [(b.time, b.value) for b in p99.bounds if b.kind == "relative"]
    # The ratio bound is a limit computed from each round's baseline: 1.5 x v1's p99.
    assert relative == [(times[0], 240.0), (times[1], 255.0), (times[2], 262.5), (times[3], 270.0)]
    assert {b.value for b in p99.bounds if b.kind == "max"} == {500.0}
    assert [(v.result, v.value) for v in p99.verdicts] == [("no_data", None), ("pass", 190.0), ("pass", 210.0),
                                                           ("fail", 460.0)]
    errors = report.metrics[2]
    assert [b.label for b in errors.bounds] == ["baseline + 1"] * 4
    assert errors.bounds[-1].value == pytest.approx(1.5)


def test_step_rows_carry_the_step_to_its_analysis() -> None:
    report = report_of(rolled_back_release())
    rows = [(row.event, row.step, row.traffic, row.verdict, row.rounds) for row in report.steps]
    assert rows == [
        ("start", "", "v1 100% \u00b7 v2 0%", None, None),
        ("step", "step 1 (10%)", "v1 90% \u00b7 v2 10%", None, None),
        ("analysis", "step 1 (10%)", "", "pass", 2),
        ("step", "step 2 (25%)", "v1 75% \u00b7 v2 25%", None, None),
        ("analysis", "step 2 (25%)", "", "fail", 2),
        ("rolled back", "", "v1 100% \u00b7 v2 0%", None, None),
    ]
    assert report.steps[-1].text.startswith("analysis of reviews v2 failed in round 2")
    # An analysis record without its own step number takes the step before it.
    records = rolled_back_release()
    del records[2]["step"], records[2]["weight"]
    assert report_of(records).steps[2].step == "step 1 (10%)"


def test_check_rows_one_per_check_per_round() -> None:
    report = report_of(rolled_back_release())
    assert len(report.checks) == 2 * 2 * 3
    failing = [row for row in report.checks if row.result == "fail"]
    assert [(row.step, row.round, row.metric, row.canary, row.baseline, row.bound) for row in failing] == [
        ("step 2 (25%)", 2, "request_success_rate", pytest.approx(79.8), pytest.approx(99.5), "min 99"),
        ("step 2 (25%)", 2, "request_duration_p99", 460.0, 180.0, "max 500, baseline \u00d7 1.5"),
        ("step 2 (25%)", 2, "request_error_rate", pytest.approx(20.2), 0.5, "baseline + 1"),
    ]
    # The query behind a check goes along (the samples name the requests query only).
    assert failing[0].query.startswith("sum by (destination_version") and failing[1].query is None


def test_a_third_version_and_checks_without_numbers() -> None:
    """Weights naming another version put it in the chart; a round without numbers still
    charts the canary and baseline from the checks themselves."""
    records = [
        {"time": "2026-11-26T06:00:00Z", "event": "start", "weights": {"v1": 50, "v0": 50}},
        {"time": "2026-11-26T06:01:00Z", "event": "analysis", "analysis": {
            "verdict": "pass", "reason": "ok", "rounds": [{
                "round": 1, "verdict": "pass", "checks": [{
                    "metric": "p95_ms", "result": "pass", "canary": 80, "baseline": 70, "unit": None,
                    "bounds": {"max": 100}}]}]}},
    ]
    report = report_of(records)
    assert report.versions == ["v1", "v2", "v0"]
    series = report.metrics[0]
    assert series.title == "p95_ms" and series.values == {"v1": [(at(60), 70.0)], "v2": [(at(60), 80.0)]}
    assert report.outcome == "running" and report.markers == []


def test_no_records() -> None:
    report = r.build_report(header(), [], "running")
    assert report.traffic == [] and report.metrics == [] and report.steps == [] and report.started is None


@pytest.mark.parametrize("value, text", [(None, "no data"), (99.0, "99"), (99.65, "99.65"), (0.012345, "0.01235"),
                                         (1234567.0, "1234567"), (-3.5, "-3.5")])
def test_fmt_number(value, text) -> None:
    assert r.fmt_number(value) == text


def test_fmt_duration_and_weights() -> None:
    assert r.fmt_duration(at(0), at(144)) == "2 min 24 s"
    assert r.fmt_duration(at(0), at(3 * 3600 + 65)) == "3 h 01 min"
    assert r.fmt_duration(at(0), at(9)) == "9 s"
    assert r.fmt_duration(None, at(9)) == ""
    assert r.fmt_weights({"v2": 10, "v1": 90, "v0": 0}, ["v1", "v2"]) == "v1 90% \u00b7 v2 10% \u00b7 v0 0%"
    assert r.fmt_weights(None) == ""


def test_traffic_share_charts_observed_beside_configured():
    from ansible_collections.canary.istio.plugins.module_utils._report import content as rp
    bounds = {"min": None, "max": None, "max_over_baseline": None, "max_ratio_to_baseline": None}
    check = {"metric": "traffic_share", "result": "fail", "reason": "observed 0% ...", "canary": 0.0, "baseline": 10.0,
             "unit": "%", "query": None, "bounds": bounds}
    metrics = {}
    when = rp.datetime.datetime(2026, 1, 1, tzinfo=rp.datetime.timezone.utc)
    rp._add_round(metrics, {"round": 1, "checks": [check], "numbers": {}}, when, ["v1", "v2"], "v2", "v1")
    series = metrics["traffic_share"]
    assert series.values == {"v2": [(when, 0.0)]}, "the stable version's line must not carry the configured weight"
    assert [(b.label, b.value) for b in series.bounds] == [("configured weight", 10.0)]
    assert [v.result for v in series.verdicts] == ["fail"]
