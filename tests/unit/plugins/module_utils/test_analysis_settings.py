# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_analysis/settings.py: the step's settings and plan from the module's options."""

from __future__ import annotations

import pytest

from ansible_collections.canary.istio.plugins.module_utils._analysis import settings as analysis_settings
from ansible_collections.canary.istio.plugins.module_utils._analysis import terms


BASE = {"service": "reviews", "namespace": "prod", "canary_version": "v2"}


class TestSeconds:
    @pytest.mark.parametrize("value, seconds", [(30, 30), ("30", 30), ("30s", 30), ("2m", 120), ("1.5m", 90), ("0.07h", 252), ("1h", 3600), (45.0, 45)])
    def test_seconds_option(self, value, seconds) -> None:
        assert analysis_settings.seconds_option(value, "window") == seconds

    @pytest.mark.parametrize("value", ["", "abc", "1.5s", "500ms", "-3", True, 0, "0s"])
    def test_bad_seconds_name_the_option(self, value) -> None:
        with pytest.raises(terms.AnalysisError) as info:
            analysis_settings.seconds_option(value, "window")
        assert info.value.option == "window" and "window must" in str(info.value)


class TestPlan:
    def test_plan_defaults(self) -> None:
        plan = analysis_settings.plan_from_params(BASE)
        assert plan.provider == "guance"
        assert plan.step == analysis_settings.StepSettings(interval_s=0, iterations=1, threshold=1, window_s=60, min_requests=1)
        assert [c.metric for c in plan.checks] == ["request_success_rate", "request_duration_p99"]
        assert plan.checks[0].min == 99 and plan.checks[1].max == 500
        assert [(q.key, q.qtype) for q in plan.queries] == [("requests", "promql"), ("latency", "promql")]
        assert 'destination_workload_namespace="prod"' in plan.queries[0].query
        assert analysis_settings.plan_from_params(dict(BASE, interval=30)).step.window_s == 30
        assert analysis_settings.plan_from_params(dict(BASE, interval=30, window="2m")).step.window_s == 120

    def test_plan_with_every_kind_of_check_and_custom_metrics(self) -> None:
        plan = analysis_settings.plan_from_params(dict(
            BASE, baseline_version="v1", istio_query_language="dql", scrape_interval="10s", window=30,
            checks=[{"metric": "request_error_rate", "max_over_baseline": 1},
                    {"metric": "request_duration_p99", "max": 500, "max_ratio_to_baseline": 1.5},
                    {"metric": "trace_error_rate", "max": 5}, {"metric": "error_log_count", "max": 0},
                    {"metric": "p95_ms", "max": 300}],
            metrics=[{"name": "p95_ms", "query": "T::`reviews`:(percentile(`duration`, 95) AS `p95`) BY `version`",
                      "version_tag": "version"}]))
        assert [(q.key, q.qtype) for q in plan.queries] == [
            ("requests", "dql"), ("latency", "dql"), ("traces", "dql"), ("logs", "dql"), ("custom:p95_ms", "dql")]
        # 30 s window and two 10 s lookback buckets before it, for the counters only
        assert "[50s::10s:last]" in plan.queries[0].query and plan.queries[0].lookback_s == 20
        assert "[30s]" in plan.queries[2].query and plan.queries[2].lookback_s == 0
        assert plan.checks[1].max_ratio_to_baseline == 1.5
        prom = analysis_settings.plan_from_params(dict(BASE, provider="prometheus", metrics=[{"name": "m", "query": "up"}],
                                                       checks=[{"metric": "m", "min": 1}]))
        assert prom.custom[0].qtype == "promql"  # the provider's language by default
        assert not prom.queries[0].query.startswith("sum by (destination_version, response_code) (increase(istio_prom:")

    @pytest.mark.parametrize("options, option, text", [
        ({"checks": [{"metric": "nope", "min": 1}]}, "checks", "unknown metric 'nope'"),
        ({"checks": [{"metric": "request_success_rate"}]}, "checks", "checks[0]: check 'request_success_rate' has no bound"),
        ({"checks": [{"metric": "request_success_rate", "min": 99, "max": 90}]}, "checks", "min 99 is above max 90"),
        ({"checks": [{"metric": "request_error_rate", "max_over_baseline": 1}]}, "baseline_version", "set baseline_version"),
        ({"window": "soon"}, "window", "window must be a duration like 90s"),
        ({"interval": -1}, "interval", "interval must be at least 0"),
        ({"iterations": 0}, "iterations", "iterations must be a whole number >= 1"),
        ({"threshold": 0}, "threshold", "threshold must be a whole number >= 1"),
        ({"min_requests": 0}, "min_requests", "min_requests must be a whole number >= 1"),
        ({"inconclusive": "ignore"}, "inconclusive", "inconclusive must be one of fail, wait"),
        ({"provider": "datadog"}, "provider", "provider must be guance or prometheus"),
        ({"canary_version": "v 2"}, "canary_version", "canary_version must be a version label"),
        ({"baseline_version": "v2"}, "baseline_version", "must differ from canary_version"),
        ({"istio_query_language": "dql", "window": 60}, "window", "set window to at least 120s"),
        ({"api": "datakit"}, "istio_query_language", "a DataKit (api=datakit) answers DQL only"),
        ({"provider": "prometheus", "checks": [{"metric": "trace_error_rate", "max": 1}]}, "checks", "no traces or logs"),
        ({"provider": "prometheus", "metrics": [{"name": "m", "query": "L::x", "qtype": "dql"}],
          "checks": [{"metric": "m", "max": 1}]}, "metrics", "the prometheus provider runs PromQL only"),
        ({"metrics": [{"name": "request_count", "query": "x"}]}, "metrics", "metrics[0]: custom metric 'request_count'"),
    ])
    def test_bad_options_name_the_option(self, options, option, text) -> None:
        with pytest.raises(terms.AnalysisError) as info:
            analysis_settings.plan_from_params(dict(BASE, **options))
        assert info.value.option == option
        assert text in str(info.value)

    def test_confidence_must_be_a_probability(self) -> None:
        with pytest.raises(terms.AnalysisError, match="confidence must be a number between 0.5 and 1") as info:
            analysis_settings.plan_from_params(dict(BASE, confidence=95))
        assert info.value.option == "confidence"

    def test_expected_weight_is_validated(self):
        with pytest.raises(terms.AnalysisError) as err:
            from ansible_collections.canary.istio.plugins.module_utils._analysis.settings import plan_from_params
            plan_from_params({"service": "reviews", "canary_version": "v2", "baseline_version": "v1", "expected_weight": 101})
        assert err.value.option == "expected_weight"


BASE_WITH_BASELINE = {"service": "reviews", "namespace": "prod", "canary_version": "v2", "baseline_version": "v1"}
CHECKS = [{"metric": "request_success_rate", "min": 95}, {"metric": "request_error_rate", "max_over_baseline": 1}]


class TestSamplePlanOptions:
    @pytest.mark.parametrize("extra, option, text", [
        ({"detect_error_points": 2, "expected_weight": 10}, "confidence", "detect_error_points plans the sample"),
        ({"detect_error_points": 0, "confidence": 0.95, "expected_weight": 10}, "detect_error_points", "percentage points above 0"),
        ({"detect_error_points": 2, "confidence": 0.95}, "plan_weights", "needs the weights to plan for"),
        ({"detect_error_points": 2, "confidence": 0.95, "plan_weights": [100]}, "plan_weights", "needs the weights to plan for"),
        ({"detect_error_points": 2, "confidence": 0.95, "plan_weights": [10, 150]}, "plan_weights",
         "plan_weights must be whole percentages from 0 to 100, got 150"),
    ])
    def test_bad_plan_options_name_the_option(self, extra, option, text) -> None:
        with pytest.raises(terms.AnalysisError, match=text) as info:
            analysis_settings.plan_from_params(dict(BASE_WITH_BASELINE, checks=CHECKS, **extra))
        assert info.value.option == option


class TestScoringOptions:
    @pytest.mark.parametrize("scoring, text", [
        ({"pass": 120}, "scoring.pass must be a percentage from 0 to 100, got 120"),
        ({"pass": 60, "marginal": 80}, "scoring.marginal 80 is above scoring.pass 60"),
        ({"no_data_fail_percent": 0}, "scoring.no_data_fail_percent must be above 0"),
        ({"on_marginal": "pause"}, "scoring.on_marginal must be fail or wait, got 'pause'"),
    ])
    def test_bad_scoring_names_the_option(self, scoring, text) -> None:
        with pytest.raises(terms.AnalysisError, match=text.replace(".", r"\.")) as info:
            analysis_settings.plan_from_params(dict(BASE, scoring=scoring))
        assert info.value.option == "scoring"

    @pytest.mark.parametrize("weight", [0, -1, float("inf"), True, "heavy"])
    def test_a_check_weight_must_be_positive(self, weight) -> None:
        with pytest.raises(terms.AnalysisError, match="weight must be a number above 0") as info:
            analysis_settings.plan_from_params(dict(BASE, checks=[{"metric": "request_count", "min": 1, "weight": weight}]))
        assert info.value.option == "checks"
