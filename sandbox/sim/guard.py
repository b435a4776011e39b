"""Guance's SLO and mute OpenAPI as the simulator answers them (pure state; the server routes to it).

- `GET /api/v1/slo/list?search=&pageIndex=&pageSize=` answers `content: {data: [SLO...]}` and
  `GET /api/v1/slo/<uuid>/get` one SLO: `uuid`, `name`, `config.goal`, `config.minGoal`,
  `config.checkRange` (seconds) and `config.interval`, as Guance's do; no field says how much of the
  SLO is met (Guance does not give one either).
- The minutes an SLO lost are events of source `slo` with `df_slo_id` and `df_slo_cost` (minutes),
  one per check interval with a cost, which `E::slo:(sum(df_slo_cost))` reads: what Guance keeps.
- `POST /api/v1/monitor/mute/create` checks what Guance requires (`type` among checker,
  alertPolicy, tag, custom; `timezone`; `repeatTimeSet`; times as "%Y/%m/%d %H:%M:%S" strings)
  and answers the mute with its `uuid` and epoch-second `start`/`end`;
  `POST /api/v1/monitor/mute/<uuid>/delete` (no body) ends it; `GET /api/v1/monitor/mute/list`
  answers `content` as a bare list, as Guance's docs show it.
- `POST /__sim/slos` adds an SLO and spreads the minutes it lost over the last days.
"""
from __future__ import annotations

import datetime
import secrets
from dataclasses import dataclass, field

from .record import SLO_SOURCE, Point

MUTE_TYPES = ("checker", "alertPolicy", "tag", "custom")
TIME_FORMAT = "%Y/%m/%d %H:%M:%S"
DAY_MS = 86_400_000


class GuardError(ValueError):
    """A request Guance would refuse (400, `ft.ParamError`-like)."""


@dataclass
class Guard:
    slos: dict = field(default_factory=dict)  # uuid -> SLO object
    mutes: dict = field(default_factory=dict)  # uuid -> mute object


def add_slo(guard: Guard, recorder, now_ms: int, settings: dict) -> dict:
    """An SLO named `name` with `goal` (and `min_goal`), having lost `lost_minutes` over the last
    `days` (7) days, written as slo events of 10 minutes' cost at most each."""
    name = settings.get("name")
    goal = settings.get("goal")
    if not isinstance(name, str) or not name or not isinstance(goal, (int, float)) or not 0 < goal < 100:
        raise GuardError("an SLO needs a name and a goal within (0, 100)")
    uuid = settings.get("uuid") or "monitor_" + secrets.token_hex(8)
    days = int(settings.get("days", 7))
    slo = {"uuid": uuid, "id": len(guard.slos) + 1, "name": name, "type": "slo", "status": 0, "score": 0,
           "config": {"goal": float(goal), "minGoal": float(settings.get("min_goal", goal - 5)), "checkRange": days * 86400,
                      "interval": "5m", "describe": "", "sli_infos": []},
           "createAt": now_ms // 1000, "updateAt": -1, "deleteAt": -1}
    guard.slos[uuid] = slo
    left = float(settings.get("lost_minutes", 0))
    step = (days * DAY_MS) // max(1, int(left // 10) + 2)
    moment = now_ms - days * DAY_MS + step
    while left > 0:
        cost = min(10.0, left)
        recorder.add("E", Point(SLO_SOURCE, {"df_source": "slo", "df_slo_id": uuid, "df_status": "warning"},
                                {"df_slo_cost": cost, "df_title": f"SLO {name} lost {cost:g} min"}, moment))
        left -= cost
        moment += step
    return slo


def slo_list(guard: Guard, query: dict) -> dict:
    search = (query.get("search") or [""])[0]
    found = [s for s in guard.slos.values() if search in s["name"]]
    return {"data": found, "declaration": {}}


def slo_get(guard: Guard, uuid: str) -> dict:
    if uuid not in guard.slos:
        raise GuardError(f"no SLO {uuid}")
    return guard.slos[uuid]


def _epoch_s(text, timezone: str) -> int:
    if timezone != "UTC":
        raise GuardError("the simulator takes timezone UTC only")
    try:
        moment = datetime.datetime.strptime(str(text), TIME_FORMAT).replace(tzinfo=datetime.timezone.utc)
    except ValueError as exc:
        raise GuardError(f"time {text!r} is not {TIME_FORMAT}") from exc
    return int(moment.timestamp())


def mute_create(guard: Guard, body, now_ms: int) -> dict:
    if not isinstance(body, dict):
        raise GuardError("body must be a JSON object")
    if body.get("type") not in MUTE_TYPES:
        raise GuardError(f"type must be one of {', '.join(MUTE_TYPES)}")
    for required in ("timezone", "repeatTimeSet"):
        if required not in body:
            raise GuardError(f"{required} is required")
    if not isinstance(body.get("muteRanges", []), list):
        raise GuardError("muteRanges must be a list")
    start = _epoch_s(body.get("startTime"), body["timezone"])
    end = _epoch_s(body.get("endTime"), body["timezone"]) if body.get("endTime") else -1
    if end != -1 and end <= start:
        raise GuardError("endTime must be after startTime")
    uuid = "mute_" + secrets.token_hex(8)
    mute = dict(body, uuid=uuid, id=len(guard.mutes) + 1, start=start, end=end, status=0,
                createAt=now_ms // 1000, updateAt=now_ms // 1000, deleteAt=-1)
    guard.mutes[uuid] = mute
    return mute


def mute_delete(guard: Guard, uuid: str) -> dict:
    if guard.mutes.pop(uuid, None) is None:
        raise GuardError(f"no mute {uuid}")
    return {}


def mute_list(guard: Guard, query: dict) -> list:
    search = (query.get("search") or [""])[0]
    return [m for m in guard.mutes.values() if search in m.get("name", "")]
