# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What to analyse (``AnalysisTarget``) and the queries of the built-in checks: PromQL for
Prometheus, PromQL with Guance's ``measurement:field`` names, or DQL (request count, error rate,
p99 latency from the duration histogram, trace error rate from ``T::``, error-log count from
``L::``).

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass

from ansible_collections.canary.istio.plugins.module_utils._analysis.terms import (
    AnalysisError, BUILTIN_METRICS, ERROR_LOG_COUNT, PROVIDER_GUANCE, PROVIDER_PROMETHEUS, QTYPE_DQL, QTYPE_PROMQL,
    REQUEST_COUNT, REQUEST_DURATION, REQUEST_DURATION_P99, REQUEST_ERROR_RATE, REQUEST_SUCCESS_RATE, TRACE_ERROR_RATE)


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
