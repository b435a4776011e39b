# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_analysis/checks.py: checks as written, and the latency and duration checks."""

from __future__ import annotations

import math
import random

import pytest

from ansible_collections.canary.istio.plugins.module_utils._analysis import answers
from ansible_collections.canary.istio.plugins.module_utils._analysis import checks
from ansible_collections.canary.istio.plugins.module_utils._analysis import terms


class TestCheck:
    @pytest.mark.parametrize("kwargs, message", [
        ({"metric": "x"}, "has no bound"),
        ({"metric": "x", "min": 5, "max": 1}, "min 5 is above max 1"),
        ({"metric": "x", "max": "high"}, "max must be a number"),
        ({"metric": "x", "max": float("nan")}, "max must be a number"),
        ({"metric": "", "max": 1}, "needs a metric name"),
        ({"metric": "x", "max_ratio_to_baseline": -1}, "must be >= 0"),
    ])
    def test_bad_checks_name_the_problem(self, kwargs: dict, message: str) -> None:
        with pytest.raises(terms.AnalysisError, match=message) as info:
            checks.Check(**kwargs)
        assert info.value.option == "checks"

    @pytest.mark.parametrize("bounds", [{"max": 500}, {"max_ratio_to_baseline": 1.2, "min": 1},
                                        {"max_ratio_to_baseline": 1.2, "max_over_baseline": 5}])
    def test_a_duration_check_takes_only_an_allowed_ratio(self, bounds) -> None:
        with pytest.raises(terms.AnalysisError, match="give max_ratio_to_baseline") as info:
            checks.Check("request_duration", **bounds)
        assert info.value.option == "checks"


BUCKETS = (1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, float("inf"))


def histogram(counts: dict[float, int]) -> dict[float, float]:
    """Cumulative buckets from per-bucket counts."""
    out, total = {}, 0.0
    for bound in BUCKETS:
        total += counts.get(bound, 0)
        out[bound] = total
    return out


P99_MAX = checks.Check("request_duration_p99", max=500)
P99_RATIO = checks.Check("request_duration_p99", max_ratio_to_baseline=1.3)


class TestLatencyCheck:
    """A p99 bound judged on the duration histogram."""

    def test_a_p99_bound_on_the_duration_histogram(self) -> None:
        fast = histogram({50.0: 440, 100.0: 10})  # every request under 100 ms
        passed = checks.evaluate_latency_check(P99_MAX, fast, None, 1.645)
        assert passed.result == terms.CHECK_PASS and "from the duration histogram" in passed.reason
        slow = histogram({1000.0: 450})  # every request between 500 ms and 1 s
        assert checks.evaluate_latency_check(P99_MAX, slow, None, 1.645).result == terms.CHECK_FAIL
        # 2% of 150 requests above 500 ms: the p99 sits at the bound, the sample cannot tell yet...
        edge = histogram({100.0: 147, 1000.0: 3})
        assert checks.evaluate_latency_check(P99_MAX, edge, None, 1.645).result == terms.CHECK_UNDECIDED
        # ... and at the step's last look its estimate decides: 750 ms here stays undecided, while one
        # slow request in 150 (an estimate under 100 ms, an interval up to 1 s) is kept.
        assert checks.evaluate_latency_check(P99_MAX, edge, None, 1.645, final=True).result == terms.CHECK_UNDECIDED
        one_slow = histogram({100.0: 149, 1000.0: 1})
        assert checks.evaluate_latency_check(P99_MAX, one_slow, None, 1.645).result == terms.CHECK_UNDECIDED
        kept = checks.evaluate_latency_check(P99_MAX, one_slow, None, 1.645, final=True)
        assert kept.result == terms.CHECK_PASS and "kept on the estimate" in kept.reason
        assert checks.evaluate_latency_check(P99_MAX, {}, None, 1.645).result == terms.CHECK_NO_DATA

    def test_a_p99_against_the_baseline_on_the_duration_histogram(self) -> None:
        base = histogram({50.0: 1300, 100.0: 50})
        same = histogram({50.0: 430, 100.0: 20})
        assert checks.evaluate_latency_check(P99_RATIO, same, base, 1.645, final=True).result == terms.CHECK_PASS
        doubled = histogram({100.0: 200, 250.0: 250})
        failed = checks.evaluate_latency_check(P99_RATIO, doubled, base, 1.645)
        assert failed.result == terms.CHECK_FAIL and "vs baseline" in failed.reason
        assert checks.evaluate_latency_check(P99_RATIO, same, None, 1.645).result == terms.CHECK_NO_DATA


def _lognormal_histogram(rng: random.Random, n: int, median_ms: float) -> dict[float, float]:
    bounds = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
    per_bin = [0] * (len(bounds) + 1)
    for _draw in range(n):
        duration = rng.lognormvariate(math.log(median_ms), 0.4)
        per_bin[next((i for i, bound in enumerate(bounds) if duration <= bound), len(bounds))] += 1
    cumulative, out = 0, {}
    for bound, count in zip((*bounds, float("inf")), per_bin):
        cumulative += count
        out[float(bound)] = float(cumulative)
    return out


class TestDurationCheck:
    """A rank test on the duration histograms of the canary and the baseline."""

    @pytest.mark.parametrize("canary_median, outcome", [(50, "pass"), (55, "pass"), (75, "fail"), (100, "fail")])
    def test_a_duration_check_fails_a_slowdown_beyond_the_allowed_ratio(self, canary_median, outcome) -> None:
        rng = random.Random(canary_median)
        check = checks.Check("request_duration", max_ratio_to_baseline=1.3)
        result = checks.evaluate_duration_check(check, _lognormal_histogram(rng, 300, canary_median),
                                                _lognormal_histogram(rng, 2700, 50), z=2.33)
        assert result.result == outcome, result.reason
        assert "Mann-Whitney U on the duration histogram's buckets" in result.reason
        again = _lognormal_histogram(random.Random(canary_median), 300, canary_median)
        assert result.canary == pytest.approx(answers.histogram_mean(again))

    def test_a_duration_check_waits_when_the_sample_cannot_show_a_slowdown(self) -> None:
        # 3 canary requests all slow: the means say x2 but the rank test cannot show it yet.
        check = checks.Check("request_duration", max_ratio_to_baseline=1.3)
        canary = {50.0: 0.0, 100.0: 0.0, 250.0: 3.0, float("inf"): 3.0}
        baseline = {50.0: 500.0, 100.0: 900.0, 250.0: 1000.0, float("inf"): 1000.0}
        result = checks.evaluate_duration_check(check, canary, baseline, z=3.0)
        assert result.result == "undecided" and result.reason.startswith("the sample cannot tell yet: mean 175 ms")
        assert checks.evaluate_duration_check(check, canary, baseline, z=3.0, final=True).result == "undecided"
        assert checks.evaluate_duration_check(check, {}, baseline, z=3.0).result == "no_data"
        assert checks.evaluate_duration_check(check, canary, None, z=3.0).reason == "no data for the baseline"
