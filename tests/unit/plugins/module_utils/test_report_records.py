# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_report/records.py: release records read, normalised, merged and stored."""

from __future__ import annotations

import copy
import datetime

import pytest

from ansible_collections.canary.istio.plugins.module_utils._analysis import terms
from ansible_collections.canary.istio.plugins.module_utils._report import records as rr
from ansible_collections.canary.istio.tests.unit.plugins.module_utils.report_samples import (
    promoted_release,
    rolled_back_release,
)


UTC = datetime.timezone.utc


@pytest.mark.parametrize("text, expected", [
    ("2026-11-26T06:00:00Z", datetime.datetime(2026, 11, 26, 6, tzinfo=UTC)),
    ("2026-11-26T06:00:00+00:00", datetime.datetime(2026, 11, 26, 6, tzinfo=UTC)),
    ("2026-11-26T14:00:00+08:00", datetime.datetime(2026, 11, 26, 6, tzinfo=UTC)),
    # now(utc=true).isoformat() in a playbook: no zone, microseconds.
    ("2026-11-26T06:00:00.123456", datetime.datetime(2026, 11, 26, 6, 0, 0, 123456, tzinfo=UTC)),
])
def test_parse_time(text, expected) -> None:
    assert rr.parse_time(text, "time") == expected


def test_format_time_is_utc_with_z_and_milliseconds_only_when_there_are_some() -> None:
    assert rr.format_time(datetime.datetime(2026, 11, 26, 14, tzinfo=datetime.timezone(datetime.timedelta(hours=8)))) \
        == "2026-11-26T06:00:00Z"
    assert rr.format_time(datetime.datetime(2026, 11, 26, 6, 0, 0, 123456, tzinfo=UTC)) == "2026-11-26T06:00:00.123Z"


@pytest.mark.parametrize("value", ["yesterday", "", None, 1764136800, "2026-13-01T00:00:00Z"])
def test_bad_time_names_the_field(value) -> None:
    with pytest.raises(rr.RecordError, match=r"^records\[0\]\.time: expected an ISO 8601 time") as info:
        rr.normalise_record({"time": value, "event": "start"}, "records[0]")
    assert info.value.field == "records[0].time"


def test_a_record_is_normalised() -> None:
    record = rr.normalise_record({
        "time": "2026-11-26T14:00:00+08:00", "event": "step", "step": "2", "weight": 25.0,
        "weights": {"v1": "75", "v2": 25}, "message": None,
    })
    assert record == {"time": "2026-11-26T06:00:00Z", "event": "step", "step": 2, "weight": 25,
                      "weights": {"v1": 75, "v2": 25}}


@pytest.mark.parametrize("record, field, text", [
    ({"event": "step", "weights": {"v1": 90, "v2": 20}}, "r.weights", "weights must add up to 100, got 110"),
    ({"event": "step", "weights": {"v1": 101, "v2": -1}}, "r.weights.v1", "must be between 0 and 100, got 101"),
    ({"event": "step", "weights": {"v1": "ninety", "v2": 10}}, "r.weights.v1", "expected a whole number"),
    ({"event": "step", "weights": {"v 1": 100}}, "r.weights key", "expected a version label value"),
    ({"event": "step", "weights": {}}, "r.weights", "give at least one version's weight"),
    ({"event": "step", "weights": [90, 10]}, "r.weights", "expected a mapping, got list"),
    ({"event": "step"}, "r.weights", "a step record needs the weights"),
    ({"event": "analysis"}, "r.analysis", "needs the canary_analysis result"),
    ({"event": "promote"}, "r.event", "expected one of start, step, analysis, promoted, rolled_back, failed"),
    ({"event": "start", "note": "x"}, "r.note", "unknown field; a record has time, event"),
    ({"event": "start", "weight": 110}, "r.weight", "must be between 0 and 100"),
    ({"event": "start", "step": True}, "r.step", "expected a whole number, got True"),
    ({"event": "analysis", "analysis": {"verdict": "ok"}}, "r.analysis.verdict", "expected one of pass, fail"),
    ({"event": "analysis", "analysis": {"verdict": "pass", "rounds": {"round": 1}}}, "r.analysis.rounds",
     "expected a list, got dict"),
    ({"event": "analysis", "analysis": {"verdict": "pass", "rounds": [{"round": 0, "verdict": "pass"}]}},
     "r.analysis.rounds[0].round", "must be >= 1"),
    ({"event": "analysis", "analysis": {"verdict": "pass", "rounds": [
        {"round": 1, "verdict": "pass", "start_ms": 2000, "end_ms": 1000}]}},
     "r.analysis.rounds[0].start_ms", "is after end_ms"),
    ({"event": "analysis", "analysis": {"verdict": "pass", "rounds": [
        {"round": 1, "verdict": "pass", "checks": [{"metric": "p99", "result": "passed"}]}]}},
     "r.analysis.rounds[0].checks[0].result", "expected one of pass, fail, no_data"),
    ({"event": "analysis", "analysis": {"verdict": "pass", "rounds": [
        {"round": 1, "verdict": "pass", "checks": [{"metric": "p99", "result": "pass", "bounds": {"minimum": 1}}]}]}},
     "r.analysis.rounds[0].checks[0].bounds", "unknown bound 'minimum'"),
    ({"event": "analysis", "analysis": {"verdict": "pass", "rounds": [
        {"round": 1, "verdict": "pass", "checks": [{"metric": "p99", "result": "pass", "canary": "fast"}]}]}},
     "r.analysis.rounds[0].checks[0].canary", "expected a number or null"),
    ({"event": "analysis", "analysis": {"verdict": "pass", "rounds": [
        {"round": 1, "verdict": "pass", "numbers": {"v2": {"p99": [1]}}}]}},
     "r.analysis.rounds[0].numbers.v2.p99", "expected a number or null"),
])
def test_bad_records_name_the_field(record, field, text) -> None:
    with pytest.raises(rr.RecordError) as info:
        rr.normalise_record(dict({"time": "2026-11-26T06:00:00Z"}, **record), "r")
    assert info.value.field == field
    assert str(info.value).startswith(field + ": ") and text in str(info.value), str(info.value)


def test_records_must_be_a_list_of_mappings() -> None:
    with pytest.raises(rr.RecordError, match=r"^records: expected a list"):
        rr.normalise_records({"time": "x"})
    with pytest.raises(rr.RecordError, match=r"^records\[1\]: expected a mapping, got str"):
        rr.normalise_records([{"time": "2026-11-26T06:00:00Z", "event": "start"}, "step 1"])


def test_analysis_keeps_what_the_report_needs_and_numbers_become_floats_or_none() -> None:
    analysis = rolled_back_release()[4]["analysis"]
    assert analysis["failed"] is True and "queries" in analysis  # a registered result
    out = rr.normalise_analysis(analysis, "a")
    assert set(out) == {"verdict", "reason", "rounds", "provider", "baseline_version", "canary_version", "window_s",
                        "interval_s"}
    one_round = out["rounds"][1]
    assert set(one_round) == set(rr.ROUND_KEYS)
    assert one_round["numbers"]["v2"]["request_success_rate"] == pytest.approx(79.8)
    assert one_round["checks"][0]["bounds"] == {"min": 99.0, "max": None, "max_over_baseline": None,
                                                "max_ratio_to_baseline": None}
    numbers = {"v2": {"p99": float("nan"), "rate": "99.5"}}
    nan_round = rr.normalise_round({"round": 1, "verdict": "inconclusive", "numbers": numbers}, "x")
    assert nan_round["numbers"] == {"v2": {"p99": None, "rate": 99.5}}


def test_normalising_twice_changes_nothing() -> None:
    for records in (promoted_release(), rolled_back_release()):
        once = rr.normalise_records(records)
        assert rr.normalise_records(copy.deepcopy(once)) == once


def test_the_canary_weight_must_agree_with_the_weights() -> None:
    records = rr.normalise_records([{"time": "2026-11-26T06:00:00Z", "event": "step", "weight": 10,
                                     "weights": {"v1": 90, "v2": 10}}])
    rr.check_canary_weight(records, "v2")
    with pytest.raises(rr.RecordError, match=r"records\[0\]\.weight: weight 10 is not the canary v3's weight"):
        rr.check_canary_weight([dict(records[0], weights={"v1": 80, "v3": 20})], "v3")


def test_merge_keeps_each_record_once_in_time_order() -> None:
    records = rr.normalise_records(rolled_back_release())
    stored = records[:4]
    # A resumed run: its own records, one already stored, in another order.
    merged = rr.merge_records(stored, [records[5], records[3], records[4]])
    assert merged == records
    # Same time, different records: both kept, in the order they came.
    same = [dict(records[0], message="first"), dict(records[0], message="second")]
    assert [r["message"] for r in rr.merge_records([], same)] == ["first", "second"]


def test_outcome_from_records() -> None:
    records = rr.normalise_records(promoted_release())
    assert rr.outcome_from_records(records) == "promoted"
    assert rr.outcome_from_records(records[:-1]) == "running"
    assert rr.outcome_from_records(rr.normalise_records(rolled_back_release())) == "rolled_back"
    assert rr.outcome_from_records([]) == "running"


@pytest.mark.parametrize("value, expected", [
    ("reviews-v2", "reviews-v2"),
    ("reviews/v2 by ops@ctl", "reviews_v2_by_ops_ctl"),
    ("../../etc", "etc"),
    (".hidden", "hidden"),
    ("sandbox-1.example.com", "sandbox-1.example.com"),
    ("x" * 300, "x" * 100),
])
def test_safe_name(value, expected) -> None:
    assert rr.safe_name(value, "release") == expected


@pytest.mark.parametrize("value", ["", "  ", "..", "/", None])
def test_safe_name_refuses_names_without_letters(value) -> None:
    with pytest.raises(rr.RecordError, match="^cluster: ") as info:
        rr.safe_name(value, "cluster")
    assert info.value.field == "cluster"


def test_document_round_trip() -> None:
    records = rr.normalise_records(promoted_release())
    doc = rr.document({"release": "r", "cluster": "c", "app": "reviews", "namespace": "prod",
                       "stable_version": "v1", "canary_version": "v2"}, {"status": "promoted", "reason": None}, records)
    assert doc["schema"] == rr.SCHEMA_VERSION and doc["outcome"] == {"status": "promoted", "reason": None}
    assert rr.read_document(copy.deepcopy(doc), "records.json")["records"] == records
    with pytest.raises(rr.RecordError, match="^records.json: not a release records file of schema 1"):
        rr.read_document({"schema": 2, "records": []}, "records.json")
    broken = copy.deepcopy(doc)
    broken["records"][1]["weights"] = {"v1": 50}
    with pytest.raises(rr.RecordError, match=r"^records.json records\[1\]\.weights: weights must add up to 100"):
        rr.read_document(broken, "records.json")


def test_an_analysis_that_stopped_with_an_error_is_kept_with_its_message() -> None:
    """canary_analysis fails without a verdict when it cannot decide (Guance unreachable); the
    registered result is still a record, its msg the reason."""
    failed = {"failed": True, "msg": "querying Guance: connection refused", "rounds": [], "checks": [],
              "provider": "guance", "canary_version": "v2"}
    out = rr.normalise_analysis(failed, "a")
    assert out["verdict"] is None and out["reason"] == "querying Guance: connection refused" and out["rounds"] == []
    with pytest.raises(rr.RecordError, match=r"^a\.verdict: expected one of pass, fail, inconclusive, marginal, or a failed"):
        rr.normalise_analysis({"rounds": []}, "a")


class TestTheSamples:
    """The samples the report tests draw (report_samples.py) follow the schema."""

    def test_samples_follow_the_schema_and_keep_the_judges_results(self) -> None:
        for records in (promoted_release(), rolled_back_release()):
            normalised = rr.normalise_records(copy.deepcopy(records))
            assert [r["event"] for r in normalised] == [r["event"] for r in records]
            for record, original in zip(normalised, records):
                if "analysis" in original:
                    assert record["analysis"]["verdict"] == original["analysis"]["verdict"]
                    # What the report keeps of a registered result: no changed/failed/msg/queries.
                    assert set(record["analysis"]) <= set(rr.ANALYSIS_KEYS)
                    assert "http_requests" not in record["analysis"]["rounds"][0]

    def test_the_rolled_back_sample_fails_on_the_success_rate(self) -> None:
        records = rolled_back_release()
        assert records[-1]["message"].startswith("analysis of reviews v2 failed in round 2: request_success_rate 79.8 < min 99")
        failing = [c for c in records[-2]["analysis"]["rounds"][-1]["checks"] if c["result"] == "fail"]
        assert [c["metric"] for c in failing] == [terms.REQUEST_SUCCESS_RATE, terms.REQUEST_DURATION_P99, terms.REQUEST_ERROR_RATE]
        first_round = records[2]["analysis"]["rounds"][0]
        assert first_round["verdict"] == "inconclusive"
        assert [c["result"] for c in first_round["checks"]] == ["pass", "no_data", "pass"]


def test_a_step_record_keeps_its_kind_and_label_and_refuses_an_unknown_kind() -> None:
    record = {"time": "2026-03-02T10:00:00Z", "event": "step", "step": 1, "kind": "match",
              "label": "A/B end-user exact jason", "weight": 0, "weights": {"v1": 100, "v2": 0}}
    assert rr.normalise_record(record)["kind"] == "match"
    assert rr.normalise_record(record)["label"] == "A/B end-user exact jason"
    with pytest.raises(rr.RecordError) as caught:
        rr.normalise_records([dict(record, kind="shadow")])
    assert caught.value.field == "records[0].kind" and "shadow" in str(caught.value)
