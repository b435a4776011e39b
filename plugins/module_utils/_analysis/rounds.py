# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rounds of one analysis step over time: ``run_step`` waits, queries, judges and decides, and
returns as soon as the step passes or fails. Clocks, sleep and the query source are passed in, so
the loop is tested without waiting and without a server. ``GuanceRounds`` and ``PrometheusRounds``
ask a round's queries of a provider (Guance: all in ONE request; Prometheus: one per query),
turning errors into a ``RoundQueryError`` whose message never holds a secret. The settings come
from ``settings.py`` (``plan_from_params``), the verdicts from ``judge.py``.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import math

import typing as t
from dataclasses import dataclass, field

from ansible_collections.canary.istio.plugins.module_utils._errors import CanaryError
from ansible_collections.canary.istio.plugins.module_utils._analysis.answers import Series, VersionNumbers
from ansible_collections.canary.istio.plugins.module_utils._analysis.checks import Counts, Verdict
from ansible_collections.canary.istio.plugins.module_utils._analysis.judge import (
    CONTINUE,
    StepDecision,
    judge,
    round_numbers,
    step_decision,
    with_queries,
)
from ansible_collections.canary.istio.plugins.module_utils._analysis.queries import MetricQuery
from ansible_collections.canary.istio.plugins.module_utils._analysis.terms import (
    AnalysisError,
    CHECK_FAIL,
    FAIL,
    INCONCLUSIVE,
    PASS,
    REQUEST_COUNT,
    REQUEST_ERROR_RATE,
)
from ansible_collections.canary.istio.plugins.module_utils._analysis.sample import observed_rates, sample_plan
from ansible_collections.canary.istio.plugins.module_utils._guance.errors import GuanceError, GuanceRateLimitError
from ansible_collections.canary.istio.plugins.module_utils._guance.queries import Query
from ansible_collections.canary.istio.plugins.module_utils._analysis.prometheus import PrometheusError
from ansible_collections.canary.istio.plugins.module_utils._analysis.settings import AnalysisPlan, INCONCLUSIVE_FAIL


def step_sample_plan(plan: AnalysisPlan, rounds: t.Sequence[RoundReport]) -> dict[str, t.Any] | None:
    """``sample_plan`` for the plan's weights at the rate and baseline errors its answered rounds
    saw (None without ``detect_error_points``)."""
    if plan.detect_error_points is None or plan.step.look_z is None:
        return None
    per_s, baseline_errors = observed_rates([r.numbers for r in rounds if r.answered], plan.target.baseline_version,
                                            plan.step.window_s)
    return sample_plan(plan.checks, plan.detect_error_points, plan.step.look_z, plan.plan_weights, per_s, baseline_errors,
                       plan.step.window_s * plan.step.max_rounds)


class RoundQueryError(CanaryError):
    """A round's queries could not be answered. The message is plain and holds no secret."""

    def __init__(self, message: str, status: int | None = None, error_code: str = "", rate_limited: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        # The provider refused for the pace of requests, not for the request: asking again later
        # is the answer, so a step with an interval takes the round as not answered yet.
        self.rate_limited = rate_limited


class RoundSource(t.Protocol):
    """Where a round's numbers come from: answers by query key, and how many requests so far."""

    requests_made: int

    def query_round(self, queries: t.Sequence[MetricQuery], start_ms: int, end_ms: int) -> dict[str, list[Series]]:
        ...


def _jsonable(value: float | None) -> float | str | None:
    # JSON has no infinity (a custom metric may return it); NaN never reaches here (to_number).
    if isinstance(value, float) and math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return value


@dataclass(frozen=True)
class RoundReport:
    number: int
    start_ms: int
    end_ms: int
    verdict: Verdict
    numbers: dict[str, dict[str, float | None]]
    http_requests: int
    answered: bool = True  # False: the provider rate-limited the round; it decides nothing

    def as_dict(self) -> dict[str, t.Any]:
        checks = [c.as_dict() for c in self.verdict.checks]
        for check in checks:
            check["canary"], check["baseline"] = _jsonable(check["canary"]), _jsonable(check["baseline"])
        return {
            "round": self.number, "start_ms": self.start_ms, "end_ms": self.end_ms,
            "verdict": self.verdict.verdict, "reason": self.verdict.reason, "score": self.verdict.score, "checks": checks,
            "numbers": {v: {m: _jsonable(x) for m, x in metrics.items()} for v, metrics in self.numbers.items()},
            "http_requests": self.http_requests, "answered": self.answered,
        }


def _failed_checks_text(verdict: Verdict) -> str:
    failed = [f"{c.metric} {c.reason}" for c in verdict.checks if c.result == CHECK_FAIL]
    return "; ".join(failed) if failed else verdict.reason


@dataclass(frozen=True)
class StepResult:
    """The rounds run and what the step decided. In check mode ``verdict`` is the one round's."""

    plan: AnalysisPlan
    rounds: tuple[RoundReport, ...]
    decision: StepDecision
    check_mode: bool = False

    @property
    def verdict(self) -> str:
        if self.check_mode:
            return self.rounds[-1].verdict.verdict
        return self.decision.decision

    @property
    def failed(self) -> bool:
        """Whether the task fails: a failed step, or an inconclusive one unless told otherwise;
        never in check mode (a preview: traffic did not move)."""
        if self.check_mode:
            return False
        return self.verdict == FAIL or (self.verdict == INCONCLUSIVE and self.plan.step.fail_on_inconclusive)

    @property
    def reason(self) -> str:
        """One line: what was decided, in which round, and the checks behind it."""
        target = self.plan.target
        last = self.rounds[-1]
        who = f"analysis of {target.service} {target.canary_version}"
        if self.check_mode:
            detail = _failed_checks_text(last.verdict) if last.verdict.verdict == FAIL else last.verdict.reason
            return f"{who}: check mode, one round without waiting: {last.verdict.verdict}: {detail}"
        if self.verdict == PASS:
            text = f"{who} passed in round {last.number}: {last.verdict.reason}"
        elif self.verdict == FAIL:
            if last.verdict.verdict == FAIL:
                detail = _failed_checks_text(last.verdict)
            else:
                detail = f"{last.verdict.verdict}: {last.verdict.reason}"
            text = f"{who} failed in round {last.number}: {detail}"
        else:
            text = f"{who} inconclusive after round {last.number}: {last.verdict.reason}"
        if len(self.rounds) > 1:
            text += f" ({self.decision.reason})"
        return text

    @property
    def http_requests(self) -> int:
        return sum(r.http_requests for r in self.rounds)


class StepError(CanaryError):
    """A round could not be run or judged. ``rounds``: the rounds finished before it."""

    def __init__(self, message: str, rounds: t.Sequence[RoundReport], option: str | None = None,
                 status: int | None = None, error_code: str = "") -> None:
        super().__init__(message, option)
        self.rounds = tuple(rounds)
        self.status = status
        self.error_code = error_code


def pool_counts(pooled: t.Mapping[str, Counts], numbers: VersionNumbers) -> dict[str, Counts]:
    """``pooled`` plus one round's requests, 5xx answers and duration histogram per version.
    Rounds' windows follow each other (the window is the interval by default), so their counts
    add up to the step's."""
    out = dict(pooled)
    for version in set(numbers.values) | set(numbers.buckets):
        metrics = numbers.values.get(version, {})
        requests = metrics.get(REQUEST_COUNT) or 0.0
        rate = metrics.get(REQUEST_ERROR_RATE)
        errors = round(requests * rate / 100.0) if rate is not None else 0.0
        before = out.get(version, Counts(0.0, 0.0))
        latency = dict(before.latency)
        for bound, count in numbers.buckets.get(version, {}).items():
            latency[bound] = latency.get(bound, 0.0) + count
        out[version] = Counts(before.requests + requests, before.errors + errors, latency)
    return out


def run_round(plan: AnalysisPlan, source: RoundSource, number: int, end_ms: int,
              pooled: t.Mapping[str, Counts] | None = None, final: bool = False) -> tuple[RoundReport, dict[str, Counts]]:
    """Query the window ending at ``end_ms`` and judge it; with a confidence, on the counts
    pooled with the step's earlier rounds (returned for the next round); ``final``: the step's
    last look."""
    start_ms = end_ms - plan.step.window_s * 1000
    before = source.requests_made
    answers = source.query_round(plan.queries, start_ms, end_ms)
    numbers = round_numbers(plan.target, plan.queries, answers, plan.custom, start_ms)
    evidence = pool_counts(pooled or {}, numbers) if plan.step.confidence is not None else None
    verdict = judge(numbers, with_queries(plan.checks, plan.queries), plan.target.canary_version,
                    plan.target.baseline_version, plan.step.min_requests, plan.expected_weight, evidence,
                    plan.step.look_z, final, plan.scoring)
    return RoundReport(number, start_ms, end_ms, verdict, numbers.values, source.requests_made - before), evidence or {}


def run_step(
    plan: AnalysisPlan,
    source: RoundSource,
    wall_ms: t.Callable[[], int],
    monotonic: t.Callable[[], float],
    sleep: t.Callable[[float], None],
    check_mode: bool = False,
) -> StepResult:
    """Run rounds until the step passes, fails or runs out of rounds.

    Round ``n`` starts ``n * interval`` seconds after the call (the interval is also waited before
    the first round, so the first window holds traffic at the new weight); rounds keep that pace
    even when a query takes time. In check mode: one round at once.
    """
    step = plan.step
    started = monotonic()
    rounds: list[RoundReport] = []
    pooled: dict[str, Counts] = {}
    decision = StepDecision(CONTINUE, "no round yet", 0, 0)
    looks = 1 if check_mode else step.max_rounds
    answered = unanswered = 0
    number = 0
    while answered < looks:
        number += 1
        if not check_mode:
            wait = started + number * step.interval_s - monotonic()
            if wait > 0:
                sleep(wait)
        who = f"analysis of {plan.target.service} {plan.target.canary_version}, round {number}"
        before = source.requests_made
        try:
            report, pooled = run_round(plan, source, number, wall_ms(), pooled, final=check_mode or answered + 1 == looks)
        except RoundQueryError as exc:
            if exc.rate_limited and step.interval_s > 0 and not check_mode and unanswered < step.max_rounds:
                unanswered += 1
                rounds.append(unanswered_round(number, wall_ms(), plan, exc, source.requests_made - before))
                continue
            more = f" ({unanswered} earlier rounds were rate-limited too)" if exc.rate_limited and unanswered else ""
            raise StepError(f"{who}: {exc}{more}", rounds, status=exc.status, error_code=exc.error_code) from None
        except AnalysisError as exc:
            raise StepError(f"{who}: {exc}", rounds, option=exc.option) from None
        rounds.append(report)
        answered += 1
        decision = step_decision([r.verdict.verdict for r in rounds if r.answered], step.iterations, step.threshold,
                                 inconclusive_is_failure=step.inconclusive == INCONCLUSIVE_FAIL,
                                 marginal_is_failure=plan.scoring.on_marginal == "fail")
        critical = report.verdict.critical_failure
        if critical and decision.decision != FAIL:
            decision = StepDecision(FAIL, f"critical check {critical} failed", decision.rounds, decision.failed_checks)
        if decision.decision != CONTINUE:
            break
    return StepResult(plan, tuple(rounds), decision, check_mode)


def unanswered_round(number: int, end_ms: int, plan: AnalysisPlan, error: RoundQueryError,
                     http_requests: int) -> RoundReport:
    """A round the provider rate-limited through its whole retry budget: not a failure of the
    canary (a key shared by many clusters runs out of requests while every canary is healthy), so
    it decides nothing and the step asks again at the next round. ``run_step`` bounds how many."""
    verdict = Verdict(INCONCLUSIVE, f"not answered, asked again next round: {error}", (), None, None,
                      plan.step.min_requests)
    return RoundReport(number, end_ms - plan.step.window_s * 1000, end_ms, verdict, {}, http_requests, answered=False)


@dataclass
class GuanceRounds:
    """Every query of a round in ONE request to Guance (``GuanceClient.query``)."""

    client: t.Any  # _guance.GuanceClient
    requests_made: int = field(init=False, default=0)

    def query_round(self, queries: t.Sequence[MetricQuery], start_ms: int, end_ms: int) -> dict[str, list[Series]]:
        try:
            result = self.client.query([Query(q.query, q.qtype, lookback_ms=q.lookback_s * 1000) for q in queries],
                                       start_ms, end_ms)
        except GuanceError as exc:
            raise RoundQueryError(f"querying Guance: {exc}", getattr(exc, "status", None),
                                  getattr(exc, "error_code", ""), isinstance(exc, GuanceRateLimitError)) from None
        finally:
            self.requests_made = self.client.requests_made
        return {query.key: series for query, series in zip(queries, result.series)}

    def close(self) -> None:
        self.client.close()


@dataclass
class PrometheusRounds:
    """A round's queries as Prometheus instant queries at the window's end, one request each."""

    client: t.Any  # prometheus.PrometheusClient
    requests_made: int = field(init=False, default=0)

    def query_round(self, queries: t.Sequence[MetricQuery], start_ms: int, end_ms: int) -> dict[str, list[Series]]:
        answers: dict[str, list[Series]] = {}
        try:
            for query in queries:
                # The window is in each PromQL range selector; the evaluation time ends it.
                answers[query.key] = self.client.query(query.query, at_ms=end_ms).series
        except PrometheusError as exc:
            raise RoundQueryError(f"querying Prometheus: {exc}", getattr(exc, "status", None),
                                  getattr(exc, "error_type", ""), getattr(exc, "status", None) == 429) from None
        finally:
            self.requests_made = self.client.requests_made
        return answers

    def close(self) -> None:
        self.client.close()
