# -*- coding: utf-8 -*-
# Copyright: contributors to the canary.istio collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""_analysis/sample.py: the sample a step needs, checked against the judge it plans for by simulation."""

from __future__ import annotations

import random

import pytest

from ansible_collections.canary.istio.plugins.module_utils._analysis import checks
from ansible_collections.canary.istio.plugins.module_utils._analysis import terms
from ansible_collections.canary.istio.plugins.module_utils._analysis import rounds as analysis_rounds
from ansible_collections.canary.istio.plugins.module_utils._analysis import settings as analysis_settings
from ansible_collections.canary.istio.plugins.module_utils._analysis import sample as sp
from ansible_collections.canary.istio.plugins.module_utils._analysis import stats as st

BASE = {"service": "reviews", "namespace": "prod", "canary_version": "v2", "baseline_version": "v1"}
CHECKS = [{"metric": "request_success_rate", "min": 95}, {"metric": "request_error_rate", "max_over_baseline": 1}]


def _binomial(rng: random.Random, n: int, p: float) -> int:
    return sum(1 for _trial in range(n) if rng.random() < p)


@pytest.mark.parametrize("canary_rate, weight", [(0.025, 10), (0.04, 25), (0.03, 50), (0.1, 10)])
def test_the_planned_sample_shows_the_regression_in_about_80_percent_of_steps(canary_rate, weight) -> None:
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


def test_no_sample_shows_a_rate_within_its_bound() -> None:
    assert st.requests_to_show(0.01, 0.015, 2.0) is None
    assert st.requests_to_show(0.015, 0.015, 2.0) is None


def test_the_plan_takes_the_easiest_bound_and_compares_with_the_steps_pool() -> None:
    checks = analysis_settings.checks_from_params(CHECKS)
    plan = sp.sample_plan(checks, 2, st.look_z(0.95, 3), [10, 50, 100], 50.0, 0.5, 90)
    bounds = {b["bound"]: b["canary_requests"] for b in plan["bounds"]}
    # +2 points on 0.5% is 2.5%: far from success >= 95 (5% errors), so only the relative bound can show it.
    assert bounds["min 95"] is None and bounds["max_over_baseline 1"] > 0
    ten, fifty = plan["steps"]  # 100% is not planned: nothing to compare with there
    assert (ten["weight"], fifty["weight"]) == (10, 50)
    assert ten["canary_requests_per_s"] == 5.0 and ten["pooled_seconds"] == 90
    assert ten["canary_requests_needed"] == bounds["max_over_baseline 1"]
    assert ten["long_enough"] is False and ten["seconds_needed"] == -(-ten["canary_requests_needed"] // 5)
    # At 50% the baseline is as small as the canary: its own noise asks for more canary requests,
    # but the canary gets five times the traffic.
    assert fifty["canary_requests_needed"] > ten["canary_requests_needed"]
    assert fifty["seconds_needed"] < ten["seconds_needed"]
    warnings = sp.plan_warnings(plan, 0.95)
    assert warnings[0].startswith("at 10% a step pools about 450 canary requests (5/s over 90s of windows); showing +2 "
                                  "points of errors at confidence 0.95 needs about ")
    assert "make the step's rounds cover" in warnings[0] and "or raise its weight" in warnings[0]


def test_a_regression_no_check_can_show_is_said_once() -> None:
    checks = analysis_settings.checks_from_params([{"metric": "request_success_rate", "min": 95}])
    plan = sp.sample_plan(checks, 2, 2.5, [10, 50], 50.0, 0.5, 90)
    assert [s["long_enough"] for s in plan["steps"]] == [None, None]
    assert sp.plan_warnings(plan, 0.95) == [
        "no rate check can show +2 points of errors over the baseline's 0.5%: each bound allows at least that much "
        "(bounds: request_success_rate min 95); tighten a bound or ask for a larger regression"]


def test_observed_rates_count_every_version_and_the_baselines_errors() -> None:
    rounds = [{"v1": {"request_count": 900, "request_error_rate": 1.0}, "v2": {"request_count": 100, "request_error_rate": 5.0}},
              {"v1": {"request_count": 1100, "request_error_rate": 0.0}, "v2": {"request_count": 0, "request_error_rate": None}}]
    per_s, baseline_errors = sp.observed_rates(rounds, "v1", 10)
    assert per_s == 2100 / 20 and baseline_errors == pytest.approx(100 * 9 / 2000)
    assert sp.observed_rates([], "v1", 10) == (0.0, 0.0)


@pytest.mark.parametrize("extra, option, text", [
    ({"detect_error_points": 2, "expected_weight": 10}, "confidence", "detect_error_points plans the sample"),
    ({"detect_error_points": 0, "confidence": 0.95, "expected_weight": 10}, "detect_error_points", "percentage points above 0"),
    ({"detect_error_points": 2, "confidence": 0.95}, "plan_weights", "needs the weights to plan for"),
    ({"detect_error_points": 2, "confidence": 0.95, "plan_weights": [100]}, "plan_weights", "needs the weights to plan for"),
    ({"detect_error_points": 2, "confidence": 0.95, "plan_weights": [10, 150]}, "plan_weights",
     "plan_weights must be whole percentages from 0 to 100, got 150"),
])
def test_bad_plan_options_name_the_option(extra, option, text) -> None:
    with pytest.raises(terms.AnalysisError, match=text) as info:
        analysis_settings.plan_from_params(dict(BASE, checks=CHECKS, **extra))
    assert info.value.option == option


def test_a_step_plans_from_its_answered_rounds() -> None:
    plan = analysis_settings.plan_from_params(dict(BASE, checks=CHECKS, confidence=0.95, detect_error_points=2, plan_weights=[10, 20],
                                                   interval=30, iterations=3))
    numbers = {"v1": {"request_count": 1350.0, "request_error_rate": 0.5}, "v2": {"request_count": 150.0, "request_error_rate": 0.0}}
    verdict = checks.Verdict("pass", "", (), 150.0, 1350.0, 1)
    answered = analysis_rounds.RoundReport(1, 0, 30_000, verdict, numbers, 1)
    skipped = analysis_rounds.RoundReport(2, 0, 30_000, verdict, {"v1": {"request_count": 1e9}}, 1, answered=False)
    sample = analysis_rounds.step_sample_plan(plan, [answered, skipped])
    assert sample["service_requests_per_s"] == 50.0 and sample["baseline_error_rate"] == 0.5
    assert [s["weight"] for s in sample["steps"]] == [10, 20] and sample["steps"][0]["pooled_seconds"] == 90
    assert analysis_rounds.step_sample_plan(analysis_settings.plan_from_params(dict(BASE, checks=CHECKS)), [answered]) is None
