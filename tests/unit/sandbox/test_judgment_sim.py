"""bench/judgment_sim.py: one step on a fresh simulator per seed, judged by the module's round loop
through the real Guance client. A few seeds of telling scenarios, so the benchmark's harness is
known to work (and to measure the code users run) before anyone spends minutes on it."""
from __future__ import annotations

import pytest

from bench import judgment_sim as js

RANK = dict(js.MODES)["confidence 0.95, rank test on durations"]


def scenario(name: str) -> js.SimScenario:
    return next(s for s in js.SCENARIOS if s.name == name)


def test_a_healthy_canary_is_promoted_after_the_steps_three_rounds() -> None:
    assert js.run_seed(scenario("identical"), RANK, 29) == ("pass", 3)


@pytest.mark.parametrize("name, outcome, rounds", [
    ("no Ready canary pod", "fail", 1),  # the traffic share: nothing reached the canary
    ("the mesh ignores the VirtualService", "fail", 1),
    ("crash after 40 s", "fail", 2),  # the second round's window holds the crash
    ("+100% latency", "fail", 1),
    ("Guance down", "fail", 1),  # an error, which a release rolls back
    ("missing metrics", "inconclusive", 3),
])
def test_regressions_and_missing_data_are_never_promoted(name, outcome, rounds) -> None:
    assert js.run_seed(scenario(name), RANK, 29) == (outcome, rounds)


def test_a_step_sends_its_traffic_through_the_simulated_mesh() -> None:
    step = js.SimStep(scenario("identical"), 1)
    try:
        sent = step.simulator.run_until(step.clock.now_ms())
        assert sent == 0  # the history up to T0 was sent when the step was made
        step.sleep(30)
        totals = step.simulator.recorder.totals()
        canary = sum(s.count for key, s in totals.items() if js.CANARY in key and "destination" in key)
        baseline = sum(s.count for key, s in totals.items() if js.BASELINE in key and "destination" in key)
        # 90 s of 50 requests/s split 90/10.
        assert 4400 <= canary + baseline <= 4600 and 0.06 <= canary / (canary + baseline) <= 0.14
    finally:
        step.close()
