# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_guance/events.py: release events built for each API, and their tag and date rules."""
# Sending: test_guance_client.py, and tests/unit/sandbox/test_guance_modules_sim.py against the simulator.

from __future__ import annotations

import time

import pytest

from ansible_collections.canary.istio.plugins.module_utils._guance import errors as guance_errors
from ansible_collections.canary.istio.plugins.module_utils._guance import events as guance_events


DATE = 1_764_136_800_000  # 2025-11-26T06:00:00Z


def test_openapi_event_is_the_documented_body() -> None:
    request = guance_events.event_request("openapi", "Canary reviews v2 at 10%", "info", "step 1 of 3",
                                          {"service": "reviews", "step": 1, "canary": True, "weight": 10.5}, DATE)
    assert request.path == "/api/v1/events/create" and request.event_id is None
    assert request.body == {"date": DATE, "status": "info", "title": "Canary reviews v2 at 10%", "message": "step 1 of 3",
                            "customTags": {"service": "reviews", "step": "1", "canary": "true", "weight": "10.5"}}
    assert request.event is request.body
    bare = guance_events.event_request("openapi", "t", "ok", None, None, DATE).body
    assert bare == {"date": DATE, "status": "ok", "title": "t"}  # no empty message or customTags


def test_datakit_event_is_one_keyevent_point_with_its_own_id() -> None:
    request = guance_events.event_request("datakit", "promoted", "ok", "v2 took 100%", {"service": "reviews"}, DATE, "release")
    assert request.path == "/v1/write/keyevent"
    assert request.body == [request.event]
    point = request.event
    assert point["measurement"] == "release" and point["tags"] == {"service": "reviews"}
    assert point["time"] == DATE * 1_000_000  # nanoseconds: the DataKit's default precision
    assert point["fields"] == {"df_source": "system", "df_status": "ok", "df_title": "promoted", "df_message": "v2 took 100%",
                               "df_event_id": request.event_id, "df_date_range": 0}
    assert request.event_id.startswith("event-") and len(request.event_id) == 38
    assert guance_events.event_request("datakit", "again", date_ms=DATE).event_id != request.event_id
    assert guance_events.event_request("datakit", "fixed", date_ms=DATE, event_id="event-1").event_id == "event-1"


def test_date_defaults_to_now() -> None:
    before = int(time.time() * 1000)
    date = guance_events.event_request("openapi", "t").body["date"]
    assert before <= date <= int(time.time() * 1000)


@pytest.mark.parametrize("kwargs, option, text", [
    ({"title": "  "}, "title", "title must be a non-empty string"),
    ({"status": "fine"}, "status", "status must be one of critical, error, warning, ok, info, nodata, got 'fine'"),
    ({"tags": {"df_status": "ok"}}, "tags", "'df_status' is a name Guance keeps"),
    ({"tags": {"__docid": "x"}}, "tags", "'__docid' is a name Guance keeps"),
    ({"tags": {"versions": ["v1", "v2"]}}, "tags", "the value of 'versions' must be a string or number"),
    ({"tags": {"version": None}}, "tags", "the value of 'version' must be a string or number"),
    ({"tags": {" ": "x"}}, "tags", "a tag name is empty"),
    ({"date_ms": "yesterday"}, "date", "date must be epoch milliseconds"),
    ({"api": "smtp"}, "api", "api must be one of openapi, datakit"),
    ({"api": "datakit", "source": ""}, "source", "source (the event's source"),
])
def test_values_that_cannot_be_sent_name_their_field(kwargs, option, text) -> None:
    args = {"api": "openapi", "title": "t", **kwargs}
    with pytest.raises(guance_errors.GuanceConfigError) as info:
        guance_events.event_request(**args)
    assert info.value.option == option
    assert text in str(info.value)


@pytest.mark.parametrize("value, expected", [
    (DATE, DATE), (str(DATE), DATE), (float(DATE), DATE),
    ("2025-11-26T06:00:00Z", DATE), ("2025-11-26T06:00:00", DATE), ("2025-11-26T14:00:00+08:00", DATE),
])
def test_epoch_ms(value, expected) -> None:
    assert guance_events.epoch_ms(value, "date") == expected


def test_epoch_ms_refuses_seconds_and_words() -> None:
    with pytest.raises(guance_errors.GuanceConfigError, match=r"looks like seconds; give epoch milliseconds \(for example 1764136800000\)") as info:
        guance_events.epoch_ms(1_764_136_800, "date")
    assert info.value.option == "date"
    for bad in ("yesterday", True, None, "2025-13-01"):
        with pytest.raises(guance_errors.GuanceConfigError, match="date: expected epoch milliseconds or ISO 8601"):
            guance_events.epoch_ms(bad, "date")
