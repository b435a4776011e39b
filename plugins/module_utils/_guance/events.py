# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Release events as Guance takes them: the OpenAPI's ``events/create`` and a DataKit's keyevent,
their tags and their dates.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import datetime

import re
import time
import typing as t
import uuid
from dataclasses import dataclass

from ansible_collections.canary.istio.plugins.module_utils._guance.errors import GuanceConfigError
from ansible_collections.canary.istio.plugins.module_utils._guance.settings import (
    APIS,
    API_DATAKIT,
    DATAKIT_EVENT_PATH,
    DEFAULT_EVENT_SOURCE,
    EVENT_PATH,
    EVENT_STATUSES,
)


@dataclass(frozen=True)
class EventRequest:
    """One event, ready to send: ``body`` goes on the wire to ``path``; ``event`` is the event
    itself (the OpenAPI body, or the DataKit's one point); ``event_id`` is the ``df_event_id``
    chosen here (DataKit only: the OpenAPI chooses its own and does not return it)."""

    api: str
    path: str
    body: t.Any
    event: dict[str, t.Any]
    event_id: str | None = None


def event_tags(tags: t.Mapping[str, t.Any] | None) -> dict[str, str]:
    """The tags as strings. Scalars only: a list or dict would land as its Python repr.

    Names starting with ``df_`` or ``__`` are Guance's own event fields: the OpenAPI would drop or
    confuse such a tag (``customTags`` sit beside ``df_status``, ``__docid``...).
    """
    out: dict[str, str] = {}
    for key, value in (tags or {}).items():
        name = str(key)
        if not name.strip():
            raise GuanceConfigError("tags: a tag name is empty", "tags")
        if name.startswith(("df_", "__")):
            raise GuanceConfigError(f"tags: {name!r} is a name Guance keeps for its own event fields (df_*, __*); "
                                    "rename the tag", "tags")
        if value is None or isinstance(value, (dict, list, tuple, set)):
            raise GuanceConfigError(f"tags: the value of {name!r} must be a string or number, got {value!r}", "tags")
        out[name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def event_request(
    api: str,
    title: str,
    status: str = "info",
    message: str | None = None,
    tags: t.Mapping[str, t.Any] | None = None,
    date_ms: int | None = None,
    source: str = DEFAULT_EVENT_SOURCE,
    event_id: str | None = None,
) -> EventRequest:
    """The event for ``api``; GuanceConfigError naming the field when a value cannot be sent.

    OpenAPI (``events/create``): ``{date, status, title, message?, customTags?}``; Guance stores it
    with ``df_source=custom``. DataKit (``/v1/write/keyevent``, JSON): one point in measurement
    ``source`` (the event's source) with the tags as tags and the ``df_*`` fields a keyevent
    needs; its time is in nanoseconds, the DataKit's default precision.
    """
    if api not in APIS:
        raise GuanceConfigError(f"api must be one of {', '.join(APIS)}, got {api!r}", "api")
    if not isinstance(title, str) or not title.strip():
        raise GuanceConfigError("title must be a non-empty string", "title")
    if status not in EVENT_STATUSES:
        raise GuanceConfigError(f"status must be one of {', '.join(EVENT_STATUSES)}, got {status!r}", "status")
    if message is not None and not isinstance(message, str):
        raise GuanceConfigError(f"the message must be a string, got {message!r}", "message")
    if date_ms is not None and (isinstance(date_ms, bool) or not isinstance(date_ms, int) or date_ms < 0):
        raise GuanceConfigError(f"date must be epoch milliseconds, got {date_ms!r}", "date")
    clean_tags = event_tags(tags)
    date_ms = int(time.time() * 1000) if date_ms is None else date_ms
    if api == API_DATAKIT:
        if not isinstance(source, str) or not source.strip():
            raise GuanceConfigError("source (the event's source, its measurement) must be a non-empty string", "source")
        event_id = event_id or "event-" + uuid.uuid4().hex
        fields: dict[str, t.Any] = {"df_source": "system", "df_status": status, "df_title": title,
                                    "df_event_id": event_id, "df_date_range": 0}
        if message:
            fields["df_message"] = message
        point = {"measurement": source, "tags": clean_tags, "fields": fields, "time": date_ms * 1_000_000}
        return EventRequest(api, DATAKIT_EVENT_PATH, [point], point, event_id)
    body: dict[str, t.Any] = {"date": date_ms, "status": status, "title": title}
    if message:
        body["message"] = message
    if clean_tags:
        body["customTags"] = clean_tags
    return EventRequest(api, EVENT_PATH, body, body, None)


def epoch_ms(value: t.Any, option: str) -> int:
    """Epoch milliseconds (a number, or a string of digits) or ISO 8601 (UTC when no zone) -> epoch ms.

    Numbers below 10^11 (before 1973 in milliseconds) are refused: they are almost always
    seconds, which would put the event in 1970.
    """
    if isinstance(value, bool) or value is None:
        raise GuanceConfigError(f"{option}: expected epoch milliseconds or ISO 8601, got {value!r}", option)
    if isinstance(value, (int, float)) or (isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*", value)):
        number = int(float(value))
        if number < 10**11:
            raise GuanceConfigError(f"{option}: {value!r} looks like seconds; give epoch milliseconds "
                                    f"(for example {number * 1000}) or ISO 8601", option)
        return number
    text = str(value).strip()
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise GuanceConfigError(f"{option}: expected epoch milliseconds or ISO 8601 like 2026-11-26T06:00:00Z, "
                                f"got {value!r}", option) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return int(moment.timestamp() * 1000)
