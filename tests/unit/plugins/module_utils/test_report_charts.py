# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_report/charts.py: the SVG (and PNG) charts of a release."""

from __future__ import annotations

import datetime
import re
import xml.etree.ElementTree as ET

from ansible_collections.canary.istio.plugins.module_utils._report import charts as rc
from ansible_collections.canary.istio.plugins.module_utils._report import content as r
from ansible_collections.canary.istio.plugins.module_utils._report import records as rr
from ansible_collections.canary.istio.tests.unit.plugins.module_utils.report_samples import (
    header,
    promoted_release,
    rolled_back_release,
)


SVG_NS = "{http://www.w3.org/2000/svg}"


def report_of(records: list) -> r.Report:
    normalised = rr.normalise_records(records)
    return r.build_report(header(), normalised, rr.outcome_from_records(normalised))


def parsed(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def ids(root: ET.Element) -> set[str]:
    return {element.get("id") for element in root.iter() if element.get("id")}


def texts(root: ET.Element) -> list[str]:
    return [element.text for element in root.iter(SVG_NS + "text") if element.text]


def test_rolled_back_release_charts() -> None:
    charts = {chart_id: parsed(svg) for chart_id, title, svg in rc.render_svgs(report_of(rolled_back_release()))}
    assert list(charts) == ["traffic", "metric-request-success-rate", "metric-request-duration-p99",
                            "metric-request-error-rate"]
    traffic = charts["traffic"]
    assert {"series-traffic-v1", "series-traffic-v2", "marker-traffic-rolled_back"} <= ids(traffic)
    assert {"v1 (stable)", "v2 (canary)", "v2 10%", "v2 25%", "rolled back 06:02:24", "share of requests (%)",
            "time (UTC)"} <= set(texts(traffic))

    p99 = charts["metric-request-duration-p99"]
    assert {"series-metric-request-duration-p99-v1", "series-metric-request-duration-p99-v2",
            "bound-metric-request-duration-p99-max-500", "bound-metric-request-duration-p99-baseline-1-5",
            "forbidden-metric-request-duration-p99-max-500",
            "verdict-metric-request-duration-p99-pass", "verdict-metric-request-duration-p99-fail",
            "verdict-metric-request-duration-p99-no_data-nodata",
            "marker-metric-request-duration-p99-rolled_back"} <= ids(p99)
    labels = set(texts(p99))
    assert {"bound: max 500", "bound: baseline \u00d7 1.5", "check passed", "check failed", "check without data",
            "rolled back 06:02:24", "ms"} <= labels
    assert "request_duration_p99 (ms) \u2014 canary v2 vs baseline v1" in labels
    # The traffic steps along the top of each metric chart.
    assert {"v2 10%", "v2 25%"} <= labels

    success = charts["metric-request-success-rate"]
    fail_group = [g for g in success.iter(SVG_NS + "g") if g.get("id") == "verdict-metric-request-success-rate-fail"][0]
    assert len(list(fail_group.iter(SVG_NS + "use"))) == 1  # one failing round
    pass_group = [g for g in success.iter(SVG_NS + "g") if g.get("id") == "verdict-metric-request-success-rate-pass"][0]
    assert len(list(pass_group.iter(SVG_NS + "use"))) == 3


def test_promoted_release_charts_have_no_failure() -> None:
    charts = rc.render_svgs(report_of(promoted_release()))
    for chart_id, title, svg in charts:
        assert title
        assert f"marker-{chart_id}-promoted" in ids(parsed(svg))
        assert "check failed" not in svg and "rolled back" not in svg


def test_svg_is_deterministic_and_ids_are_unique_across_charts() -> None:
    report = report_of(rolled_back_release())
    first = rc.render_svgs(report)
    assert rc.render_svgs(report) == first
    # Ids that other elements point at (clip paths, markers) must not repeat across the page.
    referenced: list[str] = []
    for chart in first:
        svg = chart[2]
        assert not svg.startswith("<?xml") and "<metadata>" not in svg and "Date" not in svg
        targets = set(re.findall(r'(?:url\(#|href="#)([^)"]+)', svg))
        referenced.extend(targets)
        assert targets <= ids(parsed(svg))
    assert len(referenced) == len(set(referenced))


def test_png_of_the_same_chart() -> None:
    chart = rc.build_charts(report_of(rolled_back_release()))[0]
    png = rc.figure_png(chart)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_captions_summarise_each_chart() -> None:
    captions = rc.chart_captions(report_of(rolled_back_release()))
    assert captions["traffic"] == "weights in force from each record on; now v1 100%, v2 0%"
    assert captions["metric-request-duration-p99"] == (
        "checks: 1 no data, 2 pass, 1 fail; bounds: max 500, baseline \u00d7 1.5; last canary value 460")


def test_only_a_running_release_without_analysis_has_just_the_traffic_chart() -> None:
    charts = rc.render_svgs(report_of(promoted_release()[:2]))
    assert [chart[0] for chart in charts] == ["traffic"]
    assert "marker-traffic" not in charts[0][2]


def test_a_dollar_in_a_label_is_text_not_mathtext() -> None:
    # With mathtext on, the unknown macro would raise while drawing and no chart would be made.
    records = rolled_back_release()
    normalised = rr.normalise_records(records)
    report = r.build_report(header(canary_version="v2$\\notamacro$", release="r$1"), normalised,
                            rr.outcome_from_records(normalised))
    charts = rc.render_svgs(report)
    assert any("v2$\\notamacro$" in "".join(texts(parsed(svg))) for _id, _title, svg in charts)


def _with_ab_and_mirror_steps() -> list:
    """The promoted release with an A/B and a shadow step before its weights (plain traffic at 0%)."""
    records = promoted_release()
    start = rr.parse_time(records[0]["time"], "time")
    special = [
        {"time": rr.format_time(start + datetime.timedelta(seconds=5)), "event": "step", "step": 1, "kind": "match",
         "label": "A/B end-user exact jason", "weight": 0, "weights": {"v1": 100, "v2": 0}},
        {"time": rr.format_time(start + datetime.timedelta(seconds=12)), "event": "step", "step": 2, "kind": "mirror",
         "label": "mirror 100%", "weight": 0, "weights": {"v1": 100, "v2": 0}},
    ]
    return records[:1] + special + records[1:]


def test_ab_and_shadow_steps_are_labelled_bands_on_the_traffic_chart() -> None:
    report = report_of(_with_ab_and_mirror_steps())
    assert [p.label for p in report.traffic[:4]] == [None, "A/B end-user exact jason", "mirror 100%", None]
    _id, _title, svg = rc.render_svgs(report)[0]
    root = parsed(svg)
    assert {"special-traffic-1", "special-traffic-2", "special-label-traffic-1", "special-label-traffic-2"} <= ids(root)
    assert "special-traffic-0" not in ids(root) and "special-traffic-3" not in ids(root)
    assert {"A/B end-user exact jason", "mirror 100%"} <= set(texts(root))
    # The step table names them, and the weight of the rest.
    assert [s.step for s in report.steps[1:3]] == ["step 1 (A/B end-user exact jason, 0% of the rest)",
                                                   "step 2 (mirror 100%, 0% of the rest)"]
