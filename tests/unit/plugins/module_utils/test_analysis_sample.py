# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_analysis/sample.py: the sample a step needs, and the warnings when it is too short."""

from __future__ import annotations

import pytest

from ansible_collections.canary.istio.plugins.module_utils._analysis import sample as sp
from ansible_collections.canary.istio.plugins.module_utils._analysis import settings as analysis_settings
from ansible_collections.canary.istio.plugins.module_utils._analysis import stats as st


CHECKS = [{"metric": "request_success_rate", "min": 95}, {"metric": "request_error_rate", "max_over_baseline": 1}]


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
