# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One check judged: per-version numbers and a bound (fixed, or relative to the baseline) ->
pass, fail, no data or undecided, with every value, bound and query. Rates are judged on counts
at a confidence when one is given; latency on the histogram; the whole duration distribution by a
rank test.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import math

import typing as t
from dataclasses import dataclass, field

from ansible_collections.canary.istio.plugins.module_utils._analysis.stats import (
    difference_interval,
    quantile_rank_interval,
    rank_test_binned,
    wilson_interval,
)
from ansible_collections.canary.istio.plugins.module_utils._analysis.answers import (
    histogram_bins,
    histogram_mean,
    histogram_quantile,
)
from ansible_collections.canary.istio.plugins.module_utils._analysis.terms import (
    AnalysisError, BUILTIN_METRICS, CHECK_FAIL, CHECK_NO_DATA, CHECK_PASS, CHECK_UNDECIDED, REQUEST_DURATION,
    REQUEST_ERROR_RATE, REQUEST_SUCCESS_RATE)


@dataclass(frozen=True)
class Check:
    """One check on a metric of the canary.

    ``min``/``max``: fixed bounds (inclusive). ``max_over_baseline``: canary <= baseline + x (for
    percentages: x percentage points). ``max_ratio_to_baseline``: canary <= baseline * y. Any
    combination; all given bounds must hold.

    Policy, in Kayenta's and Keptn's words: ``critical`` - its failure fails the step at once,
    whatever the step's threshold; ``must_have_data`` - no data for it is a failure, not an
    inconclusive round; ``dry_run`` - judged and reported, never deciding anything (a shadow check
    to try a new bound on live releases).
    """

    metric: str
    min: float | None = None
    max: float | None = None
    max_over_baseline: float | None = None
    max_ratio_to_baseline: float | None = None
    query: str | None = None
    unit: str | None = None
    critical: bool = False
    must_have_data: bool = False
    dry_run: bool = False
    weight: float = 1.0  # its share of the round's score (see ``Scoring``)

    def __post_init__(self) -> None:
        if not isinstance(self.metric, str) or not self.metric:
            raise AnalysisError("every check needs a metric name", "checks")
        bounds = (self.min, self.max, self.max_over_baseline, self.max_ratio_to_baseline)
        for name, value in zip(("min", "max", "max_over_baseline", "max_ratio_to_baseline"), bounds):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value)):
                raise AnalysisError(f"check {self.metric!r}: {name} must be a number, got {value!r}", "checks")
        if all(value is None for value in bounds):
            raise AnalysisError(
                f"check {self.metric!r} has no bound: set min, max, max_over_baseline or max_ratio_to_baseline", "checks")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise AnalysisError(f"check {self.metric!r}: min {self.min} is above max {self.max}", "checks")
        if self.max_ratio_to_baseline is not None and self.max_ratio_to_baseline < 0:
            raise AnalysisError(f"check {self.metric!r}: max_ratio_to_baseline must be >= 0", "checks")
        if self.metric == REQUEST_DURATION and (self.max_ratio_to_baseline is None or any(
                value is not None for value in (self.min, self.max, self.max_over_baseline))):
            raise AnalysisError(f"check {self.metric!r} compares the canary's durations with the baseline's by rank: give "
                                "max_ratio_to_baseline (the increase allowed, for example 1.2) and no min, max or "
                                "max_over_baseline", "checks")
        if isinstance(self.weight, bool) or not isinstance(self.weight, (int, float)) or not 0 < self.weight < math.inf:
            raise AnalysisError(f"check {self.metric!r}: weight must be a number above 0, got {self.weight!r} (a check that "
                                "should not count is a dry_run check)", "checks")
        if self.dry_run and (self.critical or self.must_have_data):
            raise AnalysisError(f"check {self.metric!r}: a dry_run check decides nothing, so it cannot be critical or "
                                "must_have_data; drop one of them", "checks")

    @property
    def relative(self) -> bool:
        return self.max_over_baseline is not None or self.max_ratio_to_baseline is not None


@dataclass(frozen=True)
class CheckResult:
    metric: str
    result: str
    reason: str
    canary: float | None
    baseline: float | None
    min: float | None
    max: float | None
    max_over_baseline: float | None
    max_ratio_to_baseline: float | None
    query: str | None
    unit: str | None
    policy: tuple[str, ...] = ()  # the check's policy flags that apply (critical, must_have_data, dry_run)
    weight: float = 1.0

    def as_dict(self) -> dict[str, t.Any]:
        return {
            "metric": self.metric, "result": self.result, "reason": self.reason, "policy": list(self.policy),
            "weight": self.weight,
            "canary": self.canary, "baseline": self.baseline, "unit": self.unit, "query": self.query,
            "bounds": {
                "min": self.min, "max": self.max, "max_over_baseline": self.max_over_baseline,
                "max_ratio_to_baseline": self.max_ratio_to_baseline,
            },
        }


@dataclass(frozen=True)
class Verdict:
    verdict: str
    reason: str
    checks: tuple[CheckResult, ...]
    canary_requests: float | None
    baseline_requests: float | None
    min_requests: int
    critical_failure: str | None = None  # the metric of a critical check that failed: the step fails at once
    score: float | None = None  # percent of the deciding checks' weight that passed

    def as_dict(self) -> dict[str, t.Any]:
        return {
            "verdict": self.verdict, "reason": self.reason, "critical_failure": self.critical_failure, "score": self.score,
            "requests": {"canary": self.canary_requests, "baseline": self.baseline_requests, "min": self.min_requests},
            "checks": [c.as_dict() for c in self.checks],
        }


def fmt(value: float | None) -> str:
    if value is None:
        return "no data"
    return f"{value:g}"


def evaluate_check(
    check: Check, canary: float | None, baseline: float | None, baseline_reliable: bool = True
) -> CheckResult:
    """One check's result. ``baseline_reliable`` False (too little baseline traffic) makes the
    relative bounds unusable: no data, never a pass."""
    def result(outcome: str, reason: str) -> CheckResult:
        return CheckResult(check.metric, outcome, reason, canary, baseline, check.min, check.max,
                           check.max_over_baseline, check.max_ratio_to_baseline, check.query,
                           check.unit or BUILTIN_METRICS.get(check.metric))

    if canary is None or math.isnan(canary):
        return result(CHECK_NO_DATA, "no data for the canary")
    failures: list[str] = []
    passes: list[str] = []
    if check.min is not None:
        (passes if canary >= check.min else failures).append(f"{fmt(canary)} {'>=' if canary >= check.min else '<'} min {fmt(check.min)}")
    if check.max is not None:
        (passes if canary <= check.max else failures).append(f"{fmt(canary)} {'<=' if canary <= check.max else '>'} max {fmt(check.max)}")
    missing_baseline = None
    if check.relative:
        if baseline is None or math.isnan(baseline):
            missing_baseline = "no data for the baseline"
        elif not baseline_reliable:
            missing_baseline = "too few baseline requests for a comparison"
        else:
            if check.max_over_baseline is not None:
                limit = baseline + check.max_over_baseline
                ok = canary <= limit
                (passes if ok else failures).append(
                    f"{fmt(canary)} {'<=' if ok else '>'} baseline {fmt(baseline)} + {fmt(check.max_over_baseline)}")
            if check.max_ratio_to_baseline is not None:
                limit = baseline * check.max_ratio_to_baseline
                ok = canary <= limit
                (passes if ok else failures).append(
                    f"{fmt(canary)} {'<=' if ok else '>'} baseline {fmt(baseline)} x {fmt(check.max_ratio_to_baseline)}")
    # A broken fixed bound is a failure even when the baseline is missing.
    if failures:
        return result(CHECK_FAIL, "; ".join(failures))
    if missing_baseline:
        return result(CHECK_NO_DATA, missing_baseline)
    return result(CHECK_PASS, "; ".join(passes))


RATE_METRICS = (REQUEST_ERROR_RATE, REQUEST_SUCCESS_RATE)


@dataclass(frozen=True)
class Counts:
    """A version's requests and 5xx answers, pooled over the rounds of a step so far."""

    requests: float
    errors: float
    # The duration histogram (upper bound -> cumulative requests), pooled like the counts.
    latency: t.Mapping[float, float] = field(default_factory=dict)

    def rate_interval(self, metric: str, z: float) -> tuple[float, float, float]:
        """(point, low, high) of ``metric`` (percent) at ``z``."""
        low, high = wilson_interval(self.errors, self.requests, z)
        point = 100.0 * self.errors / self.requests if self.requests > 0 else 0.0
        if metric == REQUEST_SUCCESS_RATE:
            return 100.0 - point, 100.0 * (1 - high), 100.0 * (1 - low)
        return point, 100.0 * low, 100.0 * high


def _result_of(check: Check) -> t.Callable[[str, str, float | None, float | None], CheckResult]:
    """``result(outcome, reason, canary value, baseline value)`` for ``check`` (the judges on counts)."""
    def result(outcome: str, reason: str, value: float | None, base: float | None) -> CheckResult:
        return CheckResult(check.metric, outcome, reason, value, base, check.min, check.max, check.max_over_baseline,
                           check.max_ratio_to_baseline, check.query, check.unit or BUILTIN_METRICS.get(check.metric))
    return result


class _BoundVerdicts:
    """Each bound of a check on counts: failed (the interval lies beyond it), kept (within it), or
    undecided; at the step's ``final`` look an undecided bound whose estimate is within is kept."""

    def __init__(self, final: bool) -> None:
        self.final = final
        self.failures: list[str] = []
        self.undecided: list[str] = []
        self.passes: list[str] = []

    def judge(self, broken: bool, kept: bool, estimate_kept: bool, text: str) -> None:
        if not broken and not kept and self.final and estimate_kept:
            text += " (kept on the estimate at the step's last look)"
            kept = True
        (self.failures if broken else self.passes if kept else self.undecided).append(text)

    def judge_fixed(self, check: Check, value: float, low: float, high: float, shown: str) -> None:
        """The check's own ``min`` and ``max``, on the canary's estimate and its interval."""
        if check.min is not None:
            self.judge(high < check.min, low >= check.min, value >= check.min, f"{shown} vs min {fmt(check.min)}")
        if check.max is not None:
            self.judge(low > check.max, high <= check.max, value <= check.max, f"{shown} vs max {fmt(check.max)}")

    def outcome(self, result: t.Callable[..., CheckResult], value: float | None, base: float | None) -> CheckResult:
        if self.failures:
            return result(CHECK_FAIL, "; ".join(self.failures), value, base)
        if self.undecided:
            return result(CHECK_UNDECIDED, "the sample cannot tell yet: " + "; ".join(self.undecided), value, base)
        return result(CHECK_PASS, "; ".join(self.passes), value, base)


def evaluate_rate_check(check: Check, canary: Counts | None, baseline: Counts | None, z: float,
                        baseline_reliable: bool = True, final: bool = False) -> CheckResult:
    """A success- or error-rate check judged on counts at ``z``: a bound fails only when the
    interval lies beyond it, passes when the interval lies within it, and is undecided when the
    interval straddles it (the sample cannot tell yet; the step looks again next round).

    At the step's ``final`` look, a bound still undecided is kept when the estimate itself is
    within it: the data did not show a breach at the confidence asked, and waiting is over. Only
    an estimate beyond the bound that the sample cannot confirm stays undecided (inconclusive)."""
    result = _result_of(check)
    if canary is None or canary.requests <= 0:
        return result(CHECK_NO_DATA, "no data for the canary", None, None)
    value, low, high = canary.rate_interval(check.metric, z)
    shown = f"{fmt(round(value, 2))} ({fmt(round(low, 2))}-{fmt(round(high, 2))} on {fmt(canary.requests)} requests)"
    bounds = _BoundVerdicts(final)
    judge_bound = bounds.judge
    bounds.judge_fixed(check, value, low, high, shown)
    base_value = None
    missing_baseline = None
    if check.relative:
        if baseline is None or baseline.requests <= 0:
            missing_baseline = "no data for the baseline"
        elif not baseline_reliable:
            missing_baseline = "too few baseline requests for a comparison"
        else:
            base_value, base_low, base_high = baseline.rate_interval(check.metric, z)
            if check.max_over_baseline is not None:
                d_low, d_high = difference_interval(canary.errors, canary.requests, baseline.errors, baseline.requests, z)
                if check.metric == REQUEST_SUCCESS_RATE:  # success difference = -(error difference)
                    d_low, d_high = -d_high, -d_low
                judge_bound(100 * d_low > check.max_over_baseline, 100 * d_high <= check.max_over_baseline,
                            value - base_value <= check.max_over_baseline,
                            f"canary - baseline {fmt(round(value - base_value, 2))} points "
                            f"({fmt(round(100 * d_low, 2))} to {fmt(round(100 * d_high, 2))}) vs + "
                            f"{fmt(check.max_over_baseline)}")
            if check.max_ratio_to_baseline is not None:
                limit_high = base_high * check.max_ratio_to_baseline
                judge_bound(low > limit_high, high <= limit_high, value <= base_value * check.max_ratio_to_baseline,
                            f"{shown} vs baseline {fmt(round(base_value, 2))} x {fmt(check.max_ratio_to_baseline)}")
    if bounds.failures:
        return result(CHECK_FAIL, "; ".join(bounds.failures), value, base_value)
    if missing_baseline:
        return result(CHECK_NO_DATA, missing_baseline, value, base_value)
    return bounds.outcome(result, value, base_value)


def evaluate_latency_check(check: Check, canary: t.Mapping[float, float], baseline: t.Mapping[float, float] | None,
                           z: float, final: bool = False) -> CheckResult:
    """A p99 check judged on the duration histogram: the p99 and the interval of its rank
    (``quantile_rank_interval``) read off the buckets, each bound failed, kept or undecided as in
    ``evaluate_rate_check`` (the last look keeping a bound whose estimate is within it)."""
    result = _result_of(check)

    def read(buckets: t.Mapping[float, float]) -> tuple[float | None, float | None, float | None, float]:
        total = max(buckets.values(), default=0.0)
        low_q, high_q = quantile_rank_interval(0.99, total, z)
        return histogram_quantile(0.99, buckets), histogram_quantile(low_q, buckets), histogram_quantile(high_q, buckets), total

    value, low, high, total = read(canary)
    if value is None or low is None or high is None:
        return result(CHECK_NO_DATA, "no data for the canary", None, None)
    shown = f"p99 {fmt(round(value, 1))} ms (rank interval {fmt(round(low, 1))}-{fmt(round(high, 1))} ms on {fmt(total)} " \
            "requests, from the duration histogram)"
    bounds = _BoundVerdicts(final)
    judge_bound = bounds.judge
    bounds.judge_fixed(check, value, low, high, shown)
    base_value = None
    if check.relative:
        base_value, base_low, base_high, _total = read(baseline or {})
        if base_value is None or base_low is None or base_high is None:
            return result(CHECK_NO_DATA, "no data for the baseline", value, None)
        if check.max_over_baseline is not None:
            plus = check.max_over_baseline
            judge_bound(low > base_high + plus, high <= base_low + plus, value <= base_value + plus,
                        f"{shown} vs baseline {fmt(round(base_value, 1))} + {fmt(plus)}")
        if check.max_ratio_to_baseline is not None:
            ratio = check.max_ratio_to_baseline
            judge_bound(low > base_high * ratio, high <= base_low * ratio, value <= base_value * ratio,
                        f"{shown} vs baseline {fmt(round(base_value, 1))} x {fmt(ratio)}")
    return bounds.outcome(result, value, base_value)


def evaluate_duration_check(check: Check, canary: t.Mapping[float, float], baseline: t.Mapping[float, float] | None,
                            z: float, final: bool = False) -> CheckResult:
    """The canary's whole duration distribution against the baseline's, like Kayenta's
    Mann-Whitney judge: a rank test on the two duration histograms (``rank_test_binned``) says
    whether the canary is slower at ``z``, and the ratio of their means is the effect, with
    ``max_ratio_to_baseline`` the increase allowed (Kayenta's ``allowedIncrease``, a dead zone).

    Failed when the test shows the canary slower and the effect is beyond the allowed ratio;
    kept when the effect is within it (a small, even a significant, slowdown inside the dead zone
    passes); undecided when the effect is beyond but the sample cannot show it yet. The last look
    keeps nothing undecided: an unconfirmed slowdown beyond the ratio stays inconclusive."""
    result = _result_of(check)
    value = histogram_mean(canary)
    if value is None:
        return result(CHECK_NO_DATA, "no data for the canary", None, None)
    base = histogram_mean(baseline or {})
    if base is None or base <= 0:
        return result(CHECK_NO_DATA, "no data for the baseline", value, None)
    _bounds, (canary_bins, baseline_bins) = histogram_bins(canary, baseline or {})
    theta, shift_z = rank_test_binned(canary_bins, baseline_bins)
    ratio = value / base
    allowed = check.max_ratio_to_baseline
    shown = (f"mean {fmt(round(value, 1))} ms vs baseline {fmt(round(base, 1))} ms (x{fmt(round(ratio, 2))}, allowed "
             f"x{fmt(allowed)}); rank test: P(canary slower) {fmt(round(theta, 3))}, z {fmt(round(shift_z, 2))} vs "
             f"{fmt(round(z, 2))} on {fmt(sum(canary_bins))}/{fmt(sum(baseline_bins))} requests (Mann-Whitney U on the "
             "duration histogram's buckets)")
    bounds = _BoundVerdicts(final)
    bounds.judge(shift_z > z and ratio > allowed, ratio <= allowed, ratio <= allowed, shown)
    return bounds.outcome(result, value, base)
