# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_report/markdown_page.py: the Markdown summary of a release."""

from __future__ import annotations

from ansible_collections.canary.istio.plugins.module_utils._report import content as r
from ansible_collections.canary.istio.plugins.module_utils._report import records as rr
from ansible_collections.canary.istio.plugins.module_utils._report.markdown_page import cell, render_markdown
from ansible_collections.canary.istio.tests.unit.plugins.module_utils.report_samples import (
    header,
    promoted_release,
    rolled_back_release,
)


def markdown_of(records: list, outcome: str | None = None, message: str | None = None) -> str:
    normalised = rr.normalise_records(records)
    report = r.build_report(header(), normalised, outcome or rr.outcome_from_records(normalised), message)
    return render_markdown(report)


def table_rows(text: str, heading: str) -> list[list[str]]:
    """The body rows of the table under ``## heading``, as cells."""
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    return [[c.strip() for c in line.strip("|").split(" | ")] for line in lines[1:]]


def test_promoted_release_summary_and_tables() -> None:
    text = markdown_of(promoted_release(), message="v2 serves all traffic")
    lines = text.splitlines()
    assert lines[0] == "# Canary release of reviews v1 \u2192 v2 on sandbox-1: promoted"
    assert "**Outcome: promoted.** v2 serves all traffic" in lines
    assert "| duration | 5 min 05 s |" in lines and "| traffic now | v1 0% \u00b7 v2 100% |" in lines
    assert "[report.html](report.html)" in text
    steps = table_rows(text, "Steps")
    assert [row[1] for row in steps] == ["start", "step", "analysis", "step", "analysis", "step", "analysis", "promoted"]
    assert steps[5] == ["2026-11-26 06:03:30", "step", "step 3 (50%)", "v1 50% \u00b7 v2 50%", "", "", ""]
    assert steps[6][4:6] == ["pass", "3"]
    checks = table_rows(text, "Checks")
    assert len(checks) == 27
    assert checks[-1] == ["2026-11-26 06:05:00", "step 3 (50%)", "3", "request_error_rate (%)", "0.4", "0.3",
                          "baseline + 1", "pass", "0.4 <= baseline 0.3 + 1"]
    assert text.endswith("\n")


def test_rolled_back_release_shows_the_failing_checks() -> None:
    text = markdown_of(rolled_back_release())
    assert text.startswith("# Canary release of reviews v1 \u2192 v2 on sandbox-1: rolled back\n")
    header_line = [line for line in text.splitlines() if line.startswith("| time (UTC) | step | round")][0]
    assert "| v2 (canary) | v1 (baseline) |" in header_line
    failing = [row for row in table_rows(text, "Checks") if row[7] == "**FAIL**"]
    assert [row[3] for row in failing] == ["request_success_rate (%)", "request_duration_p99 (ms)",
                                           "request_error_rate (%)"]
    assert failing[0][4:7] == ["79.8", "99.5", "min 99"]
    steps = table_rows(text, "Steps")
    assert steps[4][4] == "**FAIL**" and steps[-1][1] == "rolled back"


def test_running_release_without_analysis() -> None:
    text = markdown_of(promoted_release()[:2])
    assert text.startswith("# Canary release of reviews v1 \u2192 v2 on sandbox-1: running\n")
    assert "**Outcome: running.**" in text and "No analysis recorded." in text


def test_cells_stay_on_one_line_and_in_their_column() -> None:
    assert cell("a | b\nc") == "a \\| b c"
    assert cell(None) == ""
    records = promoted_release()[:2]
    records[0]["message"] = "started by ops | see\nticket 42"
    row = table_rows(markdown_of(records), "Steps")[0]
    assert len(row) == 7 and row[-1] == "started by ops \\| see ticket 42"


def test_an_analysis_error_shows_as_error() -> None:
    records = promoted_release()[:2] + [{"time": "2026-11-26T06:01:00Z", "event": "analysis", "step": 1, "analysis": {
        "failed": True, "msg": "querying Guance: connection refused", "rounds": []}}]
    row = table_rows(markdown_of(records), "Steps")[2]
    assert row[4:] == ["**ERROR**", "0", "querying Guance: connection refused"]


def test_values_from_the_cluster_or_a_server_never_become_markup() -> None:
    records = promoted_release()[:2]
    records[0]["message"] = "<script>alert(1)</script> [click](javascript:alert(1)) `code` **bold** _x_ # h <img src=x>"
    normalised = rr.normalise_records(records)
    report = r.build_report(header(cluster="<b>eu</b>", app="reviews"), normalised,
                            rr.outcome_from_records(normalised), "see <a href='http://evil'>here</a>")
    text = render_markdown(report)
    assert "<script" not in text and "<img" not in text and "<a " not in text and "<b>" not in text
    assert text.startswith("# Canary release of reviews v1 \u2192 v2 on &lt;b>eu&lt;/b>: ")
    row = table_rows(text, "Steps")[0]
    assert row[-1] == ("&lt;script>alert(1)&lt;/script> \\[click\\](javascript:alert(1)) \\`code\\` \\*\\*bold\\*\\* "
                       "\\_x\\_ \\# h &lt;img src=x>")
    # What must still read plainly in a job's output: comparisons and names with underscores.
    assert cell("0.4 <= baseline 0.3 + 1") == "0.4 <= baseline 0.3 + 1"
    assert cell("request_error_rate") == "request_error_rate"
