# -*- coding: utf-8 -*-
# Copyright: contributors to the canary.istio collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""_analysis_stats: intervals on counts checked against known values and by simulation, and the
judge's confidence mode on pooled counts."""

from __future__ import annotations

import random

import pytest

from ansible_collections.canary.istio.plugins.module_utils import _analysis as an
from ansible_collections.canary.istio.plugins.module_utils import _analysis_stats as st


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


RATE_MAX_1 = an.Check("request_error_rate", max=1)
PLUS_ONE = an.Check("request_error_rate", max_over_baseline=1)


def pooled_judge(check: an.Check, canary: tuple, baseline: tuple | None = None, z: float = 1.645) -> an.Verdict:
    evidence = {"v2": an.Counts(*canary)}
    numbers = {"v2": {"request_count": canary[0]}}
    if baseline is not None:
        evidence["v1"] = an.Counts(*baseline)
        numbers["v1"] = {"request_count": baseline[0]}
    return an.judge(numbers, [check], "v2", "v1" if baseline else None, min_requests=1, evidence=evidence, z=z)


@pytest.mark.parametrize("canary, verdict, words", [
    ((150, 0), an.INCONCLUSIVE, "the sample cannot tell yet"),  # 0 of 150: cannot show <= 1% yet
    ((600, 0), an.PASS, "pooled over the step's rounds"),  # 0 of 600: it can
    ((150, 20), an.FAIL, "vs max 1"),  # 13%: shown above 1% at once
])
def test_a_fixed_bound_on_counts(canary, verdict, words) -> None:
    result = pooled_judge(RATE_MAX_1, canary)
    assert result.verdict == verdict and words in result.reason


def test_a_bound_over_the_baseline_on_counts() -> None:
    base = (1350, 7)  # 0.5%
    assert pooled_judge(PLUS_ONE, (150, 1), base).verdict == an.INCONCLUSIVE  # 0.7%: cannot tell yet
    assert pooled_judge(PLUS_ONE, (1500, 8), base).verdict == an.PASS  # 0.5% on ten times the sample
    failed = pooled_judge(PLUS_ONE, (150, 15), base)  # 10%: shown beyond + 1 point
    assert failed.verdict == an.FAIL and "canary - baseline" in failed.reason
    success = pooled_judge(an.Check("request_success_rate", min=95), (150, 15))
    assert success.verdict == an.FAIL and success.checks[0].canary == 90.0


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


P99_MAX = an.Check("request_duration_p99", max=500)
P99_RATIO = an.Check("request_duration_p99", max_ratio_to_baseline=1.3)


def test_a_p99_bound_on_the_duration_histogram() -> None:
    fast = histogram({50.0: 440, 100.0: 10})  # every request under 100 ms
    passed = an.evaluate_latency_check(P99_MAX, fast, None, 1.645)
    assert passed.result == an.CHECK_PASS and "from the duration histogram" in passed.reason
    slow = histogram({1000.0: 450})  # every request between 500 ms and 1 s
    assert an.evaluate_latency_check(P99_MAX, slow, None, 1.645).result == an.CHECK_FAIL
    # 2% of 150 requests above 500 ms: the p99 sits at the bound, the sample cannot tell yet...
    edge = histogram({100.0: 147, 1000.0: 3})
    assert an.evaluate_latency_check(P99_MAX, edge, None, 1.645).result == an.CHECK_UNDECIDED
    # ... and at the step's last look its estimate decides: 750 ms here stays undecided, while one
    # slow request in 150 (an estimate under 100 ms, an interval up to 1 s) is kept.
    assert an.evaluate_latency_check(P99_MAX, edge, None, 1.645, final=True).result == an.CHECK_UNDECIDED
    one_slow = histogram({100.0: 149, 1000.0: 1})
    assert an.evaluate_latency_check(P99_MAX, one_slow, None, 1.645).result == an.CHECK_UNDECIDED
    kept = an.evaluate_latency_check(P99_MAX, one_slow, None, 1.645, final=True)
    assert kept.result == an.CHECK_PASS and "kept on the estimate" in kept.reason
    assert an.evaluate_latency_check(P99_MAX, {}, None, 1.645).result == an.CHECK_NO_DATA


def test_a_p99_against_the_baseline_on_the_duration_histogram() -> None:
    base = histogram({50.0: 1300, 100.0: 50})
    same = histogram({50.0: 430, 100.0: 20})
    assert an.evaluate_latency_check(P99_RATIO, same, base, 1.645, final=True).result == an.CHECK_PASS
    doubled = histogram({100.0: 200, 250.0: 250})
    failed = an.evaluate_latency_check(P99_RATIO, doubled, base, 1.645)
    assert failed.result == an.CHECK_FAIL and "vs baseline" in failed.reason
    assert an.evaluate_latency_check(P99_RATIO, same, None, 1.645).result == an.CHECK_NO_DATA
