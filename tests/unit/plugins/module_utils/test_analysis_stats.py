# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_analysis/stats.py: intervals on counts, the sample to show a regression, the rank test."""

from __future__ import annotations

import random

import pytest

from ansible_collections.canary.istio.plugins.module_utils._analysis import checks
from ansible_collections.canary.istio.plugins.module_utils._analysis import stats as st


class TestIntervals:
    def test_wilson_known_values(self) -> None:
        low, high = st.wilson_interval(0, 100, 1.96)
        assert low == 0.0 and round(high, 4) == 0.037  # the textbook 95% upper bound for 0 of 100
        low, high = st.wilson_interval(50, 100, 1.96)
        assert round(low, 3) == 0.404 and round(high, 3) == 0.596
        assert st.wilson_interval(0, 0, 1.96) == (0.0, 1.0)

    def test_difference_interval_covers_the_truth_as_often_as_it_says(self) -> None:
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

    def test_looking_more_often_asks_for_more(self) -> None:
        assert st.look_z(0.95, 1) == pytest.approx(1.645, abs=0.001)
        assert st.look_z(0.95, 3) > st.look_z(0.95, 1)
        with pytest.raises(ValueError):
            st.look_z(1.2, 1)

    def test_quantile_rank_interval_widens_with_fewer_requests(self) -> None:
        wide = st.quantile_rank_interval(0.99, 100, 1.645)
        narrow = st.quantile_rank_interval(0.99, 10_000, 1.645)
        assert wide[0] < narrow[0] < 0.99 < narrow[1] < wide[1] == 1.0
        assert st.quantile_rank_interval(0.99, 0, 1.645) == (0.0, 1.0)


def _binomial(rng: random.Random, n: int, p: float) -> int:
    return sum(1 for _trial in range(n) if rng.random() < p)


class TestRequestsToShow:
    """The sample that shows a regression, checked against the judge it plans for by simulation."""

    @pytest.mark.parametrize("canary_rate, weight", [(0.025, 10), (0.04, 25), (0.03, 50), (0.1, 10)])
    def test_the_planned_sample_shows_the_regression_in_about_80_percent_of_steps(self, canary_rate, weight) -> None:
        # The judge the plan is for: the Newcombe interval of canary - baseline against baseline + 1 point.
        z = st.look_z(0.95, 3)
        per_canary = (100 - weight) / weight
        needed = st.requests_to_show(canary_rate, 0.005 + 0.01, z, 0.005, per_canary)
        rng = random.Random(5)
        shown, trials = 0, 600
        for _trial in range(trials):
            canary = checks.Counts(needed, _binomial(rng, needed, canary_rate))
            baseline = checks.Counts(int(needed * per_canary), _binomial(rng, int(needed * per_canary), 0.005))
            check = checks.Check("request_error_rate", max_over_baseline=1)
            shown += checks.evaluate_rate_check(check, canary, baseline, z).result == "fail"
        # About 80%: a normal approximation of Newcombe's interval (measured 66-81% on these cases).
        # Half or twice the requests give about 30-50% or 96-97%.
        assert 0.6 <= shown / trials <= 0.92, (needed, shown / trials)

    def test_no_sample_shows_a_rate_within_its_bound(self) -> None:
        assert st.requests_to_show(0.01, 0.015, 2.0) is None
        assert st.requests_to_show(0.015, 0.015, 2.0) is None


def _observations(counts: list[int]) -> list[int]:
    return [index for index, n in enumerate(counts) for _trial in range(n)]


class TestRankTest:
    def test_rank_test_on_bins_is_mann_whitney_with_ties_by_bin(self) -> None:
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

    def test_rank_test_on_alike_samples_alarms_as_often_as_its_level(self) -> None:
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
