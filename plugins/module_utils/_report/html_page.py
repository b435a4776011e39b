# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The release report as one self-contained HTML page. Pure: the charts come in as SVG text.

PRIVATE to this collection: may change at any time.

Self-contained means: CSS inline, charts as inline SVG, no script, no font, no image to fetch,
so the file can be mailed, attached to an AWX job or opened offline. Every value from the
records is escaped.
"""

from __future__ import annotations

import html
import typing as t

from ansible_collections.canary.istio.plugins.module_utils._report.content import (
    Report,
    fmt_duration,
    fmt_number,
    fmt_time,
    fmt_weights,
)

OUTCOME_CLASSES = {"promoted": "good", "rolled_back": "bad", "failed": "bad", "running": "neutral"}
RESULT_CLASSES = {"pass": "good", "fail": "bad", "no_data": "neutral", "undecided": "neutral", "inconclusive": "neutral",
                  "marginal": "neutral", "error": "bad"}
FAILED_ROW = ' class="failed"'
RESULT_TEXT = {"pass": "pass", "fail": "fail", "no_data": "no data", "undecided": "undecided", "inconclusive": "inconclusive",
               "marginal": "marginal"}

CSS = """
body { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; margin: 2em auto; max-width: 1100px;
       padding: 0 1.5em; color: #222; line-height: 1.4; }
h1 { font-size: 1.5em; margin-bottom: 0.3em; }
h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.outcome { padding: 0.7em 1em; border-radius: 4px; font-size: 1.05em; margin: 1em 0; }
.outcome.good { background: #e6f4e6; border-left: 6px solid #2ca02c; }
.outcome.bad { background: #fbe9e9; border-left: 6px solid #d62728; }
.outcome.neutral { background: #eef2f7; border-left: 6px solid #1f77b4; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
table.rows { width: 100%; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f5f5f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td { white-space: nowrap; }
td.text { white-space: normal; min-width: 16em; }
td.wrap { white-space: normal; min-width: 10em; }
tr.failed td { background: #fdf0f0; }
table.summary th { width: 11em; }
.good { color: #1a7f1a; font-weight: bold; }
.bad { color: #c01b1b; font-weight: bold; }
.neutral { color: #555; }
.outcome.good, .outcome.bad, .outcome.neutral { color: #222; font-weight: normal; }
figure { margin: 1em 0 1.5em; }
figure svg { width: 100%; height: auto; }
figcaption { font-size: 0.85em; color: #555; }
.warning { background: #fff6dd; border-left: 6px solid #e0a800; padding: 0.6em 1em; }
details { margin: 0.5em 0; }
code, pre { font-family: "DejaVu Sans Mono", monospace; font-size: 0.85em; }
pre { white-space: pre-wrap; background: #f7f7f7; padding: 0.5em; }
footer { margin-top: 3em; font-size: 0.8em; color: #777; }
"""


def esc(value: t.Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _result(value: str | None) -> str:
    if not value:
        return ""
    return f'<span class="{RESULT_CLASSES.get(value, "neutral")}">{esc(RESULT_TEXT.get(value, value))}</span>'


def _summary(report: Report) -> str:
    rows = [
        ("Release", report.release), ("Cluster", report.cluster), ("Namespace", report.namespace),
        ("App", report.app), ("Stable version", report.stable_version), ("Canary version", report.canary_version),
        ("Started (UTC)", fmt_time(report.started)), ("Last record (UTC)", fmt_time(report.ended)),
        ("Duration", fmt_duration(report.started, report.ended)),
        ("Traffic now", fmt_weights(report.final_weights, report.versions) or "not recorded"),
    ]
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    return f'<table class="summary">{body}</table>'


def _clock(report: Report) -> t.Callable[[t.Any], str]:
    """Times in the tables: the time of day when the whole release fits in one day (the date is
    in the summary), else date and time. Narrow columns leave room for the reasons."""
    if report.started and report.ended and report.started.date() == report.ended.date():
        return lambda moment: moment.strftime("%H:%M:%S")
    return fmt_time


def _steps_table(report: Report) -> str:
    if not report.steps:
        return "<p>No records yet.</p>"
    clock = _clock(report)
    names = ("Time (UTC)", "Event", "Step", "Traffic", "Analysis", "Rounds", "Reason / message")
    head = "".join(f"<th>{h}</th>" for h in names)
    rows = []
    for row in report.steps:
        attrs = FAILED_ROW if row.verdict in ("fail", "error") or row.event in ("rolled back", "failed") else ""
        rows.append(
            f"<tr{attrs}><td>{esc(clock(row.time))}</td><td>{esc(row.event)}</td>"
            f"<td>{esc(row.step)}</td><td>{esc(row.traffic)}</td><td>{_result(row.verdict)}</td>"
            f'<td class="num">{esc(row.rounds)}</td><td class="text">{esc(row.text)}</td></tr>')
    return f'<table class="rows"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _checks_table(report: Report) -> str:
    if not report.checks:
        return "<p>No analysis recorded.</p>"
    baseline = report.baseline_version or report.stable_version
    clock = _clock(report)
    head = "".join(f"<th>{esc(h)}</th>" for h in (
        "Time (UTC)", "Step", "Round", "Metric", f"{report.canary_version} (canary)", f"{baseline} (baseline)",
        "Bound", "Result", "Reason"))
    rows = []
    for row in report.checks:
        metric = row.metric + (f" ({row.unit})" if row.unit else "")
        rows.append(
            f"<tr{FAILED_ROW if row.result == 'fail' else ''}><td>{esc(clock(row.time))}</td>"
            f"<td>{esc(row.step)}</td><td class=\"num\">{row.round}</td>"
            f"<td>{esc(metric)}</td><td class=\"num\">{esc(fmt_number(row.canary))}</td>"
            f"<td class=\"num\">{esc(fmt_number(row.baseline))}</td><td class=\"wrap\">{esc(row.bound)}</td>"
            f"<td>{_result(row.result)}</td><td class=\"text\">{esc(row.reason)}</td></tr>")
    return f'<table class="rows"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _queries(report: Report) -> str:
    seen: dict[str, str] = {}
    for row in report.checks:
        if row.query and row.metric not in seen:
            seen[row.metric] = row.query
    if not seen:
        return ""
    items = "".join(f"<dt><code>{esc(metric)}</code></dt><dd><pre>{esc(query)}</pre></dd>" for metric, query in seen.items())
    return f"<details><summary>Queries behind the checks</summary><dl>{items}</dl></details>"


def render_html(
    report: Report,
    charts: t.Sequence[tuple[str, str, str]],
    captions: t.Mapping[str, str] | None = None,
    missing: str | None = None,
) -> str:
    """The page. ``charts``: ``(chart_id, title, svg)``; ``missing``: the package whose absence
    left the charts out (said on the page, so a reader knows why there are none)."""
    captions = captions or {}
    outcome_class = OUTCOME_CLASSES.get(report.outcome, "neutral")
    outcome = f"<strong>Outcome: {esc(report.outcome_label)}.</strong>"
    if report.message:
        outcome += f" {esc(report.message)}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(report.title)} on {esc(report.cluster)}: {esc(report.outcome_label)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{esc(report.title)} on {esc(report.cluster)}</h1>",
        f'<div class="outcome {outcome_class}" id="outcome">{outcome}</div>',
        _summary(report),
    ]
    if missing:
        parts.append(f'<p class="warning" id="charts-missing">No charts: the Python package <code>{esc(missing)}</code> '
                     f"is not installed on the control node. Install it (<code>pip install {esc(missing)}</code>) and "
                     "run the release report again; the tables below are complete.</p>")
    if charts:
        parts.append("<h2>Traffic and health over time</h2>")
        for chart_id, title, svg in charts:
            caption = captions.get(chart_id, "")
            parts.append(f'<figure id="{esc(chart_id)}" aria-label="{esc(title)}">{svg}'
                         f"<figcaption>{esc(title)}{(': ' + esc(caption)) if caption else ''}</figcaption></figure>")
    parts += ["<h2>Steps</h2>", _steps_table(report), "<h2>Checks</h2>", _checks_table(report), _queries(report)]
    parts.append("<footer>Written by canary.istio.release_report from records.json in this directory. "
                 "Times are UTC.</footer></body></html>")
    return "\n".join(part for part in parts if part) + "\n"
