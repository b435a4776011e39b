# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""DQL and PromQL queries as Guance takes them and answers as it gives them: the request bodies of
the OpenAPI (``query_data_v1``) and of a DataKit (``/v1/query/raw``), all queries of a call in ONE
request (the OpenAPI allows 20 requests a minute per key), and the series of an answer read into
the simple shape the judge reads, whatever form Guance's PromQL gives their labels in.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import typing as t

from dataclasses import dataclass, field

from ansible_collections.canary.istio.plugins.module_utils._guance.errors import GuanceConfigError


@dataclass(frozen=True)
class Query:
    """One DQL or PromQL query. ``options``: extra documented fields of the query object (for the
    OpenAPI e.g. ``slimit``, ``limit``, ``interval``, ``promqlType``), sent as given.
    ``lookback_ms``: this query's time range starts that much before the request's start."""

    q: str
    qtype: str = "dql"
    options: t.Mapping[str, t.Any] = field(default_factory=dict)
    lookback_ms: int = 0


@dataclass(frozen=True)
class QueryResult:
    """``series``: per query (request order) a list of ``{name, tags, columns, rows}``.
    ``raw``: the decoded answer as received."""

    series: list[list[dict[str, t.Any]]]
    raw: t.Any
    attempts: int


def series_labels(one: t.Mapping[str, t.Any]) -> tuple[str, dict[str, t.Any]]:
    """(name, tags) of one answer series. Guance's own Grafana datasource reads a PromQL series'
    labels from ``tags``, from ``labels``, or from ``name`` given as a list of ``"k=v"`` strings:
    every one of those layouts is read here."""
    name = one.get("name")
    tags: dict[str, t.Any] = {}
    for layout in ("labels", "tags"):  # tags win where both say
        if isinstance(one.get(layout), dict):
            tags.update(one[layout])
    if isinstance(name, list):
        for pair in name:
            if isinstance(pair, str) and "=" in pair:
                key, value = pair.split("=", 1)
                tags.setdefault(key, value)
        name = ""
    return (name if isinstance(name, str) else ""), tags


def simple_series(item: t.Mapping[str, t.Any]) -> list[dict[str, t.Any]]:
    """The simple shape of one query's answer item: name, tags, columns, rows.

    ``series`` may be missing or null when there is no data.
    """
    out = []
    for one in item.get("series") or []:
        if not isinstance(one, dict):
            continue
        name, tags = series_labels(one)
        out.append({
            "name": name,
            "tags": tags,
            "columns": list(one.get("columns") or []),
            "rows": [list(row) for row in one.get("values") or [] if isinstance(row, (list, tuple))],
        })
    return out


def openapi_query_body(queries: t.Sequence[Query], start_ms: int, end_ms: int) -> dict[str, t.Any]:
    """The body of ``query_data_v1``: the window as ``timeRange``; multi-column mode and no
    sampling so aggregates are exact; PromQL as an instant query at the end of the window.

    DQL answers are capped at 20 series unless the request lifts the cap: a p99 grouped by version
    and ``le`` has ~40, and one version would silently go missing. ``disable_slimit`` lifts it as
    Guance's own clients do (pipeline-go); no request-level ``slimit`` is sent, because it would
    override a ``SLIMIT`` the statement itself sets.

    ``align_time`` as Guance's own examples send it with interval queries: buckets on multiples of
    the interval, each labelled at its start, which the analysis's window arithmetic relies on
    (``_analysis/answers.py`` window_increase)."""
    body = []
    for query in queries:
        entry: dict[str, t.Any] = {
            "q": query.q,
            "timeRange": [int(start_ms) - query.lookback_ms, int(end_ms)],
            "disableMultipleField": False,
            "disable_sampling": True,
        }
        if query.qtype == "promql":
            entry["promqlType"] = "instantQuery"
        else:
            entry["disable_slimit"] = True
            entry["align_time"] = True
        entry.update(query.options)
        body.append({"qtype": query.qtype, "query": entry})
    return {"queries": body}


def datakit_query_body(queries: t.Sequence[Query], start_ms: int, end_ms: int) -> dict[str, t.Any]:
    """The body of DataKit's ``/v1/query/raw``. ``disable_slimit``: else the DataKit caps every
    answer at 20 series; ``align_time``: as ``openapi_query_body``."""
    body = []
    for query in queries:
        if query.qtype != "dql":
            raise GuanceConfigError("a DataKit answers DQL only; use api=openapi for PromQL", "qtype")
        entry: dict[str, t.Any] = {
            "query": query.q,
            "time_range": [int(start_ms) - query.lookback_ms, int(end_ms)],
            "disable_slimit": True,
            "align_time": True,
            "disable_multiple_field": False,
        }
        entry.update(query.options)
        body.append(entry)
    return {"queries": body}


def validate_queries(queries: t.Sequence[Query], start_ms: int, end_ms: int) -> None:
    if not queries:
        raise GuanceConfigError("give at least one query", "queries")
    for index, query in enumerate(queries):
        if not isinstance(query.q, str) or not query.q.strip():
            raise GuanceConfigError(f"queries[{index}]: the query text is empty", "queries")
        if query.qtype not in ("dql", "promql"):
            raise GuanceConfigError(f"queries[{index}]: qtype must be dql or promql, got {query.qtype!r}", "queries")
    for name, value in (("start", start_ms), ("end", end_ms)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise GuanceConfigError(f"the {name} of the time range must be epoch milliseconds, got {value!r}", "time_range")
    if start_ms >= end_ms:
        raise GuanceConfigError(f"the time range starts ({start_ms}) at or after its end ({end_ms})", "time_range")
