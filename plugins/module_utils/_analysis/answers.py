# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Query answers in the simple series shape (``name``, ``tags``, ``columns``, ``rows``) shared
by the Guance and Prometheus clients, read into per-version numbers: counter increases over a
window, p99 and the whole distribution from cumulative histogram buckets, trace and log counts.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import math

import typing as t
from dataclasses import dataclass, field

from ansible_collections.canary.istio.plugins.module_utils._analysis.queries import (
    AnalysisTarget,
    MetricQuery,
    Q_LATENCY,
    Q_LOGS,
    Q_REQUESTS,
    Q_TRACES,
)
from ansible_collections.canary.istio.plugins.module_utils._analysis.terms import (
    AnalysisError, ERROR_LOG_COUNT, QTYPE_DQL, REQUEST_COUNT, REQUEST_DURATION, REQUEST_DURATION_P99,
    REQUEST_ERROR_RATE, REQUEST_SUCCESS_RATE, TRACE_ERROR_RATE, parse_le, rate, to_number)


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
        error_rate = rate(errors[version], totals[version])
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
    return {v: rate(failed[v], spans[v]) for v in versions}


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
