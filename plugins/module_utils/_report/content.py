# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The release report's content: normalised records -> chart series and table rows. Pure, no I/O.

PRIVATE to this collection: may change at any time.

``build_report`` turns the records of one release on one cluster (``records``) into a
``Report``: the traffic share per version over time, each checked metric per version per
analysis round with its bounds and each check's verdict, the events that end the release, and
the rows of the step and check tables. The Markdown (``markdown_page``), the charts
(``charts``) and the HTML page (``html_page``) are all drawn from this one object, so
they cannot disagree.
"""

from __future__ import annotations

import datetime
import typing as t
from dataclasses import dataclass, field

from ansible_collections.canary.istio.plugins.module_utils._report.records import (
    EVENT_ANALYSIS,
    EVENT_FAILED,
    EVENT_PROMOTED,
    EVENT_ROLLED_BACK,
    EVENT_START,
    EVENT_STEP,
    FINAL_EVENTS,
    Record,
    parse_time,
)

EVENT_LABELS: dict[str, str] = {
    EVENT_START: "start",
    EVENT_STEP: "step",
    EVENT_ANALYSIS: "analysis",
    EVENT_PROMOTED: "promoted",
    EVENT_ROLLED_BACK: "rolled back",
    EVENT_FAILED: "failed",
}
OUTCOME_LABELS: dict[str, str] = {
    "running": "running",
    EVENT_PROMOTED: "promoted",
    EVENT_ROLLED_BACK: "rolled back",
    EVENT_FAILED: "failed",
}


# The analysis column of a record whose analysis stopped with an error, without a verdict.
ANALYSIS_ERROR = "error"


@dataclass(frozen=True)
class TrafficPoint:
    """The weights in force from ``time`` on."""

    time: datetime.datetime
    weights: dict[str, int]
    # An A/B, shadow or pause step: what it did besides the weights ('A/B end-user exact jason').
    label: str | None = None


@dataclass(frozen=True)
class Marker:
    """An event drawn across every chart (promotion, rollback, failure)."""

    time: datetime.datetime
    event: str
    label: str


# The check canary_analysis adds with expected_weight: canary = observed share, baseline = the
# configured weight (both percent).
TRAFFIC_SHARE_METRIC = "traffic_share"


@dataclass(frozen=True)
class BoundPoint:
    """One bound of a check in one round. ``kind``: min, max, or relative (a limit computed from
    the baseline: baseline + max_over_baseline or baseline x max_ratio_to_baseline)."""

    time: datetime.datetime
    kind: str
    label: str
    value: float | None


@dataclass(frozen=True)
class VerdictPoint:
    """A check's result in one round, at the canary's value (None: no data)."""

    time: datetime.datetime
    result: str
    value: float | None
    reason: str | None


@dataclass
class MetricSeries:
    """One checked metric: per-version values per round, its bounds and its verdicts."""

    metric: str
    unit: str | None
    values: dict[str, list[tuple[datetime.datetime, float | None]]] = field(default_factory=dict)
    bounds: list[BoundPoint] = field(default_factory=list)
    verdicts: list[VerdictPoint] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.metric} ({self.unit})" if self.unit else self.metric

    def bound_kinds(self) -> list[str]:
        """The bound labels in first-seen order, e.g. ['min 99', 'baseline + 1']."""
        seen: list[str] = []
        for bound in self.bounds:
            if bound.label not in seen:
                seen.append(bound.label)
        return seen


@dataclass(frozen=True)
class StepRow:
    """One line of the step table: one record."""

    time: datetime.datetime
    event: str
    step: str
    traffic: str
    verdict: str | None
    rounds: int | None
    text: str


@dataclass(frozen=True)
class CheckRow:
    """One line of the check table: one check in one round."""

    time: datetime.datetime
    step: str
    round: int
    metric: str
    unit: str | None
    canary: float | None
    baseline: float | None
    bound: str
    result: str
    reason: str | None
    query: str | None


@dataclass
class Report:
    release: str
    cluster: str
    app: str
    namespace: str
    stable_version: str
    canary_version: str
    baseline_version: str | None
    outcome: str
    message: str | None
    versions: list[str]
    started: datetime.datetime | None
    ended: datetime.datetime | None
    traffic: list[TrafficPoint]
    markers: list[Marker]
    metrics: list[MetricSeries]
    steps: list[StepRow]
    checks: list[CheckRow]

    @property
    def title(self) -> str:
        return f"Canary release of {self.app} {self.stable_version} \u2192 {self.canary_version}"

    @property
    def outcome_label(self) -> str:
        return OUTCOME_LABELS.get(self.outcome, self.outcome)

    @property
    def final_weights(self) -> dict[str, int] | None:
        return self.traffic[-1].weights if self.traffic else None


# ---------------------------------------------------------------------------------------------
# Formatting shared by the Markdown and the HTML
# ---------------------------------------------------------------------------------------------


def fmt_number(value: float | None) -> str:
    """Numbers as a person reads them: 99.5, 250, 0.0123; None is 'no data'."""
    if value is None:
        return "no data"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.6g}"


def fmt_time(moment: datetime.datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


def fmt_weights(weights: t.Mapping[str, int] | None, versions: t.Sequence[str] = ()) -> str:
    if not weights:
        return ""
    order = [v for v in versions if v in weights] + [v for v in weights if v not in versions]
    return " \u00b7 ".join(f"{version} {weights[version]}%" for version in order)


def fmt_duration(start: datetime.datetime | None, end: datetime.datetime | None) -> str:
    if start is None or end is None:
        return ""
    seconds = int((end - start).total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {seconds:02d} s"
    return f"{seconds} s"


def bound_labels(bounds: t.Mapping[str, float | None]) -> list[tuple[str, str]]:
    """``(kind, label)`` of each bound a check has: ('min', 'min 99'), ('relative', 'baseline + 1')."""
    out = []
    if bounds.get("min") is not None:
        out.append(("min", f"min {fmt_number(bounds['min'])}"))
    if bounds.get("max") is not None:
        out.append(("max", f"max {fmt_number(bounds['max'])}"))
    if bounds.get("max_over_baseline") is not None:
        out.append(("relative", f"baseline + {fmt_number(bounds['max_over_baseline'])}"))
    if bounds.get("max_ratio_to_baseline") is not None:
        out.append(("relative", f"baseline \u00d7 {fmt_number(bounds['max_ratio_to_baseline'])}"))
    return out


def relative_limit(kind_label: str, bounds: t.Mapping[str, float | None], baseline: float | None) -> float | None:
    """The canary's upper limit a relative bound gives in a round; None without a baseline."""
    if baseline is None:
        return None
    if kind_label.startswith("baseline +"):
        return baseline + t.cast(float, bounds["max_over_baseline"])
    return baseline * t.cast(float, bounds["max_ratio_to_baseline"])


# ---------------------------------------------------------------------------------------------
# Records -> Report
# ---------------------------------------------------------------------------------------------


def _ms_time(value: int | None) -> datetime.datetime | None:
    if value is None:
        return None
    return datetime.datetime.fromtimestamp(value / 1000.0, tz=datetime.timezone.utc)


def round_time(one_round: t.Mapping[str, t.Any], record_time: datetime.datetime) -> datetime.datetime:
    """When a round's numbers were measured: the end of its window, else its start, else the record's time."""
    return _ms_time(one_round.get("end_ms")) or _ms_time(one_round.get("start_ms")) or record_time


def ordered_versions(stable: str, canary: str, records: t.Sequence[Record]) -> list[str]:
    """Stable first, canary second, then any other version in the order the records name it."""
    versions = [stable, canary]
    for record in records:
        names = list((record.get("weights") or {}).keys())
        for one_round in (record.get("analysis") or {}).get("rounds", []):
            names.extend(one_round.get("numbers", {}).keys())
        for name in names:
            if name not in versions:
                versions.append(name)
    return versions


def _step_label(record: Record, current: dict[str, t.Any]) -> str:
    """'step 2 (25%)' for a record, carrying the last step's number and weight to the analysis
    records that follow it."""
    if record["event"] == EVENT_STEP:
        current["step"] = record.get("step")
        current["weight"] = record.get("weight")
    step = record.get("step", current.get("step")) if record["event"] in (EVENT_STEP, EVENT_ANALYSIS) else record.get("step")
    weight = record.get("weight", current.get("weight")) if record["event"] in (EVENT_STEP, EVENT_ANALYSIS) else record.get("weight")
    if record["event"] == EVENT_STEP:
        current["label"] = record.get("label") if record.get("kind") not in (None, "weight") else None
    label = current.get("label") if record["event"] in (EVENT_STEP, EVENT_ANALYSIS) else None
    parts = []
    if step is not None:
        parts.append(f"step {step}")
    if label:
        parts.append(f"({label}, {weight}% of the rest)" if weight is not None else f"({label})")
    elif weight is not None:
        parts.append(f"({weight}%)" if parts else f"{weight}%")
    return " ".join(parts)


def _metric_series(metrics: dict[str, MetricSeries], check: t.Mapping[str, t.Any]) -> MetricSeries:
    name = check["metric"]
    if name not in metrics:
        metrics[name] = MetricSeries(name, check.get("unit"))
    elif metrics[name].unit is None and check.get("unit"):
        metrics[name].unit = check["unit"]
    return metrics[name]


def _add_round(
    metrics: dict[str, MetricSeries], one_round: t.Mapping[str, t.Any], when: datetime.datetime,
    versions: t.Sequence[str], canary: str, baseline: str | None,
) -> None:
    numbers = one_round.get("numbers") or {}
    for check in one_round.get("checks") or []:
        series = _metric_series(metrics, check)
        metric = check["metric"]
        if metric == TRAFFIC_SHARE_METRIC:
            # Observed share (the canary's line) beside the configured weight (a line of its own,
            # drawn like a bound): where the two part, the mesh did not route as written.
            series.values.setdefault(canary, []).append((when, check.get("canary")))
            series.bounds.append(BoundPoint(when, "relative", "configured weight", check.get("baseline")))
            series.verdicts.append(VerdictPoint(when, check["result"], check.get("canary"), check.get("reason")))
            continue
        # Per-version values: the round's numbers, else the check's own canary/baseline values.
        for version in versions:
            if metric in numbers.get(version, {}):
                value = numbers[version][metric]
            elif version == canary:
                value = check.get("canary")
            elif version == baseline:
                value = check.get("baseline")
            else:
                continue
            series.values.setdefault(version, []).append((when, value))
        for kind, label in bound_labels(check["bounds"]):
            if kind == "relative":
                value = relative_limit(label, check["bounds"], check.get("baseline"))
            else:
                value = check["bounds"][kind]
            series.bounds.append(BoundPoint(when, kind, label, value))
        series.verdicts.append(VerdictPoint(when, check["result"], check.get("canary"), check.get("reason")))


def _check_rows(one_round: t.Mapping[str, t.Any], when: datetime.datetime, step: str) -> list[CheckRow]:
    return [
        CheckRow(when, step, one_round["round"], check["metric"], check.get("unit"), check.get("canary"),
                 check.get("baseline"), ", ".join(pair[1] for pair in bound_labels(check["bounds"])),
                 check["result"], check.get("reason"), check.get("query"))
        for check in one_round.get("checks") or []
    ]


def build_report(
    header: t.Mapping[str, t.Any], records: t.Sequence[Record], outcome: str, message: str | None = None
) -> Report:
    """The report of one release on one cluster from its normalised records (time order).

    ``header``: release, cluster, app, namespace, stable_version, canary_version.
    """
    stable, canary = header["stable_version"], header["canary_version"]
    versions = ordered_versions(stable, canary, records)
    baseline: str | None = None
    traffic: list[TrafficPoint] = []
    markers: list[Marker] = []
    metrics: dict[str, MetricSeries] = {}
    steps: list[StepRow] = []
    checks: list[CheckRow] = []
    current: dict[str, t.Any] = {}
    times: list[datetime.datetime] = []
    for record in records:
        when = parse_time(record["time"], "time")
        times.append(when)
        event = record["event"]
        weights = record.get("weights")
        if weights:
            special = record.get("kind") not in (None, "weight")
            traffic.append(TrafficPoint(when, dict(weights), record.get("label") if special else None))
        if event in FINAL_EVENTS:
            markers.append(Marker(when, event, EVENT_LABELS[event]))
        step = _step_label(record, current)
        analysis = record.get("analysis")
        text = record.get("message") or ""
        if analysis:
            baseline = analysis.get("baseline_version") or baseline or stable
            rounds = analysis.get("rounds") or []
            for one_round in rounds:
                measured = round_time(one_round, when)
                times.append(measured)
                _add_round(metrics, one_round, measured, versions, analysis.get("canary_version") or canary, baseline)
                checks.extend(_check_rows(one_round, measured, step))
            reason = analysis.get("reason") or ""
            text = f"{reason} \u2014 {text}" if text and reason else reason or text
        steps.append(StepRow(when, EVENT_LABELS[event], step, fmt_weights(weights, versions),
                             (analysis.get("verdict") or ANALYSIS_ERROR) if analysis else None,
                             len(analysis.get("rounds") or []) if analysis else None, text))
    return Report(
        release=header["release"], cluster=header["cluster"], app=header["app"], namespace=header["namespace"],
        stable_version=stable, canary_version=canary, baseline_version=baseline, outcome=outcome, message=message,
        versions=versions, started=min(times) if times else None, ended=max(times) if times else None,
        traffic=traffic, markers=markers, metrics=list(metrics.values()), steps=steps, checks=checks,
    )
