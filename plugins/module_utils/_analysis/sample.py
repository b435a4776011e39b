# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The sample a step needs: from the smallest error regression a user wants caught, how many
canary requests the rate checks need to show it, and whether a step at a given weight holds them
at the service's current rate. Pure.

PRIVATE to this collection: may change at any time.

The numbers are a plan (normal approximation, a regression of the size asked caught in 80% of
steps), so that a release whose steps are too short says so before it starts, rather than
promoting on steps that could never have seen the regression.
"""

from __future__ import annotations

import math
import typing as t
from dataclasses import dataclass

from ansible_collections.canary.istio.plugins.module_utils._analysis.checks import Check
from ansible_collections.canary.istio.plugins.module_utils._analysis.terms import (
    REQUEST_COUNT,
    REQUEST_ERROR_RATE,
    REQUEST_SUCCESS_RATE,
)
from ansible_collections.canary.istio.plugins.module_utils._analysis.stats import requests_to_show


@dataclass(frozen=True)
class BoundNeed:
    """What one bound of a rate check needs to show the regression (None: it cannot)."""

    metric: str
    bound: str
    canary_requests: int | None

    def as_dict(self) -> dict[str, t.Any]:
        return {"metric": self.metric, "bound": self.bound, "canary_requests": self.canary_requests}


def bound_needs(checks: t.Sequence[Check], baseline_error_pct: float, increase_points: float, z: float,
                baseline_per_canary: float) -> list[BoundNeed]:
    """Each bound of the deciding success- and error-rate checks against a canary whose error
    rate is the baseline's plus ``increase_points``."""
    base = baseline_error_pct / 100.0
    canary = min(1.0, base + increase_points / 100.0)
    out = []
    for check in checks:
        if check.dry_run or check.metric not in (REQUEST_ERROR_RATE, REQUEST_SUCCESS_RATE):
            continue
        bounds: list[tuple[str, float, bool]] = []  # (text, error-rate limit as a fraction, relative)
        if check.metric == REQUEST_SUCCESS_RATE and check.min is not None:
            bounds.append((f"min {check.min:g}", (100.0 - check.min) / 100.0, False))
        if check.metric == REQUEST_ERROR_RATE:
            if check.max is not None:
                bounds.append((f"max {check.max:g}", check.max / 100.0, False))
            if check.max_over_baseline is not None:
                bounds.append((f"max_over_baseline {check.max_over_baseline:g}", base + check.max_over_baseline / 100.0, True))
            if check.max_ratio_to_baseline is not None:
                bounds.append((f"max_ratio_to_baseline {check.max_ratio_to_baseline:g}", base * check.max_ratio_to_baseline, True))
        for text, limit, relative in bounds:
            needed = requests_to_show(canary, limit, z, base if relative else None, baseline_per_canary if relative else 0.0)
            out.append(BoundNeed(check.metric, text, needed))
    return out


@dataclass(frozen=True)
class StepNeed:
    """A step at ``weight``: the canary requests it pools by its last look, against the need."""

    weight: int
    canary_requests_per_s: float
    pooled_seconds: int
    canary_requests: int | None  # needed; None when no check can show the regression
    seconds_needed: int | None

    @property
    def long_enough(self) -> bool | None:
        if self.canary_requests is None:
            return None
        return self.canary_requests <= self.canary_requests_per_s * self.pooled_seconds

    def as_dict(self) -> dict[str, t.Any]:
        return {"weight": self.weight, "canary_requests_per_s": round(self.canary_requests_per_s, 3),
                "pooled_seconds": self.pooled_seconds, "canary_requests_needed": self.canary_requests,
                "seconds_needed": self.seconds_needed, "long_enough": self.long_enough}


def observed_rates(numbers_by_round: t.Sequence[t.Mapping[str, t.Mapping[str, float | None]]], baseline: str | None,
                   window_s: int) -> tuple[float, float]:
    """(requests a second to the service, the baseline's error rate in percent) over the answered
    rounds' numbers: what the plan scales by. Every version counts towards the rate."""
    requests = errors = base_requests = 0.0
    for numbers in numbers_by_round:
        for version, metrics in numbers.items():
            count = metrics.get(REQUEST_COUNT) or 0.0
            requests += count
            if version == baseline:
                base_requests += count
                errors += count * (metrics.get(REQUEST_ERROR_RATE) or 0.0) / 100.0
    seconds = window_s * max(1, len(numbers_by_round))
    return requests / seconds, (100.0 * errors / base_requests if base_requests else 0.0)


def sample_plan(checks: t.Sequence[Check], increase_points: float, z: float, weights: t.Sequence[int],
                service_per_s: float, baseline_error_pct: float, pooled_seconds: int) -> dict[str, t.Any]:
    """For each weight (< 100) of ``weights``: the canary requests the easiest bound needs to show
    ``increase_points`` more errors than the baseline's, and whether the step pools them."""
    steps, per_bound = [], []
    for weight in sorted({w for w in weights if 0 < w < 100}):
        needs = bound_needs(checks, baseline_error_pct, increase_points, z, (100.0 - weight) / weight)
        per_bound = per_bound or [need.as_dict() for need in needs]
        shown = [need.canary_requests for need in needs if need.canary_requests is not None]
        needed = min(shown) if shown else None
        rate = service_per_s * weight / 100.0
        seconds = None if needed is None or rate <= 0 else int(math.ceil(needed / rate))
        steps.append(StepNeed(weight, rate, pooled_seconds, needed, seconds))
    return {"detect_error_points": increase_points, "service_requests_per_s": round(service_per_s, 3),
            "baseline_error_rate": round(baseline_error_pct, 3), "bounds": per_bound,
            "steps": [step.as_dict() for step in steps]}


def plan_warnings(plan: t.Mapping[str, t.Any], confidence: float) -> list[str]:
    """One line for each step too short to show the regression asked, or when no check can."""
    out = []
    points = plan["detect_error_points"]
    for step in plan["steps"]:
        if step["canary_requests_needed"] is None:
            out.append(f"no rate check can show +{points:g} points of errors over the baseline's "
                       f"{plan['baseline_error_rate']:g}%: each bound allows at least that much (bounds: "
                       + ", ".join(f"{b['metric']} {b['bound']}" for b in plan["bounds"])
                       + "); tighten a bound or ask for a larger regression")
            break
        if not step["long_enough"]:
            pooled = int(step["canary_requests_per_s"] * step["pooled_seconds"])
            out.append(f"at {step['weight']}% a step pools about {pooled} canary requests "
                       f"({step['canary_requests_per_s']:g}/s over {step['pooled_seconds']}s of windows); showing "
                       f"+{points:g} points of errors at confidence {confidence:g} needs about "
                       f"{step['canary_requests_needed']}: make the step's rounds cover "
                       + (f"{step['seconds_needed']}s" if step["seconds_needed"] is not None else "more time")
                       + " (window x (iterations + threshold - 1)) or raise its weight")
    return out
