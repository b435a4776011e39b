# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rounds of one analysis step: settings from module options, the round loop, the providers.

PRIVATE to this collection: may change at any time.

The judge itself (queries, parsers, verdicts, the step decision) is ``_analysis``; this file only
drives it over time:

1. ``plan_from_params``: the module's options -> an ``AnalysisPlan`` (target, checks, custom
   metrics, the queries of a round, the step settings), or an AnalysisError naming the option.
2. ``run_step``: wait, query, judge, decide, repeat; returns as soon as the step passes or fails.
   Clocks, sleep and the query source are passed in, so the loop is tested without waiting and
   without a server.
3. ``GuanceRounds`` and ``PrometheusRounds``: a round's queries through ``GuanceClient`` (all in
   ONE request) or ``PrometheusClient`` (one request per query), errors turned into a
   ``RoundQueryError`` whose message never holds a secret (the clients redact them).
"""

from __future__ import annotations

import math
import re
import typing as t
from dataclasses import dataclass, field

from ansible_collections.canary.istio.plugins.module_utils._errors import CanaryError
from ansible_collections.canary.istio.plugins.module_utils._analysis.answers import Series, VersionNumbers
from ansible_collections.canary.istio.plugins.module_utils._analysis.checks import Check, Counts, Verdict
from ansible_collections.canary.istio.plugins.module_utils._analysis.judge import (
    CONTINUE,
    CustomMetric,
    Scoring,
    StepDecision,
    judge_round,
    max_rounds,
    plan_round,
    round_numbers,
    step_decision,
)
from ansible_collections.canary.istio.plugins.module_utils._analysis.queries import AnalysisTarget, MetricQuery
from ansible_collections.canary.istio.plugins.module_utils._analysis.terms import (
    AnalysisError,
    CHECK_FAIL,
    FAIL,
    INCONCLUSIVE,
    PASS,
    PROVIDER_GUANCE,
    PROVIDER_PROMETHEUS,
    QTYPE_DQL,
    QTYPE_PROMQL,
    REQUEST_COUNT,
    REQUEST_DURATION,
    REQUEST_DURATION_P99,
    REQUEST_ERROR_RATE,
    REQUEST_SUCCESS_RATE,
)
from ansible_collections.canary.istio.plugins.module_utils._analysis.sample import observed_rates, sample_plan
from ansible_collections.canary.istio.plugins.module_utils._analysis.stats import look_z
from ansible_collections.canary.istio.plugins.module_utils._guance.errors import GuanceError, GuanceRateLimitError
from ansible_collections.canary.istio.plugins.module_utils._guance.queries import Query
from ansible_collections.canary.istio.plugins.module_utils._analysis.prometheus import PrometheusError

INCONCLUSIVE_FAIL = "fail"
INCONCLUSIVE_WAIT = "wait"
INCONCLUSIVE_MODES: tuple[str, ...] = (INCONCLUSIVE_FAIL, INCONCLUSIVE_WAIT)

# Flagger's documented defaults: success rate at least 99 %, p99 at most 500 ms.
DEFAULT_CHECKS: tuple[dict[str, t.Any], ...] = (
    {"metric": REQUEST_SUCCESS_RATE, "min": 99},
    {"metric": REQUEST_DURATION_P99, "max": 500},
)
# Without an interval there is no natural window; a minute holds enough scrapes for increase().
DEFAULT_WINDOW_S = 60
# deploy_version's DataKit annotation scrapes the sidecars every 60 s.
DEFAULT_SCRAPE_INTERVAL_S = 60
BOUNDS: tuple[str, ...] = ("min", "max", "max_over_baseline", "max_ratio_to_baseline")
POLICY_FLAGS: tuple[str, ...] = ("critical", "must_have_data", "dry_run")

_DURATION_RE = re.compile(r"^\s*(\d+)\s*(s|m|h)?\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600}


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------


def seconds_option(value: t.Any, option: str, minimum: int = 1) -> int:
    """Whole seconds from an int or a string like ``"30"``, ``"30s"``, ``"2m"``, ``"1h"``."""
    if isinstance(value, bool):
        raise AnalysisError(f"{option} must be whole seconds like 30 or a duration like 30s or 2m, got {value!r}", option)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        seconds = value
    else:
        match = _DURATION_RE.match(str(value))
        if not match:
            raise AnalysisError(f"{option} must be whole seconds like 30 or a duration like 30s or 2m, got {value!r}",
                                option)
        seconds = int(match.group(1)) * _UNIT_S[match.group(2) or "s"]
    if seconds < minimum:
        raise AnalysisError(f"{option} must be at least {minimum} second{'s' if minimum != 1 else ''}, got {value!r}",
                            option)
    return seconds


@dataclass(frozen=True)
class StepSettings:
    """How the rounds of a step run (Flagger's interval, iterations and threshold)."""

    interval_s: int = 0
    iterations: int = 1
    threshold: int = 1
    window_s: int = DEFAULT_WINDOW_S
    min_requests: int = 1
    inconclusive: str = INCONCLUSIVE_FAIL
    fail_on_inconclusive: bool = True
    # With a confidence, rate checks are judged on the step's pooled counts (see ``pool_counts``).
    confidence: float | None = None

    def __post_init__(self) -> None:
        # (module option, attribute, smallest value)
        for option, attribute, minimum in (("interval", "interval_s", 0), ("iterations", "iterations", 1),
                                           ("threshold", "threshold", 1), ("window", "window_s", 1),
                                           ("min_requests", "min_requests", 1)):
            value = getattr(self, attribute)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise AnalysisError(f"{option} must be a whole number >= {minimum}, got {value!r}", option)
        if self.confidence is not None and (isinstance(self.confidence, bool) or not isinstance(self.confidence, (int, float))
                                            or not 0.5 < self.confidence < 1):
            raise AnalysisError(f"confidence must be a number between 0.5 and 1 (for example 0.95), got {self.confidence!r}",
                                "confidence")
        if self.inconclusive not in INCONCLUSIVE_MODES:
            raise AnalysisError(f"inconclusive must be one of {', '.join(INCONCLUSIVE_MODES)}, got {self.inconclusive!r}",
                                "inconclusive")

    @property
    def max_rounds(self) -> int:
        return max_rounds(self.iterations, self.threshold)

    @property
    def look_z(self) -> float | None:
        """z of each round's look at the pooled counts: the error of ``confidence`` spread over
        the step's rounds, so looking every round does not add false alarms."""
        return None if self.confidence is None else look_z(self.confidence, self.max_rounds)


@dataclass(frozen=True)
class AnalysisPlan:
    """Everything a step needs except the connection: what to ask, and how to judge and repeat."""

    provider: str
    target: AnalysisTarget
    checks: tuple[Check, ...]
    custom: tuple[CustomMetric, ...]
    queries: tuple[MetricQuery, ...]
    step: StepSettings
    expected_weight: int | None = None  # the canary's configured weight: checks the observed share
    scoring: Scoring = field(default_factory=Scoring)
    # The smallest error regression to catch (points over the baseline) and the weights of the
    # steps to plan for: the result then says whether such steps hold the sample it needs.
    detect_error_points: float | None = None
    plan_weights: tuple[int, ...] = ()


def checks_from_params(items: t.Sequence[t.Mapping[str, t.Any]] | None) -> list[Check]:
    """The checks of option ``checks`` (default: success rate >= 99 and p99 <= 500 ms)."""
    out = []
    for index, item in enumerate(items if items else DEFAULT_CHECKS):
        metric = item.get("metric")
        if not isinstance(metric, str) or not metric.strip():
            raise AnalysisError(f"checks[{index}] has no metric", "checks")
        bounds = {name: item.get(name) for name in BOUNDS if item.get(name) is not None}
        policy = {name: bool(item.get(name)) for name in POLICY_FLAGS}
        weight = 1.0 if item.get("weight") is None else item["weight"]
        try:
            out.append(Check(metric.strip(), **bounds, **policy, weight=weight))
        except AnalysisError as exc:
            raise AnalysisError(f"checks[{index}]: {exc}", "checks") from None
    return out


def custom_from_params(items: t.Sequence[t.Mapping[str, t.Any]] | None, provider: str) -> list[CustomMetric]:
    """The custom metrics of option ``metrics``; ``qtype`` defaults to the provider's language."""
    out = []
    default_qtype = QTYPE_PROMQL if provider == PROVIDER_PROMETHEUS else QTYPE_DQL
    for index, item in enumerate(items or []):
        try:
            out.append(CustomMetric(name=item.get("name"), query=item.get("query"), qtype=item.get("qtype") or default_qtype,
                                    version_tag=item.get("version_tag") or None, column=item.get("column") or None))
        except AnalysisError as exc:
            raise AnalysisError(f"metrics[{index}]: {exc}", "metrics") from None
    return out


def _param(params: t.Mapping[str, t.Any], name: str, default: t.Any) -> t.Any:
    value = params.get(name)
    return default if value is None else value


def plan_from_params(params: t.Mapping[str, t.Any]) -> AnalysisPlan:
    """The plan of the module's options; AnalysisError (``option`` set) before anything is sent."""
    provider = _param(params, "provider", PROVIDER_GUANCE)
    if provider not in (PROVIDER_GUANCE, PROVIDER_PROMETHEUS):
        raise AnalysisError(f"provider must be guance or prometheus, got {provider!r}", "provider")
    interval = seconds_option(_param(params, "interval", 0), "interval", minimum=0)
    if params.get("window") is not None:
        window = seconds_option(params["window"], "window")
    else:
        window = interval or DEFAULT_WINDOW_S
    scrape = seconds_option(_param(params, "scrape_interval", DEFAULT_SCRAPE_INTERVAL_S), "scrape_interval")
    language = _param(params, "istio_query_language", QTYPE_PROMQL)
    step = StepSettings(
        interval_s=interval, iterations=_param(params, "iterations", 1), threshold=_param(params, "threshold", 1),
        window_s=window, min_requests=_param(params, "min_requests", 1),
        # With a confidence, a round the sample cannot decide yet waits for the next by default.
        inconclusive=_param(params, "inconclusive", INCONCLUSIVE_WAIT if params.get("confidence") is not None
                            else INCONCLUSIVE_FAIL),
        fail_on_inconclusive=_param(params, "fail_on_inconclusive", True),
        confidence=params.get("confidence"),
    )
    target = AnalysisTarget(
        service=params.get("service"), canary_version=params.get("canary_version"),
        baseline_version=params.get("baseline_version") or None, namespace=params.get("namespace") or None,
        window_seconds=window, step_seconds=scrape,
        labels=tuple(sorted((str(name), value) for name, value in (params.get("labels") or {}).items())),
    )
    checks = checks_from_params(params.get("checks"))
    for check in checks:
        if check.relative and target.baseline_version is None:
            raise AnalysisError(f"check {check.metric!r} compares with the baseline: set baseline_version", "baseline_version")
    if params.get("confidence") is None and any(check.metric == REQUEST_DURATION for check in checks):
        raise AnalysisError(f"check {REQUEST_DURATION!r} is a rank test at a confidence: set confidence (for example "
                            "0.95)", "confidence")
    custom = custom_from_params(params.get("metrics"), provider)
    queries = plan_round(target, checks, provider, custom, language, latency_buckets=params.get("confidence") is not None)
    if provider == PROVIDER_GUANCE and params.get("api") == "datakit":
        for query in queries:
            if query.qtype == QTYPE_PROMQL:
                option = "metrics" if query.key.startswith("custom:") else "istio_query_language"
                raise AnalysisError(f"a DataKit (api=datakit) answers DQL only; the {query.key} query is PromQL: "
                                    f"set {'its qtype' if option == 'metrics' else option} to dql or use api=openapi", option)
    if provider == PROVIDER_GUANCE and language == QTYPE_DQL and window < 2 * scrape:
        # The DQL counter queries take one value per scrape bucket: a one-bucket window would judge
        # one sample per series, and one late scrape would leave it empty.
        raise AnalysisError(f"window {window}s holds fewer than two scrapes of scrape_interval {scrape}s, so DQL counters "
                            f"cannot grow in it: set window to at least {2 * scrape}s, or scrape_interval to what DataKit "
                            "really uses", "window")
    expected = params.get("expected_weight")
    if expected is not None:
        if isinstance(expected, bool) or not isinstance(expected, int) or not 0 <= expected <= 100:
            raise AnalysisError(f"expected_weight must be a whole percentage from 0 to 100, got {expected!r}", "expected_weight")
        if target.baseline_version is None:
            raise AnalysisError("expected_weight compares the canary's share with the baseline's: set baseline_version",
                                "baseline_version")
    detect = params.get("detect_error_points")
    weights = tuple(params.get("plan_weights") or ([expected] if expected else []))
    if detect is not None:
        if isinstance(detect, bool) or not isinstance(detect, (int, float)) or not 0 < detect <= 100:
            raise AnalysisError(f"detect_error_points must be percentage points above 0, got {detect!r}", "detect_error_points")
        if step.confidence is None:
            raise AnalysisError("detect_error_points plans the sample of the judge on counts: set confidence (for example "
                                "0.95)", "confidence")
        for weight in weights:
            if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
                raise AnalysisError(f"plan_weights must be whole percentages from 0 to 100, got {weight!r}", "plan_weights")
        if not any(0 < weight < 100 for weight in weights):
            raise AnalysisError("detect_error_points needs the weights to plan for: set expected_weight (the step's) or "
                                "plan_weights (a release's steps)", "plan_weights")
    return AnalysisPlan(provider, target, tuple(checks), tuple(custom), tuple(queries), step, expected,
                        scoring_from_params(params.get("scoring")), detect, weights)


def step_sample_plan(plan: AnalysisPlan, rounds: t.Sequence[RoundReport]) -> dict[str, t.Any] | None:
    """``sample_plan`` for the plan's weights at the rate and baseline errors its answered rounds
    saw (None without ``detect_error_points``)."""
    if plan.detect_error_points is None or plan.step.look_z is None:
        return None
    per_s, baseline_errors = observed_rates([r.numbers for r in rounds if r.answered], plan.target.baseline_version,
                                            plan.step.window_s)
    return sample_plan(plan.checks, plan.detect_error_points, plan.step.look_z, plan.plan_weights, per_s, baseline_errors,
                       plan.step.window_s * plan.step.max_rounds)


def scoring_from_params(value: t.Mapping[str, t.Any] | None) -> Scoring:
    """Option ``scoring`` (pass, marginal, on_marginal, no_data_fail_percent) -> ``Scoring``."""
    value = value or {}
    return Scoring(pass_score=_param(value, "pass", 100.0), marginal_score=value.get("marginal"),
                   on_marginal=_param(value, "on_marginal", "fail"), no_data_fail_percent=value.get("no_data_fail_percent"))


# ---------------------------------------------------------------------------------------------
# The round loop
# ---------------------------------------------------------------------------------------------


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
    verdict = judge_round(plan.target, plan.checks, plan.queries, answers, plan.custom, plan.step.min_requests,
                          plan.expected_weight, evidence, plan.step.look_z, final, plan.scoring, start_ms)
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


# ---------------------------------------------------------------------------------------------
# Providers
# ---------------------------------------------------------------------------------------------


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

    client: t.Any  # _prometheus.PrometheusClient
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
