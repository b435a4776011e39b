# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_istio/release_steps.py: the grammar of canary_steps, read in one place."""

from __future__ import annotations

import re

import pytest

from ansible_collections.canary.istio.plugins.module_utils._istio.common import IstioSpecError
from ansible_collections.canary.istio.plugins.module_utils._istio.release_steps import (
    cookie_match,
    read_steps,
    release_plan,
    step_problems,
    steps_to_run,
)

JASON = {"match": {"headers": {"end-user": {"exact": "jason"}}}}


class TestGrammar:
    def test_every_kind_in_the_common_shape(self):
        steps = read_steps([JASON, {"mirror": 50}, 10, {"pause": True}, 50, 100])
        assert steps == [
            {"kind": "match", "weight": 0, "match": {"headers": {"end-user": {"exact": "jason"}}}, "label": "A/B end-user exact jason"},
            {"kind": "mirror", "weight": 0, "mirror": 50, "label": "mirror 50%"},
            {"kind": "weight", "weight": 10, "label": "10%"},
            {"kind": "pause", "weight": 10, "label": "pause"},
            {"kind": "weight", "weight": 50, "label": "50%"},
            {"kind": "weight", "weight": 100, "label": "100%"},
        ]

    def test_an_ab_step_keeps_the_weight_of_the_step_before(self):
        assert [s["weight"] for s in read_steps([10, JASON, 50])] == [10, 10, 50]

    def test_a_bare_header_value_is_exact_and_a_weight_may_come_as_text(self):
        steps = read_steps([{"match": {"headers": {"end-user": "jason"}}}, "10"])
        assert steps[0]["match"] == {"headers": {"end-user": {"exact": "jason"}}} and steps[1]["weight"] == 10

    def test_a_cookie_matches_it_anywhere_among_the_cookies(self):
        pattern = cookie_match("user=jason", "f")["regex"]
        for header in ("user=jason", "a=1; user=jason", "user=jason; b=2", "a=1;user=jason;b=2"):
            assert re.fullmatch(pattern, header), header
        for header in ("user=jasonx", "xuser=jason", "a=user=jason2"):
            assert not re.fullmatch(pattern, header), header
        step = read_steps([{"match": {"cookie": "user=jason"}}])[0]
        assert step["match"] == {"headers": {"cookie": {"regex": pattern}}}

    @pytest.mark.parametrize("steps, field, words", [
        ([10, 5], "canary_steps[1]", "never decrease"),
        ([10, 150], "canary_steps[1]", "whole number from 0 to 100"),
        ([True], "canary_steps[0]", "whole number"),
        (["ten"], "canary_steps[0]", "whole number"),
        ([{"mirror": 0}], "canary_steps[0].mirror", "above 0"),
        ([{"mirror": 101}], "canary_steps[0].mirror", "at most 100"),
        ([{"pause": "yes"}], "canary_steps[0].pause", "{pause: true}"),
        ([{"weight": 10}], "canary_steps[0]", "unknown key 'weight'"),
        ([{"match": {"headers": {"a": "b"}}, "mirror": 10}], "canary_steps[0]", "2 given"),
        ([{"match": {}}], "canary_steps[0].match", "expected {headers"),
        ([{"match": {"uri": "/x"}}], "canary_steps[0].match", "unknown key 'uri'"),
        ([{"match": {"cookie": "jason"}}], "canary_steps[0].match.cookie", "name=value"),
        ([{"match": {"headers": {"end-user": {"glob": "j*"}}}}], "canary_steps[0].match.headers.end-user", "unknown match kind"),
        ([{"match": {"headers": {"Cookie": "a=b"}, "cookie": "u=j"}}], "canary_steps[0].match", "not both"),
        ([100, JASON], "canary_steps[1]", "an A/B step needs plain traffic still on the stable version"),
        ([100, {"mirror": 10}], "canary_steps[1]", "a mirror step needs plain traffic"),
        ([], "canary_steps", "non-empty list"),
        ("10,100", "canary_steps", "non-empty list"),
    ])
    def test_a_wrong_step_is_named_with_its_fix(self, steps, field, words):
        with pytest.raises(IstioSpecError) as caught:
            read_steps(steps)
        assert caught.value.option == field and words in str(caught.value)
        assert str(caught.value).startswith(field + ": ")

    def test_every_wrong_step_is_said_at_once(self):
        problems = step_problems([10, 5, {"mirror": 0}, "x", 100])
        assert [p.split(":", maxsplit=1)[0] for p in problems] == ["canary_steps[1]", "canary_steps[2].mirror", "canary_steps[3]"]
        assert step_problems([10, 50, 100]) == []

    def test_the_option_named_is_the_callers(self):
        with pytest.raises(IstioSpecError, match=r"^release.steps\[1\]: "):
            read_steps([10, 5], "release.steps")


class TestPlan:
    def test_the_plan_says_the_last_weight_and_the_labels(self):
        plan = release_plan([JASON, 10, 50])
        assert plan["problems"] == [] and plan["final_weight"] == 50
        assert plan["labels"] == ["A/B end-user exact jason", "10%", "50%"]

    def test_a_wrong_plan_has_no_steps(self):
        plan = release_plan([10, 5])
        assert plan["steps"] == [] and plan["final_weight"] == 0 and len(plan["problems"]) == 1

    def test_a_resumed_release_runs_the_steps_at_or_above_the_live_weight(self):
        steps = read_steps([JASON, 10, {"mirror": 100}, 50, 100])
        assert [s["label"] for s in steps_to_run(steps, 10)] == ["10%", "mirror 100%", "50%", "100%"]
        assert steps_to_run(steps, 60) == [steps[-1]]
        assert steps_to_run(steps, 60, allow_weight_decrease=True) == steps
