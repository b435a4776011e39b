# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_report/html_page.py: the HTML page of a release, its charts and tables."""

from __future__ import annotations

import re

from ansible_collections.canary.istio.plugins.module_utils._report import content as r
from ansible_collections.canary.istio.plugins.module_utils._report import records as rr
from ansible_collections.canary.istio.plugins.module_utils._report.html_page import render_html
from ansible_collections.canary.istio.tests.unit.plugins.module_utils.report_samples import (
    header,
    promoted_release,
    rolled_back_release,
)


SVG = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><text>{}</text></svg>'


def report_of(records: list, message: str | None = None) -> r.Report:
    normalised = rr.normalise_records(records)
    return r.build_report(header(), normalised, rr.outcome_from_records(normalised), message)


def test_page_with_charts_and_tables() -> None:
    charts = [("traffic", "Traffic share per version", SVG.format("T")),
              ("metric-request-success-rate", "request_success_rate (%)", SVG.format("S"))]
    page = render_html(report_of(promoted_release(), "v2 serves all traffic"), charts,
                       {"traffic": "now v2 100%"})
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>\n")
    assert "<title>Canary release of reviews v1 \u2192 v2 on sandbox-1: promoted</title>" in page
    assert '<div class="outcome good" id="outcome"><strong>Outcome: promoted.</strong> v2 serves all traffic</div>' in page
    assert page.index('<figure id="traffic"') < page.index('<figure id="metric-request-success-rate"')
    assert "<figcaption>Traffic share per version: now v2 100%</figcaption>" in page
    assert SVG.format("S") in page and "charts-missing" not in page
    # Times of day only: the whole release is on one date, which the summary shows.
    assert "<tr><th>Started (UTC)</th><td>2026-11-26 06:00:00</td></tr>" in page
    assert "<td>06:05:05</td><td>promoted</td>" in page
    bodies = re.findall(r"<tbody>(.*?)</tbody>", page)
    assert [body.count("<tr") for body in bodies] == [8, 27]  # one row per record, one per check and round
    assert "<summary>Queries behind the checks</summary>" in page


def test_failures_are_marked_and_everything_is_escaped() -> None:
    records = rolled_back_release()
    records[-1]["message"] = "<script>alert(1)</script> & more"
    page = render_html(report_of(records, records[-1]["message"]), [])
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page
    assert '<div class="outcome bad" id="outcome">' in page
    failed_rows = re.findall(r'<tr class="failed">(.*?)</tr>', page)
    # The failing analysis and the rollback in the steps; three failing checks.
    assert len(failed_rows) == 2 + 3
    assert any("79.8 &lt; min 99" in row and '<span class="bad">fail</span>' in row for row in failed_rows)
    assert "<h2>Traffic and health over time</h2>" not in page


def test_missing_charts_are_explained() -> None:
    page = render_html(report_of(rolled_back_release()), [], missing="matplotlib")
    note = re.search(r'<p class="warning" id="charts-missing">(.*?)</p>', page).group(1)
    assert "<code>matplotlib</code> is not installed" in note and "pip install matplotlib" in note
    assert "<svg" not in page


def test_a_release_over_two_days_shows_dates_in_the_tables() -> None:
    records = promoted_release()[:2]
    records[1]["time"] = "2026-11-27T01:00:00Z"
    page = render_html(report_of(records), [])
    assert "<td>2026-11-27 01:00:00</td>" in page
