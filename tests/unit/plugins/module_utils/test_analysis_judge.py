# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_analysis/judge.py: a round's verdict, the step decision, the traffic share and scoring."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.canary.istio.plugins.module_utils._analysis import answers as an_answers
from ansible_collections.canary.istio.plugins.module_utils._analysis import checks as an_checks
from ansible_collections.canary.istio.plugins.module_utils._analysis import judge as an_judge
from ansible_collections.canary.istio.plugins.module_utils._analysis import queries as an_queries
from ansible_collections.canary.istio.plugins.module_utils._analysis import settings as analysis_settings
from ansible_collections.canary.istio.plugins.module_utils._analysis import terms as an_terms


TARGET = an_queries.AnalysisTarget(service="reviews", canary_version="v2", baseline_version="v1", window_seconds=600)


def numbers(canary: dict, baseline: dict | None = None) -> dict:
    out = {"v2": canary}
    if baseline is not None:
        out["v1"] = baseline
    return out


def s(tags: dict, rows: list, columns: tuple = ("time", "v")) -> dict:
    return {"name": "x", "tags": tags, "columns": list(columns), "rows": rows}


finite = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)


class TestJudge:
    def test_pass_when_every_bound_holds(self) -> None:
        verdict = an_judge.judge(
            numbers({"request_count": 500, "request_success_rate": 99.5, "request_duration_p99": 120}),
            [an_checks.Check("request_success_rate", min=99), an_checks.Check("request_duration_p99", max=500)],
            "v2", min_requests=50,
        )
        assert verdict.verdict == an_terms.PASS
        assert [c.result for c in verdict.checks] == ["pass", "pass"]
        assert verdict.checks[0].reason == "99.5 >= min 99"

    def test_fail_on_a_broken_fixed_bound(self) -> None:
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

    def test_too_few_requests_is_inconclusive_even_when_checks_pass_or_fail(self) -> None:
        for rate in (100.0, 10.0):
            verdict = an_judge.judge(numbers({"request_count": 3, "request_success_rate": rate}),
                                     [an_checks.Check("request_success_rate", min=99)], "v2", min_requests=50)
            assert verdict.verdict == an_terms.INCONCLUSIVE
            assert "too few canary requests: 3 < min_requests 50" in verdict.reason
            assert len(verdict.checks) == 1  # still reported

    def test_missing_request_count_is_inconclusive(self) -> None:
        verdict = an_judge.judge(numbers({"request_success_rate": 100.0}), [an_checks.Check("request_success_rate", min=99)], "v2")
        assert verdict.verdict == an_terms.INCONCLUSIVE
        assert verdict.reason == "no request count for the canary"

    def test_missing_metric_is_inconclusive_not_pass(self) -> None:
        verdict = an_judge.judge(numbers({"request_count": 100, "request_success_rate": 100.0, "request_duration_p99": None}),
                                 [an_checks.Check("request_success_rate", min=99), an_checks.Check("request_duration_p99", max=500)], "v2")
        assert verdict.verdict == an_terms.INCONCLUSIVE
        assert verdict.checks[1].result == an_terms.CHECK_NO_DATA

    def test_failure_wins_over_missing_data(self) -> None:
        verdict = an_judge.judge(numbers({"request_count": 100, "request_success_rate": 50.0}),
                                 [an_checks.Check("request_success_rate", min=99), an_checks.Check("request_duration_p99", max=500)], "v2")
        assert verdict.verdict == an_terms.FAIL

    def test_relative_error_rate_points_over_baseline(self) -> None:
        check = [an_checks.Check("request_error_rate", max_over_baseline=1.0)]
        ok = an_judge.judge(numbers({"request_count": 100, "request_error_rate": 1.5}, {"request_count": 900, "request_error_rate": 0.6}),
                            check, "v2", "v1", min_requests=50)
        assert ok.verdict == an_terms.PASS
        assert ok.checks[0].reason == "1.5 <= baseline 0.6 + 1"
        bad = an_judge.judge(numbers({"request_count": 100, "request_error_rate": 1.7}, {"request_count": 900, "request_error_rate": 0.6}),
                             check, "v2", "v1", min_requests=50)
        assert bad.verdict == an_terms.FAIL

    def test_relative_p99_ratio(self) -> None:
        check = [an_checks.Check("request_duration_p99", max_ratio_to_baseline=1.5)]
        base = {"request_count": 900, "request_duration_p99": 100.0}
        assert an_judge.judge(numbers({"request_count": 100, "request_duration_p99": 150.0}, base), check, "v2", "v1").verdict == an_terms.PASS
        assert an_judge.judge(numbers({"request_count": 100, "request_duration_p99": 151.0}, base), check, "v2", "v1").verdict == an_terms.FAIL

    def test_relative_check_without_reliable_baseline_is_inconclusive(self) -> None:
        check = [an_checks.Check("request_duration_p99", max_ratio_to_baseline=1.5)]
        few = an_judge.judge(numbers({"request_count": 100, "request_duration_p99": 10.0}, {"request_count": 2, "request_duration_p99": 100.0}),
                             check, "v2", "v1", min_requests=50)
        assert few.verdict == an_terms.INCONCLUSIVE
        assert "too few baseline requests" in few.reason
        none = an_judge.judge(numbers({"request_count": 100, "request_duration_p99": 10.0}), check, "v2", "v1", min_requests=50)
        assert none.verdict == an_terms.INCONCLUSIVE
        assert "no data for the baseline" in none.reason

    def test_fixed_bound_failure_counts_even_without_baseline(self) -> None:
        check = [an_checks.Check("request_duration_p99", max=500, max_ratio_to_baseline=1.5)]
        verdict = an_judge.judge(numbers({"request_count": 100, "request_duration_p99": 900.0}), check, "v2", "v1")
        assert verdict.verdict == an_terms.FAIL

    @pytest.mark.parametrize("baseline, reason", [
        (None, "no data for the baseline"),
        ({"request_count": 3, "request_duration_p99": 100.0}, "too few baseline requests for a comparison"),
    ])
    def test_a_kept_fixed_bound_never_passes_a_relative_bound_it_could_not_judge(self, baseline, reason) -> None:
        # The canary meets max 500, but whether it is within 1.5 x baseline cannot be known: no data,
        # never a pass on the fixed bound alone.
        check = [an_checks.Check("request_duration_p99", max=500, max_ratio_to_baseline=1.5)]
        verdict = an_judge.judge(numbers({"request_count": 100, "request_duration_p99": 400.0}, baseline), check, "v2", "v1",
                                 min_requests=50)
        assert verdict.checks[0].result == an_terms.CHECK_NO_DATA and verdict.checks[0].reason == reason
        assert verdict.verdict == an_terms.INCONCLUSIVE

    def test_exactly_min_requests_is_enough_and_one_fewer_is_not(self) -> None:
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

    def test_judge_refuses_no_checks_and_bad_min_requests(self) -> None:
        with pytest.raises(an_terms.AnalysisError, match="at least one check"):
            an_judge.judge(numbers({"request_count": 5}), [], "v2")
        with pytest.raises(an_terms.AnalysisError, match="min_requests") as info:
            an_judge.judge(numbers({"request_count": 5}), [an_checks.Check("request_count", min=1)], "v2", min_requests=0)
        assert info.value.option == "min_requests"

    @settings(max_examples=200, deadline=None)
    @given(requests=st.one_of(st.none(), finite), min_requests=st.integers(1, 1000), rate=st.one_of(st.none(), finite),
           bound=finite)
    def test_never_pass_without_enough_requests_and_data(self, requests, min_requests, rate, bound) -> None:
        verdict = an_judge.judge(numbers({"request_count": requests, "request_success_rate": rate}),
                                 [an_checks.Check("request_success_rate", min=bound)], "v2", min_requests=min_requests)
        if verdict.verdict == an_terms.PASS:
            assert requests is not None and requests >= min_requests
            assert rate is not None and rate >= bound

    @settings(max_examples=200, deadline=None)
    @given(canary=finite, baseline=finite, points=finite, ratio=st.floats(0, 10))
    def test_relative_bounds_match_their_definition(self, canary, baseline, points, ratio) -> None:
        base = {"request_count": 100, "m": baseline}
        verdict = an_judge.judge(numbers({"request_count": 100, "m": canary}, base),
                                 [an_checks.Check("m", max_over_baseline=points, max_ratio_to_baseline=ratio)], "v2", "v1", min_requests=1)
        expected = canary <= baseline + points and canary <= baseline * ratio
        assert verdict.verdict == (an_terms.PASS if expected else an_terms.FAIL)


RATE_MAX_1 = an_checks.Check("request_error_rate", max=1)
PLUS_ONE = an_checks.Check("request_error_rate", max_over_baseline=1)


def pooled_judge(check: an_checks.Check, canary: tuple, baseline: tuple | None = None, z: float = 1.645) -> an_checks.Verdict:
    evidence = {"v2": an_checks.Counts(*canary)}
    numbers = {"v2": {"request_count": canary[0]}}
    if baseline is not None:
        evidence["v1"] = an_checks.Counts(*baseline)
        numbers["v1"] = {"request_count": baseline[0]}
    return an_judge.judge(numbers, [check], "v2", "v1" if baseline else None, min_requests=1, evidence=evidence, z=z)


class TestJudgeOnPooledCounts:
    """The confidence mode: bounds judged on counts pooled over a step's rounds."""

    @pytest.mark.parametrize("canary, verdict, words", [
        ((150, 0), an_terms.INCONCLUSIVE, "the sample cannot tell yet"),  # 0 of 150: cannot show <= 1% yet
        ((600, 0), an_terms.PASS, "pooled over the step's rounds"),  # 0 of 600: it can
        ((150, 20), an_terms.FAIL, "vs max 1"),  # 13%: shown above 1% at once
    ])
    def test_a_fixed_bound_on_counts(self, canary, verdict, words) -> None:
        result = pooled_judge(RATE_MAX_1, canary)
        assert result.verdict == verdict and words in result.reason

    def test_a_bound_over_the_baseline_on_counts(self) -> None:
        base = (1350, 7)  # 0.5%
        assert pooled_judge(PLUS_ONE, (150, 1), base).verdict == an_terms.INCONCLUSIVE  # 0.7%: cannot tell yet
        assert pooled_judge(PLUS_ONE, (1500, 8), base).verdict == an_terms.PASS  # 0.5% on ten times the sample
        failed = pooled_judge(PLUS_ONE, (150, 15), base)  # 10%: shown beyond + 1 point
        assert failed.verdict == an_terms.FAIL and "canary - baseline" in failed.reason
        success = pooled_judge(an_checks.Check("request_success_rate", min=95), (150, 15))
        assert success.verdict == an_terms.FAIL and success.checks[0].canary == 90.0


class TestStepDecision:
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
    def test_step_decision(self, verdicts, checks, threshold, decision) -> None:
        assert an_judge.step_decision(verdicts, checks, threshold).decision == decision

    def test_inconclusive_tolerated_still_never_passes(self) -> None:
        result = an_judge.step_decision(["pass", "pass", "inconclusive"], 3, 1, inconclusive_is_failure=False)
        assert result.decision == an_terms.INCONCLUSIVE
        assert an_judge.step_decision(["inconclusive"], 1, 2, inconclusive_is_failure=False).decision == "continue"

    def test_step_decision_refuses_bad_input(self) -> None:
        with pytest.raises(an_terms.AnalysisError, match="checks must be"):
            an_judge.step_decision([], 0)
        with pytest.raises(an_terms.AnalysisError, match="unknown verdict 'ok'"):
            an_judge.step_decision(["ok"], 1)

    @settings(max_examples=300, deadline=None)
    @given(verdicts=st.lists(st.sampled_from(an_terms.VERDICTS), max_size=12), checks=st.integers(1, 5), threshold=st.integers(1, 4),
           tolerate=st.booleans(), wait_on_marginal=st.booleans())
    def test_step_decision_properties(self, verdicts, checks, threshold, tolerate, wait_on_marginal) -> None:
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


P95 = an_judge.CustomMetric("p95_ms", "M::`app`:(max(`p95`) AS `p95`) BY `version`", version_tag="version")


class TestOneRound:
    """One round end to end: its queries, its numbers, its verdict."""

    def test_builtin_numbers_end_to_end_then_judge(self) -> None:
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

    def test_with_queries_fills_builtin_queries_only(self) -> None:
        queries = an_queries.builtin_queries(TARGET, ["request_success_rate", "request_duration_p99"], "prometheus")
        checks = an_judge.with_queries([an_checks.Check("request_success_rate", min=99), an_checks.Check("request_duration_p99", max=500, query="mine"),
                                        an_checks.Check("custom", max=1)], queries)
        assert checks[0].query == queries[0].query
        assert checks[1].query == "mine"
        assert checks[2].query is None

    def test_plan_round_always_counts_requests_and_batches_customs(self) -> None:
        queries = an_judge.plan_round(TARGET, [an_checks.Check("trace_error_rate", max=5), an_checks.Check("p95_ms", max_ratio_to_baseline=1.2)],
                                      "guance", [P95, an_judge.CustomMetric("unused", "L::x")])
        assert [q.key for q in queries] == ["requests", "traces", "custom:p95_ms"]
        assert queries[2].query == P95.query

    def test_plan_round_errors(self) -> None:
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

    @staticmethod
    def judged(checks, queries, answers, custom, **options):
        # What a round does (rounds.py): the answers read into numbers, each check given its query, judged.
        numbers = an_judge.round_numbers(TARGET, queries, answers, custom)
        return an_judge.judge(numbers, an_judge.with_queries(checks, queries), TARGET.canary_version,
                              TARGET.baseline_version, **options)

    def test_a_round_end_to_end(self) -> None:
        checks = [an_checks.Check("request_success_rate", min=99), an_checks.Check("p95_ms", max_ratio_to_baseline=1.2)]
        queries = an_judge.plan_round(TARGET, checks, "guance", [P95])
        answers = {
            "requests": [s({"destination_version": "v2", "response_code": "200"}, [[1, "200"]]),
                         s({"destination_version": "v1", "response_code": "200"}, [[1, "800"]])],
            "custom:p95_ms": [s({"version": "v2"}, [[1, 130.0]]), s({"version": "v1"}, [[1, 100.0]])],
        }
        verdict = self.judged(checks, queries, answers, [P95], min_requests=50)
        assert verdict.verdict == an_terms.FAIL
        assert verdict.checks[0].result == "pass" and verdict.checks[0].query == queries[0].query
        assert verdict.checks[1].reason == "130 > baseline 100 x 1.2" and verdict.checks[1].query == P95.query
        # the custom query unanswered: no data, so inconclusive rather than pass
        del answers["custom:p95_ms"]
        assert self.judged(checks, queries, answers, [P95], min_requests=50).verdict == an_terms.INCONCLUSIVE


SHARE_CHECKS = [an_checks.Check("request_success_rate", min=95)]


def _share_round(canary_requests, baseline_requests, weight, min_requests=20):
    table = {"v2": {"request_count": canary_requests, "request_success_rate": 100.0},
             "v1": {"request_count": baseline_requests, "request_success_rate": 100.0}}
    return an_judge.judge(table, SHARE_CHECKS, "v2", "v1", min_requests, expected_weight=weight)


class TestTrafficShare:
    """The observed share of requests against the configured weight."""

    def test_a_mesh_ignoring_the_weights_fails_the_round_before_too_few_requests(self):
        verdict = _share_round(0, 400, 10)
        assert verdict.verdict == an_terms.FAIL
        assert verdict.reason.startswith("traffic_share: observed 0% of 400 requests on the canary")
        assert ("configured 10%: the requests do not follow the weights (the mesh does not apply the VirtualService, "
                "or the canary has no Ready pod)") in verdict.reason
        even = _share_round(200, 200, 10)  # a mesh sending to every pod alike
        assert even.verdict == an_terms.FAIL

    def test_normal_rounds_at_10_percent_pass_the_share_check(self):
        import random
        rng = random.Random(3)
        for _round in range(200):
            n = rng.randint(100, 2000)
            canary = sum(rng.random() < 0.10 for _request in range(n))
            verdict = _share_round(canary, n - canary, 10, min_requests=1)
            assert verdict.verdict == an_terms.PASS, (canary, n, verdict.reason)

    def test_small_samples_cannot_fail_the_share_check(self):
        few = _share_round(0, 15, 10, min_requests=1)  # 0 of 15 at 10% happens one time in five
        assert few.verdict == an_terms.INCONCLUSIVE and "too few canary requests" in few.reason
        assert [c.result for c in few.checks if c.metric == an_judge.TRAFFIC_SHARE] == [an_terms.CHECK_PASS]
        assert _share_round(0, 0, 10).verdict == an_terms.INCONCLUSIVE

    def test_no_share_check_without_a_weight_or_at_0(self):
        assert not [c for c in _share_round(0, 400, None).checks if c.metric == an_judge.TRAFFIC_SHARE]
        assert not [c for c in _share_round(0, 400, 0).checks if c.metric == an_judge.TRAFFIC_SHARE]
        full = _share_round(0, 400, 100)
        assert full.verdict == an_terms.FAIL, "a 100% weight with all requests on the stable version is not routing"

    def test_a_new_canary_counted_from_its_first_scrape_is_not_failed_for_it(self):
        # 10% of 2000 requests, the canary's new series counted over half the window: 5.3%.
        assert _share_round(106, 1894, 10).verdict == an_terms.PASS
        # Measured on the sandbox (three clusters' first step): 14% of 171 requests under a 50% weight.
        assert _share_round(24, 147, 50).verdict == an_terms.PASS
        few = _share_round(2, 2000, 50)  # some canary requests: an undercount, not a mesh ignoring it
        assert [c.result for c in few.checks if c.metric == an_judge.TRAFFIC_SHARE] == [an_terms.CHECK_PASS]
        assert _share_round(0, 400, 10).verdict == an_terms.FAIL
        assert _share_round(0, 80, 10).verdict == an_terms.INCONCLUSIVE, "80 baseline requests promise under 10 canary ones"


BASE = {"service": "reviews", "namespace": "prod", "canary_version": "v2"}


WEIGHED = [{"metric": "request_success_rate", "min": 99, "weight": 3}, {"metric": "request_duration_p99", "max": 500}]


def judged(scoring: dict | None, numbers: dict, checks=None) -> an_checks.Verdict:
    plan = analysis_settings.plan_from_params(dict(BASE, checks=checks or WEIGHED, scoring=scoring))
    return an_judge.judge(numbers, list(plan.checks), "v2", scoring=plan.scoring)


SLOW = {"v2": {"request_count": 200, "request_success_rate": 100.0, "request_duration_p99": 900.0}}
FAILING = {"v2": {"request_count": 200, "request_success_rate": 90.0, "request_duration_p99": 100.0}}


class TestScoring:
    """Weights, a pass and a marginal score, no data as a failure."""

    def test_without_scoring_any_failed_check_fails_the_round(self) -> None:
        verdict = judged(None, SLOW)
        assert verdict.verdict == "fail" and verdict.score == 75.0
        assert verdict.reason == "request_duration_p99: 900 > max 500"  # the plain rule says nothing of scores

    def test_a_score_at_the_pass_score_tolerates_a_light_check(self) -> None:
        verdict = judged({"pass": 70}, SLOW)
        assert verdict.verdict == "pass", verdict.reason
        assert verdict.reason.endswith("; score 75 (pass 70, marginal 70) tolerates request_duration_p99: 900 > max 500")
        assert [c.weight for c in verdict.checks] == [3.0, 1.0]
        # The heavy check failing leaves 25: below the pass score.
        assert judged({"pass": 70}, FAILING).verdict == "fail"

    def test_a_score_in_the_marginal_band_is_marginal(self) -> None:
        verdict = judged({"pass": 90, "marginal": 70}, SLOW)
        assert verdict.verdict == "marginal" and verdict.reason.startswith("score 75 (pass 90, marginal 70): request_duration_p99")
        assert judged({"pass": 90, "marginal": 70}, FAILING).verdict == "fail"

    def test_a_critical_check_fails_whatever_the_score(self) -> None:
        checks = [dict(WEIGHED[0], critical=False), dict(WEIGHED[1], critical=True)]
        verdict = judged({"pass": 50}, SLOW, checks)
        assert verdict.verdict == "fail" and verdict.critical_failure == "request_duration_p99"

    def test_no_data_fails_the_round_from_a_share_of_the_checks(self) -> None:
        partial = {"v2": {"request_count": 200, "request_success_rate": 100.0}}
        assert judged(None, partial).verdict == "inconclusive"
        verdict = judged({"no_data_fail_percent": 50}, partial)
        assert verdict.verdict == "fail"
        assert verdict.reason.startswith("1 of 2 checks without data (50% >= no_data_fail_percent 50): request_duration_p99")
        assert judged({"no_data_fail_percent": 60}, partial).verdict == "inconclusive"
