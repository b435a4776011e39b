# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/modules/guance_event.py: its documentation against its argument spec, and options to event."""
# Whole runs against the simulator's HTTP server: tests/unit/sandbox/test_guance_modules_sim.py.

from __future__ import annotations

import pytest
import yaml

from ansible_collections.canary.istio.plugins.module_utils._guance import errors as guance_errors
from ansible_collections.canary.istio.plugins.module_utils._guance import settings as guance_settings
from ansible_collections.canary.istio.plugins.modules import guance_event as ge


DATE = 1_764_136_800_000  # 2025-11-26T06:00:00Z


def params(**overrides) -> dict:
    base = {name: spec.get("default") for name, spec in guance_settings.guance_argument_spec(ge.OWN_OPTIONS).items()}
    base.update(title="t")
    base.update(overrides)
    return base


def test_documented_options_match_the_argument_spec() -> None:
    documented = yaml.safe_load(ge.DOCUMENTATION)["options"]
    assert set(documented) == set(ge.OWN_OPTIONS)
    for name, spec in ge.OWN_OPTIONS.items():
        assert documented[name]["type"] == spec["type"], name
        assert documented[name].get("default") == spec.get("default"), name
        assert documented[name].get("choices") == spec.get("choices"), name
        assert documented[name].get("required", False) == spec.get("required", False), name
    assert ge.OWN_OPTIONS["status"]["choices"] == list(guance_settings.EVENT_STATUSES)


def test_documented_returns_are_what_the_module_returns() -> None:
    documented = set(yaml.safe_load(ge.RETURN))
    assert documented == {"event", "event_id", "trace_id", "endpoint", "requests"}


def test_options_to_event() -> None:
    request = ge.request_from_params(params(title="promoted", status="ok", text="100% v2", tags={"step": 3},
                                            date="2025-11-26T06:00:00Z"))
    assert request.body == {"date": DATE, "status": "ok", "title": "promoted", "message": "100% v2",
                            "customTags": {"step": "3"}}
    point = ge.request_from_params(params(api="datakit", source="release", date=DATE)).event
    assert point["measurement"] == "release" and point["time"] == DATE * 1_000_000


def test_bad_date_names_the_option() -> None:
    with pytest.raises(guance_errors.GuanceConfigError, match="date: .* looks like seconds") as info:
        ge.request_from_params(params(date=1_764_136_800))
    assert info.value.option == "date"
