# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_guance/guard.py: an SLO's error budget, and the mute of a release."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.canary.istio.plugins.module_utils._guance.errors import GuanceConfigError, GuanceResponseError
from ansible_collections.canary.istio.plugins.module_utils._guance.guard import (
    created_mute_uuid,
    error_budget,
    live_mutes,
    lost_minutes,
    mute_body,
    mute_delete_path,
    mute_items,
    pick_slo,
    slo_cost_query,
    slo_get_path,
    slo_items,
    slo_targets,
)

SLO = {"uuid": "monitor_ab12", "name": "reviews availability",
       "config": {"goal": 95.0, "minGoal": 90.0, "checkRange": 604800, "interval": "5m"}}
NOW = datetime.datetime(2026, 12, 4, 10, 0, 0, tzinfo=datetime.timezone.utc)


class TestBudget:
    def test_a_95_percent_goal_over_7_days_allows_504_minutes(self):
        budget = error_budget(slo_targets(SLO), 126.0)
        assert budget["budget_minutes"] == 504.0 and budget["left_minutes"] == 378.0
        assert budget["left_percent"] == 75.0 and budget["spent"] is False
        assert budget["compliance"] == round(100 * (10080 - 126) / 10080, 4)

    def test_spent_when_nothing_or_less_than_asked_is_left(self):
        assert error_budget(slo_targets(SLO), 504.0)["spent"] is True
        assert error_budget(slo_targets(SLO), 600.0)["left_minutes"] == -96.0
        assert error_budget(slo_targets(SLO), 400.0, minimum_left=25)["spent"] is True
        assert error_budget(slo_targets(SLO), 300.0, minimum_left=25)["spent"] is False

    def test_the_lost_minutes_are_the_sum_the_query_answered(self):
        assert lost_minutes([{"columns": ["time", "sum"], "rows": [[1, 12.5]]}, {"rows": [[2, None]]}]) == 12.5
        assert lost_minutes([]) == 0.0

    def test_the_query_and_the_paths_take_ids_only(self):
        assert slo_cost_query("monitor_ab12") == "E::`slo`:(sum(`df_slo_cost`)) { `df_slo_id` = 'monitor_ab12' }"
        assert slo_get_path("monitor_ab12") == "/api/v1/slo/monitor_ab12/get"
        assert mute_delete_path("mute_1") == "/api/v1/monitor/mute/mute_1/delete"
        for bad in ("x' OR 1=1", "../get", ""):
            with pytest.raises(GuanceConfigError):
                slo_cost_query(bad)

    def test_an_slo_is_picked_by_its_exact_name(self):
        other = dict(SLO, uuid="monitor_cd34", name="reviews availability (old)")
        assert pick_slo(slo_items({"data": [other, SLO]}), "reviews availability") is SLO
        with pytest.raises(GuanceConfigError, match="no SLO of the workspace is named 'ratings'"):
            pick_slo([SLO], "ratings")
        with pytest.raises(GuanceConfigError, match="2 SLOs are named"):
            pick_slo([SLO, dict(SLO, uuid="monitor_x")], "reviews availability")
        with pytest.raises(GuanceResponseError):
            slo_items({"nothing": 1})
        with pytest.raises(GuanceResponseError, match="no numeric config.goal"):
            slo_targets({"name": "x", "config": {}})


class TestMute:
    def test_a_one_time_mute_of_the_services_events_in_utc(self):
        body = mute_body("canary.istio release of reviews", "reviews", NOW, NOW + datetime.timedelta(hours=2))
        assert body["type"] == "checker" and body["muteRanges"] == [] and body["repeatTimeSet"] == 0
        assert body["filterString"] == "service:reviews" and body["timezone"] == "UTC"
        assert (body["startTime"], body["endTime"]) == ("2026/12/04 10:00:00", "2026/12/04 12:00:00")
        with pytest.raises(GuanceConfigError, match="service: 'reviews OR host:x' is not a service name"):
            mute_body("n", "reviews OR host:x", NOW, NOW)

    def test_only_the_named_mutes_not_ended_are_live(self):
        items = mute_items([
            {"uuid": "mute_1", "name": "a", "end": int((NOW + datetime.timedelta(minutes=5)).timestamp())},
            {"uuid": "mute_2", "name": "a", "end": int((NOW - datetime.timedelta(minutes=5)).timestamp())},
            {"uuid": "mute_3", "name": "a", "endTime": "2026/12/04 11:00:00"},
            {"uuid": "mute_4", "name": "b", "end": -1},
        ])
        assert [m["uuid"] for m in live_mutes(items, "a", NOW)] == ["mute_1", "mute_3"]
        assert mute_items({"data": [{"uuid": "mute_9"}]}) == [{"uuid": "mute_9"}]

    def test_the_created_mutes_id_is_needed_to_end_it(self):
        assert created_mute_uuid({"uuid": "mute_1"}) == "mute_1"
        with pytest.raises(GuanceResponseError, match="no content.uuid"):
            created_mute_uuid(True)
