# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Confidence intervals on counts, for a judge that knows how many requests it saw. Pure.

PRIVATE to this collection: may change at any time.

A round of 150 canary requests cannot tell 0.5% of errors from 1.5%: comparing single rates
rolls healthy canaries back by chance. Here a rate is an interval at a stated confidence, so
a bound is failed only when the data show it, passed only when they show that too, and left
undecided when the sample cannot tell yet.

- ``wilson_interval``: the Wilson score interval of a proportion (good at small counts and at 0).
- ``difference_interval``: Newcombe's hybrid score interval of a difference of two proportions
  (canary minus baseline), built from the two Wilson intervals.
- ``look_z``: the z of one look when a step looks at its pooled data after every round. The
  error is spent evenly over the looks (Bonferroni), so looking every round does not add false
  alarms: over all looks of a step, a healthy canary fails with probability at most 1 - confidence.
"""

from __future__ import annotations

import math
from statistics import NormalDist


def z_of(alpha: float) -> float:
    """The standard normal quantile leaving ``alpha`` in one tail."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be within (0, 1), got {alpha!r}")
    return NormalDist().inv_cdf(1.0 - alpha)


def look_z(confidence: float, looks: int) -> float:
    """z of one of ``looks`` looks at overall one-sided ``confidence`` (error spent evenly)."""
    if not 0.5 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0.5 and 1, got {confidence!r}")
    if looks < 1:
        raise ValueError(f"looks must be >= 1, got {looks!r}")
    return z_of((1.0 - confidence) / looks)


def wilson_interval(hits: float, total: float, z: float) -> tuple[float, float]:
    """The Wilson score interval of ``hits / total`` as fractions; (0, 1) without a sample."""
    if total <= 0:
        return 0.0, 1.0
    p = min(max(hits / total, 0.0), 1.0)
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_interval(hits_a: float, total_a: float, hits_b: float, total_b: float, z: float) -> tuple[float, float]:
    """Newcombe's hybrid score interval of ``hits_a/total_a - hits_b/total_b`` (fractions)."""
    p_a = hits_a / total_a if total_a > 0 else 0.0
    p_b = hits_b / total_b if total_b > 0 else 0.0
    low_a, high_a = wilson_interval(hits_a, total_a, z)
    low_b, high_b = wilson_interval(hits_b, total_b, z)
    d = p_a - p_b
    low = d - math.sqrt((p_a - low_a) ** 2 + (high_b - p_b) ** 2)
    high = d + math.sqrt((high_a - p_a) ** 2 + (p_b - low_b) ** 2)
    return max(-1.0, low), min(1.0, high)


def quantile_rank_interval(quantile: float, observations: float, z: float) -> tuple[float, float]:
    """The quantiles whose ranks bound the ``quantile`` of ``observations`` draws at ``z``:
    the rank of a sample quantile is binomial (n, q), so the true quantile lies between the order
    statistics at n q -/+ z sqrt(n q (1 - q)) (one more rank on the high side for continuity).
    Read both off the histogram like the quantile itself."""
    if observations <= 0:
        return 0.0, 1.0
    spread = z * math.sqrt(observations * quantile * (1 - quantile))
    low = max(0.0, observations * quantile - spread) / observations
    high = min(observations, observations * quantile + spread + 1) / observations
    return low, high


def rank_test_binned(counts_a: list[float], counts_b: list[float]) -> tuple[float, float]:
    """A Mann-Whitney U test of sample A against sample B given as counts per ordered bin (the
    same bins for both; a duration histogram's buckets): ``(theta, z)``.

    ``theta`` is P(A > B) + P(A = B) / 2 for a random pair, 0.5 when A and B are alike; ``z`` is
    how far U lies above its mean under "alike", in standard errors, with the usual correction for
    ties (all observations of a bin are tied). Positive ``z``: A tends to be larger. (0.5, 0.0)
    when either sample is empty or every observation falls in one bin."""
    n_a, n_b = float(sum(counts_a)), float(sum(counts_b))
    if len(counts_a) != len(counts_b):
        raise ValueError("both samples need the same bins")
    if n_a <= 0 or n_b <= 0:
        return 0.5, 0.0
    u_a = 0.0
    b_below = 0.0
    ties = 0.0
    for a, b in zip(counts_a, counts_b):
        u_a += a * (b_below + b / 2.0)
        b_below += b
        tied = a + b
        ties += tied ** 3 - tied
    total = n_a + n_b
    variance = n_a * n_b / 12.0 * ((total + 1) - ties / (total * (total - 1)))
    theta = u_a / (n_a * n_b)
    if variance <= 0:
        return theta, 0.0
    return theta, (u_a - n_a * n_b / 2.0) / math.sqrt(variance)


# z of the power a sample plan asks for: a regression of the size asked is caught in 80% of steps.
PLAN_POWER_Z = NormalDist().inv_cdf(0.8)


def requests_to_show(canary_rate: float, limit: float, z: float, baseline_rate: float | None = None,
                     baseline_per_canary: float = 0.0) -> int | None:
    """Canary requests for a canary whose error rate is ``canary_rate`` (a fraction) to be shown
    above ``limit`` at ``z`` in about 80% of steps: the sample size of a one-sided test of a
    proportion, its confidence part with the variance at the limit, its power part with the
    variance at the canary's rate (a plan, not a promise). With ``baseline_rate`` the limit is
    relative to the baseline, whose own noise shrinks with ``baseline_per_canary`` baseline
    requests per canary request (9 at a 10% weight). None when the rate does not exceed the limit:
    no sample can show it."""
    gap = canary_rate - limit
    if gap <= 0:
        return None
    extra = 0.0
    if baseline_rate is not None and baseline_per_canary > 0:
        extra = baseline_rate * (1 - baseline_rate) / baseline_per_canary
    at_limit = math.sqrt(max(limit * (1 - limit) + extra, 1e-12))
    at_canary = math.sqrt(max(canary_rate * (1 - canary_rate) + extra, 1e-12))
    return math.ceil(((z * at_limit + PLAN_POWER_Z * at_canary) / gap) ** 2)
