# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The release records behind the release report: schema, validation, merging. Pure, no I/O.

PRIVATE to this collection: may change at any time.

A release keeps one list of records per release and cluster (docs/report.md has the schema).
Records arrive from playbooks, built with ``set_fact`` and often holding a whole registered
``canary_analysis`` result, so validation is strict where a typo would silently lose data (the
record's own keys, event names, weights that do not add up) and lenient where Ansible's
templating changes types (numbers as strings on ansible-core < 2.19) or a registered result
carries extra keys (``changed``, ``invocation``...), which are dropped.

Every record is normalised (UTC time with a ``Z``, ints for weights, floats or None for numbers),
so a record given twice compares equal and is stored once: that makes the report module
idempotent and lets a playbook pass its whole list of records on every call.
"""

from __future__ import annotations

import datetime
import math
import re
import typing as t

from ansible_collections.canary.istio.plugins.module_utils._errors import CanaryError

SCHEMA_VERSION = 1

EVENT_START = "start"
EVENT_STEP = "step"
EVENT_ANALYSIS = "analysis"
EVENT_PROMOTED = "promoted"
EVENT_ROLLED_BACK = "rolled_back"
EVENT_FAILED = "failed"
EVENTS: tuple[str, ...] = (EVENT_START, EVENT_STEP, EVENT_ANALYSIS, EVENT_PROMOTED, EVENT_ROLLED_BACK, EVENT_FAILED)
# Events that end a release: the report marks them on every chart.
FINAL_EVENTS: tuple[str, ...] = (EVENT_PROMOTED, EVENT_ROLLED_BACK, EVENT_FAILED)

OUTCOME_RUNNING = "running"
OUTCOMES: tuple[str, ...] = (OUTCOME_RUNNING, EVENT_PROMOTED, EVENT_ROLLED_BACK, EVENT_FAILED)

VERDICTS: tuple[str, ...] = ("pass", "fail", "inconclusive", "marginal")
CHECK_RESULTS: tuple[str, ...] = ("pass", "fail", "no_data", "undecided")
BOUND_NAMES: tuple[str, ...] = ("min", "max", "max_over_baseline", "max_ratio_to_baseline")

RECORD_KEYS: tuple[str, ...] = ("time", "event", "step", "kind", "label", "weight", "weights", "analysis", "message")
# A step's kind (canary_steps): a weight, an A/B route, a mirror, or a pause for a person.
STEP_KINDS = ("weight", "match", "mirror", "pause")
# What is kept of an analysis (a registered canary_analysis result has more).
ANALYSIS_KEYS: tuple[str, ...] = ("verdict", "reason", "rounds", "provider", "baseline_version", "canary_version",
                                  "window_s", "interval_s")
ROUND_KEYS: tuple[str, ...] = ("round", "start_ms", "end_ms", "verdict", "reason", "checks", "numbers")
CHECK_TEXT_KEYS: tuple[str, ...] = ("reason", "unit", "query")

_VERSION_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})$")
_METRIC_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")

Record = t.Dict[str, t.Any]


class RecordError(CanaryError, ValueError):
    """A record that does not follow the schema. ``field`` names it, e.g. ``records[2].weights``;
    ``option`` is the module option it is in (``records``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", field.split("[")[0].split(".")[0])
        self.field = field


# ---------------------------------------------------------------------------------------------
# Scalars
# ---------------------------------------------------------------------------------------------


def parse_time(value: t.Any, field: str) -> datetime.datetime:
    """An aware UTC datetime from ISO 8601 (``2026-11-26T06:00:00Z``, any offset, or no zone = UTC,
    which is what ``now(utc=true).isoformat()`` gives in a playbook)."""
    if not isinstance(value, str) or not value.strip():
        raise RecordError(field, f"expected an ISO 8601 time like 2026-11-26T06:00:00Z, got {value!r}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise RecordError(field, f"expected an ISO 8601 time like 2026-11-26T06:00:00Z, got {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc)


def format_time(moment: datetime.datetime) -> str:
    """``2026-11-26T06:00:00Z``, or with milliseconds when the time has a fraction."""
    moment = moment.astimezone(datetime.timezone.utc)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += ".%03d" % (moment.microsecond // 1000)
    return text + "Z"


def _int(value: t.Any, field: str, low: int | None = None, high: int | None = None) -> int:
    # Strings of digits are accepted: "{{ 100 - w }}" is a string on ansible-core < 2.19.
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        number = int(value)
    if number is None:
        raise RecordError(field, f"expected a whole number, got {value!r}")
    if (low is not None and number < low) or (high is not None and number > high):
        span = f"between {low} and {high}" if high is not None else f">= {low}"
        raise RecordError(field, f"must be {span}, got {number}")
    return number


def _number(value: t.Any, field: str) -> float | None:
    """A float, or None for no data. NaN is no data too; JSON cannot hold it anyway."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise RecordError(field, f"expected a number or null, got {value!r}")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise RecordError(field, f"expected a number or null, got {value!r}") from None
    else:
        raise RecordError(field, f"expected a number or null, got {value!r}")
    return None if math.isnan(number) or math.isinf(number) else number


def _text(value: t.Any, field: str, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise RecordError(field, f"expected {'a non-empty ' if required else ''}text, got {value!r}")
    return value


def _choice(value: t.Any, field: str, choices: t.Sequence[str]) -> str:
    if value not in choices:
        raise RecordError(field, f"expected one of {', '.join(choices)}, got {value!r}")
    return t.cast(str, value)


def _mapping(value: t.Any, field: str) -> t.Mapping[str, t.Any]:
    if not isinstance(value, t.Mapping):
        raise RecordError(field, f"expected a mapping, got {type(value).__name__}")
    return value


def _list(value: t.Any, field: str) -> list[t.Any]:
    if not isinstance(value, (list, tuple)):
        raise RecordError(field, f"expected a list, got {type(value).__name__}")
    return list(value)


def _version(value: t.Any, field: str) -> str:
    if not isinstance(value, str) or not _VERSION_RE.match(value):
        raise RecordError(field, f"expected a version label value like 'v2', got {value!r}")
    return value


# ---------------------------------------------------------------------------------------------
# Parts of a record
# ---------------------------------------------------------------------------------------------


def normalise_weights(value: t.Any, field: str) -> dict[str, int]:
    """``{version: weight}``: whole percentages 0..100 that add up to 100, as a route's weights do."""
    weights = {}
    for version, weight in _mapping(value, field).items():
        _version(version, f"{field} key")
        weights[version] = _int(weight, f"{field}.{version}", 0, 100)
    if not weights:
        raise RecordError(field, "give at least one version's weight, e.g. {v1: 90, v2: 10}")
    total = sum(weights.values())
    if total != 100:
        raise RecordError(field, f"weights must add up to 100, got {total} ({weights})")
    return weights


def normalise_check(value: t.Any, field: str) -> dict[str, t.Any]:
    """One ``CheckResult.as_dict()``: metric, result, canary and baseline values, bounds."""
    check = _mapping(value, field)
    metric = check.get("metric")
    if not isinstance(metric, str) or not _METRIC_RE.match(metric):
        raise RecordError(f"{field}.metric", f"expected a metric name like request_success_rate, got {metric!r}")
    bounds_in = check.get("bounds") or {}
    bounds_in = _mapping(bounds_in, f"{field}.bounds")
    unknown = sorted(set(bounds_in) - set(BOUND_NAMES))
    if unknown:
        raise RecordError(f"{field}.bounds", f"unknown bound {unknown[0]!r}; bounds are {', '.join(BOUND_NAMES)}")
    out: dict[str, t.Any] = {
        "metric": metric,
        "result": _choice(check.get("result"), f"{field}.result", CHECK_RESULTS),
        "canary": _number(check.get("canary"), f"{field}.canary"),
        "baseline": _number(check.get("baseline"), f"{field}.baseline"),
        "bounds": {name: _number(bounds_in.get(name), f"{field}.bounds.{name}") for name in BOUND_NAMES},
    }
    for key in CHECK_TEXT_KEYS:
        out[key] = _text(check.get(key), f"{field}.{key}")
    return out


def normalise_numbers(value: t.Any, field: str) -> dict[str, dict[str, float | None]]:
    """``{version: {metric: value or null}}`` of one round."""
    numbers: dict[str, dict[str, float | None]] = {}
    for version, metrics in _mapping(value, field).items():
        _version(version, f"{field} key")
        numbers[version] = {}
        for metric, number in _mapping(metrics, f"{field}.{version}").items():
            if not isinstance(metric, str) or not _METRIC_RE.match(metric):
                raise RecordError(f"{field}.{version}", f"expected metric names, got {metric!r}")
            numbers[version][metric] = _number(number, f"{field}.{version}.{metric}")
    return numbers


def normalise_round(value: t.Any, field: str) -> dict[str, t.Any]:
    one = _mapping(value, field)
    out: dict[str, t.Any] = {
        "round": _int(one.get("round"), f"{field}.round", 1),
        "start_ms": None if one.get("start_ms") is None else _int(one["start_ms"], f"{field}.start_ms", 0),
        "end_ms": None if one.get("end_ms") is None else _int(one["end_ms"], f"{field}.end_ms", 0),
        "verdict": _choice(one.get("verdict"), f"{field}.verdict", VERDICTS),
        "reason": _text(one.get("reason"), f"{field}.reason"),
        "checks": [normalise_check(c, f"{field}.checks[{i}]")
                   for i, c in enumerate(_list(one.get("checks") or [], f"{field}.checks"))],
        "numbers": normalise_numbers(one.get("numbers") or {}, f"{field}.numbers"),
    }
    if out["start_ms"] is not None and out["end_ms"] is not None and out["start_ms"] > out["end_ms"]:
        raise RecordError(f"{field}.start_ms", f"start_ms {out['start_ms']} is after end_ms {out['end_ms']}")
    return out


def normalise_analysis(value: t.Any, field: str) -> dict[str, t.Any]:
    """The step's analysis: a ``canary_analysis`` result (its extra keys are dropped).

    A result without a verdict is an analysis that stopped with an error before it could decide
    (Guance unreachable, a refused key): it is kept with verdict null and its ``msg`` as the
    reason, because the report is wanted most when a release went wrong.
    """
    analysis = _mapping(value, field)
    verdict = analysis.get("verdict")
    reason = analysis.get("reason")
    if verdict is None:
        reason = reason if reason is not None else analysis.get("msg")
        if reason is None:
            raise RecordError(f"{field}.verdict", f"expected one of {', '.join(VERDICTS)}, or a failed result's msg")
    out: dict[str, t.Any] = {
        "verdict": None if verdict is None else _choice(verdict, f"{field}.verdict", VERDICTS),
        "reason": _text(reason, f"{field}.reason"),
        "rounds": [normalise_round(r, f"{field}.rounds[{i}]")
                   for i, r in enumerate(_list(analysis.get("rounds") or [], f"{field}.rounds"))],
    }
    for key in ("provider", "baseline_version", "canary_version"):
        if analysis.get(key) is not None:
            out[key] = _text(analysis.get(key), f"{field}.{key}")
    for key in ("window_s", "interval_s"):
        if analysis.get(key) is not None:
            out[key] = _int(analysis.get(key), f"{field}.{key}", 0)
    return out


def normalise_record(value: t.Any, field: str = "record") -> Record:
    """One validated, normalised record; keys left out or null are omitted."""
    record = _mapping(value, field)
    unknown = sorted(str(key) for key in record if key not in RECORD_KEYS)
    if unknown:
        raise RecordError(f"{field}.{unknown[0]}", f"unknown field; a record has {', '.join(RECORD_KEYS)}")
    event = _choice(record.get("event"), f"{field}.event", EVENTS)
    out: Record = {
        "time": format_time(parse_time(record.get("time"), f"{field}.time")),
        "event": event,
    }
    if record.get("step") is not None:
        out["step"] = _int(record["step"], f"{field}.step", 0)
    if record.get("kind") is not None:
        out["kind"] = _choice(record["kind"], f"{field}.kind", STEP_KINDS)
    if record.get("label") is not None:
        out["label"] = str(record["label"])
    if record.get("weights") is not None:
        out["weights"] = normalise_weights(record["weights"], f"{field}.weights")
    elif event == EVENT_STEP:
        raise RecordError(f"{field}.weights", "a step record needs the weights it set, e.g. {v1: 90, v2: 10}")
    if record.get("weight") is not None:
        out["weight"] = _int(record["weight"], f"{field}.weight", 0, 100)
    if record.get("analysis") is not None:
        out["analysis"] = normalise_analysis(record["analysis"], f"{field}.analysis")
    elif event == EVENT_ANALYSIS:
        raise RecordError(f"{field}.analysis", "an analysis record needs the canary_analysis result")
    if record.get("message") is not None:
        out["message"] = str(record["message"])
    return out


def normalise_records(values: t.Any, field: str = "records") -> list[Record]:
    return [normalise_record(value, f"{field}[{index}]") for index, value in enumerate(_list(values, field))]


def check_canary_weight(records: t.Sequence[Record], canary_version: str, field: str = "records") -> None:
    """``weight`` is the canary's share: it must agree with ``weights`` when both are given."""
    for index, record in enumerate(records):
        weights = record.get("weights") or {}
        if "weight" in record and canary_version in weights and weights[canary_version] != record["weight"]:
            raise RecordError(f"{field}[{index}].weight",
                              f"weight {record['weight']} is not the canary {canary_version}'s weight in weights "
                              f"({weights[canary_version]})")


def merge_records(stored: t.Sequence[Record], new: t.Sequence[Record]) -> list[Record]:
    """The stored records plus the new ones not already stored, in time order.

    Equal records are the same event told twice (a playbook passes its whole list each time),
    so they are kept once. The sort is stable: records with the same time keep their order.
    """
    merged = list(stored)
    for record in new:
        if record not in merged:
            merged.append(record)
    return sorted(merged, key=lambda record: parse_time(record["time"], "time"))


def outcome_from_records(records: t.Sequence[Record]) -> str:
    """The release's outcome when none is given: the last final event, else running."""
    for record in reversed(records):
        if record["event"] in FINAL_EVENTS:
            return t.cast(str, record["event"])
    return OUTCOME_RUNNING


# ---------------------------------------------------------------------------------------------
# Names used as directories
# ---------------------------------------------------------------------------------------------

_UNSAFE_RE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(value: t.Any, option: str, limit: int = 100) -> str:
    """A release or cluster name as one directory name: runs of other characters become ``_``
    (``reviews/v2 by me@host`` -> ``reviews_v2_by_me_host``); never ``.``, ``..`` or hidden."""
    if not isinstance(value, str) or not value.strip():
        raise RecordError(option, f"expected a non-empty name, got {value!r}")
    name = _UNSAFE_RE.sub("_", value.strip()).strip("._")[:limit]
    if not name:
        raise RecordError(option, f"{value!r} has no letters or digits to name a directory with")
    return name


# ---------------------------------------------------------------------------------------------
# records.json
# ---------------------------------------------------------------------------------------------

HEADER_KEYS: tuple[str, ...] = ("release", "cluster", "app", "namespace", "stable_version", "canary_version")


def document(header: t.Mapping[str, t.Any], outcome: t.Mapping[str, t.Any], records: t.Sequence[Record]) -> dict[str, t.Any]:
    """What ``records.json`` holds."""
    out: dict[str, t.Any] = {"schema": SCHEMA_VERSION}
    out.update({key: header.get(key) for key in HEADER_KEYS})
    out["outcome"] = {"status": outcome.get("status"), "reason": outcome.get("reason")}
    out["records"] = list(records)
    return out


def read_document(data: t.Any, source: str) -> dict[str, t.Any]:
    """A stored ``records.json`` (already decoded), validated again: a hand-edited file with a
    mistake is reported, not half-read."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA_VERSION or not isinstance(data.get("records"), list):
        raise RecordError(source, f"not a release records file of schema {SCHEMA_VERSION}; move it away to start anew")
    out = dict(data)
    out["records"] = normalise_records(data["records"], f"{source} records")
    return out
