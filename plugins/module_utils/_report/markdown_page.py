# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The release report as Markdown: the summary, one row per record, one row per check. Pure.

PRIVATE to this collection: may change at any time.

Markdown is for places that show text only (a pull request, a chat message, AWX's job output);
the charts are in the HTML report next to it.
"""

from __future__ import annotations

import re
import typing as t

from ansible_collections.canary.istio.plugins.module_utils._report.content import (
    Report,
    fmt_duration,
    fmt_number,
    fmt_time,
    fmt_weights,
)


class Markup(str):
    """Markdown written here, passed through ``cell`` as is."""


RESULT_SIGNS: dict[str, str] = {
    "pass": "pass", "fail": Markup("**FAIL**"), "no_data": "no data", "undecided": "undecided", "inconclusive": "inconclusive", "marginal": "marginal",
    "error": Markup("**ERROR**"),
}

# Every value in the report comes from the cluster, the user or a server (a label, a reason, an
# error message): none may become markup. "<" before a letter, "/", "!" or "?" would open raw HTML
# (or an autolink), which Markdown renderers pass through; brackets, backticks, "*" and "#" would make links, code, emphasis or headings of a
# server's words. An underscore inside a word (request_error_rate) is not emphasis in CommonMark
# and stays as is, so the raw text still reads well in a job's output; ">" and "&" cannot open
# markup inside a line and stay too.
_ESCAPE_TABLE = str.maketrans({"\\": "\\\\", "`": "\\`", "*": "\\*", "[": "\\[", "]": "\\]", "|": "\\|",
                               "#": "\\#"})
_EDGE_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
_TAG_OPEN = re.compile(r"<(?=[A-Za-z/!?])")


def text(value: t.Any) -> str:
    """``value`` as plain text in Markdown: one line, every character that means markup escaped."""
    if isinstance(value, Markup):
        return str(value)
    raw = "" if value is None else str(value)
    escaped = _EDGE_UNDERSCORE.sub(r"\\_", " ".join(raw.split()).translate(_ESCAPE_TABLE))
    return _TAG_OPEN.sub("&lt;", escaped)


def cell(value: t.Any) -> str:
    """Text safe inside a table cell (``text``: one line, pipes and markup escaped)."""
    return text(value)


def table(head: t.Sequence[str], rows: t.Iterable[t.Sequence[t.Any]]) -> list[str]:
    lines = ["| " + " | ".join(cell(h) for h in head) + " |", "|" + "---|" * len(head)]
    lines.extend("| " + " | ".join(cell(value) for value in row) + " |" for row in rows)
    return lines


def render_markdown(report: Report, html_name: str = "report.html") -> str:
    """The whole Markdown summary, ending with a newline."""
    lines = [f"# {text(report.title)} on {text(report.cluster)}: {text(report.outcome_label)}", ""]
    if report.message:
        lines += [f"**Outcome: {text(report.outcome_label)}.** {text(report.message)}", ""]
    else:
        lines += [f"**Outcome: {text(report.outcome_label)}.**", ""]
    summary = [
        ("release", report.release), ("cluster", report.cluster), ("namespace", report.namespace),
        ("app", report.app), ("stable version", report.stable_version), ("canary version", report.canary_version),
        ("started (UTC)", fmt_time(report.started)), ("last record (UTC)", fmt_time(report.ended)),
        ("duration", fmt_duration(report.started, report.ended)),
        ("traffic now", fmt_weights(report.final_weights, report.versions) or "not recorded"),
    ]
    lines += table(("", ""), summary)
    lines += ["", f"Charts of traffic and of every checked metric: [{text(html_name)}]({html_name}).", ""]

    lines += ["## Steps", ""]
    if report.steps:
        lines += table(
            ("time (UTC)", "event", "step", "traffic", "analysis", "rounds", "reason / message"),
            ((fmt_time(row.time), row.event, row.step, row.traffic, RESULT_SIGNS.get(row.verdict or "", row.verdict),
              row.rounds, row.text) for row in report.steps))
    else:
        lines.append("No records yet.")
    lines.append("")

    lines += ["## Checks", ""]
    if report.checks:
        canary = report.canary_version
        baseline = report.baseline_version or report.stable_version
        lines += table(
            ("time (UTC)", "step", "round", "metric", f"{canary} (canary)", f"{baseline} (baseline)", "bound", "result",
             "reason"),
            ((fmt_time(row.time), row.step, row.round, row.metric + (f" ({row.unit})" if row.unit else ""),
              fmt_number(row.canary), fmt_number(row.baseline), row.bound, RESULT_SIGNS.get(row.result, row.result),
              row.reason) for row in report.checks))
    else:
        lines.append("No analysis recorded.")
    lines.append("")
    return "\n".join(lines)
