# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_analysis/rounds.py: the round loop on a fake clock, the providers' rounds, pooled rounds."""

from __future__ import annotations

import pytest

from ansible_collections.canary.istio.plugins.module_utils._analysis import checks
from ansible_collections.canary.istio.plugins.module_utils._analysis import judge
from ansible_collections.canary.istio.plugins.module_utils._analysis import prometheus as p
from ansible_collections.canary.istio.plugins.module_utils._analysis import rounds as analysis_rounds
from ansible_collections.canary.istio.plugins.module_utils._analysis import settings as analysis_settings
from ansible_collections.canary.istio.plugins.module_utils._analysis import terms
from ansible_collections.canary.istio.plugins.module_utils._guance import errors as guance_errors
from ansible_collections.canary.istio.plugins.module_utils._guance import queries as guance_queries


T0_MS = 1_764_136_800_000
BASE = {"service": "reviews", "namespace": "prod", "canary_version": "v2"}


class FakeClock:
    """Monotonic seconds from 0; wall time T0 + that; sleep moves time on and is recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wall_ms(self) -> int:
        return T0_MS + int(round(self.now * 1000))

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds


def answers_for(verdict: str) -> dict:
    """Answers to the default checks' queries (PromQL shape) that judge to ``verdict``."""
    if verdict == "inconclusive":
        return {"requests": [], "latency": []}

    def req(code: str, count: float) -> dict:
        return {"name": "", "tags": {"destination_version": "v2", "response_code": code},
                "columns": ["time", "value"], "rows": [[T0_MS, count]]}

    requests = [req("200", 100)] if verdict == "pass" else [req("200", 80), req("500", 20)]
    latency = [{"name": "", "tags": {"destination_version": "v2"}, "columns": ["time", "value"], "rows": [[T0_MS, 42.0]]}]
    return {"requests": requests, "latency": latency}


class ScriptedSource:
    """Answers round n with ``answers_for(script[n-1])``; 'error' raises; each round costs
    ``cost_s`` seconds of the fake clock and one request."""

    def __init__(self, clock: FakeClock, script: list[str], cost_s: float = 0.0) -> None:
        self.clock = clock
        self.script = list(script)
        self.cost_s = cost_s
        self.requests_made = 0
        self.calls: list[tuple[float, int, int, list[str]]] = []

    def query_round(self, queries, start_ms: int, end_ms: int) -> dict:
        self.calls.append((self.clock.now, start_ms, end_ms, [q.key for q in queries]))
        self.requests_made += 1
        self.clock.now += self.cost_s
        step = self.script.pop(0)
        if step == "error":
            raise analysis_rounds.RoundQueryError("querying Guance: server error 500 (InternalError)", 500, "InternalError")
        if step == "limited":
            raise analysis_rounds.RoundQueryError("querying Guance: rate limited (401 ft.TriggerApiAkCurrentLimiting)", 401,
                                                  "ft.TriggerApiAkCurrentLimiting", rate_limited=True)
        return answers_for(step)


def run_script(script: list[str], check_mode: bool = False, cost_s: float = 0.0, **options):
    plan = analysis_settings.plan_from_params(dict(BASE, **options))
    clock = FakeClock()
    source = ScriptedSource(clock, script, cost_s)
    result = analysis_rounds.run_step(plan, source, clock.wall_ms, clock.monotonic, clock.sleep, check_mode=check_mode)
    return result, clock, source


def step_of(script: list[str], check_mode: bool = False, **options) -> analysis_rounds.StepResult:
    return run_script(script, check_mode, **options)[0]


class CountsSource:
    """Answers each round with ``(requests, errors)`` of the canary from ``script``."""

    def __init__(self, script: list[tuple[int, int]]) -> None:
        self.script = list(script)
        self.requests_made = 0

    def query_round(self, queries, start_ms: int, end_ms: int) -> dict:
        self.requests_made += 1
        requests, errors = self.script.pop(0)

        def req(code: str, count: float) -> dict:
            return {"name": "", "tags": {"destination_version": "v2", "response_code": code},
                    "columns": ["time", "value"], "rows": [[end_ms, count]]}

        latency = [{"name": "", "tags": {"destination_version": "v2"}, "columns": ["time", "value"], "rows": [[end_ms, 42.0]]}]
        return {"requests": [req("200", requests - errors)] + ([req("503", errors)] if errors else []), "latency": latency}


def run_counts(script: list[tuple[int, int]], **options):
    plan = analysis_settings.plan_from_params(dict(BASE, **options))
    clock = FakeClock()
    return analysis_rounds.run_step(plan, CountsSource(script), clock.wall_ms, clock.monotonic, clock.sleep), plan


class TestRoundLoop:
    def test_a_failing_round_at_the_threshold_returns_after_that_round(self) -> None:
        result, clock, source = run_script(["fail", "pass", "pass"], interval=30, iterations=3)
        assert [r.number for r in result.rounds] == [1]
        assert result.verdict == "fail" and result.failed
        assert clock.sleeps == [30] and clock.now == 30  # one interval, then back at once
        assert result.reason == "analysis of reviews v2 failed in round 1: request_success_rate 80 < min 99"
        assert source.script == ["pass", "pass"]  # the later rounds never ran

    def test_threshold_counts_failed_rounds_across_the_step(self) -> None:
        result = step_of(["fail", "pass", "fail", "pass"], interval=10, iterations=3, threshold=2)
        assert [r.verdict.verdict for r in result.rounds] == ["fail", "pass", "fail"]
        assert result.verdict == "fail"
        assert result.reason.startswith("analysis of reviews v2 failed in round 3: request_success_rate 80 < min 99 (")
        assert "2 failed checks reached the threshold 2" in result.reason

    def test_pass_needs_iterations_rounds_with_the_last_passing(self) -> None:
        result, clock, source = run_script(["pass", "pass", "pass"], interval=30, iterations=3)
        assert result.verdict == "pass" and not result.failed
        assert len(result.rounds) == 3 and clock.now == 90
        # every window ends when its round ran and looks back `window` (default: the interval)
        assert [(call[1], call[2]) for call in source.calls] == [
            (T0_MS + (n * 30 - 30) * 1000, T0_MS + n * 30_000) for n in (1, 2, 3)]
        assert result.reason.startswith("analysis of reviews v2 passed in round 3: 2 checks passed on 100 canary requests")

    def test_a_failed_last_look_never_passes_the_step(self) -> None:
        result = step_of(["pass", "pass", "fail", "pass"], interval=5, iterations=3, threshold=2)
        assert [r.verdict.verdict for r in result.rounds] == ["pass", "pass", "fail", "pass"]
        assert result.verdict == "pass"
        result = step_of(["pass", "fail", "pass"], interval=5, iterations=1, threshold=2)
        assert [r.verdict.verdict for r in result.rounds] == ["pass"]  # one iteration: the first pass is enough

    def test_inconclusive_counts_as_a_failed_round_by_default(self) -> None:
        result = step_of(["inconclusive", "pass"], interval=5, iterations=2)
        assert len(result.rounds) == 1 and result.verdict == "fail" and result.failed
        assert result.reason == ("analysis of reviews v2 failed in round 1: inconclusive: too few canary requests: "
                                 "0 < min_requests 1")

    def test_inconclusive_wait_goes_on_and_never_passes(self) -> None:
        result = step_of(["inconclusive", "inconclusive"], interval=5, iterations=2, inconclusive="wait")
        assert len(result.rounds) == 2 and result.verdict == "inconclusive" and result.failed
        assert result.reason.startswith("analysis of reviews v2 inconclusive after round 2: too few canary requests")
        result = step_of(["inconclusive", "inconclusive"], interval=5, iterations=2, inconclusive="wait",
                         fail_on_inconclusive=False)
        assert result.verdict == "inconclusive" and not result.failed
        result = step_of(["inconclusive", "pass"], interval=5, iterations=2, inconclusive="wait")
        assert result.verdict == "pass"
        # a round that fails still counts while inconclusive rounds are tolerated
        result = step_of(["inconclusive", "fail"], interval=5, iterations=2, inconclusive="wait")
        assert result.verdict == "fail" and len(result.rounds) == 2

    def test_check_mode_runs_one_round_now_and_never_fails(self) -> None:
        result, clock, _source = run_script(["fail"], check_mode=True, interval=30, iterations=3)
        assert len(result.rounds) == 1 and clock.sleeps == [] and clock.now == 0
        assert result.verdict == "fail" and not result.failed
        assert result.reason == ("analysis of reviews v2: check mode, one round without waiting: fail: "
                                 "request_success_rate 80 < min 99")
        result = step_of(["pass"], check_mode=True, interval=30, iterations=3)
        assert result.verdict == "pass" and len(result.rounds) == 1

    def test_rounds_keep_their_pace_when_queries_take_time(self) -> None:
        result, clock, source = run_script(["pass", "pass", "pass"], cost_s=2.0, interval=30, iterations=3)
        assert result.verdict == "pass"
        assert clock.sleeps == [30, 28, 28]
        assert [call[0] for call in source.calls] == [30, 60, 90]

    def test_interval_zero_runs_rounds_back_to_back_with_a_minute_window(self) -> None:
        result, clock, source = run_script(["pass", "pass"], iterations=2)
        assert len(result.rounds) == 2 and clock.sleeps == []
        assert source.calls[0][2] - source.calls[0][1] == 60_000

    def test_a_query_error_stops_the_step_with_the_rounds_so_far(self) -> None:
        with pytest.raises(analysis_rounds.StepError) as info:
            run_script(["pass", "error"], interval=5, iterations=3)
        assert str(info.value) == ("analysis of reviews v2, round 2: querying Guance: server error 500 (InternalError)")
        assert [r.number for r in info.value.rounds] == [1]
        assert info.value.status == 500 and info.value.error_code == "InternalError"

    def test_a_rate_limited_round_is_not_answered_and_the_next_round_asks_again(self) -> None:
        result, clock, source = run_script(["limited", "pass", "pass"], interval=5, iterations=2)
        assert result.verdict == "pass" and not result.failed
        assert [(r.number, r.answered) for r in result.rounds] == [(1, False), (2, True), (3, True)]
        assert result.rounds[0].verdict.reason.startswith("not answered, asked again next round: querying Guance: rate limited")
        assert result.rounds[0].as_dict()["answered"] is False and result.rounds[0].as_dict()["checks"] == []
        # The rounds keep their pace: round n at n intervals.
        assert [call[0] for call in source.calls] == [5.0, 10.0, 15.0] and clock.now == 15.0

    def test_rate_limited_rounds_are_bounded_by_the_steps_rounds(self) -> None:
        # iterations 2, threshold 1: at most 2 rounds, so at most 2 unanswered ones; the third is an error.
        with pytest.raises(analysis_rounds.StepError) as info:
            run_script(["limited", "pass", "limited", "limited"], interval=5, iterations=2)
        assert str(info.value).startswith("analysis of reviews v2, round 4: querying Guance: rate limited")
        assert str(info.value).endswith("(2 earlier rounds were rate-limited too)")
        assert [(r.number, r.answered) for r in info.value.rounds] == [(1, False), (2, True), (3, False)]

    def test_a_rate_limited_round_without_an_interval_is_an_error(self) -> None:
        # Nothing to wait for: the retry budget was the only chance to be answered.
        with pytest.raises(analysis_rounds.StepError, match="round 1: querying Guance: rate limited"):
            run_script(["limited", "pass"], iterations=2)

    def test_a_rate_limited_failure_still_counts_the_answered_rounds_only(self) -> None:
        result = step_of(["pass", "limited", "fail"], interval=5, iterations=3)
        assert result.verdict == "fail" and result.decision.rounds == 2

    def test_round_report_is_json_ready(self) -> None:
        result = step_of(["fail"], interval=5)
        report = result.rounds[0].as_dict()
        assert report["round"] == 1 and report["verdict"] == "fail" and report["http_requests"] == 1
        assert report["end_ms"] - report["start_ms"] == 5000
        assert report["numbers"]["v2"]["request_count"] == 100
        assert report["numbers"]["v2"]["request_success_rate"] == 80
        assert report["numbers"]["v2"]["request_duration_p99"] == 42
        assert [c["metric"] for c in report["checks"]] == ["request_success_rate", "request_duration_p99"]
        assert report["checks"][0]["query"].startswith("sum by (destination_version, response_code) ((istio_prom:")
        infinite = analysis_rounds.RoundReport(1, 0, 1, result.rounds[0].verdict, {"v2": {"x": float("inf")}}, 1).as_dict()
        assert infinite["numbers"] == {"v2": {"x": "+Inf"}}


class FakeGuance:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.requests_made = 0
        self.sent: list = []

    def query(self, queries, start_ms, end_ms):
        self.requests_made += 1
        self.sent.append((queries, start_ms, end_ms))
        if self.error:
            raise self.error
        return guance_queries.QueryResult([[{"name": "", "tags": {}, "columns": ["time", "value"], "rows": [[end_ms, i]]}]
                                           for i in range(len(queries))], {}, 1)

    def close(self) -> None:
        pass


class FakePrometheus:
    def __init__(self, fail_on: int | None = None) -> None:
        self.requests_made = 0
        self.fail_on = fail_on
        self.seen: list = []

    def query(self, promql, at_ms=None):
        self.requests_made += 1
        self.seen.append((promql, at_ms))
        if self.requests_made == self.fail_on:
            raise p.PrometheusApiError("POST x: the query was refused: 400 bad_data: parse error", 400, "bad_data")
        return p.PrometheusResult([{"name": "", "tags": {}, "columns": ["time", "value"], "rows": [[at_ms, 1.0]]}], {}, 1, [])

    def close(self) -> None:
        pass


class TestProviders:
    """Fake clients; the real HTTP paths are in tests/integration/test_canary_analysis_module.py."""

    def test_guance_rounds_send_everything_in_one_call_and_map_answers_by_key(self) -> None:
        plan = analysis_settings.plan_from_params(dict(BASE, checks=[{"metric": "trace_error_rate", "max": 1},
                                                       {"metric": "request_duration_p99", "max": 500}]))
        client = FakeGuance()
        source = analysis_rounds.GuanceRounds(client)
        answers = source.query_round(plan.queries, 1000, 2000)
        assert len(client.sent) == 1 and source.requests_made == 1
        assert [q.q for q in client.sent[0][0]] == [q.query for q in plan.queries]
        assert [q.qtype for q in client.sent[0][0]] == ["promql", "promql", "dql"]
        assert {key: series[0]["rows"][0][1] for key, series in answers.items()} == {"requests": 0, "latency": 1, "traces": 2}
        dql = analysis_settings.plan_from_params(dict(BASE, istio_query_language="dql", window=30, scrape_interval=10,
                                                      checks=[{"metric": "request_error_rate", "max": 1}]))
        analysis_rounds.GuanceRounds(client).query_round(dql.queries, 1000, 2000)
        assert [q.lookback_ms for q in client.sent[1][0]] == [20_000]  # the counters' lookback goes on the wire

    def test_guance_errors_become_round_errors(self) -> None:
        source = analysis_rounds.GuanceRounds(FakeGuance(guance_errors.GuanceAuthError("POST x: the API key was refused (403 ft.InvalidAPIKey)",
                                                                                       403, "ft.InvalidAPIKey")))
        with pytest.raises(analysis_rounds.RoundQueryError) as info:
            source.query_round(analysis_settings.plan_from_params(BASE).queries, 1000, 2000)
        assert str(info.value) == "querying Guance: POST x: the API key was refused (403 ft.InvalidAPIKey)"
        assert info.value.status == 403 and info.value.error_code == "ft.InvalidAPIKey"
        assert source.requests_made == 1 and not info.value.rate_limited
        limited = analysis_rounds.GuanceRounds(FakeGuance(guance_errors.GuanceRateLimitError("POST x: rate limited (401 ft.TriggerApiAkCurrentLimiting)",
                                                                                             401, "ft.TriggerApiAkCurrentLimiting")))
        with pytest.raises(analysis_rounds.RoundQueryError) as info:
            limited.query_round(analysis_settings.plan_from_params(BASE).queries, 1000, 2000)
        assert info.value.rate_limited

    def test_prometheus_rounds_one_instant_query_each_at_the_window_end(self) -> None:
        plan = analysis_settings.plan_from_params(dict(BASE, provider="prometheus"))
        client = FakePrometheus()
        source = analysis_rounds.PrometheusRounds(client)
        answers = source.query_round(plan.queries, 1000, 31_000)
        assert [seen[1] for seen in client.seen] == [31_000, 31_000] and source.requests_made == 2
        assert set(answers) == {"requests", "latency"}
        failing = analysis_rounds.PrometheusRounds(FakePrometheus(fail_on=2))
        with pytest.raises(analysis_rounds.RoundQueryError, match="querying Prometheus: POST x: the query was refused") as info:
            failing.query_round(plan.queries, 1000, 31_000)
        assert info.value.status == 400 and info.value.error_code == "bad_data" and failing.requests_made == 2


class BucketSource(CountsSource):
    """As CountsSource, with the latency answer as bucket increases (``le``), all of a round's
    requests in the bucket ``le``."""

    def __init__(self, script: list[tuple[int, int]], le: str) -> None:
        super().__init__(script)
        self.le = le

    def query_round(self, queries, start_ms: int, end_ms: int) -> dict:
        requests = self.script[0][0]
        answers = super().query_round(queries, start_ms, end_ms)
        answers["latency"] = [{"name": "", "tags": {"destination_version": "v2", "le": le},
                               "columns": ["time", "value"], "rows": [[end_ms, requests if le in (self.le, "+Inf") else 0]]}
                              for le in ("100", "500", "1000", "+Inf")]
        return answers


class TwoVersionSource:
    """Each round: v1 and v2 with ``per_round`` requests, each version's durations spread over
    the buckets by ``shares`` (fractions per bucket ending at 25, 50, 100, 250 ms)."""

    BOUNDS = ("25", "50", "100", "250", "+Inf")

    def __init__(self, per_round: dict[str, int], shares: dict[str, list[float]]) -> None:
        self.per_round, self.shares = per_round, shares
        self.requests_made = 0

    def query_round(self, queries, start_ms: int, end_ms: int) -> dict:
        self.requests_made += 1

        def one(tags: dict, value: float) -> dict:
            return {"name": "", "tags": tags, "columns": ["time", "value"], "rows": [[end_ms, value]]}

        requests = [one({"destination_version": v, "response_code": "200"}, n) for v, n in self.per_round.items()]
        latency = []
        for version, n in self.per_round.items():
            cumulative = 0.0
            for le, share in zip(self.BOUNDS, self.shares[version] + [0.0]):
                cumulative += round(n * share)
                latency.append(one({"destination_version": version, "le": le}, cumulative))
        return {"requests": requests, "latency": latency}


class TestPooledRounds:
    """A step judged on its pooled rounds (confidence), and the checks' policies."""

    def test_with_a_confidence_a_step_decides_on_its_pooled_rounds(self) -> None:
        # A healthy canary, 200 requests a round: one round cannot show success >= 99%, three can.
        result, plan = run_counts([(200, 0)] * 3, interval=30, iterations=3, confidence=0.95)
        assert plan.step.inconclusive == "wait" and plan.step.look_z > 2  # 5% spread over 3 looks
        assert [r.verdict.verdict for r in result.rounds] == ["inconclusive", "inconclusive", "pass"]
        assert "the sample cannot tell yet" in result.rounds[0].verdict.reason
        assert result.verdict == "pass" and "pooled over the step's rounds" in result.rounds[-1].verdict.reason
        # A clear regression fails at the first round, as without statistics.
        failed, _plan = run_counts([(200, 20)] * 3, interval=30, iterations=3, confidence=0.95)
        assert [r.verdict.verdict for r in failed.rounds] == ["fail"] and failed.verdict == "fail"
        # Without a confidence, single rounds compare single numbers (today's rule), so one error in
        # 100 requests fails a 99% bound: the false rollback the confidence mode avoids.
        point, _plan = run_counts([(100, 2)] * 3, interval=30, iterations=3)
        assert point.verdict == "fail"
        pooled, _plan = run_counts([(100, 2), (400, 0), (400, 0)], interval=30, iterations=3, confidence=0.95)
        assert pooled.verdict == "pass"

    def test_check_policy_critical_must_have_data_and_dry_run(self) -> None:
        base = [{"metric": "request_success_rate", "min": 99}]
        # A regression with a threshold of 3: without critical, two more rounds; critical, the step fails now.
        tolerant, _plan = run_counts([(200, 20)] * 5, interval=30, iterations=3, threshold=3, checks=base)
        assert tolerant.decision.decision == "fail" and len(tolerant.rounds) == 3
        critical, _plan = run_counts([(200, 20)] * 5, interval=30, iterations=3, threshold=3,
                                     checks=[dict(base[0], critical=True)])
        assert len(critical.rounds) == 1 and critical.decision.reason == "critical check request_success_rate failed"
        assert critical.rounds[0].as_dict()["checks"][0]["policy"] == ["critical"]
        # A shadow check that fails decides nothing; it is still reported.
        shadow, _plan = run_counts([(200, 0)], checks=base + [{"metric": "request_count", "min": 1000, "dry_run": True}])
        assert shadow.verdict == "pass"
        reported = shadow.rounds[0].as_dict()["checks"]
        assert reported[1]["result"] == "fail" and reported[1]["policy"] == ["dry_run"]
        # No data for a check that must have data is a failure, not an inconclusive round.
        nodata = [{"metric": "request_duration_p99", "max": 500, "must_have_data": True}]
        plan = analysis_settings.plan_from_params(dict(BASE, checks=nodata))
        verdict = judge.judge({"v2": {"request_count": 200}}, list(plan.checks), "v2")
        assert verdict.verdict == "fail" and "no data for the canary, and it must have data" in verdict.reason
        with pytest.raises(terms.AnalysisError, match="a dry_run check decides nothing"):
            analysis_settings.plan_from_params(dict(BASE, checks=[dict(base[0], dry_run=True, critical=True)]))

    def test_with_a_confidence_the_p99_is_judged_on_the_steps_histogram(self) -> None:
        plan = analysis_settings.plan_from_params(dict(BASE, interval=30, iterations=2, confidence=0.95))
        latency = next(q for q in plan.queries if q.key == "latency")
        assert latency.query.startswith("sum by (le, destination_version) ((istio_prom:istio_request_duration_milliseconds_bucket")
        assert "histogram_quantile" not in latency.query
        without = analysis_settings.plan_from_params(dict(BASE, interval=30, iterations=2))
        assert next(q for q in without.queries if q.key == "latency").query.startswith("histogram_quantile(0.99")
        for le, verdict in (("100", "pass"), ("1000", "fail")):
            clock = FakeClock()
            result = analysis_rounds.run_step(plan, BucketSource([(300, 0)] * 2, le), clock.wall_ms, clock.monotonic, clock.sleep)
            assert result.verdict == verdict, result.reason
            p99 = next(c for c in result.rounds[-1].verdict.checks if c.metric == "request_duration_p99")
            assert "from the duration histogram" in p99.reason
            assert result.rounds[-1].numbers["v2"]["request_duration_p99"] == p99.canary

    def test_the_duration_check_is_a_rank_test_on_the_steps_pooled_histograms(self) -> None:
        checks = [{"metric": "request_duration", "max_ratio_to_baseline": 1.3}]
        with pytest.raises(terms.AnalysisError, match="is a rank test at a confidence: set confidence") as info:
            analysis_settings.plan_from_params(dict(BASE, baseline_version="v1", checks=checks))
        assert info.value.option == "confidence"
        plan = analysis_settings.plan_from_params(dict(BASE, baseline_version="v1", checks=checks, interval=30, iterations=2, confidence=0.95))
        assert [q.key for q in plan.queries] == ["requests", "latency"]
        assert next(q for q in plan.queries if q.key == "latency").query.startswith("sum by (le, destination_version)")
        baseline = [0.3, 0.4, 0.25, 0.05]
        for canary, verdict in (([0.3, 0.4, 0.25, 0.05], "pass"), ([0.05, 0.25, 0.5, 0.2], "fail")):
            clock = FakeClock()
            source = TwoVersionSource({"v1": 900, "v2": 100}, {"v1": baseline, "v2": canary})
            result = analysis_rounds.run_step(plan, source, clock.wall_ms, clock.monotonic, clock.sleep)
            assert result.verdict == verdict, result.reason
            check = result.rounds[-1].verdict.checks[0]
            assert "on 200/1800 requests" in check.reason or "on 100/900 requests" in check.reason
            assert result.rounds[-1].numbers["v2"]["request_duration"] == check.canary


WEIGHED = [{"metric": "request_success_rate", "min": 99, "weight": 3}, {"metric": "request_duration_p99", "max": 500}]


class VerdictSource(ScriptedSource):
    """Rounds answered with SLOW ('marginal' under the scoring below) or all well ('pass')."""

    def query_round(self, queries, start_ms: int, end_ms: int) -> dict:
        self.requests_made += 1
        step = self.script.pop(0)

        def one(tags: dict, value: float) -> dict:
            return {"name": "", "tags": dict(tags, destination_version="v2"), "columns": ["time", "value"],
                    "rows": [[end_ms, value]]}

        return {"requests": [one({"response_code": "200"}, 200)],
                "latency": [one({}, 900.0 if step == "marginal" else 100.0)]}


class TestMarginalRounds:
    @pytest.mark.parametrize("on_marginal, script, verdict, rounds", [
        ("fail", ["marginal", "pass"], "fail", 1),
        ("wait", ["marginal", "pass"], "pass", 2),
        ("wait", ["marginal", "marginal"], "inconclusive", 2),
    ])
    def test_what_a_marginal_round_does(self, on_marginal, script, verdict, rounds) -> None:
        plan = analysis_settings.plan_from_params(dict(BASE, checks=WEIGHED, interval=5, iterations=1, threshold=2 if on_marginal == "wait" else 1,
                                                       scoring={"pass": 90, "marginal": 70, "on_marginal": on_marginal}))
        clock = FakeClock()
        result = analysis_rounds.run_step(plan, VerdictSource(clock, script), clock.wall_ms, clock.monotonic, clock.sleep)
        assert (result.verdict, len(result.rounds)) == (verdict, rounds), result.reason
        assert result.rounds[0].as_dict()["score"] == (75.0 if script[0] == "marginal" else 100.0)
        if verdict == "fail":
            assert "failed in round 1: marginal: score 75" in result.reason


BASE_WITH_BASELINE = {"service": "reviews", "namespace": "prod", "canary_version": "v2", "baseline_version": "v1"}
CHECKS = [{"metric": "request_success_rate", "min": 95}, {"metric": "request_error_rate", "max_over_baseline": 1}]


class TestSamplePlan:
    def test_a_step_plans_from_its_answered_rounds(self) -> None:
        plan = analysis_settings.plan_from_params(dict(BASE_WITH_BASELINE, checks=CHECKS, confidence=0.95, detect_error_points=2, plan_weights=[10, 20],
                                                       interval=30, iterations=3))
        numbers = {"v1": {"request_count": 1350.0, "request_error_rate": 0.5}, "v2": {"request_count": 150.0, "request_error_rate": 0.0}}
        verdict = checks.Verdict("pass", "", (), 150.0, 1350.0, 1)
        answered = analysis_rounds.RoundReport(1, 0, 30_000, verdict, numbers, 1)
        skipped = analysis_rounds.RoundReport(2, 0, 30_000, verdict, {"v1": {"request_count": 1e9}}, 1, answered=False)
        sample = analysis_rounds.step_sample_plan(plan, [answered, skipped])
        assert sample["service_requests_per_s"] == 50.0 and sample["baseline_error_rate"] == 0.5
        assert [s["weight"] for s in sample["steps"]] == [10, 20] and sample["steps"][0]["pooled_seconds"] == 90
        assert analysis_rounds.step_sample_plan(analysis_settings.plan_from_params(dict(BASE_WITH_BASELINE, checks=CHECKS)), [answered]) is None
