# -*- coding: utf-8 -*-
# Copyright: contributors to the canary.istio collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The canary judge: pure functions, no I/O.

PRIVATE: this module_util is for the modules of canary.istio only and can change at any time.

Four parts, in the order a round of analysis uses them:

1. Query builders for the built-in checks (Istio request count, error rate, p99 latency from the
   duration histogram, trace error rate from ``T::``, error-log count from ``L::``), as PromQL for
   Prometheus, PromQL with Guance's ``measurement:field`` names, or DQL.
2. Parsers from query answers in the simple series shape (``name``, ``tags``, ``columns``,
   ``rows``) shared by ``_guance`` and ``_prometheus`` to per-version numbers, including the
   increase of cumulative counters and p99 from cumulative histogram buckets.
3. The judge: per-version numbers plus checks (fixed bounds, bounds relative to the baseline, a
   minimum request count) -> pass / fail / inconclusive, with every value, bound, query and result.
4. The multi-round decision of a step (number of checks, failed-check threshold, like Flagger's).

The rule the whole file keeps: missing data, NaN and too little traffic are never a pass.
"""

from __future__ import annotations

import math
import re
import typing as t
from dataclasses import dataclass, field, replace

from ansible_collections.canary.istio.plugins.module_utils._errors import CanaryError
from ansible_collections.canary.istio.plugins.module_utils._analysis.stats import (
    difference_interval, quantile_rank_interval, rank_test_binned, wilson_interval)

PASS = "pass"
FAIL = "fail"
INCONCLUSIVE = "inconclusive"
# A round whose checks' score is below ``scoring.pass`` but not below ``scoring.marginal``.
MARGINAL = "marginal"
VERDICTS: tuple[str, ...] = (PASS, FAIL, INCONCLUSIVE, MARGINAL)

# Per-check results. NO_DATA makes the verdict inconclusive unless another check failed.
CHECK_PASS = "pass"
CHECK_FAIL = "fail"
CHECK_NO_DATA = "no_data"
# A bound the sample cannot decide yet (with ``confidence``): neither shown broken nor shown kept.
CHECK_UNDECIDED = "undecided"

# Built-in metric names, their units and what they mean (docs/analysis.md lists the same).
REQUEST_COUNT = "request_count"
REQUEST_SUCCESS_RATE = "request_success_rate"
REQUEST_ERROR_RATE = "request_error_rate"
REQUEST_DURATION_P99 = "request_duration_p99"
# The whole duration distribution, compared with the baseline's by a rank test (``confidence``).
REQUEST_DURATION = "request_duration"
TRACE_ERROR_RATE = "trace_error_rate"
ERROR_LOG_COUNT = "error_log_count"
BUILTIN_METRICS: dict[str, str] = {
    REQUEST_COUNT: "requests",
    REQUEST_SUCCESS_RATE: "%",
    REQUEST_ERROR_RATE: "%",
    REQUEST_DURATION_P99: "ms",
    REQUEST_DURATION: "ms",
    TRACE_ERROR_RATE: "%",
    ERROR_LOG_COUNT: "logs",
}

PROVIDER_GUANCE = "guance"
PROVIDER_PROMETHEUS = "prometheus"
QTYPE_DQL = "dql"
QTYPE_PROMQL = "promql"

Number = t.Union[int, float]


class AnalysisError(CanaryError, ValueError):
    """Bad analysis input. ``option`` names the module option to fix."""


# ---------------------------------------------------------------------------------------------
# Small numeric helpers
# ---------------------------------------------------------------------------------------------


def to_number(value: t.Any) -> float | None:
    """A finite float from an answer's cell, else None (null, NaN, text that is not a number).

    Prometheus sends sample values as strings ("0.5", "NaN", "+Inf"); Guance as JSON numbers.
    Infinity is kept: a histogram bound or a quantile can be +Inf and that is a real value.
    """
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def parse_le(value: t.Any) -> float | None:
    """A histogram bucket's upper bound from its ``le`` tag: "0.5", "1.8e+06", "+Inf"."""
    if isinstance(value, str) and value.strip().lower() in ("+inf", "inf"):
        return math.inf
    return to_number(value)


def _rate(part: float | None, whole: float | None) -> float | None:
    # A percentage of nothing is no data, not 0% and not 100%.
    if part is None or whole is None or whole <= 0:
        return None
    return 100.0 * part / whole


# ---------------------------------------------------------------------------------------------
# What to analyse, and the query builders
# ---------------------------------------------------------------------------------------------

_VERSION_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})$")
_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251})$")


@dataclass(frozen=True)
class AnalysisTarget:
    """The service under analysis and the window of one round.

    ``workload_regex`` matches Istio's ``destination_workload`` label (the Deployment name);
    its default ``<service>-.*`` fits the ``reviews-v1``/``reviews-v2`` naming of this collection.
    ``step_seconds`` is the bucket width of DQL counter queries: at least the scrape interval, so
    that every series has a point in every bucket (a series missing from a bucket would look like
    a counter reset).
    """

    service: str
    canary_version: str
    baseline_version: str | None = None
    namespace: str | None = None
    window_seconds: int = 60
    step_seconds: int = 60
    reporter: str = "destination"
    workload_regex: str | None = None
    # The tag that carries the version on spans and logs (the sidecar's custom tag ``version``).
    trace_version_tag: str = "version"
    log_version_tag: str = "version"
    # Exact label matches added to the Istio metric queries, as (name, value) pairs: in a Guance
    # workspace or Prometheus shared by several clusters, e.g. (("destination_cluster", "eu-1"),)
    # keeps one cluster's numbers apart from another's with the same namespace and service.
    labels: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.service, str) or not _NAME_RE.match(self.service):
            raise AnalysisError(f"service must be a Kubernetes name like 'reviews', got {self.service!r}", "service")
        for option in ("canary_version", "baseline_version"):
            value = getattr(self, option)
            if value is None and option == "baseline_version":
                continue
            if not isinstance(value, str) or not _VERSION_RE.match(value):
                raise AnalysisError(f"{option} must be a version label value like 'v2', got {value!r}", option)
        if self.baseline_version == self.canary_version:
            raise AnalysisError("baseline_version must differ from canary_version", "baseline_version")
        if self.namespace is not None and not _NAME_RE.match(self.namespace):
            raise AnalysisError(f"namespace must be a Kubernetes name, got {self.namespace!r}", "namespace")
        for option in ("window_seconds", "step_seconds"):
            value = getattr(self, option)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise AnalysisError(f"{option} must be a whole number of seconds >= 1, got {value!r}", option)
        for option in ("reporter", "trace_version_tag", "log_version_tag"):
            value = getattr(self, option)
            if not isinstance(value, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", value):
                raise AnalysisError(f"{option} must be a plain label name, got {value!r}", option)
        if self.workload_regex is not None and ("`" in self.workload_regex or '"' in self.workload_regex):
            raise AnalysisError("workload_regex must not contain quotes or backticks", "workload_regex")
        for name, value in self.labels:
            if not isinstance(name, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                raise AnalysisError(f"labels: {name!r} is not a label name (letters, digits and _)", "labels")
            if not isinstance(value, str) or any(quote in value for quote in "`'\"\\"):
                raise AnalysisError(f"labels: the value of {name} must be a string without quotes, backticks or backslashes, "
                                    f"got {value!r}", "labels")

    @property
    def versions(self) -> tuple[str, ...]:
        return (self.canary_version,) if self.baseline_version is None else (self.canary_version, self.baseline_version)

    @property
    def workload_pattern(self) -> str:
        return self.workload_regex or f"{regex_literal(self.service)}-.*"


@dataclass(frozen=True)
class MetricQuery:
    """One query of a round. ``key`` ties the answer back to its parser.

    ``lookback_s``: how much earlier than the round's window this query's time range starts
    (the DQL counters' extra buckets, see ``build_dql``)."""

    key: str
    qtype: str
    query: str
    lookback_s: int = 0


# Keys of the built-in queries; one query can feed several metrics (requests feeds count,
# success rate and error rate).
Q_REQUESTS = "requests"
# Buckets the DQL counter queries reach before the window (see window_increase).
DQL_LOOKBACK_BUCKETS = 2
Q_LATENCY = "latency"
Q_TRACES = "traces"
Q_LOGS = "logs"

METRIC_QUERY: dict[str, str] = {
    REQUEST_COUNT: Q_REQUESTS,
    REQUEST_SUCCESS_RATE: Q_REQUESTS,
    REQUEST_ERROR_RATE: Q_REQUESTS,
    REQUEST_DURATION_P99: Q_LATENCY,
    REQUEST_DURATION: Q_LATENCY,
    TRACE_ERROR_RATE: Q_TRACES,
    ERROR_LOG_COUNT: Q_LOGS,
}


# RE2's metacharacters (Prometheus and Guance match label regexes with Go's RE2). Python's
# re.escape also escapes '-', and its backslashes went into a PromQL string literal unescaped,
# where PromQL's string syntax rejects them ("unknown escape sequence U+002D '-'"): a service
# named details-api or a version v1.2 made every round an error. The regex escapes only RE2's
# metacharacters; the string literal then escapes its own backslashes.
_RE2_META = frozenset("\\.+*?()|[]{}^$")


def regex_literal(text: str) -> str:
    """``text`` as an RE2 pattern matching exactly it: only RE2's metacharacters are escaped."""
    return "".join("\\" + ch if ch in _RE2_META else ch for ch in text)


def promql_string(text: str) -> str:
    """``text`` as a double-quoted PromQL string literal (backslashes and quotes escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _promql_selector(target: AnalysisTarget) -> str:
    versions = "|".join(regex_literal(v) for v in target.versions)
    labels = [
        f'reporter="{target.reporter}"',
        f"destination_workload=~{promql_string(target.workload_pattern)}",
        f"destination_version=~{promql_string(versions)}",
    ]
    if target.namespace:
        labels.append(f'destination_workload_namespace="{target.namespace}"')
    labels.extend(f'{name}="{value}"' for name, value in target.labels)
    return "{" + ",".join(labels) + "}"


def _dql_filters(target: AnalysisTarget) -> str:
    versions = ", ".join(f"'{v}'" for v in target.versions)
    filters = [
        f"`reporter` = '{target.reporter}'",
        f"`destination_workload` = re(`{target.workload_pattern}`)",
        f"`destination_version` IN [{versions}]",
    ]
    if target.namespace:
        filters.append(f"`destination_workload_namespace` = '{target.namespace}'")
    filters.extend(f"`{name}` = '{value}'" for name, value in target.labels)
    return "{ " + ", ".join(filters) + " }"


def build_promql(target: AnalysisTarget, metric_prefix: str = "", latency_buckets: bool = False) -> dict[str, MetricQuery]:
    """PromQL of the Istio built-ins. ``metric_prefix`` is ``istio_prom:`` for Guance's PromQL,
    which names a metric ``measurement:field``; empty for Prometheus.

    Requests are grouped by version and response code in ONE query: the parser derives the count,
    the 5xx count and both rates from it. ``increase`` over the window handles counter resets.
    A regression's first 5xx make a new series (a new ``response_code``), born inside the window:
    it started from zero there, so it counts in full, its value as it is. ``increase`` would lose
    it: it needs two samples, and a series whose samples are all 1 increases by 0. So the
    ``unless`` term (series absent one window ago) comes first and ``or`` takes ``increase`` only
    for the series that were there before the window.
    """
    window = f"{target.window_seconds}s"
    selector = _promql_selector(target)
    counter = f"{metric_prefix}istio_requests_total{selector}"
    requests = (
        f"sum by (destination_version, response_code) "
        f"(({counter} unless {counter} offset {window}) or increase({counter}[{window}]))"
    )
    latency = (
        f"histogram_quantile(0.99, sum by (le, destination_version) "
        f"(rate({metric_prefix}istio_request_duration_milliseconds_bucket{selector}[{window}])))"
    )
    if latency_buckets:
        # The buckets themselves, each one's requests in the window (a new series in full, as
        # above): the judge of ``confidence`` pools them over the step and reads the p99 with its
        # interval off the histogram.
        bucket = f"{metric_prefix}istio_request_duration_milliseconds_bucket{selector}"
        latency = f"sum by (le, destination_version) (({bucket} unless {bucket} offset {window}) or increase({bucket}[{window}]))"
    return {
        Q_REQUESTS: MetricQuery(Q_REQUESTS, QTYPE_PROMQL, requests),
        Q_LATENCY: MetricQuery(Q_LATENCY, QTYPE_PROMQL, latency),
    }


def build_dql(target: AnalysisTarget) -> dict[str, MetricQuery]:
    """DQL of every built-in: Istio counters from ``istio_prom``, spans from ``T::``, logs from ``L::``.

    Counters are cumulative, and Guance documents no ``increase`` rollup: the queries take each
    series' last value per bucket of ``step_seconds`` (rollup ``last``), sum the series of a group,
    and the parser takes the increase from the oldest bucket to the newest (``window_increase``).
    The counter queries reach ``DQL_LOOKBACK_BUCKETS`` buckets before the window (``lookback_s``):
    the last of them holds the counters at the window's start, so the increase spans the whole
    window, and a series absent from them (a response code first seen in the window) counts from
    zero (``window_increase``). The range goes in the statement and is also sent as the request's
    time range (which wins in Guance), with ``align_time``: the buckets sit on multiples of the
    step, each labelled at its start (``window_increase`` reads them so).
    """
    lookback = DQL_LOOKBACK_BUCKETS * target.step_seconds
    window = f"[{target.window_seconds + lookback}s::{target.step_seconds}s:last]"
    filters = _dql_filters(target)
    versions = ", ".join(f"'{v}'" for v in target.versions)
    requests = (
        f"M::`istio_prom`:(sum(`istio_requests_total`) AS `requests`) {filters} {window} "
        "BY `destination_version`, `response_code`"
    )
    latency = (
        f"M::`istio_prom`:(sum(`istio_request_duration_milliseconds_bucket`) AS `bucket`) {filters} {window} "
        "BY `destination_version`, `le`"
    )
    vtag = target.trace_version_tag
    traces = (
        f"T::`{target.service}`:(count(`*`) AS `spans`) {{ `{vtag}` IN [{versions}] }} "
        f"[{target.window_seconds}s] BY `{vtag}`, `status`"
    )
    ltag = target.log_version_tag
    logs = (
        f"L::re(`.*`):(count(`*`) AS `errors`) {{ `service` = '{target.service}', `status` = 'error', "
        f"`{ltag}` IN [{versions}] }} [{target.window_seconds}s] BY `{ltag}`"
    )
    return {
        Q_REQUESTS: MetricQuery(Q_REQUESTS, QTYPE_DQL, requests, lookback_s=lookback),
        Q_LATENCY: MetricQuery(Q_LATENCY, QTYPE_DQL, latency, lookback_s=lookback),
        Q_TRACES: MetricQuery(Q_TRACES, QTYPE_DQL, traces),
        Q_LOGS: MetricQuery(Q_LOGS, QTYPE_DQL, logs),
    }


def builtin_queries(
    target: AnalysisTarget, metrics: t.Iterable[str], provider: str, istio_query_language: str = QTYPE_PROMQL,
    latency_buckets: bool = False,
) -> list[MetricQuery]:
    """The queries the wanted built-in metrics need, each once, in a stable order.

    ``provider`` ``prometheus``: PromQL; traces and logs are not available there.
    ``provider`` ``guance``: Istio metrics in ``istio_query_language`` (PromQL on ``istio_prom:``
    by default, since it has ``increase`` and ``histogram_quantile``; or DQL), spans and logs in DQL.
    """
    wanted = []
    for metric in metrics:
        if metric not in METRIC_QUERY:
            raise AnalysisError(f"unknown built-in metric {metric!r}; use one of {', '.join(BUILTIN_METRICS)}", "checks")
        key = METRIC_QUERY[metric]
        if key not in wanted:
            wanted.append(key)
    if provider == PROVIDER_PROMETHEUS:
        for key in wanted:
            if key in (Q_TRACES, Q_LOGS):
                raise AnalysisError(
                    f"the prometheus provider has no traces or logs; remove the {key} checks or use provider guance",
                    "checks")
        queries = build_promql(target, latency_buckets=latency_buckets)
    elif provider == PROVIDER_GUANCE:
        if istio_query_language not in (QTYPE_PROMQL, QTYPE_DQL):
            raise AnalysisError(f"istio_query_language must be promql or dql, got {istio_query_language!r}",
                                "istio_query_language")
        queries = build_dql(target)
        if istio_query_language == QTYPE_PROMQL:
            queries.update(build_promql(target, metric_prefix="istio_prom:", latency_buckets=latency_buckets))
    else:
        raise AnalysisError(f"provider must be guance or prometheus, got {provider!r}", "provider")
    order = (Q_REQUESTS, Q_LATENCY, Q_TRACES, Q_LOGS)
    return [queries[key] for key in order if key in wanted]


# ---------------------------------------------------------------------------------------------
# Parsers: simple series -> per-version numbers
# ---------------------------------------------------------------------------------------------

Series = t.Mapping[str, t.Any]


def series_points(series: Series, column: str | None = None) -> list[tuple[float | None, float]]:
    """``(time, value)`` of one series' rows, oldest first, rows without a number dropped.

    ``column``: the value column; by default the first column that is not ``time``. Guance sends
    rows newest first and ``time`` may be null for aggregates without buckets, so rows are
    sorted here and a null time sorts first.
    """
    columns = list(series.get("columns") or [])
    if column is None:
        candidates = [c for c in columns if c != "time"]
        if not candidates:
            return []
        column = candidates[0]
    if column not in columns:
        return []
    index = columns.index(column)
    time_index = columns.index("time") if "time" in columns else None
    points: list[tuple[float | None, float]] = []
    for row in series.get("rows") or []:
        if not isinstance(row, (list, tuple)) or index >= len(row):
            continue
        value = to_number(row[index])
        if value is None:
            continue
        stamp = to_number(row[time_index]) if time_index is not None and time_index < len(row) else None
        points.append((stamp, value))
    points.sort(key=lambda p: -math.inf if p[0] is None else p[0])
    return points


def series_tag(series: Series, tag: str) -> str | None:
    """A tag's value; Guance puts BY tags in ``tags``, and sometimes as a column of the rows."""
    tags = series.get("tags") or {}
    if tag in tags and tags[tag] is not None:
        return str(tags[tag])
    columns = list(series.get("columns") or [])
    rows = series.get("rows") or []
    if tag in columns and rows:
        value = rows[0][columns.index(tag)] if columns.index(tag) < len(rows[0]) else None
        return None if value is None else str(value)
    return None


def latest_value(series: Series, column: str | None = None) -> float | None:
    """The newest value of a series (an instant query's only sample)."""
    points = series_points(series, column)
    return points[-1][1] if points else None


def counter_increase(values: t.Sequence[float]) -> float:
    """How much a cumulative counter grew over ``values`` (oldest first), resets included.

    Like Prometheus' ``increase`` without extrapolation: a drop means the counter restarted from
    zero, so the value after the drop counts in full.
    """
    total = 0.0
    for previous, current in zip(values, values[1:]):
        total += current - previous if current >= previous else current
    return total


def window_increase(series: t.Sequence[Series], lookback_buckets: int = 0, window_start_ms: int | None = None) -> list[float]:
    """Each counter series' increase (``counter_increase``) over the window after the lookback.

    The answer's first ``lookback_buckets`` buckets (distinct times, oldest first, over all its
    series: buckets are aligned across series) are before the window. A series with a point
    there grows from its last such point; a series without (born inside the window: a response
    code first seen) grows from 0. Two lookback buckets, not one, so that one missed scrape does
    not make a long-lived series look new and count its whole lifetime. If no series reached
    back that far the buckets are taken from the window instead: an undercount, which can make
    a round inconclusive but never pass it. Points without a time are taken as before the window.

    Counting buckets, not comparing times, is what finds the last scrape before the window
    when a bucket holds one scrape: the lookback's first bucket is cut by the range's start, and
    it is empty exactly when the bucket holding the window's start had its scrape before it.
    ``window_start_ms`` guards the count: the query asks for ``align_time``, so a bucket is
    labelled at its start, and one labelled at or after the window's start holds only scrapes in
    the window. It is never the base, even when a scrape was missed by every series.
    """
    points = [series_points(one) for one in series]
    stamps = sorted({point[0] for one in points for point in one if point[0] is not None})
    boundary = stamps[min(lookback_buckets, len(stamps)) - 1] if lookback_buckets and stamps else None
    if boundary is not None and window_start_ms is not None and boundary >= window_start_ms:
        earlier = [stamp for stamp in stamps if stamp < window_start_ms]
        boundary = earlier[-1] if earlier else stamps[0]
    out = []
    for one in points:
        if boundary is None:
            out.append(counter_increase([point[1] for point in one]))
            continue
        before = [value for stamp, value in one if stamp is None or stamp <= boundary]
        inside = [value for stamp, value in one if stamp is not None and stamp > boundary]
        start = before[-1] if before else 0.0
        out.append(counter_increase([start, *inside]))
    return out


def _monotonic_counts(buckets: t.Mapping[float, float]) -> list[tuple[float, float]]:
    """(bound, cumulative count) sorted by bound, counts made monotonic (buckets of one scrape
    are not read atomically)."""
    out: list[tuple[float, float]] = []
    for bound in sorted(b for b in buckets if b is not None and not math.isnan(b)):
        count = buckets[bound]
        out.append((bound, max(count, out[-1][1]) if out else count))
    return out


def histogram_quantile(quantile: float, buckets: t.Mapping[float, float]) -> float | None:
    """The ``quantile`` (0..1) of a histogram given as upper bound -> cumulative count.

    Same rules as Prometheus' ``histogram_quantile``: linear interpolation inside the bucket that
    holds the rank, the first bucket starting at 0 (for a positive bound), a rank in the ``+Inf``
    bucket giving the highest finite bound, and counts made monotonic first (buckets of one
    scrape are not read atomically). None when there is no ``+Inf`` bucket or no observation.
    """
    if not 0.0 <= quantile <= 1.0 or math.isnan(quantile):
        raise AnalysisError(f"quantile must be between 0 and 1, got {quantile!r}", "quantile")
    reading = _monotonic_counts(buckets)
    if not reading or reading[-1][0] != math.inf:
        return None
    bounds = [bound for bound, _count in reading]
    counts = [count for _bound, count in reading]
    total = counts[-1]
    if total <= 0:
        return None
    if len(bounds) < 2:
        return None
    rank = quantile * total
    index = next(i for i, count in enumerate(counts) if count >= rank)
    if index == len(bounds) - 1:
        return bounds[-2]
    if index == 0 and bounds[0] <= 0:
        return bounds[0]
    lower = bounds[index - 1] if index > 0 else 0.0
    below = counts[index - 1] if index > 0 else 0.0
    upper = bounds[index]
    in_bucket = counts[index] - below
    if in_bucket <= 0:
        return upper
    return lower + (upper - lower) * (rank - below) / in_bucket


def histogram_bins(*histograms: t.Mapping[float, float]) -> tuple[list[float], list[list[float]]]:
    """Cumulative histograms -> (upper bounds, each histogram's count per bin) over the union of
    their bounds, so two versions' histograms can be compared bin by bin. A bound one histogram
    lacks gets the cumulative count of its nearest bound below (no observation is invented)."""
    readings = [_monotonic_counts(h) for h in histograms]
    bounds = sorted({bound for reading in readings for bound, _count in reading})
    bins: list[list[float]] = []
    for reading in readings:
        cumulative, index, counts, before = 0.0, 0, [], 0.0
        for bound in bounds:
            while index < len(reading) and reading[index][0] <= bound:
                cumulative = reading[index][1]
                index += 1
            counts.append(max(0.0, cumulative - before))
            before = max(before, cumulative)
        bins.append(counts)
    return bounds, bins


def histogram_mean(buckets: t.Mapping[float, float]) -> float | None:
    """The mean of a cumulative histogram, each observation at its bucket's middle (the first
    bucket starting at 0, the ``+Inf`` one at the highest finite bound). None without ``+Inf``
    or observations. Coarse, but equally coarse for two versions on the same buckets, which is
    what a ratio of their means needs."""
    reading = _monotonic_counts(buckets)
    if len(reading) < 2 or reading[-1][0] != math.inf or reading[-1][1] <= 0:
        return None
    total, weighted, lower, before = reading[-1][1], 0.0, 0.0, 0.0
    for bound, cumulative in reading:
        middle = lower if bound == math.inf else (max(lower, 0.0) + bound) / 2.0
        weighted += (cumulative - before) * middle
        lower, before = bound, cumulative
    return weighted / total


@dataclass
class VersionNumbers:
    """Per-version values of one round; None = no data."""

    values: dict[str, dict[str, float | None]] = field(default_factory=dict)
    # The duration histogram of the window per version (upper bound -> cumulative requests), when
    # the answer had buckets: what the statistics of ``confidence`` pool over a step.
    buckets: dict[str, dict[float, float]] = field(default_factory=dict)

    def set(self, version: str, metric: str, value: float | None) -> None:
        self.values.setdefault(version, {})[metric] = value

    def get(self, version: str | None, metric: str) -> float | None:
        if version is None:
            return None
        return self.values.get(version, {}).get(metric)


def _is_5xx(code: str | None) -> bool:
    return bool(code) and str(code).startswith("5") and len(str(code)) == 3


def parse_requests(
    series: t.Iterable[Series], versions: t.Sequence[str], counter: bool, lookback_buckets: int = 0,
    window_start_ms: int | None = None,
) -> dict[str, dict[str, float | None]]:
    """Request count, 5xx count and rates per version from the requests query.

    ``counter``: rows are cumulative counter values over time (DQL), the first
    ``lookback_buckets`` (or those ending by ``window_start_ms``) before the window
    (``window_increase``); else each series holds the
    increase already (PromQL ``increase``) and its newest value is taken.
    A version without any series had no requests: count 0 and no rate (never 100%).
    """
    totals = {v: 0.0 for v in versions}
    errors = {v: 0.0 for v in versions}
    series = list(series)
    amounts = (window_increase(series, lookback_buckets, window_start_ms) if counter
               else [latest_value(one) or 0.0 for one in series])
    for one, amount in zip(series, amounts):
        version = series_tag(one, "destination_version")
        if version not in totals:
            continue
        totals[version] += amount
        if _is_5xx(series_tag(one, "response_code")):
            errors[version] += amount
    out: dict[str, dict[str, float | None]] = {}
    for version in versions:
        error_rate = _rate(errors[version], totals[version])
        out[version] = {
            REQUEST_COUNT: totals[version],
            REQUEST_ERROR_RATE: error_rate,
            REQUEST_SUCCESS_RATE: None if error_rate is None else 100.0 - error_rate,
        }
    return out


def parse_latency_promql(series: t.Iterable[Series], versions: t.Sequence[str]) -> dict[str, float | None]:
    """p99 per version from a PromQL ``histogram_quantile`` answer (one sample per version)."""
    out: dict[str, float | None] = {v: None for v in versions}
    for one in series:
        version = series_tag(one, "destination_version")
        if version in out:
            value = latest_value(one)
            # NaN (no requests) is already None; +Inf cannot be judged against a bound in ms.
            out[version] = value if value is not None and math.isfinite(value) else None
    return out


def parse_latency_buckets(
    series: t.Iterable[Series], versions: t.Sequence[str], quantile: float = 0.99, lookback_buckets: int = 0,
    window_start_ms: int | None = None,
) -> dict[str, float | None]:
    """p-quantile per version from cumulative bucket counters grouped by version and ``le`` (DQL).

    Each bucket's increase over the window is computed first, so old observations from before
    the window do not count; then ``histogram_quantile`` runs on the increases.
    """
    per_version = latency_buckets(series, versions, True, lookback_buckets, window_start_ms)
    return {v: histogram_quantile(quantile, buckets) for v, buckets in per_version.items()}


def latency_buckets(
    series: t.Iterable[Series], versions: t.Sequence[str], counter: bool, lookback_buckets: int = 0,
    window_start_ms: int | None = None,
) -> dict[str, dict[float, float]]:
    """Per version, the window's requests per duration bucket (upper bound -> cumulative count)
    from series grouped by version and ``le``: counter values over time (DQL, see
    ``window_increase``), or each series' increase already (PromQL ``increase``)."""
    per_version: dict[str, dict[float, float]] = {v: {} for v in versions}
    series = list(series)
    amounts = (window_increase(series, lookback_buckets, window_start_ms) if counter
               else [latest_value(one) or 0.0 for one in series])
    for one, grown in zip(series, amounts):
        version = series_tag(one, "destination_version")
        bound = parse_le(series_tag(one, "le"))
        if version not in per_version or bound is None:
            continue
        per_version[version][bound] = per_version[version].get(bound, 0.0) + grown
    return per_version


def parse_traces(series: t.Iterable[Series], versions: t.Sequence[str], version_tag: str = "version") -> dict[str, float | None]:
    """Error-span percentage per version from span counts grouped by version and ``status``."""
    spans = {v: 0.0 for v in versions}
    failed = {v: 0.0 for v in versions}
    for one in series:
        version = series_tag(one, version_tag)
        if version not in spans:
            continue
        count = sum(point[1] for point in series_points(one))
        spans[version] += count
        if series_tag(one, "status") in ("error", "critical"):
            failed[version] += count
    return {v: _rate(failed[v], spans[v]) for v in versions}


def parse_logs(series: t.Iterable[Series], versions: t.Sequence[str], version_tag: str = "version") -> dict[str, float | None]:
    """Error-log count per version. No series for a version means no error logs: 0."""
    counts = {v: 0.0 for v in versions}
    for one in series:
        version = series_tag(one, version_tag)
        if version in counts:
            counts[version] += sum(point[1] for point in series_points(one))
    return dict(counts)


def builtin_numbers(
    target: AnalysisTarget, answers: t.Mapping[str, t.Sequence[Series] | None], queries: t.Mapping[str, MetricQuery],
    window_start_ms: int | None = None,
) -> VersionNumbers:
    """Per-version built-in metrics from the answers of ``builtin_queries`` (key -> series).

    A key missing from ``answers`` (or None) was not answered: every metric it feeds is no data.
    ``window_start_ms``: the round's window start, which tells the DQL counters' buckets before
    the window from those in it (``window_increase``).
    """
    numbers = VersionNumbers()
    versions = target.versions
    for key, query in queries.items():
        series = answers.get(key)
        if series is None:
            continue
        lookback = query.lookback_s // target.step_seconds
        if key == Q_REQUESTS:
            for version, metrics in parse_requests(series, versions, query.qtype == QTYPE_DQL, lookback, window_start_ms).items():
                for metric, value in metrics.items():
                    numbers.set(version, metric, value)
        elif key == Q_LATENCY:
            series = list(series)
            if query.qtype == QTYPE_DQL or any(series_tag(one, "le") is not None for one in series):
                # Buckets: counters over time (DQL), or each bucket's increase (PromQL with confidence).
                numbers.buckets = latency_buckets(series, versions, query.qtype == QTYPE_DQL, lookback, window_start_ms)
                latencies = {v: histogram_quantile(0.99, b) for v, b in numbers.buckets.items()}
                for version, buckets in numbers.buckets.items():
                    numbers.set(version, REQUEST_DURATION, histogram_mean(buckets))
            else:
                latencies = parse_latency_promql(series, versions)
            for version, value in latencies.items():
                numbers.set(version, REQUEST_DURATION_P99, value)
        elif key == Q_TRACES:
            for version, value in parse_traces(series, versions, target.trace_version_tag).items():
                numbers.set(version, TRACE_ERROR_RATE, value)
        elif key == Q_LOGS:
            for version, value in parse_logs(series, versions, target.log_version_tag).items():
                numbers.set(version, ERROR_LOG_COUNT, value)
    return numbers


def custom_values(
    series: t.Sequence[Series], versions: t.Sequence[str], version_tag: str | None = None, column: str | None = None
) -> dict[str, float | None]:
    """A custom metric per version: the newest value of the series tagged with each version.

    Without ``version_tag`` the query is about the canary alone: its first series' newest value
    goes to the first version (the canary). Several series for one version are an error the user
    must fix in the query (add a grouping), not something to guess about.
    """
    out: dict[str, float | None] = {v: None for v in versions}
    if version_tag is None:
        if len(series) > 1:
            raise AnalysisError(
                f"the query returned {len(series)} series; group it by the version tag and set version_tag, "
                "or aggregate it to one series", "checks")
        if series:
            out[versions[0]] = latest_value(series[0], column)
        return out
    seen: set[str] = set()
    for one in series:
        version = series_tag(one, version_tag)
        if version not in out:
            continue
        if version in seen:
            raise AnalysisError(f"the query returned several series for version {version!r}; aggregate it by {version_tag}",
                                "checks")
        seen.add(version)
        out[version] = latest_value(one, column)
    return out


# ---------------------------------------------------------------------------------------------
# The judge
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One check on a metric of the canary.

    ``min``/``max``: fixed bounds (inclusive). ``max_over_baseline``: canary <= baseline + x (for
    percentages: x percentage points). ``max_ratio_to_baseline``: canary <= baseline * y. Any
    combination; all given bounds must hold.

    Policy, in Kayenta's and Keptn's words: ``critical`` - its failure fails the step at once,
    whatever the step's threshold; ``must_have_data`` - no data for it is a failure, not an
    inconclusive round; ``dry_run`` - judged and reported, never deciding anything (a shadow check
    to try a new bound on live releases).
    """

    metric: str
    min: float | None = None
    max: float | None = None
    max_over_baseline: float | None = None
    max_ratio_to_baseline: float | None = None
    query: str | None = None
    unit: str | None = None
    critical: bool = False
    must_have_data: bool = False
    dry_run: bool = False
    weight: float = 1.0  # its share of the round's score (see ``Scoring``)

    def __post_init__(self) -> None:
        if not isinstance(self.metric, str) or not self.metric:
            raise AnalysisError("every check needs a metric name", "checks")
        bounds = (self.min, self.max, self.max_over_baseline, self.max_ratio_to_baseline)
        for name, value in zip(("min", "max", "max_over_baseline", "max_ratio_to_baseline"), bounds):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value)):
                raise AnalysisError(f"check {self.metric!r}: {name} must be a number, got {value!r}", "checks")
        if all(value is None for value in bounds):
            raise AnalysisError(
                f"check {self.metric!r} has no bound: set min, max, max_over_baseline or max_ratio_to_baseline", "checks")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise AnalysisError(f"check {self.metric!r}: min {self.min} is above max {self.max}", "checks")
        if self.max_ratio_to_baseline is not None and self.max_ratio_to_baseline < 0:
            raise AnalysisError(f"check {self.metric!r}: max_ratio_to_baseline must be >= 0", "checks")
        if self.metric == REQUEST_DURATION and (self.max_ratio_to_baseline is None or any(
                value is not None for value in (self.min, self.max, self.max_over_baseline))):
            raise AnalysisError(f"check {self.metric!r} compares the canary's durations with the baseline's by rank: give "
                                "max_ratio_to_baseline (the increase allowed, for example 1.2) and no min, max or "
                                "max_over_baseline", "checks")
        if isinstance(self.weight, bool) or not isinstance(self.weight, (int, float)) or not 0 < self.weight < math.inf:
            raise AnalysisError(f"check {self.metric!r}: weight must be a number above 0, got {self.weight!r} (a check that "
                                "should not count is a dry_run check)", "checks")
        if self.dry_run and (self.critical or self.must_have_data):
            raise AnalysisError(f"check {self.metric!r}: a dry_run check decides nothing, so it cannot be critical or "
                                "must_have_data; drop one of them", "checks")

    @property
    def relative(self) -> bool:
        return self.max_over_baseline is not None or self.max_ratio_to_baseline is not None


@dataclass(frozen=True)
class CheckResult:
    metric: str
    result: str
    reason: str
    canary: float | None
    baseline: float | None
    min: float | None
    max: float | None
    max_over_baseline: float | None
    max_ratio_to_baseline: float | None
    query: str | None
    unit: str | None
    policy: tuple[str, ...] = ()  # the check's policy flags that apply (critical, must_have_data, dry_run)
    weight: float = 1.0

    def as_dict(self) -> dict[str, t.Any]:
        return {
            "metric": self.metric, "result": self.result, "reason": self.reason, "policy": list(self.policy),
            "weight": self.weight,
            "canary": self.canary, "baseline": self.baseline, "unit": self.unit, "query": self.query,
            "bounds": {
                "min": self.min, "max": self.max, "max_over_baseline": self.max_over_baseline,
                "max_ratio_to_baseline": self.max_ratio_to_baseline,
            },
        }


@dataclass(frozen=True)
class Verdict:
    verdict: str
    reason: str
    checks: tuple[CheckResult, ...]
    canary_requests: float | None
    baseline_requests: float | None
    min_requests: int
    critical_failure: str | None = None  # the metric of a critical check that failed: the step fails at once
    score: float | None = None  # percent of the deciding checks' weight that passed

    def as_dict(self) -> dict[str, t.Any]:
        return {
            "verdict": self.verdict, "reason": self.reason, "critical_failure": self.critical_failure, "score": self.score,
            "requests": {"canary": self.canary_requests, "baseline": self.baseline_requests, "min": self.min_requests},
            "checks": [c.as_dict() for c in self.checks],
        }


def _fmt(value: float | None) -> str:
    if value is None:
        return "no data"
    return f"{value:g}"


def evaluate_check(
    check: Check, canary: float | None, baseline: float | None, baseline_reliable: bool = True
) -> CheckResult:
    """One check's result. ``baseline_reliable`` False (too little baseline traffic) makes the
    relative bounds unusable: no data, never a pass."""
    def result(outcome: str, reason: str) -> CheckResult:
        return CheckResult(check.metric, outcome, reason, canary, baseline, check.min, check.max,
                           check.max_over_baseline, check.max_ratio_to_baseline, check.query,
                           check.unit or BUILTIN_METRICS.get(check.metric))

    if canary is None or math.isnan(canary):
        return result(CHECK_NO_DATA, "no data for the canary")
    failures: list[str] = []
    passes: list[str] = []
    if check.min is not None:
        (passes if canary >= check.min else failures).append(f"{_fmt(canary)} {'>=' if canary >= check.min else '<'} min {_fmt(check.min)}")
    if check.max is not None:
        (passes if canary <= check.max else failures).append(f"{_fmt(canary)} {'<=' if canary <= check.max else '>'} max {_fmt(check.max)}")
    missing_baseline = None
    if check.relative:
        if baseline is None or math.isnan(baseline):
            missing_baseline = "no data for the baseline"
        elif not baseline_reliable:
            missing_baseline = "too few baseline requests for a comparison"
        else:
            if check.max_over_baseline is not None:
                limit = baseline + check.max_over_baseline
                ok = canary <= limit
                (passes if ok else failures).append(
                    f"{_fmt(canary)} {'<=' if ok else '>'} baseline {_fmt(baseline)} + {_fmt(check.max_over_baseline)}")
            if check.max_ratio_to_baseline is not None:
                limit = baseline * check.max_ratio_to_baseline
                ok = canary <= limit
                (passes if ok else failures).append(
                    f"{_fmt(canary)} {'<=' if ok else '>'} baseline {_fmt(baseline)} x {_fmt(check.max_ratio_to_baseline)}")
    # A broken fixed bound is a failure even when the baseline is missing.
    if failures:
        return result(CHECK_FAIL, "; ".join(failures))
    if missing_baseline:
        return result(CHECK_NO_DATA, missing_baseline)
    return result(CHECK_PASS, "; ".join(passes))


RATE_METRICS = (REQUEST_ERROR_RATE, REQUEST_SUCCESS_RATE)


@dataclass(frozen=True)
class Counts:
    """A version's requests and 5xx answers, pooled over the rounds of a step so far."""

    requests: float
    errors: float
    # The duration histogram (upper bound -> cumulative requests), pooled like the counts.
    latency: t.Mapping[float, float] = field(default_factory=dict)

    def rate_interval(self, metric: str, z: float) -> tuple[float, float, float]:
        """(point, low, high) of ``metric`` (percent) at ``z``."""
        low, high = wilson_interval(self.errors, self.requests, z)
        point = 100.0 * self.errors / self.requests if self.requests > 0 else 0.0
        if metric == REQUEST_SUCCESS_RATE:
            return 100.0 - point, 100.0 * (1 - high), 100.0 * (1 - low)
        return point, 100.0 * low, 100.0 * high


def _result_of(check: Check) -> t.Callable[[str, str, float | None, float | None], CheckResult]:
    """``result(outcome, reason, canary value, baseline value)`` for ``check`` (the judges on counts)."""
    def result(outcome: str, reason: str, value: float | None, base: float | None) -> CheckResult:
        return CheckResult(check.metric, outcome, reason, value, base, check.min, check.max, check.max_over_baseline,
                           check.max_ratio_to_baseline, check.query, check.unit or BUILTIN_METRICS.get(check.metric))
    return result


class _BoundVerdicts:
    """Each bound of a check on counts: failed (the interval lies beyond it), kept (within it), or
    undecided; at the step's ``final`` look an undecided bound whose estimate is within is kept."""

    def __init__(self, final: bool) -> None:
        self.final = final
        self.failures: list[str] = []
        self.undecided: list[str] = []
        self.passes: list[str] = []

    def judge(self, broken: bool, kept: bool, estimate_kept: bool, text: str) -> None:
        if not broken and not kept and self.final and estimate_kept:
            text += " (kept on the estimate at the step's last look)"
            kept = True
        (self.failures if broken else self.passes if kept else self.undecided).append(text)

    def outcome(self, result: t.Callable[..., CheckResult], value: float | None, base: float | None) -> CheckResult:
        if self.failures:
            return result(CHECK_FAIL, "; ".join(self.failures), value, base)
        if self.undecided:
            return result(CHECK_UNDECIDED, "the sample cannot tell yet: " + "; ".join(self.undecided), value, base)
        return result(CHECK_PASS, "; ".join(self.passes), value, base)


def evaluate_rate_check(check: Check, canary: Counts | None, baseline: Counts | None, z: float,
                        baseline_reliable: bool = True, final: bool = False) -> CheckResult:
    """A success- or error-rate check judged on counts at ``z``: a bound fails only when the
    interval lies beyond it, passes when the interval lies within it, and is undecided when the
    interval straddles it (the sample cannot tell yet; the step looks again next round).

    At the step's ``final`` look, a bound still undecided is kept when the estimate itself is
    within it: the data did not show a breach at the confidence asked, and waiting is over. Only
    an estimate beyond the bound that the sample cannot confirm stays undecided (inconclusive)."""
    result = _result_of(check)
    if canary is None or canary.requests <= 0:
        return result(CHECK_NO_DATA, "no data for the canary", None, None)
    value, low, high = canary.rate_interval(check.metric, z)
    shown = f"{_fmt(round(value, 2))} ({_fmt(round(low, 2))}-{_fmt(round(high, 2))} on {_fmt(canary.requests)} requests)"
    bounds = _BoundVerdicts(final)
    judge_bound = bounds.judge

    if check.min is not None:
        judge_bound(high < check.min, low >= check.min, value >= check.min, f"{shown} vs min {_fmt(check.min)}")
    if check.max is not None:
        judge_bound(low > check.max, high <= check.max, value <= check.max, f"{shown} vs max {_fmt(check.max)}")
    base_value = None
    missing_baseline = None
    if check.relative:
        if baseline is None or baseline.requests <= 0:
            missing_baseline = "no data for the baseline"
        elif not baseline_reliable:
            missing_baseline = "too few baseline requests for a comparison"
        else:
            base_value, base_low, base_high = baseline.rate_interval(check.metric, z)
            if check.max_over_baseline is not None:
                d_low, d_high = difference_interval(canary.errors, canary.requests, baseline.errors, baseline.requests, z)
                if check.metric == REQUEST_SUCCESS_RATE:  # success difference = -(error difference)
                    d_low, d_high = -d_high, -d_low
                judge_bound(100 * d_low > check.max_over_baseline, 100 * d_high <= check.max_over_baseline,
                            value - base_value <= check.max_over_baseline,
                            f"canary - baseline {_fmt(round(value - base_value, 2))} points "
                            f"({_fmt(round(100 * d_low, 2))} to {_fmt(round(100 * d_high, 2))}) vs + "
                            f"{_fmt(check.max_over_baseline)}")
            if check.max_ratio_to_baseline is not None:
                limit_high = base_high * check.max_ratio_to_baseline
                judge_bound(low > limit_high, high <= limit_high, value <= base_value * check.max_ratio_to_baseline,
                            f"{shown} vs baseline {_fmt(round(base_value, 2))} x {_fmt(check.max_ratio_to_baseline)}")
    if bounds.failures:
        return result(CHECK_FAIL, "; ".join(bounds.failures), value, base_value)
    if missing_baseline:
        return result(CHECK_NO_DATA, missing_baseline, value, base_value)
    return bounds.outcome(result, value, base_value)


def evaluate_latency_check(check: Check, canary: t.Mapping[float, float], baseline: t.Mapping[float, float] | None,
                           z: float, final: bool = False) -> CheckResult:
    """A p99 check judged on the duration histogram: the p99 and the interval of its rank
    (``quantile_rank_interval``) read off the buckets, each bound failed, kept or undecided as in
    ``evaluate_rate_check`` (the last look keeping a bound whose estimate is within it)."""
    result = _result_of(check)

    def read(buckets: t.Mapping[float, float]) -> tuple[float | None, float | None, float | None, float]:
        total = max(buckets.values(), default=0.0)
        low_q, high_q = quantile_rank_interval(0.99, total, z)
        return histogram_quantile(0.99, buckets), histogram_quantile(low_q, buckets), histogram_quantile(high_q, buckets), total

    value, low, high, total = read(canary)
    if value is None or low is None or high is None:
        return result(CHECK_NO_DATA, "no data for the canary", None, None)
    shown = f"p99 {_fmt(round(value, 1))} ms (rank interval {_fmt(round(low, 1))}-{_fmt(round(high, 1))} ms on {_fmt(total)} " \
            "requests, from the duration histogram)"
    bounds = _BoundVerdicts(final)
    judge_bound = bounds.judge

    if check.min is not None:
        judge_bound(high < check.min, low >= check.min, value >= check.min, f"{shown} vs min {_fmt(check.min)}")
    if check.max is not None:
        judge_bound(low > check.max, high <= check.max, value <= check.max, f"{shown} vs max {_fmt(check.max)}")
    base_value = None
    if check.relative:
        base_value, base_low, base_high, _total = read(baseline or {})
        if base_value is None or base_low is None or base_high is None:
            return result(CHECK_NO_DATA, "no data for the baseline", value, None)
        if check.max_over_baseline is not None:
            plus = check.max_over_baseline
            judge_bound(low > base_high + plus, high <= base_low + plus, value <= base_value + plus,
                        f"{shown} vs baseline {_fmt(round(base_value, 1))} + {_fmt(plus)}")
        if check.max_ratio_to_baseline is not None:
            ratio = check.max_ratio_to_baseline
            judge_bound(low > base_high * ratio, high <= base_low * ratio, value <= base_value * ratio,
                        f"{shown} vs baseline {_fmt(round(base_value, 1))} x {_fmt(ratio)}")
    return bounds.outcome(result, value, base_value)


def evaluate_duration_check(check: Check, canary: t.Mapping[float, float], baseline: t.Mapping[float, float] | None,
                            z: float, final: bool = False) -> CheckResult:
    """The canary's whole duration distribution against the baseline's, like Kayenta's
    Mann-Whitney judge: a rank test on the two duration histograms (``rank_test_binned``) says
    whether the canary is slower at ``z``, and the ratio of their means is the effect, with
    ``max_ratio_to_baseline`` the increase allowed (Kayenta's ``allowedIncrease``, a dead zone).

    Failed when the test shows the canary slower and the effect is beyond the allowed ratio;
    kept when the effect is within it (a small, even a significant, slowdown inside the dead zone
    passes); undecided when the effect is beyond but the sample cannot show it yet. The last look
    keeps nothing undecided: an unconfirmed slowdown beyond the ratio stays inconclusive."""
    result = _result_of(check)
    value = histogram_mean(canary)
    if value is None:
        return result(CHECK_NO_DATA, "no data for the canary", None, None)
    base = histogram_mean(baseline or {})
    if base is None or base <= 0:
        return result(CHECK_NO_DATA, "no data for the baseline", value, None)
    _bounds, (canary_bins, baseline_bins) = histogram_bins(canary, baseline or {})
    theta, shift_z = rank_test_binned(canary_bins, baseline_bins)
    ratio = value / base
    allowed = check.max_ratio_to_baseline
    shown = (f"mean {_fmt(round(value, 1))} ms vs baseline {_fmt(round(base, 1))} ms (x{_fmt(round(ratio, 2))}, allowed "
             f"x{_fmt(allowed)}); rank test: P(canary slower) {_fmt(round(theta, 3))}, z {_fmt(round(shift_z, 2))} vs "
             f"{_fmt(round(z, 2))} on {_fmt(sum(canary_bins))}/{_fmt(sum(baseline_bins))} requests (Mann-Whitney U on the "
             "duration histogram's buckets)")
    bounds = _BoundVerdicts(final)
    bounds.judge(shift_z > z and ratio > allowed, ratio <= allowed, ratio <= allowed, shown)
    return bounds.outcome(result, value, base)


# The observed share of requests per version against the configured weights. A mesh that ignores
# the VirtualService (no sidecar on the canary, an istiod that rejected the rule) leaves the
# canary at 0% or at its pods' share while the weights say 10%: the round judged the wrong
# traffic. A canary share above the weight is judged by the sample size (Wilson interval at
# 99.9%) and a dead zone of 1 point + a quarter of the smaller side's weight, for what real load
# balancing does (per-connection picks, retries); a share below it only when it is none at all
# (see check_traffic_share).
TRAFFIC_SHARE = "traffic_share"
SHARE_Z = 3.29
# No canary request where its weight promised this many is a failure: with a 10% weight and 90
# baseline requests that happens by chance with probability (0.9)^100, about 3e-5.
SHARE_NONE_EXPECTED = 10


def check_traffic_share(canary: float | None, baseline: float | None, expected_pct: float) -> CheckResult:
    """Whether the canary's observed share of (canary + baseline) requests agrees with its weight."""
    def result(outcome: str, reason: str, observed: float | None) -> CheckResult:
        return CheckResult(TRAFFIC_SHARE, outcome, reason, observed, expected_pct, None, None, None, None, None, "%")

    total = (canary or 0) + (baseline or 0)
    if total <= 0:
        return result(CHECK_NO_DATA, "no requests of either version to compare with the weights", None)
    low, high = wilson_interval(canary or 0, total, SHARE_Z)
    observed = 100.0 * (canary or 0) / total
    slack = 1.0 + 0.25 * min(expected_pct, 100.0 - expected_pct)
    shown = (f"observed {_fmt(round(observed, 1))}% of {_fmt(total)} requests on the canary "
             f"(99.9% interval {_fmt(round(100 * low, 1))}-{_fmt(round(100 * high, 1))}%), configured {_fmt(expected_pct)}%")
    # Too much: the canary's share cannot be overcounted, so the interval decides. Too little is
    # only a failure when the canary got nothing at all where its weight promised at least
    # SHARE_NONE_EXPECTED requests: a canary's series born inside the window is counted from its
    # first scrape (PromQL increase(), DQL buckets), so a new canary's first round can show a
    # small part of its share (14% of 171 requests under a 50% weight, measured), while a canary
    # the mesh does not reach, or without a Ready pod, shows none.
    promised = float("inf") if expected_pct >= 100 else (baseline or 0) * expected_pct / (100.0 - expected_pct)
    too_much = 100 * low - slack > expected_pct
    none_at_all = not canary and promised >= SHARE_NONE_EXPECTED
    if too_much or none_at_all:
        return result(CHECK_FAIL, shown + ": the requests do not follow the weights (the mesh does not apply the "
                      "VirtualService, or the canary has no Ready pod)", observed)
    return result(CHECK_PASS, shown, observed)


@dataclass(frozen=True)
class Scoring:
    """How a round's checks add up, in Keptn's and Kayenta's words.

    The round's score is the percent of the deciding checks' ``weight`` that passed (a check
    without data or undecided does not pass). With failed checks, a score at or above ``pass``
    tolerates them; at or above ``marginal`` the round is ``marginal`` (``on_marginal``: a failed
    round, or one more round; a step never passes on it); below, the round fails. The defaults
    (both 100) are the plain rule: any failed check fails the round.

    ``no_data_fail_percent``: when at least this percent of the deciding checks have no data, the
    round fails instead of being inconclusive (Kayenta scores a run 0 when half its metrics have
    no data); unset, no data is inconclusive."""

    pass_score: float = 100.0
    marginal_score: float | None = None
    on_marginal: str = "fail"
    no_data_fail_percent: float | None = None

    def __post_init__(self) -> None:
        for name, value in (("pass", self.pass_score), ("marginal", self.marginal_score),
                            ("no_data_fail_percent", self.no_data_fail_percent)):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
                raise AnalysisError(f"scoring.{name} must be a percentage from 0 to 100, got {value!r}", "scoring")
        if self.marginal_score is not None and self.marginal_score > self.pass_score:
            raise AnalysisError(f"scoring.marginal {self.marginal_score:g} is above scoring.pass {self.pass_score:g}: the "
                                "marginal band lies below the pass score", "scoring")
        if self.no_data_fail_percent == 0:
            raise AnalysisError("scoring.no_data_fail_percent must be above 0 (0 would fail every round)", "scoring")
        if self.on_marginal not in ("fail", "wait"):
            raise AnalysisError(f"scoring.on_marginal must be fail or wait, got {self.on_marginal!r}", "scoring")

    @property
    def scored(self) -> bool:
        """Whether failed checks are weighed at all (else any failed check fails the round)."""
        return self.marginal_floor < 100

    @property
    def marginal_floor(self) -> float:
        return self.pass_score if self.marginal_score is None else self.marginal_score


def judge(
    numbers: VersionNumbers | t.Mapping[str, t.Mapping[str, float | None]],
    checks: t.Sequence[Check],
    canary_version: str,
    baseline_version: str | None = None,
    min_requests: int = 1,
    expected_weight: float | None = None,
    evidence: t.Mapping[str, Counts] | None = None,
    z: float | None = None,
    final: bool = False,
    scoring: Scoring | None = None,
) -> Verdict:
    """The verdict of one round.

    1. The canary's ``request_count`` missing or below ``min_requests``: inconclusive (every
       check is still evaluated and reported).
    2. Else any check failed: fail.
    3. Else any check without data (canary, or baseline for a relative bound): inconclusive.
    4. Else pass.
    Relative bounds need the baseline to have ``min_requests`` too.

    With ``expected_weight`` (the canary's configured weight, percent) and a baseline, the
    observed share of requests is checked too (``traffic_share``), and a disagreement fails the
    round before anything else: with the canary at 0% of 400 requests under a 10% weight the
    round has too few canary requests, but the reason is the mesh, not the sample.

    With ``evidence`` (each version's requests and errors pooled over the step's rounds so far)
    and ``z``, the success- and error-rate checks are judged on those counts
    (``evaluate_rate_check``; ``final``: the step's last look), ``min_requests`` applies to the
    pooled canary requests, and a check the sample cannot decide yet makes the round
    inconclusive ("the sample cannot tell yet").

    ``scoring`` (``Scoring``) turns step 2 into a score and adds the no-data rule; a critical
    check's failure fails the round whatever the score.
    """
    if isinstance(min_requests, bool) or not isinstance(min_requests, int) or min_requests < 1:
        raise AnalysisError(f"min_requests must be a whole number >= 1, got {min_requests!r}", "min_requests")
    if not checks:
        raise AnalysisError("at least one check is needed; without checks nothing can pass", "checks")
    table = numbers if isinstance(numbers, VersionNumbers) else VersionNumbers({k: dict(v) for k, v in numbers.items()})
    canary_requests = table.get(canary_version, REQUEST_COUNT)
    baseline_requests = table.get(baseline_version, REQUEST_COUNT)
    pooled = evidence is not None and z is not None
    if pooled:
        canary_requests = evidence[canary_version].requests if canary_version in evidence else canary_requests
        if baseline_version in evidence:
            baseline_requests = evidence[baseline_version].requests
    baseline_reliable = baseline_requests is not None and baseline_requests >= min_requests

    def evaluate(check: Check) -> CheckResult:
        if pooled and check.metric in RATE_METRICS:
            return evaluate_rate_check(check, evidence.get(canary_version),
                                       evidence.get(baseline_version) if baseline_version else None, z, baseline_reliable, final)
        if pooled and check.metric == REQUEST_DURATION:
            base = evidence[baseline_version].latency if baseline_version in evidence and baseline_reliable else None
            latency = evidence[canary_version].latency if canary_version in evidence else {}
            return evaluate_duration_check(check, latency, base, z, final)
        if pooled and check.metric == REQUEST_DURATION_P99 and canary_version in evidence and evidence[canary_version].latency:
            base = evidence[baseline_version].latency if baseline_version in evidence and baseline_reliable else None
            return evaluate_latency_check(check, evidence[canary_version].latency, base, z, final)
        return evaluate_check(
            check, table.get(canary_version, check.metric), table.get(baseline_version, check.metric), baseline_reliable)

    results = tuple(evaluate(check) for check in checks)
    results = tuple(with_policy(check, result) for check, result in zip(checks, results))
    share = None
    if expected_weight is not None and baseline_version is not None and expected_weight > 0:
        share = check_traffic_share(canary_requests, baseline_requests, float(expected_weight))
        results += (share,)
    scoring = scoring or Scoring()
    deciding = [r for r in results if POLICY_DRY_RUN not in r.policy]
    scored = [r for r in deciding if r is not share]
    failed = [r for r in deciding if r.result == CHECK_FAIL]
    no_data = [r for r in scored if r.result == CHECK_NO_DATA]
    undecided = [r for r in deciding if r.result == CHECK_UNDECIDED]
    critical = next((r.metric for r in failed if POLICY_CRITICAL in r.policy), None)
    weight = sum(r.weight for r in scored)
    score = round(100.0 * sum(r.weight for r in scored if r.result == CHECK_PASS) / weight, 1) if weight else None
    no_data_pct = 100.0 * len(no_data) / len(scored) if scored else 0.0
    failed_text = "; ".join(f"{r.metric}: {r.reason}" for r in failed)
    score_text = f"score {_fmt(score)} (pass {_fmt(scoring.pass_score)}, marginal {_fmt(scoring.marginal_floor)})"
    tolerated = ""
    if share is not None and share.result == CHECK_FAIL:
        verdict, reason = FAIL, f"{TRAFFIC_SHARE}: {share.reason}"
    elif canary_requests is None:
        verdict, reason = INCONCLUSIVE, "no request count for the canary"
    elif canary_requests < min_requests:
        verdict, reason = INCONCLUSIVE, f"too few canary requests: {_fmt(canary_requests)} < min_requests {min_requests}"
    elif critical:
        verdict, reason = FAIL, failed_text
    elif scoring.no_data_fail_percent is not None and no_data and no_data_pct >= scoring.no_data_fail_percent:
        verdict, reason = FAIL, (f"{len(no_data)} of {len(scored)} checks without data ({_fmt(round(no_data_pct, 1))}% >= "
                                 f"no_data_fail_percent {_fmt(scoring.no_data_fail_percent)}): "
                                 + "; ".join(f"{r.metric}: {r.reason}" for r in no_data))
    elif failed and (score is None or score < scoring.marginal_floor):
        verdict, reason = FAIL, f"{score_text}: {failed_text}" if scoring.scored else failed_text
    elif failed and score < scoring.pass_score:
        verdict, reason = MARGINAL, f"{score_text}: {failed_text}"
    elif no_data:
        verdict, reason = INCONCLUSIVE, "; ".join(f"{r.metric}: {r.reason}" for r in no_data)
    elif undecided:
        verdict, reason = INCONCLUSIVE, "; ".join(f"{r.metric}: {r.reason}" for r in undecided)
    else:
        if failed:
            tolerated = f"; {score_text} tolerates {failed_text}"
        verdict, reason = PASS, f"{len(deciding) - len(failed)} checks passed on {_fmt(canary_requests)} canary requests" + (
            " (pooled over the step's rounds)" if pooled else "") + tolerated
    if verdict != FAIL:
        critical = None  # a critical check counts only when its failure is the round's verdict
    return Verdict(verdict, reason, results, canary_requests, baseline_requests, min_requests, critical, score)


POLICY_CRITICAL = "critical"
POLICY_MUST_HAVE_DATA = "must_have_data"
POLICY_DRY_RUN = "dry_run"


def with_policy(check: Check, result: CheckResult) -> CheckResult:
    """``result`` under ``check``'s policy: its flags recorded, and no data turned into a failure
    for a check that must have data."""
    policy = tuple(name for name in (POLICY_CRITICAL, POLICY_MUST_HAVE_DATA, POLICY_DRY_RUN) if getattr(check, name))
    if check.must_have_data and result.result == CHECK_NO_DATA:
        return replace(result, result=CHECK_FAIL, reason=f"{result.reason}, and it must have data", policy=policy,
                       weight=float(check.weight))
    return replace(result, policy=policy, weight=float(check.weight))


def with_queries(checks: t.Sequence[Check], queries: t.Iterable[MetricQuery]) -> list[Check]:
    """The checks with the text of the query behind each built-in metric filled in (for the
    report), unless a check already names its query."""
    by_key = {query.key: query.query for query in queries}
    out = []
    for check in checks:
        key = METRIC_QUERY.get(check.metric)
        if check.query is None and key in by_key:
            check = replace(check, query=by_key[key])
        out.append(check)
    return out


# ---------------------------------------------------------------------------------------------
# One round end to end: plan the queries, read the answers, judge
# ---------------------------------------------------------------------------------------------

CUSTOM_PREFIX = "custom:"


@dataclass(frozen=True)
class CustomMetric:
    """A user's DQL or PromQL metric. ``version_tag``: the tag its series are grouped by, one
    series per version (so it can be compared with the baseline); without it the query must
    return one series, the canary's. ``column``: the value column (default: the first that is not
    ``time``)."""

    name: str
    query: str
    qtype: str = QTYPE_DQL
    version_tag: str | None = None
    column: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_.-]*$", self.name):
            raise AnalysisError(f"a custom metric needs a name like 'p95_ms', got {self.name!r}", "metrics")
        if self.name in BUILTIN_METRICS:
            raise AnalysisError(f"custom metric {self.name!r} has the name of a built-in metric; rename it", "metrics")
        if not isinstance(self.query, str) or not self.query.strip():
            raise AnalysisError(f"custom metric {self.name!r} has an empty query", "metrics")
        if self.qtype not in (QTYPE_DQL, QTYPE_PROMQL):
            raise AnalysisError(f"custom metric {self.name!r}: qtype must be dql or promql, got {self.qtype!r}", "metrics")


def plan_round(
    target: AnalysisTarget,
    checks: t.Sequence[Check],
    provider: str,
    custom: t.Sequence[CustomMetric] = (),
    istio_query_language: str = QTYPE_PROMQL,
    latency_buckets: bool = False,
) -> list[MetricQuery]:
    """Every query a round needs: the built-ins the checks use plus the request count (always
    needed: too few requests make a round inconclusive), then the custom metrics the checks use.
    For ``guance`` all of them go in one HTTP request."""
    by_name = {metric.name: metric for metric in custom}
    if len(by_name) != len(custom):
        raise AnalysisError("two custom metrics have the same name", "metrics")
    builtins = [REQUEST_COUNT]
    customs: list[CustomMetric] = []
    for check in checks:
        if check.metric in BUILTIN_METRICS:
            builtins.append(check.metric)
        elif check.metric in by_name:
            if by_name[check.metric] not in customs:
                customs.append(by_name[check.metric])
        else:
            raise AnalysisError(
                f"check on unknown metric {check.metric!r}: use a built-in ({', '.join(BUILTIN_METRICS)}) or define "
                "it as a custom metric", "checks")
    queries = builtin_queries(target, builtins, provider, istio_query_language, latency_buckets)
    for metric in customs:
        if provider == PROVIDER_PROMETHEUS and metric.qtype != QTYPE_PROMQL:
            raise AnalysisError(f"custom metric {metric.name!r} is DQL; the prometheus provider runs PromQL only", "metrics")
        queries.append(MetricQuery(CUSTOM_PREFIX + metric.name, metric.qtype, metric.query))
    return queries


def round_numbers(
    target: AnalysisTarget,
    queries: t.Sequence[MetricQuery],
    answers: t.Mapping[str, t.Sequence[Series] | None],
    custom: t.Sequence[CustomMetric] = (),
    window_start_ms: int | None = None,
) -> VersionNumbers:
    """Per-version numbers from the answers (query key -> series; a missing key = no data)."""
    builtin = {query.key: query for query in queries if not query.key.startswith(CUSTOM_PREFIX)}
    numbers = builtin_numbers(target, answers, builtin, window_start_ms)
    by_name = {metric.name: metric for metric in custom}
    for query in queries:
        if not query.key.startswith(CUSTOM_PREFIX):
            continue
        metric = by_name[query.key[len(CUSTOM_PREFIX):]]
        series = answers.get(query.key)
        values = custom_values(series or [], target.versions, metric.version_tag, metric.column)
        for version, value in values.items():
            numbers.set(version, metric.name, value)
    return numbers


def judge_round(
    target: AnalysisTarget,
    checks: t.Sequence[Check],
    queries: t.Sequence[MetricQuery],
    answers: t.Mapping[str, t.Sequence[Series] | None],
    custom: t.Sequence[CustomMetric] = (),
    min_requests: int = 1,
    expected_weight: float | None = None,
    evidence: t.Mapping[str, Counts] | None = None,
    z: float | None = None,
    final: bool = False,
    scoring: Scoring | None = None,
    window_start_ms: int | None = None,
) -> Verdict:
    """The verdict of one round from the answers to ``plan_round``'s queries, every check
    carrying the text of the query behind its value (``evidence``, ``z``, ``scoring``: see ``judge``)."""
    numbers = round_numbers(target, queries, answers, custom, window_start_ms)
    texts = {query.key: query.query for query in queries}
    described = []
    for check in with_queries(checks, queries):
        if check.query is None and CUSTOM_PREFIX + check.metric in texts:
            check = replace(check, query=texts[CUSTOM_PREFIX + check.metric])
        described.append(check)
    return judge(numbers, described, target.canary_version, target.baseline_version, min_requests, expected_weight,
                 evidence, z, final, scoring)


# ---------------------------------------------------------------------------------------------
# Several rounds per step
# ---------------------------------------------------------------------------------------------

CONTINUE = "continue"


@dataclass(frozen=True)
class StepDecision:
    decision: str  # continue | pass | fail | inconclusive
    reason: str
    rounds: int
    failed_checks: int

    def as_dict(self) -> dict[str, t.Any]:
        return {"decision": self.decision, "reason": self.reason, "rounds": self.rounds, "failed_checks": self.failed_checks}


def max_rounds(checks: int, threshold: int) -> int:
    """Most rounds a step can take: ``checks`` plus one retry per tolerated failure."""
    return checks + threshold - 1


def step_decision(
    verdicts: t.Sequence[str], checks: int, threshold: int = 1, inconclusive_is_failure: bool = True,
    marginal_is_failure: bool = True,
) -> StepDecision:
    """What to do after the rounds of a step so far (like Flagger's interval/iterations/threshold).

    - Each ``fail`` (and each ``inconclusive`` when ``inconclusive_is_failure``, each ``marginal``
      when ``marginal_is_failure``) is a failed check;
      at ``threshold`` failed checks the step fails at once: roll back now, not after the step.
    - The step passes after at least ``checks`` rounds when the latest round passed: a step never
      advances on a failed or inconclusive last look.
    - Otherwise another round, up to ``max_rounds``; after that the step is inconclusive.
    """
    for name, value in (("checks", checks), ("threshold", threshold)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise AnalysisError(f"{name} must be a whole number >= 1, got {value!r}", name)
    for verdict in verdicts:
        if verdict not in VERDICTS:
            raise AnalysisError(f"unknown verdict {verdict!r}; expected one of {', '.join(VERDICTS)}", "verdicts")
    rounds = len(verdicts)
    failed = sum(1 for v in verdicts if v == FAIL or (inconclusive_is_failure and v == INCONCLUSIVE)
                 or (marginal_is_failure and v == MARGINAL))
    if failed >= threshold:
        return StepDecision(FAIL, f"{failed} failed checks reached the threshold {threshold}", rounds, failed)
    if rounds >= checks and verdicts[-1] == PASS:
        return StepDecision(PASS, f"{rounds} rounds, the last passed, {failed} failed checks (threshold {threshold})",
                            rounds, failed)
    if rounds < max_rounds(checks, threshold):
        return StepDecision(CONTINUE, f"round {rounds + 1} of at most {max_rounds(checks, threshold)}", rounds, failed)
    return StepDecision(INCONCLUSIVE, f"{rounds} rounds without a passing last round", rounds, failed)
