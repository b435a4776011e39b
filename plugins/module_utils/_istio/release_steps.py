# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The steps of a canary release (``canary_steps``): their grammar, read in one place.

A step is a weight (the canary's share of plain traffic, 0 to 100) or a mapping of one kind:

* ``{match: {headers: {end-user: {exact: jason}}}}`` or ``{match: {cookie: 'user=jason'}}``: an
  A/B step; only the matching requests go to the canary, through a route placed before the
  catch-all, while plain traffic keeps the weight of the step before;
* ``{mirror: 100}``: a shadow step; that share of the stable version's plain requests is copied
  to the canary, whose answers are discarded;
* ``{pause: true}``: a person decides at a terminal whether the release goes on.

Every step is read into the same shape (``kind``, ``weight``: the plain traffic's canary weight
while the step holds, ``match``/``mirror`` when the step has one, ``label`` for messages and
the report). Weights never decrease; an A/B or shadow step needs plain traffic still on the
stable version (below 100). What is wrong is said per step, naming ``canary_steps[i]`` and the fix.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import typing as t

from ansible_collections.canary.istio.plugins.module_utils._istio.common import IstioSpecError
from ansible_collections.canary.istio.plugins.module_utils._istio.fault import headers_match_to_istio

OPTION = "canary_steps"
KINDS = ("match", "mirror", "pause")
EXAMPLE = "[{match: {headers: {end-user: {exact: jason}}}}, {mirror: 100}, 10, {pause: true}, 50, 100]"


def cookie_match(pattern: t.Any, field: str) -> dict:
    """Istio's match on the Cookie header for a ``name=value`` pattern (RE2) among the cookies.

    Istio matches a header regex against the whole value, so the pattern is wrapped to stand for
    one cookie anywhere in the list: first, between two others, or last.
    """
    if not isinstance(pattern, str) or not pattern.strip() or "=" not in pattern:
        raise IstioSpecError(field, "give the cookie as name=value (a regex for the value is allowed, e.g. user=jason "
                             "or tester=(jason|ana)), got %r" % (pattern,))
    return {"regex": "^(.*?;\\s*)?(%s)(;.*)?$" % pattern.strip()}


def match_condition(value: t.Any, field: str) -> dict:
    """One Istio HTTPMatchRequest from ``{headers: {...}, cookie: 'name=value'}``; both may be given."""
    if not isinstance(value, dict) or not value:
        raise IstioSpecError(field, "expected {headers: {end-user: {exact: jason}}} or {cookie: 'user=jason'}, got %r" % (value,))
    unknown = sorted(set(value) - {"headers", "cookie"})
    if unknown:
        raise IstioSpecError(field, "unknown key %s; a match takes headers and/or cookie" % ", ".join(map(repr, unknown)))
    headers = headers_match_to_istio(value["headers"], field + ".headers") if value.get("headers") is not None else {}
    if value.get("cookie") is not None:
        if any(name.lower() == "cookie" for name in headers):
            raise IstioSpecError(field, "give the cookie either as cookie or as a Cookie header, not both")
        headers["cookie"] = cookie_match(value["cookie"], field + ".cookie")
    if not headers:
        raise IstioSpecError(field, "a match needs at least one header or a cookie; without one it would take every request")
    return {"headers": headers}


def match_label(match: dict) -> str:
    """'end-user exact jason' for the report and messages."""
    parts = []
    for name, condition in (match.get("headers") or {}).items():
        kind, text = next(iter(condition.items()))
        parts.append("%s %s %s" % (name, kind, text))
    return ", ".join(parts)


def _weight(value: t.Any, field: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)  # a weight from a form or -e key=value is text
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise IstioSpecError(field, "a weight step is a whole number from 0 to 100, got %r" % (value,))
    return value


def _mirror_percent(value: t.Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 100:
        raise IstioSpecError(field, "the share of requests to mirror is a number above 0 and at most 100, got %r" % (value,))
    return value


def read_step(raw: t.Any, index: int, weight: int, option: str = OPTION) -> dict:
    """The step at ``index`` in the common shape; ``weight`` is the plain traffic's before it."""
    field = "%s[%d]" % (option, index)
    if not isinstance(raw, dict):
        new = _weight(raw, field)
        if new < weight:
            raise IstioSpecError(field, "weight %d is below the %d%% of the step before; weights never decrease" % (new, weight))
        return {"kind": "weight", "weight": new, "label": "%d%%" % new}
    kinds = [k for k in raw if k in KINDS]
    unknown = sorted(str(k) for k in raw if k not in KINDS)
    if unknown or len(kinds) != 1:
        raise IstioSpecError(field, "a step is a weight or a mapping with one of match, mirror or pause (%s), got %r"
                             % ("unknown key %s" % ", ".join(map(repr, unknown)) if unknown else "%d given" % len(kinds), raw))
    kind = kinds[0]
    if kind == "pause":
        if raw["pause"] is not True:
            raise IstioSpecError(field + ".pause", "write {pause: true} for a step where a person decides, got %r" % (raw["pause"],))
        return {"kind": "pause", "weight": weight, "label": "pause"}
    if weight >= 100:
        raise IstioSpecError(field, "%s step needs plain traffic still on the stable version, but the step before sent "
                             "100%% to the canary; put it before the weights reach 100" % ("an A/B" if kind == "match" else "a mirror"))
    if kind == "match":
        match = match_condition(raw["match"], field + ".match")
        return {"kind": "match", "weight": weight, "match": match, "label": "A/B %s" % match_label(match)}
    percent = _mirror_percent(raw["mirror"], field + ".mirror")
    return {"kind": "mirror", "weight": weight, "mirror": percent, "label": "mirror %g%%" % percent}


def read_steps(value: t.Any, option: str = OPTION) -> list[dict]:
    """Every step of ``canary_steps`` in the common shape; IstioSpecError for the first wrong one."""
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, (list, tuple)) or not value:
        raise IstioSpecError(option, "give a non-empty list of steps, such as [10, 50, 100] or %s (got %r)" % (EXAMPLE, value))
    steps = []
    weight = 0
    for index, raw in enumerate(value):
        step = read_step(raw, index, weight, option)
        weight = step["weight"]
        steps.append(step)
    return steps


def step_problems(value: t.Any) -> list[str]:
    """Every wrong step, one message each (empty when all are right), for a check before any change."""
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, (list, tuple)) or not value:
        try:
            read_steps(value)
        except IstioSpecError as exc:
            return [str(exc)]
    problems = []
    weight = 0
    for index, raw in enumerate(value):
        try:
            step = read_step(raw, index, weight)
        except IstioSpecError as exc:
            problems.append(str(exc))
            continue
        weight = step["weight"]
    return problems


def final_weight(steps: list[dict]) -> int:
    """The canary's share of plain traffic when every step has run."""
    return steps[-1]["weight"] if steps else 0


def steps_to_run(steps: list[dict], live_weight: int, allow_weight_decrease: bool = False) -> list[dict]:
    """The steps a release still runs when the canary already has ``live_weight`` of plain traffic:
    those at or above it (all of them when decreasing is allowed)."""
    if allow_weight_decrease:
        return list(steps)
    return [step for step in steps if step["weight"] >= live_weight]


def release_plan(value: t.Any) -> dict:
    """What the playbook needs before any change: the steps read, what is wrong with them, the last weight."""
    problems = step_problems(value)
    steps = [] if problems else read_steps(value)
    return {"steps": steps, "problems": problems, "final_weight": final_weight(steps),
            "labels": [step["label"] for step in steps]}
