# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The settings of a step's analysis, from the module's options: the rounds (Flagger's interval,
iterations and threshold), the window, the checks and custom metrics, the scoring, the sample to
plan for; each refusal names the option.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

from ansible_collections.canary.istio.plugins.module_utils._analysis.checks import Check
from ansible_collections.canary.istio.plugins.module_utils._analysis.judge import (
    CustomMetric,
    Scoring,
    max_rounds,
    plan_round,
)
from ansible_collections.canary.istio.plugins.module_utils._analysis.queries import AnalysisTarget, MetricQuery
from ansible_collections.canary.istio.plugins.module_utils._analysis.terms import (
    AnalysisError,
    PROVIDER_GUANCE,
    PROVIDER_PROMETHEUS,
    QTYPE_DQL,
    QTYPE_PROMQL,
    REQUEST_DURATION,
    REQUEST_DURATION_P99,
    REQUEST_SUCCESS_RATE,
)
from ansible_collections.canary.istio.plugins.module_utils._analysis.stats import look_z
from ansible_collections.canary.istio.plugins.module_utils._durations import duration_seconds

INCONCLUSIVE_FAIL = "fail"
INCONCLUSIVE_WAIT = "wait"
INCONCLUSIVE_MODES: tuple[str, ...] = (INCONCLUSIVE_FAIL, INCONCLUSIVE_WAIT)

# Flagger's documented defaults: success rate at least 99 %, p99 at most 500 ms.
DEFAULT_CHECKS: tuple[dict[str, t.Any], ...] = (
    {"metric": REQUEST_SUCCESS_RATE, "min": 99},
    {"metric": REQUEST_DURATION_P99, "max": 500},
)
# Without an interval there is no natural window; a minute holds enough scrapes for increase().
DEFAULT_WINDOW_S = 60
# deploy_version's DataKit annotation scrapes the sidecars every 60 s.
DEFAULT_SCRAPE_INTERVAL_S = 60
BOUNDS: tuple[str, ...] = ("min", "max", "max_over_baseline", "max_ratio_to_baseline")
POLICY_FLAGS: tuple[str, ...] = ("critical", "must_have_data", "dry_run")


def seconds_option(value: t.Any, option: str, minimum: int = 1) -> int:
    """Whole seconds from a duration option (``30``, ``"30s"``, ``"2m"``; see ``_durations``)."""
    return int(duration_seconds(value, option, minimum=minimum, whole=True, error=AnalysisError))


@dataclass(frozen=True)
class StepSettings:
    """How the rounds of a step run (Flagger's interval, iterations and threshold)."""

    interval_s: int = 0
    iterations: int = 1
    threshold: int = 1
    window_s: int = DEFAULT_WINDOW_S
    min_requests: int = 1
    inconclusive: str = INCONCLUSIVE_FAIL
    fail_on_inconclusive: bool = True
    # With a confidence, rate checks are judged on the step's pooled counts (see ``pool_counts``).
    confidence: float | None = None

    def __post_init__(self) -> None:
        # (module option, attribute, smallest value)
        for option, attribute, minimum in (("interval", "interval_s", 0), ("iterations", "iterations", 1),
                                           ("threshold", "threshold", 1), ("window", "window_s", 1),
                                           ("min_requests", "min_requests", 1)):
            value = getattr(self, attribute)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise AnalysisError(f"{option} must be a whole number >= {minimum}, got {value!r}", option)
        if self.confidence is not None and (isinstance(self.confidence, bool) or not isinstance(self.confidence, (int, float))
                                            or not 0.5 < self.confidence < 1):
            raise AnalysisError(f"confidence must be a number between 0.5 and 1 (for example 0.95), got {self.confidence!r}",
                                "confidence")
        if self.inconclusive not in INCONCLUSIVE_MODES:
            raise AnalysisError(f"inconclusive must be one of {', '.join(INCONCLUSIVE_MODES)}, got {self.inconclusive!r}",
                                "inconclusive")

    @property
    def max_rounds(self) -> int:
        return max_rounds(self.iterations, self.threshold)

    @property
    def look_z(self) -> float | None:
        """z of each round's look at the pooled counts: the error of ``confidence`` spread over
        the step's rounds, so looking every round does not add false alarms."""
        return None if self.confidence is None else look_z(self.confidence, self.max_rounds)


@dataclass(frozen=True)
class AnalysisPlan:
    """Everything a step needs except the connection: what to ask, and how to judge and repeat."""

    provider: str
    target: AnalysisTarget
    checks: tuple[Check, ...]
    custom: tuple[CustomMetric, ...]
    queries: tuple[MetricQuery, ...]
    step: StepSettings
    expected_weight: int | None = None  # the canary's configured weight: checks the observed share
    scoring: Scoring = field(default_factory=Scoring)
    # The smallest error regression to catch (points over the baseline) and the weights of the
    # steps to plan for: the result then says whether such steps hold the sample it needs.
    detect_error_points: float | None = None
    plan_weights: tuple[int, ...] = ()


def checks_from_params(items: t.Sequence[t.Mapping[str, t.Any]] | None) -> list[Check]:
    """The checks of option ``checks`` (default: success rate >= 99 and p99 <= 500 ms)."""
    out = []
    for index, item in enumerate(items if items else DEFAULT_CHECKS):
        metric = item.get("metric")
        if not isinstance(metric, str) or not metric.strip():
            raise AnalysisError(f"checks[{index}] has no metric", "checks")
        bounds = {name: item.get(name) for name in BOUNDS if item.get(name) is not None}
        policy = {name: bool(item.get(name)) for name in POLICY_FLAGS}
        weight = 1.0 if item.get("weight") is None else item["weight"]
        try:
            out.append(Check(metric.strip(), **bounds, **policy, weight=weight))
        except AnalysisError as exc:
            raise AnalysisError(f"checks[{index}]: {exc}", "checks") from None
    return out


def custom_from_params(items: t.Sequence[t.Mapping[str, t.Any]] | None, provider: str) -> list[CustomMetric]:
    """The custom metrics of option ``metrics``; ``qtype`` defaults to the provider's language."""
    out = []
    default_qtype = QTYPE_PROMQL if provider == PROVIDER_PROMETHEUS else QTYPE_DQL
    for index, item in enumerate(items or []):
        try:
            out.append(CustomMetric(name=item.get("name"), query=item.get("query"), qtype=item.get("qtype") or default_qtype,
                                    version_tag=item.get("version_tag") or None, column=item.get("column") or None))
        except AnalysisError as exc:
            raise AnalysisError(f"metrics[{index}]: {exc}", "metrics") from None
    return out


def _param(params: t.Mapping[str, t.Any], name: str, default: t.Any) -> t.Any:
    value = params.get(name)
    return default if value is None else value


def plan_from_params(params: t.Mapping[str, t.Any]) -> AnalysisPlan:
    """The plan of the module's options; AnalysisError (``option`` set) before anything is sent."""
    provider = _param(params, "provider", PROVIDER_GUANCE)
    if provider not in (PROVIDER_GUANCE, PROVIDER_PROMETHEUS):
        raise AnalysisError(f"provider must be guance or prometheus, got {provider!r}", "provider")
    interval = seconds_option(_param(params, "interval", 0), "interval", minimum=0)
    if params.get("window") is not None:
        window = seconds_option(params["window"], "window")
    else:
        window = interval or DEFAULT_WINDOW_S
    scrape = seconds_option(_param(params, "scrape_interval", DEFAULT_SCRAPE_INTERVAL_S), "scrape_interval")
    language = _param(params, "istio_query_language", QTYPE_PROMQL)
    step = StepSettings(
        interval_s=interval, iterations=_param(params, "iterations", 1), threshold=_param(params, "threshold", 1),
        window_s=window, min_requests=_param(params, "min_requests", 1),
        # With a confidence, a round the sample cannot decide yet waits for the next by default.
        inconclusive=_param(params, "inconclusive", INCONCLUSIVE_WAIT if params.get("confidence") is not None
                            else INCONCLUSIVE_FAIL),
        fail_on_inconclusive=_param(params, "fail_on_inconclusive", True),
        confidence=params.get("confidence"),
    )
    target = AnalysisTarget(
        service=params.get("service"), canary_version=params.get("canary_version"),
        baseline_version=params.get("baseline_version") or None, namespace=params.get("namespace") or None,
        window_seconds=window, step_seconds=scrape,
        labels=tuple(sorted((str(name), value) for name, value in (params.get("labels") or {}).items())),
    )
    checks = checks_from_params(params.get("checks"))
    for check in checks:
        if check.relative and target.baseline_version is None:
            raise AnalysisError(f"check {check.metric!r} compares with the baseline: set baseline_version", "baseline_version")
    if params.get("confidence") is None and any(check.metric == REQUEST_DURATION for check in checks):
        raise AnalysisError(f"check {REQUEST_DURATION!r} is a rank test at a confidence: set confidence (for example "
                            "0.95)", "confidence")
    custom = custom_from_params(params.get("metrics"), provider)
    queries = plan_round(target, checks, provider, custom, language, latency_buckets=params.get("confidence") is not None)
    if provider == PROVIDER_GUANCE and params.get("api") == "datakit":
        for query in queries:
            if query.qtype == QTYPE_PROMQL:
                option = "metrics" if query.key.startswith("custom:") else "istio_query_language"
                raise AnalysisError(f"a DataKit (api=datakit) answers DQL only; the {query.key} query is PromQL: "
                                    f"set {'its qtype' if option == 'metrics' else option} to dql or use api=openapi", option)
    if provider == PROVIDER_GUANCE and language == QTYPE_DQL and window < 2 * scrape:
        # The DQL counter queries take one value per scrape bucket: a one-bucket window would judge
        # one sample per series, and one late scrape would leave it empty.
        raise AnalysisError(f"window {window}s holds fewer than two scrapes of scrape_interval {scrape}s, so DQL counters "
                            f"cannot grow in it: set window to at least {2 * scrape}s, or scrape_interval to what DataKit "
                            "really uses", "window")
    expected = params.get("expected_weight")
    if expected is not None:
        if isinstance(expected, bool) or not isinstance(expected, int) or not 0 <= expected <= 100:
            raise AnalysisError(f"expected_weight must be a whole percentage from 0 to 100, got {expected!r}", "expected_weight")
        if target.baseline_version is None:
            raise AnalysisError("expected_weight compares the canary's share with the baseline's: set baseline_version",
                                "baseline_version")
    detect = params.get("detect_error_points")
    weights = tuple(params.get("plan_weights") or ([expected] if expected else []))
    if detect is not None:
        if isinstance(detect, bool) or not isinstance(detect, (int, float)) or not 0 < detect <= 100:
            raise AnalysisError(f"detect_error_points must be percentage points above 0, got {detect!r}", "detect_error_points")
        if step.confidence is None:
            raise AnalysisError("detect_error_points plans the sample of the judge on counts: set confidence (for example "
                                "0.95)", "confidence")
        for weight in weights:
            if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
                raise AnalysisError(f"plan_weights must be whole percentages from 0 to 100, got {weight!r}", "plan_weights")
        if not any(0 < weight < 100 for weight in weights):
            raise AnalysisError("detect_error_points needs the weights to plan for: set expected_weight (the step's) or "
                                "plan_weights (a release's steps)", "plan_weights")
    return AnalysisPlan(provider, target, tuple(checks), tuple(custom), tuple(queries), step, expected,
                        scoring_from_params(params.get("scoring")), detect, weights)


def scoring_from_params(value: t.Mapping[str, t.Any] | None) -> Scoring:
    """Option ``scoring`` (pass, marginal, on_marginal, no_data_fail_percent) -> ``Scoring``."""
    value = value or {}
    return Scoring(pass_score=_param(value, "pass", 100.0), marginal_score=value.get("marginal"),
                   on_marginal=_param(value, "on_marginal", "fail"), no_data_fail_percent=value.get("no_data_fail_percent"))
