# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Guance guard rails of a release: the error budget left of an SLO, and a mute of a service's
monitors for the release window.

What the OpenAPI gives and what it does not: ``GET /api/v1/slo/list`` and ``/slo/<uuid>/get``
answer an SLO's targets (``config.goal``, ``config.minGoal``, ``config.checkRange`` in seconds, 7
days) but not how much of it is met; Guance keeps that as events of source ``slo`` whose
``df_slo_cost`` is the minutes lost, which one DQL sum over the check range reads. The error budget
is the minutes the goal allows to lose over that range; what is left is that less the minutes lost.

A mute (``POST /api/v1/monitor/mute/create``) is one-time, from now to an end, for the monitors'
events about the service (``filterString`` ``service:<name>`` over every checker), so it ends by
itself even when nothing deletes it; ``/monitor/mute/<uuid>/delete`` ends it early. Times are
strings in the mute's ``timezone``; UTC here, so that no time zone database is needed.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import datetime
import re
import typing as t

from ansible_collections.canary.istio.plugins.module_utils._guance.errors import GuanceConfigError, GuanceResponseError

SLO_LIST_PATH = "/api/v1/slo/list"
MUTE_CREATE_PATH = "/api/v1/monitor/mute/create"
MUTE_LIST_PATH = "/api/v1/monitor/mute/list"
MUTE_TIME_FORMAT = "%Y/%m/%d %H:%M:%S"
MUTE_TIMEZONE = "UTC"
# A Guance object id (monitor_..., mute_...): put into a URL path and a DQL string as it is.
_UUID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_SERVICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")


def slo_get_path(uuid: str) -> str:
    return "/api/v1/slo/%s/get" % checked_uuid(uuid, "slo_id")


def mute_delete_path(uuid: str) -> str:
    return "/api/v1/monitor/mute/%s/delete" % checked_uuid(uuid, "mute_id")


def checked_uuid(value: t.Any, option: str) -> str:
    if not isinstance(value, str) or not _UUID.match(value):
        raise GuanceConfigError("%s: %r is not a Guance id (letters, digits, _ and -, such as monitor_1a2b or mute_1a2b)"
                                % (option, value), option)
    return value


def checked_service(value: t.Any, option: str = "service") -> str:
    if not isinstance(value, str) or not _SERVICE.match(value):
        raise GuanceConfigError("%s: %r is not a service name (letters, digits, '.', '_' and '-')" % (option, value), option)
    return value


# --- SLO ---------------------------------------------------------------------------------------

def slo_items(content: t.Any) -> list[dict]:
    """The SLOs of a list answer: ``content.data`` (a bare list is taken too)."""
    data = content.get("data") if isinstance(content, dict) else content
    if not isinstance(data, list):
        raise GuanceResponseError("the SLO list answer has no content.data list")
    return [item for item in data if isinstance(item, dict)]


def pick_slo(items: list[dict], name: str) -> dict:
    """The SLO named exactly ``name`` (Guance's search also matches parts of names)."""
    found = [item for item in items if item.get("name") == name]
    if len(found) == 1:
        return found[0]
    if not found:
        names = sorted({str(item.get("name")) for item in items})
        raise GuanceConfigError("slo: no SLO of the workspace is named %r%s; give its exact name, or its id as slo_id"
                                % (name, " (the search found: %s)" % ", ".join(names) if names else ""), "slo")
    raise GuanceConfigError("slo: %d SLOs are named %r (%s); give the one meant as slo_id"
                            % (len(found), name, ", ".join(str(item.get("uuid")) for item in found)), "slo")


def slo_targets(slo: dict) -> dict:
    """uuid, name, goal, min_goal and the check range (seconds) of an SLO object."""
    config = slo.get("config") if isinstance(slo.get("config"), dict) else {}
    try:
        goal = float(config["goal"])
        check_range = int(config.get("checkRange") or 604800)
    except (KeyError, TypeError, ValueError) as exc:
        raise GuanceResponseError("SLO %r has no numeric config.goal: %s" % (slo.get("name"), exc)) from exc
    min_goal = config.get("minGoal")
    return {"uuid": str(slo.get("uuid") or ""), "name": str(slo.get("name") or ""), "goal": goal,
            "min_goal": float(min_goal) if min_goal is not None else None, "check_range_s": check_range}


def slo_cost_query(uuid: str) -> str:
    """DQL: the minutes the SLO lost, summed over the query's time range."""
    return "E::`slo`:(sum(`df_slo_cost`)) { `df_slo_id` = '%s' }" % checked_uuid(uuid, "slo_id")


def lost_minutes(series: t.Sequence[t.Mapping[str, t.Any]]) -> float:
    """The sum the cost query answered (its series in ``simple_series`` shape); no series, or a
    null sum, means no minute was lost."""
    total = 0.0
    for one in series:
        for row in one.get("rows") or []:
            value = row[-1] if isinstance(row, (list, tuple)) else row
            if value is not None:
                total += float(value)
    return total


def error_budget(targets: dict, lost: float, minimum_left: float = 0.0) -> dict:
    """The SLO's error budget over its check range: minutes allowed, lost, left, and whether it is spent.

    ``minimum_left``: the percent of the budget that must be left for the release to start.
    """
    range_minutes = targets["check_range_s"] / 60.0
    allowed = range_minutes * (100.0 - targets["goal"]) / 100.0
    left = allowed - lost
    left_percent = 100.0 * left / allowed if allowed > 0 else (0.0 if lost > 0 else 100.0)
    return dict(targets, budget_minutes=round(allowed, 3), lost_minutes=round(lost, 3), left_minutes=round(left, 3),
                left_percent=round(left_percent, 2), compliance=round(100.0 * (range_minutes - lost) / range_minutes, 4),
                spent=left_percent <= minimum_left)


# --- mute --------------------------------------------------------------------------------------

def mute_time(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime(MUTE_TIME_FORMAT)


def mute_body(name: str, service: str, start: datetime.datetime, end: datetime.datetime, description: str = "") -> dict:
    """A one-time mute of every monitor's events about ``service`` from ``start`` to ``end``."""
    return {"name": name, "description": description, "type": "checker", "timezone": MUTE_TIMEZONE, "repeatTimeSet": 0,
            "startTime": mute_time(start), "endTime": mute_time(end), "muteRanges": [],
            "filterString": "service:%s" % checked_service(service), "tags": {}}


def mute_items(content: t.Any) -> list[dict]:
    """The mutes of a list answer: a bare list in the docs, ``content.data`` in other clients."""
    data = content.get("data") if isinstance(content, dict) else content
    if not isinstance(data, list):
        raise GuanceResponseError("the mute list answer is neither a list nor has content.data")
    return [item for item in data if isinstance(item, dict)]


def live_mutes(items: list[dict], name: str, now: datetime.datetime) -> list[dict]:
    """The mutes named ``name`` that have not ended (end in epoch seconds, or the endTime string)."""
    found = []
    for item in items:
        if item.get("name") != name:
            continue
        end = item.get("end")
        if isinstance(end, (int, float)) and end > 0:
            ends = datetime.datetime.fromtimestamp(end, datetime.timezone.utc)
        else:
            try:
                ends = datetime.datetime.strptime(str(item.get("endTime")), MUTE_TIME_FORMAT).replace(tzinfo=datetime.timezone.utc)
            except ValueError:
                ends = None
        if ends is None or ends > now:
            found.append(item)
    return found


def created_mute_uuid(content: t.Any) -> str:
    uuid = content.get("uuid") if isinstance(content, dict) else None
    if not isinstance(uuid, str) or not uuid:
        raise GuanceResponseError("the mute was created but the answer has no content.uuid to end it with")
    return uuid
