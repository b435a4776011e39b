# -*- coding: utf-8 -*-
# Copyright: contributors to the canary.istio collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""_analysis/stats.py: intervals on counts checked against known values and by simulation, and the
judge's confidence mode on pooled counts."""

from __future__ import annotations

import math
import random

import pytest

from ansible_collections.canary.istio.plugins.module_utils._analysis import answers
from ansible_collections.canary.istio.plugins.module_utils._analysis import checks
from ansible_collections.canary.istio.plugins.module_utils._analysis import judge
from ansible_collections.canary.istio.plugins.module_utils._analysis import terms
from ansible_collections.canary.istio.plugins.module_utils._analysis import stats as st


def test_wilson_known_values() -> None:
    low, high = st.wilson_interval(0, 100, 1.96)
    assert low == 0.0 and round(high, 4) == 0.037  # the textbook 95% upper bound for 0 of 100
    low, high = st.wilson_interval(50, 100, 1.96)
    assert round(low, 3) == 0.404 and round(high, 3) == 0.596
    assert st.wilson_interval(0, 0, 1.96) == (0.0, 1.0)


def test_difference_interval_covers_the_truth_as_often_as_it_says() -> None:
    # 95% two-sided (z 1.96): over many simulated pairs, the interval misses the true difference
    # about 5% of the time, not much more.
    rng = random.Random(7)
    p_a, p_b, n_a, n_b, misses, trials = 0.02, 0.01, 400, 1600, 0, 2000
    for _trial in range(trials):
        hits_a = sum(rng.random() < p_a for _draw in range(n_a))
        hits_b = sum(rng.random() < p_b for _draw in range(n_b))
        low, high = st.difference_interval(hits_a, n_a, hits_b, n_b, 1.96)
        misses += not low <= p_a - p_b <= high
    assert misses / trials < 0.075


def test_looking_more_often_asks_for_more() -> None:
    assert st.look_z(0.95, 1) == pytest.approx(1.645, abs=0.001)
    assert st.look_z(0.95, 3) > st.look_z(0.95, 1)
    with pytest.raises(ValueError):
        st.look_z(1.2, 1)


RATE_MAX_1 = checks.Check("request_error_rate", max=1)
PLUS_ONE = checks.Check("request_error_rate", max_over_baseline=1)


def pooled_judge(check: checks.Check, canary: tuple, baseline: tuple | None = None, z: float = 1.645) -> checks.Verdict:
    evidence = {"v2": checks.Counts(*canary)}
    numbers = {"v2": {"request_count": canary[0]}}
    if baseline is not None:
        evidence["v1"] = checks.Counts(*baseline)
        numbers["v1"] = {"request_count": baseline[0]}
    return judge.judge(numbers, [check], "v2", "v1" if baseline else None, min_requests=1, evidence=evidence, z=z)


@pytest.mark.parametrize("canary, verdict, words", [
    ((150, 0), terms.INCONCLUSIVE, "the sample cannot tell yet"),  # 0 of 150: cannot show <= 1% yet
    ((600, 0), terms.PASS, "pooled over the step's rounds"),  # 0 of 600: it can
    ((150, 20), terms.FAIL, "vs max 1"),  # 13%: shown above 1% at once
])
def test_a_fixed_bound_on_counts(canary, verdict, words) -> None:
    result = pooled_judge(RATE_MAX_1, canary)
    assert result.verdict == verdict and words in result.reason


def test_a_bound_over_the_baseline_on_counts() -> None:
    base = (1350, 7)  # 0.5%
    assert pooled_judge(PLUS_ONE, (150, 1), base).verdict == terms.INCONCLUSIVE  # 0.7%: cannot tell yet
    assert pooled_judge(PLUS_ONE, (1500, 8), base).verdict == terms.PASS  # 0.5% on ten times the sample
    failed = pooled_judge(PLUS_ONE, (150, 15), base)  # 10%: shown beyond + 1 point
    assert failed.verdict == terms.FAIL and "canary - baseline" in failed.reason
    success = pooled_judge(checks.Check("request_success_rate", min=95), (150, 15))
    assert success.verdict == terms.FAIL and success.checks[0].canary == 90.0


BUCKETS = (1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, float("inf"))


def histogram(counts: dict[float, int]) -> dict[float, float]:
    """Cumulative buckets from per-bucket counts."""
    out, total = {}, 0.0
    for bound in BUCKETS:
        total += counts.get(bound, 0)
        out[bound] = total
    return out


def test_quantile_rank_interval_widens_with_fewer_requests() -> None:
    wide = st.quantile_rank_interval(0.99, 100, 1.645)
    narrow = st.quantile_rank_interval(0.99, 10_000, 1.645)
    assert wide[0] < narrow[0] < 0.99 < narrow[1] < wide[1] == 1.0
    assert st.quantile_rank_interval(0.99, 0, 1.645) == (0.0, 1.0)


P99_MAX = checks.Check("request_duration_p99", max=500)
P99_RATIO = checks.Check("request_duration_p99", max_ratio_to_baseline=1.3)


def test_a_p99_bound_on_the_duration_histogram() -> None:
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


def test_a_p99_against_the_baseline_on_the_duration_histogram() -> None:
    base = histogram({50.0: 1300, 100.0: 50})
    same = histogram({50.0: 430, 100.0: 20})
    assert checks.evaluate_latency_check(P99_RATIO, same, base, 1.645, final=True).result == terms.CHECK_PASS
    doubled = histogram({100.0: 200, 250.0: 250})
    failed = checks.evaluate_latency_check(P99_RATIO, doubled, base, 1.645)
    assert failed.result == terms.CHECK_FAIL and "vs baseline" in failed.reason
    assert checks.evaluate_latency_check(P99_RATIO, same, None, 1.645).result == terms.CHECK_NO_DATA


def _observations(counts: list[int]) -> list[int]:
    return [index for index, n in enumerate(counts) for _trial in range(n)]


def test_rank_test_on_bins_is_mann_whitney_with_ties_by_bin() -> None:
    a, b = [0, 3, 10, 20, 5, 1], [2, 10, 30, 25, 3, 0]
    xa, xb = _observations(a), _observations(b)
    u_pairs = sum((x > y) + 0.5 * (x == y) for x in xa for y in xb)
    # The tie-corrected variance written out from its definition.
    n_a, n_b = len(xa), len(xb)
    total = n_a + n_b
    ties = sum((i + j) ** 3 - (i + j) for i, j in zip(a, b))
    sd = (n_a * n_b / 12 * ((total + 1) - ties / (total * (total - 1)))) ** 0.5
    theta, z = st.rank_test_binned(a, b)
    assert theta == pytest.approx(u_pairs / (n_a * n_b))
    assert z == pytest.approx((u_pairs - n_a * n_b / 2) / sd)
    assert st.rank_test_binned(b, a)[1] == pytest.approx(-z)
    assert st.rank_test_binned([0, 0], [3, 4]) == (0.5, 0.0)
    assert st.rank_test_binned([5, 0], [7, 0]) == (0.5, 0.0)  # all in one bin: nothing to rank
    with pytest.raises(ValueError):
        st.rank_test_binned([1], [1, 2])


def test_rank_test_on_alike_samples_alarms_as_often_as_its_level() -> None:
    rng = random.Random(3)
    bounds = (5, 10, 25, 50, 100, 250, 500)
    alarms, trials = 0, 2000
    for _trial in range(trials):
        a, b = [0] * (len(bounds) + 1), [0] * (len(bounds) + 1)
        for counts, n in ((a, 150), (b, 1350)):
            for _draw in range(n):
                duration = rng.lognormvariate(3.9, 0.4)
                counts[next((i for i, bound in enumerate(bounds) if duration <= bound), len(bounds))] += 1
        alarms += st.rank_test_binned(a, b)[1] > 1.645
    assert 0.03 <= alarms / trials <= 0.07


def test_histogram_bins_and_mean() -> None:
    canary = {10.0: 2.0, 100.0: 6.0, float("inf"): 8.0}
    baseline = {10.0: 1.0, 50.0: 3.0, 100.0: 3.0, float("inf"): 4.0}
    bounds, (c_bins, b_bins) = answers.histogram_bins(canary, baseline)
    assert bounds == [10.0, 50.0, 100.0, float("inf")]
    assert c_bins == [2.0, 0.0, 4.0, 2.0]  # no 50 bound in the canary's: its 10-100 count stays in the 100 bin
    assert b_bins == [1.0, 2.0, 0.0, 1.0]
    # Each observation at its bucket's middle, the +Inf ones at the highest finite bound.
    assert answers.histogram_mean(canary) == pytest.approx((2 * 5 + 4 * 55 + 2 * 100) / 8)
    assert answers.histogram_mean({10.0: 1.0}) is None and answers.histogram_mean({10.0: 0.0, float("inf"): 0.0}) is None
    # Counts that dip (buckets not read atomically) are made monotonic, never negative bins.
    assert answers.histogram_bins({10.0: 5.0, 20.0: 4.0, float("inf"): 6.0})[1][0] == [5.0, 0.0, 1.0]


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


@pytest.mark.parametrize("canary_median, outcome", [(50, "pass"), (55, "pass"), (75, "fail"), (100, "fail")])
def test_a_duration_check_fails_a_slowdown_beyond_the_allowed_ratio(canary_median, outcome) -> None:
    rng = random.Random(canary_median)
    check = checks.Check("request_duration", max_ratio_to_baseline=1.3)
    result = checks.evaluate_duration_check(check, _lognormal_histogram(rng, 300, canary_median),
                                            _lognormal_histogram(rng, 2700, 50), z=2.33)
    assert result.result == outcome, result.reason
    assert "Mann-Whitney U on the duration histogram's buckets" in result.reason
    again = _lognormal_histogram(random.Random(canary_median), 300, canary_median)
    assert result.canary == pytest.approx(answers.histogram_mean(again))


def test_a_duration_check_waits_when_the_sample_cannot_show_a_slowdown() -> None:
    # 3 canary requests all slow: the means say x2 but the rank test cannot show it yet.
    check = checks.Check("request_duration", max_ratio_to_baseline=1.3)
    canary = {50.0: 0.0, 100.0: 0.0, 250.0: 3.0, float("inf"): 3.0}
    baseline = {50.0: 500.0, 100.0: 900.0, 250.0: 1000.0, float("inf"): 1000.0}
    result = checks.evaluate_duration_check(check, canary, baseline, z=3.0)
    assert result.result == "undecided" and result.reason.startswith("the sample cannot tell yet: mean 175 ms")
    assert checks.evaluate_duration_check(check, canary, baseline, z=3.0, final=True).result == "undecided"
    assert checks.evaluate_duration_check(check, {}, baseline, z=3.0).result == "no_data"
    assert checks.evaluate_duration_check(check, canary, None, z=3.0).reason == "no data for the baseline"


@pytest.mark.parametrize("bounds", [{"max": 500}, {"max_ratio_to_baseline": 1.2, "min": 1},
                                    {"max_ratio_to_baseline": 1.2, "max_over_baseline": 5}])
def test_a_duration_check_takes_only_an_allowed_ratio(bounds) -> None:
    with pytest.raises(terms.AnalysisError, match="give max_ratio_to_baseline") as info:
        checks.Check("request_duration", **bounds)
    assert info.value.option == "checks"
