# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The judge: a round's checks and the traffic share -> pass / fail / inconclusive / marginal
(with scoring), one round from plan to verdict, and the decision of a step over its rounds
(Flagger's iterations and threshold).

The rule the whole analysis keeps: missing data, NaN and too little traffic are never a pass.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass, replace

from ansible_collections.canary.istio.plugins.module_utils._analysis.stats import wilson_interval
from ansible_collections.canary.istio.plugins.module_utils._analysis.answers import (
    Series,
    VersionNumbers,
    builtin_numbers,
    custom_values,
)
from ansible_collections.canary.istio.plugins.module_utils._analysis.checks import (
    Check,
    CheckResult,
    Counts,
    RATE_METRICS,
    Verdict,
    evaluate_check,
    evaluate_duration_check,
    evaluate_latency_check,
    evaluate_rate_check,
    fmt,
)
from ansible_collections.canary.istio.plugins.module_utils._analysis.queries import (
    AnalysisTarget,
    METRIC_QUERY,
    MetricQuery,
    builtin_queries,
)
from ansible_collections.canary.istio.plugins.module_utils._analysis.terms import (
    AnalysisError, BUILTIN_METRICS, CHECK_FAIL, CHECK_NO_DATA, CHECK_PASS, CHECK_UNDECIDED, FAIL, INCONCLUSIVE,
    MARGINAL, PASS, PROVIDER_PROMETHEUS, QTYPE_DQL, QTYPE_PROMQL, REQUEST_COUNT, REQUEST_DURATION,
    REQUEST_DURATION_P99, VERDICTS)


# The observed share of requests per version against the configured weights. A mesh that ignores
# the VirtualService (no sidecar on the canary, an istiod that rejected the rule) leaves the
# canary at 0% or at its pods' share while the weights say 10%: the round judged the wrong
# traffic. A canary share above the weight is judged by the sample size (Wilson interval at
# 99.9%) and a dead zone of 1 point + a quarter of the smaller side's weight, for what real load
# balancing does (per-connection picks, retries); a share below it only when it is none at all
# (see check_traffic_share).
TRAFFIC_SHARE = "traffic_share"


SHARE_Z = 3.29


# No canary request where its weight promised this many is a failure: with a 10% weight and 90
# baseline requests that happens by chance with probability (0.9)^100, about 3e-5.
SHARE_NONE_EXPECTED = 10


def check_traffic_share(canary: float | None, baseline: float | None, expected_pct: float) -> CheckResult:
    """Whether the canary's observed share of (canary + baseline) requests agrees with its weight."""
    def result(outcome: str, reason: str, observed: float | None) -> CheckResult:
        return CheckResult(TRAFFIC_SHARE, outcome, reason, observed, expected_pct, None, None, None, None, None, "%")

    total = (canary or 0) + (baseline or 0)
    if total <= 0:
        return result(CHECK_NO_DATA, "no requests of either version to compare with the weights", None)
    low, high = wilson_interval(canary or 0, total, SHARE_Z)
    observed = 100.0 * (canary or 0) / total
    slack = 1.0 + 0.25 * min(expected_pct, 100.0 - expected_pct)
    shown = (f"observed {fmt(round(observed, 1))}% of {fmt(total)} requests on the canary "
             f"(99.9% interval {fmt(round(100 * low, 1))}-{fmt(round(100 * high, 1))}%), configured {fmt(expected_pct)}%")
    # Too much: the canary's share cannot be overcounted, so the interval decides. Too little is
    # only a failure when the canary got nothing at all where its weight promised at least
    # SHARE_NONE_EXPECTED requests: a canary's series born inside the window is counted from its
    # first scrape (PromQL increase(), DQL buckets), so a new canary's first round can show a
    # small part of its share (14% of 171 requests under a 50% weight, measured), while a canary
    # the mesh does not reach, or without a Ready pod, shows none.
    promised = float("inf") if expected_pct >= 100 else (baseline or 0) * expected_pct / (100.0 - expected_pct)
    too_much = 100 * low - slack > expected_pct
    none_at_all = not canary and promised >= SHARE_NONE_EXPECTED
    if too_much or none_at_all:
        return result(CHECK_FAIL, shown + ": the requests do not follow the weights (the mesh does not apply the "
                      "VirtualService, or the canary has no Ready pod)", observed)
    return result(CHECK_PASS, shown, observed)


@dataclass(frozen=True)
class Scoring:
    """How a round's checks add up, in Keptn's and Kayenta's words.

    The round's score is the percent of the deciding checks' ``weight`` that passed (a check
    without data or undecided does not pass). With failed checks, a score at or above ``pass``
    tolerates them; at or above ``marginal`` the round is ``marginal`` (``on_marginal``: a failed
    round, or one more round; a step never passes on it); below, the round fails. The defaults
    (both 100) are the plain rule: any failed check fails the round.

    ``no_data_fail_percent``: when at least this percent of the deciding checks have no data, the
    round fails instead of being inconclusive (Kayenta scores a run 0 when half its metrics have
    no data); unset, no data is inconclusive."""

    pass_score: float = 100.0
    marginal_score: float | None = None
    on_marginal: str = "fail"
    no_data_fail_percent: float | None = None

    def __post_init__(self) -> None:
        for name, value in (("pass", self.pass_score), ("marginal", self.marginal_score),
                            ("no_data_fail_percent", self.no_data_fail_percent)):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
                raise AnalysisError(f"scoring.{name} must be a percentage from 0 to 100, got {value!r}", "scoring")
        if self.marginal_score is not None and self.marginal_score > self.pass_score:
            raise AnalysisError(f"scoring.marginal {self.marginal_score:g} is above scoring.pass {self.pass_score:g}: the "
                                "marginal band lies below the pass score", "scoring")
        if self.no_data_fail_percent == 0:
            raise AnalysisError("scoring.no_data_fail_percent must be above 0 (0 would fail every round)", "scoring")
        if self.on_marginal not in ("fail", "wait"):
            raise AnalysisError(f"scoring.on_marginal must be fail or wait, got {self.on_marginal!r}", "scoring")

    @property
    def scored(self) -> bool:
        """Whether failed checks are weighed at all (else any failed check fails the round)."""
        return self.marginal_floor < 100

    @property
    def marginal_floor(self) -> float:
        return self.pass_score if self.marginal_score is None else self.marginal_score


def judge(
    numbers: VersionNumbers | t.Mapping[str, t.Mapping[str, float | None]],
    checks: t.Sequence[Check],
    canary_version: str,
    baseline_version: str | None = None,
    min_requests: int = 1,
    expected_weight: float | None = None,
    evidence: t.Mapping[str, Counts] | None = None,
    z: float | None = None,
    final: bool = False,
    scoring: Scoring | None = None,
) -> Verdict:
    """The verdict of one round.

    1. The canary's ``request_count`` missing or below ``min_requests``: inconclusive (every
       check is still evaluated and reported).
    2. Else any check failed: fail.
    3. Else any check without data (canary, or baseline for a relative bound): inconclusive.
    4. Else pass.
    Relative bounds need the baseline to have ``min_requests`` too.

    With ``expected_weight`` (the canary's configured weight, percent) and a baseline, the
    observed share of requests is checked too (``traffic_share``), and a disagreement fails the
    round before anything else: with the canary at 0% of 400 requests under a 10% weight the
    round has too few canary requests, but the reason is the mesh, not the sample.

    With ``evidence`` (each version's requests and errors pooled over the step's rounds so far)
    and ``z``, the success- and error-rate checks are judged on those counts
    (``evaluate_rate_check``; ``final``: the step's last look), ``min_requests`` applies to the
    pooled canary requests, and a check the sample cannot decide yet makes the round
    inconclusive ("the sample cannot tell yet").

    ``scoring`` (``Scoring``) turns step 2 into a score and adds the no-data rule; a critical
    check's failure fails the round whatever the score.
    """
    if isinstance(min_requests, bool) or not isinstance(min_requests, int) or min_requests < 1:
        raise AnalysisError(f"min_requests must be a whole number >= 1, got {min_requests!r}", "min_requests")
    if not checks:
        raise AnalysisError("at least one check is needed; without checks nothing can pass", "checks")
    table = numbers if isinstance(numbers, VersionNumbers) else VersionNumbers({k: dict(v) for k, v in numbers.items()})
    canary_requests = table.get(canary_version, REQUEST_COUNT)
    baseline_requests = table.get(baseline_version, REQUEST_COUNT)
    pooled = evidence is not None and z is not None
    if pooled:
        canary_requests = evidence[canary_version].requests if canary_version in evidence else canary_requests
        if baseline_version in evidence:
            baseline_requests = evidence[baseline_version].requests
    baseline_reliable = baseline_requests is not None and baseline_requests >= min_requests

    def evaluate(check: Check) -> CheckResult:
        if pooled and check.metric in RATE_METRICS:
            return evaluate_rate_check(check, evidence.get(canary_version),
                                       evidence.get(baseline_version) if baseline_version else None, z, baseline_reliable, final)
        if pooled and check.metric == REQUEST_DURATION:
            base = evidence[baseline_version].latency if baseline_version in evidence and baseline_reliable else None
            latency = evidence[canary_version].latency if canary_version in evidence else {}
            return evaluate_duration_check(check, latency, base, z, final)
        if pooled and check.metric == REQUEST_DURATION_P99 and canary_version in evidence and evidence[canary_version].latency:
            base = evidence[baseline_version].latency if baseline_version in evidence and baseline_reliable else None
            return evaluate_latency_check(check, evidence[canary_version].latency, base, z, final)
        return evaluate_check(
            check, table.get(canary_version, check.metric), table.get(baseline_version, check.metric), baseline_reliable)

    results = tuple(evaluate(check) for check in checks)
    results = tuple(with_policy(check, result) for check, result in zip(checks, results))
    share = None
    if expected_weight is not None and baseline_version is not None and expected_weight > 0:
        share = check_traffic_share(canary_requests, baseline_requests, float(expected_weight))
        results += (share,)
    scoring = scoring or Scoring()
    deciding = [r for r in results if POLICY_DRY_RUN not in r.policy]
    scored = [r for r in deciding if r is not share]
    failed = [r for r in deciding if r.result == CHECK_FAIL]
    no_data = [r for r in scored if r.result == CHECK_NO_DATA]
    undecided = [r for r in deciding if r.result == CHECK_UNDECIDED]
    critical = next((r.metric for r in failed if POLICY_CRITICAL in r.policy), None)
    weight = sum(r.weight for r in scored)
    score = round(100.0 * sum(r.weight for r in scored if r.result == CHECK_PASS) / weight, 1) if weight else None
    no_data_pct = 100.0 * len(no_data) / len(scored) if scored else 0.0
    failed_text = "; ".join(f"{r.metric}: {r.reason}" for r in failed)
    score_text = f"score {fmt(score)} (pass {fmt(scoring.pass_score)}, marginal {fmt(scoring.marginal_floor)})"
    tolerated = ""
    if share is not None and share.result == CHECK_FAIL:
        verdict, reason = FAIL, f"{TRAFFIC_SHARE}: {share.reason}"
    elif canary_requests is None:
        verdict, reason = INCONCLUSIVE, "no request count for the canary"
    elif canary_requests < min_requests:
        verdict, reason = INCONCLUSIVE, f"too few canary requests: {fmt(canary_requests)} < min_requests {min_requests}"
    elif critical:
        verdict, reason = FAIL, failed_text
    elif scoring.no_data_fail_percent is not None and no_data and no_data_pct >= scoring.no_data_fail_percent:
        verdict, reason = FAIL, (f"{len(no_data)} of {len(scored)} checks without data ({fmt(round(no_data_pct, 1))}% >= "
                                 f"no_data_fail_percent {fmt(scoring.no_data_fail_percent)}): "
                                 + "; ".join(f"{r.metric}: {r.reason}" for r in no_data))
    elif failed and (score is None or score < scoring.marginal_floor):
        verdict, reason = FAIL, f"{score_text}: {failed_text}" if scoring.scored else failed_text
    elif failed and score < scoring.pass_score:
        verdict, reason = MARGINAL, f"{score_text}: {failed_text}"
    elif no_data:
        verdict, reason = INCONCLUSIVE, "; ".join(f"{r.metric}: {r.reason}" for r in no_data)
    elif undecided:
        verdict, reason = INCONCLUSIVE, "; ".join(f"{r.metric}: {r.reason}" for r in undecided)
    else:
        if failed:
            tolerated = f"; {score_text} tolerates {failed_text}"
        verdict, reason = PASS, f"{len(deciding) - len(failed)} checks passed on {fmt(canary_requests)} canary requests" + (
            " (pooled over the step's rounds)" if pooled else "") + tolerated
    if verdict != FAIL:
        critical = None  # a critical check counts only when its failure is the round's verdict
    return Verdict(verdict, reason, results, canary_requests, baseline_requests, min_requests, critical, score)


POLICY_CRITICAL = "critical"


POLICY_MUST_HAVE_DATA = "must_have_data"


POLICY_DRY_RUN = "dry_run"


def with_policy(check: Check, result: CheckResult) -> CheckResult:
    """``result`` under ``check``'s policy: its flags recorded, and no data turned into a failure
    for a check that must have data."""
    policy = tuple(name for name in (POLICY_CRITICAL, POLICY_MUST_HAVE_DATA, POLICY_DRY_RUN) if getattr(check, name))
    if check.must_have_data and result.result == CHECK_NO_DATA:
        return replace(result, result=CHECK_FAIL, reason=f"{result.reason}, and it must have data", policy=policy,
                       weight=float(check.weight))
    return replace(result, policy=policy, weight=float(check.weight))


def with_queries(checks: t.Sequence[Check], queries: t.Iterable[MetricQuery]) -> list[Check]:
    """The checks with the text of the query behind each metric, built-in or custom, filled in
    (for the report), unless a check already names its query."""
    by_key = {query.key: query.query for query in queries}
    out = []
    for check in checks:
        key = METRIC_QUERY.get(check.metric, CUSTOM_PREFIX + check.metric)
        if check.query is None and key in by_key:
            check = replace(check, query=by_key[key])
        out.append(check)
    return out


CUSTOM_PREFIX = "custom:"


@dataclass(frozen=True)
class CustomMetric:
    """A user's DQL or PromQL metric. ``version_tag``: the tag its series are grouped by, one
    series per version (so it can be compared with the baseline); without it the query must
    return one series, the canary's. ``column``: the value column (default: the first that is not
    ``time``)."""

    name: str
    query: str
    qtype: str = QTYPE_DQL
    version_tag: str | None = None
    column: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_.-]*$", self.name):
            raise AnalysisError(f"a custom metric needs a name like 'p95_ms', got {self.name!r}", "metrics")
        if self.name in BUILTIN_METRICS:
            raise AnalysisError(f"custom metric {self.name!r} has the name of a built-in metric; rename it", "metrics")
        if not isinstance(self.query, str) or not self.query.strip():
            raise AnalysisError(f"custom metric {self.name!r} has an empty query", "metrics")
        if self.qtype not in (QTYPE_DQL, QTYPE_PROMQL):
            raise AnalysisError(f"custom metric {self.name!r}: qtype must be dql or promql, got {self.qtype!r}", "metrics")


def plan_round(
    target: AnalysisTarget,
    checks: t.Sequence[Check],
    provider: str,
    custom: t.Sequence[CustomMetric] = (),
    istio_query_language: str = QTYPE_PROMQL,
    latency_buckets: bool = False,
) -> list[MetricQuery]:
    """Every query a round needs: the built-ins the checks use plus the request count (always
    needed: too few requests make a round inconclusive), then the custom metrics the checks use.
    For ``guance`` all of them go in one HTTP request."""
    by_name = {metric.name: metric for metric in custom}
    if len(by_name) != len(custom):
        raise AnalysisError("two custom metrics have the same name", "metrics")
    builtins = [REQUEST_COUNT]
    customs: list[CustomMetric] = []
    for check in checks:
        if check.metric in BUILTIN_METRICS:
            builtins.append(check.metric)
        elif check.metric in by_name:
            if by_name[check.metric] not in customs:
                customs.append(by_name[check.metric])
        else:
            raise AnalysisError(
                f"check on unknown metric {check.metric!r}: use a built-in ({', '.join(BUILTIN_METRICS)}) or define "
                "it as a custom metric", "checks")
    queries = builtin_queries(target, builtins, provider, istio_query_language, latency_buckets)
    for metric in customs:
        if provider == PROVIDER_PROMETHEUS and metric.qtype != QTYPE_PROMQL:
            raise AnalysisError(f"custom metric {metric.name!r} is DQL; the prometheus provider runs PromQL only", "metrics")
        queries.append(MetricQuery(CUSTOM_PREFIX + metric.name, metric.qtype, metric.query))
    return queries


def round_numbers(
    target: AnalysisTarget,
    queries: t.Sequence[MetricQuery],
    answers: t.Mapping[str, t.Sequence[Series] | None],
    custom: t.Sequence[CustomMetric] = (),
    window_start_ms: int | None = None,
) -> VersionNumbers:
    """Per-version numbers from the answers (query key -> series; a missing key = no data)."""
    builtin = {query.key: query for query in queries if not query.key.startswith(CUSTOM_PREFIX)}
    numbers = builtin_numbers(target, answers, builtin, window_start_ms)
    by_name = {metric.name: metric for metric in custom}
    for query in queries:
        if not query.key.startswith(CUSTOM_PREFIX):
            continue
        metric = by_name[query.key[len(CUSTOM_PREFIX):]]
        series = answers.get(query.key)
        values = custom_values(series or [], target.versions, metric.version_tag, metric.column)
        for version, value in values.items():
            numbers.set(version, metric.name, value)
    return numbers


CONTINUE = "continue"


@dataclass(frozen=True)
class StepDecision:
    decision: str  # continue | pass | fail | inconclusive
    reason: str
    rounds: int
    failed_checks: int

    def as_dict(self) -> dict[str, t.Any]:
        return {"decision": self.decision, "reason": self.reason, "rounds": self.rounds, "failed_checks": self.failed_checks}


def max_rounds(checks: int, threshold: int) -> int:
    """Most rounds a step can take: ``checks`` plus one retry per tolerated failure."""
    return checks + threshold - 1


def step_decision(
    verdicts: t.Sequence[str], checks: int, threshold: int = 1, inconclusive_is_failure: bool = True,
    marginal_is_failure: bool = True,
) -> StepDecision:
    """What to do after the rounds of a step so far (like Flagger's interval/iterations/threshold).

    - Each ``fail`` (and each ``inconclusive`` when ``inconclusive_is_failure``, each ``marginal``
      when ``marginal_is_failure``) is a failed check;
      at ``threshold`` failed checks the step fails at once: roll back now, not after the step.
    - The step passes after at least ``checks`` rounds when the latest round passed: a step never
      advances on a failed or inconclusive last look.
    - Otherwise another round, up to ``max_rounds``; after that the step is inconclusive.
    """
    for name, value in (("checks", checks), ("threshold", threshold)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise AnalysisError(f"{name} must be a whole number >= 1, got {value!r}", name)
    for verdict in verdicts:
        if verdict not in VERDICTS:
            raise AnalysisError(f"unknown verdict {verdict!r}; expected one of {', '.join(VERDICTS)}", "verdicts")
    rounds = len(verdicts)
    failed = sum(1 for v in verdicts if v == FAIL or (inconclusive_is_failure and v == INCONCLUSIVE)
                 or (marginal_is_failure and v == MARGINAL))
    if failed >= threshold:
        return StepDecision(FAIL, f"{failed} failed checks reached the threshold {threshold}", rounds, failed)
    if rounds >= checks and verdicts[-1] == PASS:
        return StepDecision(PASS, f"{rounds} rounds, the last passed, {failed} failed checks (threshold {threshold})",
                            rounds, failed)
    if rounds < max_rounds(checks, threshold):
        return StepDecision(CONTINUE, f"round {rounds + 1} of at most {max_rounds(checks, threshold)}", rounds, failed)
    return StepDecision(INCONCLUSIVE, f"{rounds} rounds without a passing last round", rounds, failed)
