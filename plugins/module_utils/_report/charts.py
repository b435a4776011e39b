# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The release report's charts, drawn with matplotlib and written as inline SVG.

PRIVATE to this collection: may change at any time.

matplotlib is imported only inside the functions that draw, so this file (and the modules that
import it) load without it; ``missing_library`` tells the caller whether the charts can be drawn.
Figures are built with ``matplotlib.figure.Figure`` directly, not pyplot: no GUI backend, no
global figure registry, nothing left open between calls.

SVG text stays text (``svg.fonttype: none``): the labels can be searched and copied, and the
files are small. The output is deterministic for the same report (no date in the metadata, a
fixed id salt per chart), which keeps the report module idempotent; the salt differs per chart
so that the ids of several SVGs inlined in one HTML page do not collide.
"""

from __future__ import annotations

import datetime
import importlib.util
import io
import re
import typing as t
from dataclasses import dataclass

from ansible_collections.canary.istio.plugins.module_utils._report.content import MetricSeries, Report, fmt_number

LIBRARY = "matplotlib"

# Versions: blue (stable) and orange (canary) first; no green or red, which mean pass and fail.
VERSION_COLORS = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
RESULT_STYLE: dict[str, dict[str, t.Any]] = {
    "pass": {"marker": "o", "color": "#2ca02c", "label": "check passed", "size": 60},
    "fail": {"marker": "X", "color": "#d62728", "label": "check failed", "size": 130},
    "no_data": {"marker": "D", "color": "#7f7f7f", "label": "check without data", "size": 45},
    "undecided": {"marker": "s", "color": "#bcbd22", "label": "check the sample cannot decide yet", "size": 45},
}
EVENT_STYLE: dict[str, dict[str, t.Any]] = {
    "promoted": {"color": "#2ca02c", "linestyle": "-"},
    "rolled_back": {"color": "#d62728", "linestyle": "-"},
    "failed": {"color": "#8b0000", "linestyle": "-."},
}
BOUND_COLOR = "#333333"
FORBIDDEN_COLOR = "#d62728"
WIDTH_IN = 10.0
TRAFFIC_HEIGHT_IN = 3.2
METRIC_HEIGHT_IN = 3.4
RC = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "timezone": "UTC",
    # Labels are versions, metric names and units from the user and the cluster: a "$" must stay a
    # dollar sign, not start mathtext (where one bad macro stops every chart from drawing).
    "text.parse_math": False,
}


@dataclass
class Chart:
    """One chart: ``chart_id`` is also its anchor in the HTML page and its SVG id salt."""

    chart_id: str
    title: str
    figure: t.Any  # matplotlib.figure.Figure


def missing_library() -> str | None:
    """None when the charts can be drawn, else the name of the missing Python package."""
    return None if importlib.util.find_spec(LIBRARY) is not None else LIBRARY


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def metric_chart_id(series: MetricSeries) -> str:
    return "metric-" + slug(series.metric)


def version_colors(versions: t.Sequence[str]) -> dict[str, str]:
    return {version: VERSION_COLORS[index % len(VERSION_COLORS)] for index, version in enumerate(versions)}


def _time_limits(start: datetime.datetime, end: datetime.datetime) -> tuple[datetime.datetime, datetime.datetime]:
    # A little room on both sides so markers at the first and last moment are not cut in half.
    pad = max((end - start) * 0.03, datetime.timedelta(seconds=5))
    return start - pad, end + pad


def _time_axis(ax: t.Any, start: datetime.datetime, end: datetime.datetime) -> None:
    from matplotlib import dates

    locator = dates.AutoDateLocator(tz=datetime.timezone.utc, minticks=4, maxticks=9)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator, tz=datetime.timezone.utc))
    ax.set_xlim(*_time_limits(start, end))
    ax.set_xlabel("time (UTC)")
    ax.grid(True, axis="both", color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)


def _event_lines(ax: t.Any, report: Report, chart_id: str) -> None:
    """Promotion, rollback and failure as vertical lines, named in the legend (a label inside the
    plot would sit on top of the very points that caused the rollback)."""
    for marker in report.markers:
        style = EVENT_STYLE.get(marker.event, EVENT_STYLE["failed"])
        ax.axvline(marker.time, color=style["color"], linestyle=style["linestyle"], linewidth=2.2, zorder=4,
                   label=f"{marker.label} {marker.time.strftime('%H:%M:%S')}", gid=f"marker-{chart_id}-{marker.event}")


def _step_axis(ax: t.Any, report: Report, chart_id: str) -> None:
    """Each traffic change as a faint vertical line, its canary weight on a second axis along the
    top: the metric charts then read against the traffic steps without a look at the first chart."""
    changes = []
    previous = None
    for point in report.traffic:
        weight = point.weights.get(report.canary_version, 0)
        if weight != previous:
            changes.append((point.time, weight))
        previous = weight
    if not changes:
        return
    for moment in [change[0] for change in changes]:
        ax.axvline(moment, color="#999999", linestyle=":", linewidth=1.0, zorder=1, gid=f"step-{chart_id}")
    # Labels closer than ~7% of the width would overlap: the later one (the step the analysis
    # is about) is kept, an earlier one dropped; the lines all stay.
    left, right = _time_limits(*_span(report))
    gap = (right - left) * 0.07
    labelled: list[tuple[datetime.datetime, int]] = []
    for moment, weight in reversed(changes):
        if not labelled or labelled[-1][0] - moment >= gap:
            labelled.append((moment, weight))
    labelled.reverse()
    top = ax.secondary_xaxis("top")
    top.set_xticks([moment for moment, weight in labelled],
                   labels=[f"{report.canary_version} {weight}%" for moment, weight in labelled])
    top.tick_params(axis="x", labelsize=8, labelcolor="#555555", color="#999999", length=3, pad=1)
    top.spines["top"].set_visible(False)


def _figure(height: float, top: float) -> t.Any:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH_IN, height))
    # Fixed margins, the same on every chart, so that their time axes line up one under the
    # other; the legend goes into the right margin.
    figure.subplots_adjust(left=0.075, right=0.79, top=top, bottom=0.17)
    return figure


def _legend(ax: t.Any) -> None:
    # Outside the plot, on the right: it never covers a line or a marker.
    ax.legend(loc="upper left", bbox_to_anchor=(1.015, 1.0), frameon=False, fontsize=9, borderaxespad=0.0)


def _span(report: Report) -> tuple[datetime.datetime, datetime.datetime]:
    start = report.started or datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    end = report.ended or start
    if end <= start:
        end = start + datetime.timedelta(minutes=1)
    return start, end


def traffic_chart(report: Report) -> Chart | None:
    """Stacked share of traffic per version, as steps: each record's weights hold until the next."""
    if not report.traffic:
        return None
    chart_id = "traffic"
    colors = version_colors(report.versions)
    versions = [v for v in report.versions if any(p.weights.get(v) for p in report.traffic)]
    start, end = _span(report)
    # The last weights hold to the right edge, so a promotion or rollback at the very end shows.
    right = _time_limits(start, end)[1]
    times = [point.time for point in report.traffic] + [right]
    figure = _figure(TRAFFIC_HEIGHT_IN, top=0.88)
    ax = figure.add_subplot()
    shares = [[point.weights.get(v, 0) for point in report.traffic] + [report.traffic[-1].weights.get(v, 0)]
              for v in versions]
    areas = ax.stackplot(times, *shares, step="post", colors=[colors[v] for v in versions], alpha=0.85,
                         labels=[_version_label(report, v) for v in versions], edgecolor="white", linewidth=0.5)
    for area, version in zip(areas, versions):
        area.set_gid(f"series-{chart_id}-{slug(version)}")
    # The canary's weight written in the middle of each of its steps (the canary is on top).
    narrow = (right - times[0]) * 0.07
    for point, until in zip(report.traffic, times[1:]):
        weight = point.weights.get(report.canary_version, 0)
        if weight == 0 or until - point.time < narrow:
            continue
        middle = point.time + (until - point.time) / 2
        inside = weight >= 8
        ax.text(middle, 100 - weight / 2 if inside else 100 - weight - 4, f"{report.canary_version} {weight}%",
                ha="center", va="center", fontsize=9, fontweight="bold", color="white" if inside else "#222222",
                zorder=6, gid=f"label-{chart_id}-{weight}")
    # A/B, shadow and pause steps leave the weights as they were: a hatched band says what ran.
    for index, (point, until) in enumerate(zip(report.traffic, times[1:])):
        if not point.label:
            continue
        ax.axvspan(point.time, until, ymin=0.0, ymax=1.0, facecolor="none", edgecolor="#444444", hatch="//",
                   linewidth=0.0, zorder=5, gid=f"special-{chart_id}-{index}")
        ax.text(point.time + (until - point.time) / 2, 50, point.label, rotation=90 if until - point.time < narrow else 0,
                ha="center", va="center", fontsize=8, color="#222222", zorder=7,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.5}, gid=f"special-label-{chart_id}-{index}")
    ax.set_ylim(0, 100)
    ax.set_yticks([0, 25, 50, 75, 100])
    ax.set_ylabel("share of requests (%)")
    ax.set_title(f"Traffic share per version \u2014 {report.app} on {report.cluster}", loc="left", pad=10)
    _time_axis(ax, start, end)
    _event_lines(ax, report, chart_id)
    _legend(ax)
    return Chart(chart_id, "Traffic share per version", figure)


def _version_label(report: Report, version: str) -> str:
    if version == report.canary_version:
        return f"{version} (canary)"
    if version == report.stable_version:
        return f"{version} (stable)"
    return version


def metric_chart(report: Report, series: MetricSeries) -> Chart:
    """One checked metric per version per round, its bounds, and each round's check result."""
    from matplotlib import transforms

    chart_id = metric_chart_id(series)
    colors = version_colors(report.versions)
    start, end = _span(report)
    figure = _figure(METRIC_HEIGHT_IN, top=0.80)
    ax = figure.add_subplot()
    for version in report.versions:
        points = series.values.get(version) or []
        if not any(point[1] is not None for point in points):
            continue
        ax.plot([p[0] for p in points], [float("nan") if p[1] is None else p[1] for p in points],
                color=colors[version], marker=".", markersize=7, linewidth=1.8, label=_version_label(report, version),
                gid=f"series-{chart_id}-{slug(version)}", zorder=3)
    fixed: list[tuple[str, str, float]] = []
    for label in series.bound_kinds():
        points = [b for b in series.bounds if b.label == label]
        values = [b.value for b in points]
        gid = f"bound-{chart_id}-{slug(label)}"
        if points[0].kind != "relative" and len(set(values)) == 1 and values[0] is not None:
            ax.axhline(values[0], color=BOUND_COLOR, linestyle="--", linewidth=1.3, label=f"bound: {label}", gid=gid,
                       zorder=2)
            fixed.append((points[0].kind, label, values[0]))
        else:
            ax.plot([b.time for b in points], [float("nan") if v is None else v for v in values], color=BOUND_COLOR,
                    linestyle=":", linewidth=1.5, marker="_", markersize=12, label=f"bound: {label}", gid=gid, zorder=2)
    ymin, ymax = ax.get_ylim()
    # The bad side of each fixed bound, lightly shaded, so a point in trouble stands out.
    for kind, label, value in fixed:
        low, high = (ymin, value) if kind == "min" else (value, ymax)
        if high > low:
            ax.axhspan(low, high, color=FORBIDDEN_COLOR, alpha=0.06, linewidth=0, zorder=1,
                       gid=f"forbidden-{chart_id}-{slug(label)}")
    ax.set_ylim(ymin, ymax)
    bottom = transforms.blended_transform_factory(ax.transData, ax.transAxes)
    for result, style in RESULT_STYLE.items():
        points = [v for v in series.verdicts if v.result == result]
        if not points:
            continue
        with_value = [v for v in points if v.value is not None]
        without = [v for v in points if v.value is None]
        label = style["label"]
        if with_value:
            ax.scatter([v.time for v in with_value], [v.value for v in with_value], marker=style["marker"], s=style["size"],
                       facecolors=style["color"], edgecolors="white", linewidths=1.0, label=label, zorder=5,
                       gid=f"verdict-{chart_id}-{result}")
            label = "_nolegend_"
        if without:
            # No value to put the marker on: along the bottom edge of the plot.
            ax.scatter([v.time for v in without], [0.05] * len(without), transform=bottom, marker=style["marker"],
                       s=style["size"], facecolors=style["color"], edgecolors="white", linewidths=1.0, label=label,
                       zorder=5, gid=f"verdict-{chart_id}-{result}-nodata", clip_on=False)
    ax.set_ylabel(series.unit or series.metric)
    baseline = report.baseline_version or report.stable_version
    ax.set_title(f"{series.title} \u2014 canary {report.canary_version} vs baseline {baseline}", loc="left", pad=18)
    _time_axis(ax, start, end)
    _step_axis(ax, report, chart_id)
    _event_lines(ax, report, chart_id)
    _legend(ax)
    return Chart(chart_id, series.title, figure)


def build_charts(report: Report) -> list[Chart]:
    """Every chart of the report: traffic first, then one per checked metric."""
    import matplotlib

    charts: list[Chart] = []
    with matplotlib.rc_context(RC):
        traffic = traffic_chart(report)
        if traffic is not None:
            charts.append(traffic)
        charts.extend(metric_chart(report, series) for series in report.metrics)
    return charts


def figure_svg(chart: Chart) -> str:
    """The chart as an ``<svg>`` element for inlining: no XML declaration, no date."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context(dict(RC, **{"svg.hashsalt": chart.chart_id})):
        chart.figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):].strip()
    # The RDF metadata block only names matplotlib's licence vocabulary; inline it is noise.
    return re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.S)


def figure_png(chart: Chart, dpi: int = 100) -> bytes:
    """The same chart as PNG (to look at it outside a browser)."""
    import matplotlib

    buffer = io.BytesIO()
    with matplotlib.rc_context(RC):
        chart.figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def render_svgs(report: Report) -> list[tuple[str, str, str]]:
    """``(chart_id, title, svg)`` of every chart."""
    return [(chart.chart_id, chart.title, figure_svg(chart)) for chart in build_charts(report)]


def chart_summary(series: MetricSeries) -> str:
    """A one-line text alternative for a metric chart (the SVG's neighbour in the HTML)."""
    counts: dict[str, int] = {}
    for verdict in series.verdicts:
        counts[verdict.result] = counts.get(verdict.result, 0) + 1
    parts = [f"{count} {result.replace('_', ' ')}" for result, count in counts.items()]
    bounds = ", ".join(series.bound_kinds())
    last = next((v.value for v in reversed(series.verdicts) if v.value is not None), None)
    return f"checks: {', '.join(parts) or 'none'}; bounds: {bounds or 'none'}; last canary value {fmt_number(last)}"


def chart_captions(report: Report) -> dict[str, str]:
    """``chart_id`` -> the text under the chart."""
    captions = {metric_chart_id(series): chart_summary(series) for series in report.metrics}
    if report.traffic:
        captions["traffic"] = "weights in force from each record on; now " + ", ".join(
            f"{version} {weight}%" for version, weight in report.traffic[-1].weights.items())
    return captions
