# -*- coding: utf-8 -*-
# Copyright: contributors to the canary.istio collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Tests of plugins/module_utils/_analysis/ (terms, queries, answers, checks, judge): the judge,
the step decision, the query builders and the parsers from series to per-version numbers."""

from __future__ import annotations

import json
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.canary.istio.plugins.module_utils._analysis import answers as an_answers
from ansible_collections.canary.istio.plugins.module_utils._analysis import checks as an_checks
from ansible_collections.canary.istio.plugins.module_utils._analysis import judge as an_judge
from ansible_collections.canary.istio.plugins.module_utils._analysis import queries as an_queries
from ansible_collections.canary.istio.plugins.module_utils._analysis import terms as an_terms

TARGET = an_queries.AnalysisTarget(service="reviews", canary_version="v2", baseline_version="v1", window_seconds=600)


def numbers(canary: dict, baseline: dict | None = None) -> dict:
    out = {"v2": canary}
    if baseline is not None:
        out["v1"] = baseline
    return out


# ---------------------------------------------------------------------------------------------
# judge
# ---------------------------------------------------------------------------------------------


def test_pass_when_every_bound_holds() -> None:
    verdict = an_judge.judge(
        numbers({"request_count": 500, "request_success_rate": 99.5, "request_duration_p99": 120}),
        [an_checks.Check("request_success_rate", min=99), an_checks.Check("request_duration_p99", max=500)],
        "v2", min_requests=50,
    )
    assert verdict.verdict == an_terms.PASS
    assert [c.result for c in verdict.checks] == ["pass", "pass"]
    assert verdict.checks[0].reason == "99.5 >= min 99"


def test_fail_on_a_broken_fixed_bound() -> None:
    verdict = an_judge.judge(
        numbers({"request_count": 500, "request_success_rate": 80.0, "request_duration_p99": 120}),
        [an_checks.Check("request_success_rate", min=99, query="Q1"), an_checks.Check("request_duration_p99", max=500)],
        "v2", min_requests=50,
    )
    assert verdict.verdict == an_terms.FAIL
    assert "request_success_rate: 80 < min 99" in verdict.reason
    as_dict = verdict.as_dict()
    assert as_dict["checks"][0]["query"] == "Q1"
    assert as_dict["checks"][0]["bounds"]["min"] == 99
    assert as_dict["checks"][0]["unit"] == "%"
    assert as_dict["requests"] == {"canary": 500, "baseline": None, "min": 50}


def test_too_few_requests_is_inconclusive_even_when_checks_pass_or_fail() -> None:
    for rate in (100.0, 10.0):
        verdict = an_judge.judge(numbers({"request_count": 3, "request_success_rate": rate}),
                                 [an_checks.Check("request_success_rate", min=99)], "v2", min_requests=50)
        assert verdict.verdict == an_terms.INCONCLUSIVE
        assert "too few canary requests: 3 < min_requests 50" in verdict.reason
        assert len(verdict.checks) == 1  # still reported


def test_missing_request_count_is_inconclusive() -> None:
    verdict = an_judge.judge(numbers({"request_success_rate": 100.0}), [an_checks.Check("request_success_rate", min=99)], "v2")
    assert verdict.verdict == an_terms.INCONCLUSIVE
    assert verdict.reason == "no request count for the canary"


def test_missing_metric_is_inconclusive_not_pass() -> None:
    verdict = an_judge.judge(numbers({"request_count": 100, "request_success_rate": 100.0, "request_duration_p99": None}),
                             [an_checks.Check("request_success_rate", min=99), an_checks.Check("request_duration_p99", max=500)], "v2")
    assert verdict.verdict == an_terms.INCONCLUSIVE
    assert verdict.checks[1].result == an_terms.CHECK_NO_DATA


def test_failure_wins_over_missing_data() -> None:
    verdict = an_judge.judge(numbers({"request_count": 100, "request_success_rate": 50.0}),
                             [an_checks.Check("request_success_rate", min=99), an_checks.Check("request_duration_p99", max=500)], "v2")
    assert verdict.verdict == an_terms.FAIL


def test_relative_error_rate_points_over_baseline() -> None:
    check = [an_checks.Check("request_error_rate", max_over_baseline=1.0)]
    ok = an_judge.judge(numbers({"request_count": 100, "request_error_rate": 1.5}, {"request_count": 900, "request_error_rate": 0.6}),
                        check, "v2", "v1", min_requests=50)
    assert ok.verdict == an_terms.PASS
    assert ok.checks[0].reason == "1.5 <= baseline 0.6 + 1"
    bad = an_judge.judge(numbers({"request_count": 100, "request_error_rate": 1.7}, {"request_count": 900, "request_error_rate": 0.6}),
                         check, "v2", "v1", min_requests=50)
    assert bad.verdict == an_terms.FAIL


def test_relative_p99_ratio() -> None:
    check = [an_checks.Check("request_duration_p99", max_ratio_to_baseline=1.5)]
    base = {"request_count": 900, "request_duration_p99": 100.0}
    assert an_judge.judge(numbers({"request_count": 100, "request_duration_p99": 150.0}, base), check, "v2", "v1").verdict == an_terms.PASS
    assert an_judge.judge(numbers({"request_count": 100, "request_duration_p99": 151.0}, base), check, "v2", "v1").verdict == an_terms.FAIL


def test_relative_check_without_reliable_baseline_is_inconclusive() -> None:
    check = [an_checks.Check("request_duration_p99", max_ratio_to_baseline=1.5)]
    few = an_judge.judge(numbers({"request_count": 100, "request_duration_p99": 10.0}, {"request_count": 2, "request_duration_p99": 100.0}),
                         check, "v2", "v1", min_requests=50)
    assert few.verdict == an_terms.INCONCLUSIVE
    assert "too few baseline requests" in few.reason
    none = an_judge.judge(numbers({"request_count": 100, "request_duration_p99": 10.0}), check, "v2", "v1", min_requests=50)
    assert none.verdict == an_terms.INCONCLUSIVE
    assert "no data for the baseline" in none.reason


def test_fixed_bound_failure_counts_even_without_baseline() -> None:
    check = [an_checks.Check("request_duration_p99", max=500, max_ratio_to_baseline=1.5)]
    verdict = an_judge.judge(numbers({"request_count": 100, "request_duration_p99": 900.0}), check, "v2", "v1")
    assert verdict.verdict == an_terms.FAIL


@pytest.mark.parametrize("baseline, reason", [
    (None, "no data for the baseline"),
    ({"request_count": 3, "request_duration_p99": 100.0}, "too few baseline requests for a comparison"),
])
def test_a_kept_fixed_bound_never_passes_a_relative_bound_it_could_not_judge(baseline, reason) -> None:
    # The canary meets max 500, but whether it is within 1.5 x baseline cannot be known: no data,
    # never a pass on the fixed bound alone.
    check = [an_checks.Check("request_duration_p99", max=500, max_ratio_to_baseline=1.5)]
    verdict = an_judge.judge(numbers({"request_count": 100, "request_duration_p99": 400.0}, baseline), check, "v2", "v1",
                             min_requests=50)
    assert verdict.checks[0].result == an_terms.CHECK_NO_DATA and verdict.checks[0].reason == reason
    assert verdict.verdict == an_terms.INCONCLUSIVE


def test_exactly_min_requests_is_enough_and_one_fewer_is_not() -> None:
    check = [an_checks.Check("request_error_rate", max_over_baseline=1.0)]
    base = {"request_count": 50, "request_error_rate": 1.0}
    enough = an_judge.judge(numbers({"request_count": 50, "request_error_rate": 1.5}, base), check, "v2", "v1", min_requests=50)
    assert enough.verdict == an_terms.PASS
    short = an_judge.judge(numbers({"request_count": 49, "request_error_rate": 1.5}, base), check, "v2", "v1", min_requests=50)
    assert short.verdict == an_terms.INCONCLUSIVE and short.reason == "too few canary requests: 49 < min_requests 50"
    # The baseline at exactly min_requests is reliable too; one fewer is not.
    few_base = an_judge.judge(numbers({"request_count": 50, "request_error_rate": 1.5}, dict(base, request_count=49)), check,
                              "v2", "v1", min_requests=50)
    assert few_base.verdict == an_terms.INCONCLUSIVE and "too few baseline requests" in few_base.reason


@pytest.mark.parametrize("kwargs, message", [
    ({"metric": "x"}, "has no bound"),
    ({"metric": "x", "min": 5, "max": 1}, "min 5 is above max 1"),
    ({"metric": "x", "max": "high"}, "max must be a number"),
    ({"metric": "x", "max": float("nan")}, "max must be a number"),
    ({"metric": "", "max": 1}, "needs a metric name"),
    ({"metric": "x", "max_ratio_to_baseline": -1}, "must be >= 0"),
])
def test_bad_checks_name_the_problem(kwargs: dict, message: str) -> None:
    with pytest.raises(an_terms.AnalysisError, match=message) as info:
        an_checks.Check(**kwargs)
    assert info.value.option == "checks"


def test_judge_refuses_no_checks_and_bad_min_requests() -> None:
    with pytest.raises(an_terms.AnalysisError, match="at least one check"):
        an_judge.judge(numbers({"request_count": 5}), [], "v2")
    with pytest.raises(an_terms.AnalysisError, match="min_requests") as info:
        an_judge.judge(numbers({"request_count": 5}), [an_checks.Check("request_count", min=1)], "v2", min_requests=0)
    assert info.value.option == "min_requests"


finite = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(requests=st.one_of(st.none(), finite), min_requests=st.integers(1, 1000), rate=st.one_of(st.none(), finite),
       bound=finite)
def test_never_pass_without_enough_requests_and_data(requests, min_requests, rate, bound) -> None:
    verdict = an_judge.judge(numbers({"request_count": requests, "request_success_rate": rate}),
                             [an_checks.Check("request_success_rate", min=bound)], "v2", min_requests=min_requests)
    if verdict.verdict == an_terms.PASS:
        assert requests is not None and requests >= min_requests
        assert rate is not None and rate >= bound


@settings(max_examples=200, deadline=None)
@given(canary=finite, baseline=finite, points=finite, ratio=st.floats(0, 10))
def test_relative_bounds_match_their_definition(canary, baseline, points, ratio) -> None:
    base = {"request_count": 100, "m": baseline}
    verdict = an_judge.judge(numbers({"request_count": 100, "m": canary}, base),
                             [an_checks.Check("m", max_over_baseline=points, max_ratio_to_baseline=ratio)], "v2", "v1", min_requests=1)
    expected = canary <= baseline + points and canary <= baseline * ratio
    assert verdict.verdict == (an_terms.PASS if expected else an_terms.FAIL)


# ---------------------------------------------------------------------------------------------
# step decision
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("verdicts, checks, threshold, decision", [
    ([], 3, 1, "continue"),
    (["pass"], 3, 1, "continue"),
    (["pass", "pass", "pass"], 3, 1, "pass"),
    (["pass", "fail"], 3, 1, "fail"),                 # threshold 1: the first failure rolls back
    (["fail"], 3, 2, "continue"),
    (["fail", "pass", "pass"], 3, 2, "pass"),
    (["pass", "pass", "fail"], 3, 2, "continue"),     # last look failed: one more round
    (["pass", "pass", "fail", "pass"], 3, 2, "pass"),
    (["fail", "fail"], 3, 2, "fail"),
    (["inconclusive"], 3, 1, "fail"),                 # inconclusive counts as failure by default
])
def test_step_decision(verdicts, checks, threshold, decision) -> None:
    assert an_judge.step_decision(verdicts, checks, threshold).decision == decision


def test_inconclusive_tolerated_still_never_passes() -> None:
    result = an_judge.step_decision(["pass", "pass", "inconclusive"], 3, 1, inconclusive_is_failure=False)
    assert result.decision == an_terms.INCONCLUSIVE
    assert an_judge.step_decision(["inconclusive"], 1, 2, inconclusive_is_failure=False).decision == "continue"


def test_step_decision_refuses_bad_input() -> None:
    with pytest.raises(an_terms.AnalysisError, match="checks must be"):
        an_judge.step_decision([], 0)
    with pytest.raises(an_terms.AnalysisError, match="unknown verdict 'ok'"):
        an_judge.step_decision(["ok"], 1)


@settings(max_examples=300, deadline=None)
@given(verdicts=st.lists(st.sampled_from(an_terms.VERDICTS), max_size=12), checks=st.integers(1, 5), threshold=st.integers(1, 4),
       tolerate=st.booleans(), wait_on_marginal=st.booleans())
def test_step_decision_properties(verdicts, checks, threshold, tolerate, wait_on_marginal) -> None:
    result = an_judge.step_decision(verdicts, checks, threshold, inconclusive_is_failure=not tolerate,
                                    marginal_is_failure=not wait_on_marginal)
    if result.decision == an_terms.PASS:
        assert verdicts[-1] == an_terms.PASS and len(verdicts) >= checks
        assert result.failed_checks < threshold
    if result.decision == an_judge.CONTINUE:
        assert len(verdicts) < an_judge.max_rounds(checks, threshold)
    failed = sum(1 for v in verdicts if v == an_terms.FAIL or (not tolerate and v == an_terms.INCONCLUSIVE)
                 or (not wait_on_marginal and v == an_terms.MARGINAL))
    assert (result.decision == an_terms.FAIL) == (failed >= threshold)
    assert result.failed_checks == failed


# ---------------------------------------------------------------------------------------------
# query builders
# ---------------------------------------------------------------------------------------------


def test_promql_for_prometheus() -> None:
    queries = {q.key: q for q in an_queries.builtin_queries(TARGET, ["request_success_rate", "request_count", "request_duration_p99"],
                                                            "prometheus")}
    assert list(queries) == ["requests", "latency"]
    assert queries["requests"].qtype == "promql"
    counter = 'istio_requests_total{reporter="destination",destination_workload=~"reviews-.*",destination_version=~"v2|v1"}'
    # A series new in the window (a regression's first 5xx) counts in full, not dropped by increase().
    assert queries["requests"].query == (
        f"sum by (destination_version, response_code) (({counter} unless {counter} offset 600s) or increase({counter}[600s]))")
    assert queries["latency"].query == (
        'histogram_quantile(0.99, sum by (le, destination_version) (rate(istio_request_duration_milliseconds_bucket'
        '{reporter="destination",destination_workload=~"reviews-.*",destination_version=~"v2|v1"}[600s])))')


def test_guance_promql_uses_measurement_prefix_and_dql_for_traces_and_logs() -> None:
    queries = {q.key: q for q in an_queries.builtin_queries(TARGET, list(an_terms.BUILTIN_METRICS), "guance")}
    assert "istio_prom:istio_requests_total{" in queries["requests"].query
    assert "istio_prom:istio_request_duration_milliseconds_bucket{" in queries["latency"].query
    assert queries["traces"].qtype == "dql"
    assert queries["traces"].query == (
        "T::`reviews`:(count(`*`) AS `spans`) { `version` IN ['v2', 'v1'] } [600s] BY `version`, `status`")
    assert queries["logs"].query == (
        "L::re(`.*`):(count(`*`) AS `errors`) { `service` = 'reviews', `status` = 'error', `version` IN ['v2', 'v1'] } "
        "[600s] BY `version`")


def test_guance_dql_istio_queries() -> None:
    target = an_queries.AnalysisTarget(service="reviews", canary_version="v2", baseline_version="v1", namespace="prod",
                                       window_seconds=300, step_seconds=30)
    queries = {q.key: q for q in an_queries.builtin_queries(target, ["request_count", "request_duration_p99"], "guance", "dql")}
    assert queries["requests"].query == (
        "M::`istio_prom`:(sum(`istio_requests_total`) AS `requests`) { `reporter` = 'destination', "
        "`destination_workload` = re(`reviews-.*`), `destination_version` IN ['v2', 'v1'], "
        "`destination_workload_namespace` = 'prod' } [360s::30s:last] BY `destination_version`, `response_code`")
    assert queries["latency"].query.endswith("[360s::30s:last] BY `destination_version`, `le`")
    # the counters reach two buckets before the window, in the statement and in the time range
    assert queries["requests"].lookback_s == queries["latency"].lookback_s == 60


def test_labels_keep_one_clusters_numbers_apart() -> None:
    """Several clusters reporting to one workspace: the extra labels go into every Istio metric query."""
    target = an_queries.AnalysisTarget(service="reviews", canary_version="v2", baseline_version="v1", namespace="prod",
                                       labels=(("destination_cluster", "eu-1"),))
    promql = {q.key: q.query for q in an_queries.builtin_queries(target, ["request_count", "request_duration_p99"], "prometheus")}
    assert all('destination_workload_namespace="prod",destination_cluster="eu-1"}' in q for q in promql.values()), promql
    dql = {q.key: q.query for q in an_queries.builtin_queries(target, ["request_count", "request_duration_p99"], "guance", "dql")}
    assert all("`destination_workload_namespace` = 'prod', `destination_cluster` = 'eu-1' }" in q for q in dql.values()), dql


@pytest.mark.parametrize("labels, fragment", [
    ((("destination-cluster", "eu-1"),), "not a label name"),
    ((("destination_cluster", 'eu"1'),), "without quotes"),
    ((("destination_cluster", "eu`1"),), "without quotes"),
    ((("destination_cluster", 1),), "must be a string"),
])
def test_bad_labels_are_refused_naming_the_option(labels, fragment) -> None:
    with pytest.raises(an_terms.AnalysisError, match=fragment) as info:
        an_queries.AnalysisTarget(service="reviews", canary_version="v2", labels=labels)
    assert info.value.option == "labels"


def test_builder_errors_name_the_option() -> None:
    with pytest.raises(an_terms.AnalysisError, match="no traces or logs") as info:
        an_queries.builtin_queries(TARGET, ["trace_error_rate"], "prometheus")
    assert info.value.option == "checks"
    with pytest.raises(an_terms.AnalysisError, match="unknown built-in metric 'cpu'"):
        an_queries.builtin_queries(TARGET, ["cpu"], "guance")
    with pytest.raises(an_terms.AnalysisError, match="provider must be") as info:
        an_queries.builtin_queries(TARGET, ["request_count"], "datadog")
    assert info.value.option == "provider"


@pytest.mark.parametrize("kwargs, option", [
    ({"service": "Reviews!"}, "service"),
    ({"canary_version": "v2;drop"}, "canary_version"),
    ({"baseline_version": "v2"}, "baseline_version"),
    ({"window_seconds": 0}, "window_seconds"),
    ({"reporter": 'x"}'}, "reporter"),
    ({"workload_regex": 'a"b'}, "workload_regex"),
])
def test_target_rejects_values_that_would_break_a_query(kwargs, option) -> None:
    base = {"service": "reviews", "canary_version": "v2", "baseline_version": "v1"}
    with pytest.raises(an_terms.AnalysisError) as info:
        an_queries.AnalysisTarget(**dict(base, **kwargs))
    assert info.value.option == option


# ---------------------------------------------------------------------------------------------
# parsers
# ---------------------------------------------------------------------------------------------


def s(tags: dict, rows: list, columns: tuple = ("time", "v")) -> dict:
    return {"name": "x", "tags": tags, "columns": list(columns), "rows": rows}


def test_counter_increase_handles_resets() -> None:
    assert an_answers.counter_increase([10, 15, 20]) == 10
    assert an_answers.counter_increase([10, 15, 3, 8]) == 5 + 3 + 5
    assert an_answers.counter_increase([7]) == 0
    assert an_answers.counter_increase([]) == 0


@given(st.lists(st.floats(0, 1e9), min_size=1, max_size=30))
def test_counter_increase_properties(values) -> None:
    grown = an_answers.counter_increase(values)
    assert grown >= 0
    if values == sorted(values):
        assert math.isclose(grown, values[-1] - values[0], rel_tol=1e-9, abs_tol=1e-6)


def test_histogram_quantile_like_prometheus() -> None:
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
def test_histogram_quantile_stays_in_its_bucket_range(increments, q) -> None:
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


def test_parse_le() -> None:
    assert an_terms.parse_le("+Inf") == math.inf
    assert an_terms.parse_le("1.8e+06") == 1800000.0
    assert an_terms.parse_le("0.5") == 0.5
    assert an_terms.parse_le(None) is None
    assert an_terms.parse_le("abc") is None


def test_requests_from_promql_increase() -> None:
    series = [
        s({"destination_version": "v2", "response_code": "200"}, [[1, "95"]]),
        s({"destination_version": "v2", "response_code": "503"}, [[1, "5"]]),
        s({"destination_version": "v1", "response_code": "200"}, [[1, "900"]]),
        s({"destination_version": "v9", "response_code": "500"}, [[1, "900"]]),  # not ours
    ]
    out = an_answers.parse_requests(series, ["v2", "v1"], counter=False)
    assert out["v2"] == {"request_count": 100, "request_error_rate": 5.0, "request_success_rate": 95.0}
    assert out["v1"]["request_error_rate"] == 0.0


def test_requests_from_dql_counters_newest_first() -> None:
    series = [
        s({"destination_version": "v2", "response_code": "200"}, [[3000, 180], [2000, 150], [1000, 100]]),
        s({"destination_version": "v2", "response_code": "500"}, [[3000, 30], [1000, 10]]),
    ]
    out = an_answers.parse_requests(series, ["v2", "v1"], counter=True)
    assert out["v2"]["request_count"] == 100
    assert out["v2"]["request_error_rate"] == 20.0
    # no series for v1: zero requests and no rate, never "100% success"
    assert out["v1"] == {"request_count": 0, "request_error_rate": None, "request_success_rate": None}


def test_dql_counters_with_lookback_count_the_whole_window_and_new_series() -> None:
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


def test_dql_lookback_on_an_answer_that_does_not_reach_back_undercounts() -> None:
    """A service younger than the lookback: the first buckets answered are taken as the lookback,
    so the round sees less, never more (an undercount can only make it inconclusive)."""
    series = [s({"destination_version": "v2", "response_code": "200"}, [[4000, 30], [3000, 20]])]
    assert an_answers.parse_requests(series, ["v2"], counter=True, lookback_buckets=2)["v2"]["request_count"] == 0
    series.append(s({"destination_version": "v2", "response_code": "500"}, [[5000, 5]]))
    assert an_answers.window_increase(series, 2) == [0, 5]


def test_dql_lookback_never_takes_a_bucket_inside_the_window_as_the_base() -> None:
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


def test_latency_from_dql_buckets_with_a_new_canary() -> None:
    """The canary's bucket series all start inside the window: counted from 0, so its p99 is seen."""
    old = [s({"destination_version": "v1", "le": le}, [[3000, 100], [2000, 50], [1000, 40]]) for le in ("10", "+Inf")]
    new = [s({"destination_version": "v2", "le": le}, [[3000, end]]) for le, end in (("10", 1), ("100", 100), ("+Inf", 100))]
    out = an_answers.parse_latency_buckets(old + new, ["v2", "v1"], lookback_buckets=2)
    assert out["v2"] == pytest.approx(10 + 90 * 98 / 99)  # rank 99 of 100, inside (10, 100]
    assert out["v1"] == pytest.approx(9.9)
    assert an_answers.parse_latency_buckets(old + new, ["v2", "v1"])["v2"] is None


def test_latency_from_dql_buckets() -> None:
    rows = {"10": (0, 50), "50": (0, 90), "100": (0, 99), "500": (0, 100), "+Inf": (0, 100)}
    series = [s({"destination_version": "v2", "le": le}, [[2000, end], [1000, start]]) for le, (start, end) in rows.items()]
    out = an_answers.parse_latency_buckets(series, ["v2", "v1"])
    # rank 99 of 100 is reached exactly at le=100
    assert out["v2"] == pytest.approx(100.0)
    assert out["v1"] is None


def test_latency_from_promql_nan_is_no_data() -> None:
    series = [s({"destination_version": "v2"}, [[1, "NaN"]]), s({"destination_version": "v1"}, [[1, "42.5"]])]
    assert an_answers.parse_latency_promql(series, ["v2", "v1"]) == {"v2": None, "v1": 42.5}


def test_traces_and_logs() -> None:
    spans = [
        {"tags": {"version": "v2", "status": "ok"}, "columns": ["time", "spans"], "rows": [[None, 90]]},
        {"tags": {"version": "v2", "status": "error"}, "columns": ["time", "spans"], "rows": [[None, 10]]},
    ]
    assert an_answers.parse_traces(spans, ["v2", "v1"]) == {"v2": 10.0, "v1": None}
    logs = [{"tags": {"version": "v2"}, "columns": ["time", "errors"], "rows": [[None, 4]]}]
    assert an_answers.parse_logs(logs, ["v2", "v1"]) == {"v2": 4, "v1": 0}


def test_builtin_numbers_end_to_end_then_judge() -> None:
    queries = {q.key: q for q in an_queries.builtin_queries(TARGET, ["request_success_rate", "request_duration_p99"], "prometheus")}
    answers = {
        "requests": [
            s({"destination_version": "v2", "response_code": "200"}, [[1, "80"]]),
            s({"destination_version": "v2", "response_code": "500"}, [[1, "20"]]),
            s({"destination_version": "v1", "response_code": "200"}, [[1, "400"]]),
        ],
        "latency": [s({"destination_version": "v2"}, [[1, "30"]]), s({"destination_version": "v1"}, [[1, "25"]])],
    }
    table = an_answers.builtin_numbers(TARGET, answers, queries)
    assert table.get("v2", "request_success_rate") == 80.0
    verdict = an_judge.judge(table, [an_checks.Check("request_success_rate", min=99), an_checks.Check("request_duration_p99", max=500)], "v2", "v1",
                             min_requests=50)
    assert verdict.verdict == an_terms.FAIL
    # an unanswered query leaves its metrics without data
    table = an_answers.builtin_numbers(TARGET, {"requests": answers["requests"]}, queries)
    assert table.get("v2", "request_duration_p99") is None


def test_custom_values() -> None:
    by_version = [s({"version": "v2"}, [[2, 3.0], [1, 9.0]]), s({"version": "v1"}, [[1, 1.0]])]
    assert an_answers.custom_values(by_version, ["v2", "v1"], "version") == {"v2": 3.0, "v1": 1.0}
    assert an_answers.custom_values([s({}, [[1, 7]])], ["v2", "v1"]) == {"v2": 7, "v1": None}
    assert an_answers.custom_values([], ["v2"]) == {"v2": None}
    with pytest.raises(an_terms.AnalysisError, match="returned 2 series"):
        an_answers.custom_values(by_version, ["v2", "v1"])
    with pytest.raises(an_terms.AnalysisError, match="several series for version 'v2'"):
        an_answers.custom_values(by_version + [s({"version": "v2"}, [[1, 1]])], ["v2", "v1"], "version")


def test_series_points_tolerates_odd_rows() -> None:
    series = {"columns": ["time", "a", "b"], "rows": [[2, None, 1], [1, "x", 2], "junk", [3, 5]]}
    assert an_answers.series_points(series) == [(3.0, 5.0)]
    assert an_answers.series_points(series, "b") == [(1.0, 2.0), (2.0, 1.0)]
    assert an_answers.series_points({"columns": ["time"], "rows": [[1]]}) == []
    assert an_answers.series_tag({"columns": ["time", "host"], "rows": [[1, "h1"]]}, "host") == "h1"


def test_with_queries_fills_builtin_queries_only() -> None:
    queries = an_queries.builtin_queries(TARGET, ["request_success_rate", "request_duration_p99"], "prometheus")
    checks = an_judge.with_queries([an_checks.Check("request_success_rate", min=99), an_checks.Check("request_duration_p99", max=500, query="mine"),
                                    an_checks.Check("custom", max=1)], queries)
    assert checks[0].query == queries[0].query
    assert checks[1].query == "mine"
    assert checks[2].query is None


# ---------------------------------------------------------------------------------------------
# one round end to end
# ---------------------------------------------------------------------------------------------

P95 = an_judge.CustomMetric("p95_ms", "M::`app`:(max(`p95`) AS `p95`) BY `version`", version_tag="version")


def test_plan_round_always_counts_requests_and_batches_customs() -> None:
    queries = an_judge.plan_round(TARGET, [an_checks.Check("trace_error_rate", max=5), an_checks.Check("p95_ms", max_ratio_to_baseline=1.2)],
                                  "guance", [P95, an_judge.CustomMetric("unused", "L::x")])
    assert [q.key for q in queries] == ["requests", "traces", "custom:p95_ms"]
    assert queries[2].query == P95.query


def test_plan_round_errors() -> None:
    with pytest.raises(an_terms.AnalysisError, match="unknown metric 'cpu'") as info:
        an_judge.plan_round(TARGET, [an_checks.Check("cpu", max=1)], "guance")
    assert info.value.option == "checks"
    with pytest.raises(an_terms.AnalysisError, match="is DQL; the prometheus provider") as info:
        an_judge.plan_round(TARGET, [an_checks.Check("p95_ms", max=1)], "prometheus", [P95])
    assert info.value.option == "metrics"
    with pytest.raises(an_terms.AnalysisError, match="name of a built-in"):
        an_judge.CustomMetric("request_count", "x")
    with pytest.raises(an_terms.AnalysisError, match="same name"):
        an_judge.plan_round(TARGET, [an_checks.Check("p95_ms", max=1)], "guance", [P95, P95])


def test_judge_round_end_to_end() -> None:
    checks = [an_checks.Check("request_success_rate", min=99), an_checks.Check("p95_ms", max_ratio_to_baseline=1.2)]
    queries = an_judge.plan_round(TARGET, checks, "guance", [P95])
    answers = {
        "requests": [s({"destination_version": "v2", "response_code": "200"}, [[1, "200"]]),
                     s({"destination_version": "v1", "response_code": "200"}, [[1, "800"]])],
        "custom:p95_ms": [s({"version": "v2"}, [[1, 130.0]]), s({"version": "v1"}, [[1, 100.0]])],
    }
    verdict = an_judge.judge_round(TARGET, checks, queries, answers, [P95], min_requests=50)
    assert verdict.verdict == an_terms.FAIL
    assert verdict.checks[0].result == "pass" and verdict.checks[0].query == queries[0].query
    assert verdict.checks[1].reason == "130 > baseline 100 x 1.2" and verdict.checks[1].query == P95.query
    # the custom query unanswered: no data, so inconclusive rather than pass
    del answers["custom:p95_ms"]
    assert an_judge.judge_round(TARGET, checks, queries, answers, [P95], min_requests=50).verdict == an_terms.INCONCLUSIVE


# --- names with '-', '.', '_' and digits in PromQL and DQL (a hyphen broke every round) -----------

@pytest.mark.parametrize("service, version", [("details-api", "v1.2"), ("my.svc-2", "v2-rc.1"), ("reviews2", "2024")])
def test_promql_escapes_names_for_promql_strings_and_re2(service, version):
    target = an_queries.AnalysisTarget(service=service, canary_version=version, baseline_version="v1", window_seconds=60)
    query = an_queries.build_promql(target)["requests"].query
    workload = re.search(r'destination_workload=~("(?:[^"\\]|\\.)*")', query).group(1)
    versions = re.search(r'destination_version=~("(?:[^"\\]|\\.)*")', query).group(1)
    # PromQL's string syntax takes the Go escapes only (\\ \" \n ...): never \- or \.
    for literal in (workload, versions):
        assert not re.search(r'(?<!\\)\\[^\\"nrtabfv]', literal.replace("\\\\", "")), literal
    # Unquoted, the patterns match exactly the names (RE2 agrees with Python's re on these).
    workload_re = json.loads(workload)
    versions_re = json.loads(versions)
    assert re.fullmatch(workload_re, service + "-" + version)
    if "." in service:
        assert not re.fullmatch(workload_re, service.replace(".", "x") + "-v1"), "a dot matches only a dot"
    assert re.fullmatch(versions_re, version) and not re.fullmatch(versions_re, version + "x")
    if "." in version:
        assert not re.fullmatch(versions_re, version.replace(".", "x"))


def test_dql_keeps_names_raw_inside_backticks():
    target = an_queries.AnalysisTarget(service="details-api", canary_version="v1.2", baseline_version="v1", window_seconds=60)
    query = an_queries.builtin_queries(target, ["request_count"], "guance", "dql")[0].query
    assert "re(`details-api-.*`)" in query and "IN ['v1.2', 'v1']" in query


# --- the observed share of requests against the configured weight --------------------------------

SHARE_CHECKS = [an_checks.Check("request_success_rate", min=95)]


def _share_round(canary_requests, baseline_requests, weight, min_requests=20):
    table = {"v2": {"request_count": canary_requests, "request_success_rate": 100.0},
             "v1": {"request_count": baseline_requests, "request_success_rate": 100.0}}
    return an_judge.judge(table, SHARE_CHECKS, "v2", "v1", min_requests, expected_weight=weight)


def test_a_mesh_ignoring_the_weights_fails_the_round_before_too_few_requests():
    verdict = _share_round(0, 400, 10)
    assert verdict.verdict == an_terms.FAIL
    assert verdict.reason.startswith("traffic_share: observed 0% of 400 requests on the canary")
    assert ("configured 10%: the requests do not follow the weights (the mesh does not apply the VirtualService, "
            "or the canary has no Ready pod)") in verdict.reason
    even = _share_round(200, 200, 10)  # a mesh sending to every pod alike
    assert even.verdict == an_terms.FAIL


def test_normal_rounds_at_10_percent_pass_the_share_check():
    import random
    rng = random.Random(3)
    for _round in range(200):
        n = rng.randint(100, 2000)
        canary = sum(rng.random() < 0.10 for _request in range(n))
        verdict = _share_round(canary, n - canary, 10, min_requests=1)
        assert verdict.verdict == an_terms.PASS, (canary, n, verdict.reason)


def test_small_samples_cannot_fail_the_share_check():
    few = _share_round(0, 15, 10, min_requests=1)  # 0 of 15 at 10% happens one time in five
    assert few.verdict == an_terms.INCONCLUSIVE and "too few canary requests" in few.reason
    assert [c.result for c in few.checks if c.metric == an_judge.TRAFFIC_SHARE] == [an_terms.CHECK_PASS]
    assert _share_round(0, 0, 10).verdict == an_terms.INCONCLUSIVE


def test_no_share_check_without_a_weight_or_at_0():
    assert not [c for c in _share_round(0, 400, None).checks if c.metric == an_judge.TRAFFIC_SHARE]
    assert not [c for c in _share_round(0, 400, 0).checks if c.metric == an_judge.TRAFFIC_SHARE]
    full = _share_round(0, 400, 100)
    assert full.verdict == an_terms.FAIL, "a 100% weight with all requests on the stable version is not routing"


def test_expected_weight_is_validated():
    with pytest.raises(an_terms.AnalysisError) as err:
        from ansible_collections.canary.istio.plugins.module_utils._analysis.settings import plan_from_params
        plan_from_params({"service": "reviews", "canary_version": "v2", "baseline_version": "v1", "expected_weight": 101})
    assert err.value.option == "expected_weight"


def test_a_new_canary_counted_from_its_first_scrape_is_not_failed_for_it():
    # 10% of 2000 requests, the canary's new series counted over half the window: 5.3%.
    assert _share_round(106, 1894, 10).verdict == an_terms.PASS
    # Measured on the sandbox (three clusters' first step): 14% of 171 requests under a 50% weight.
    assert _share_round(24, 147, 50).verdict == an_terms.PASS
    few = _share_round(2, 2000, 50)  # some canary requests: an undercount, not a mesh ignoring it
    assert [c.result for c in few.checks if c.metric == an_judge.TRAFFIC_SHARE] == [an_terms.CHECK_PASS]
    assert _share_round(0, 400, 10).verdict == an_terms.FAIL
    assert _share_round(0, 80, 10).verdict == an_terms.INCONCLUSIVE, "80 baseline requests promise under 10 canary ones"
