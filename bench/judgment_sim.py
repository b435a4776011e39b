"""Judgment benchmark on the simulator: the scenarios of ``bench/judgment.py`` served the way a
release meets them, end to end but for the cluster.

Each step is one seed: a fresh simulator (its mesh routes ``reviews`` 90/10 between v1 and the
canary by a VirtualService, its recorder scrapes the sidecars every 10 s like DataKit) on a
manual clock, its Guance OpenAPI on loopback, and the module's own round loop (``run_step``)
with the real Guance client asking DQL over HTTP. Sleeping between rounds moves the clock and
sends the traffic due, so a 90 s step takes a fraction of a second and the judge, the client,
the queries, the DQL engine and the routing are all the code that runs on the sandbox.

What differs from the drawn benchmark: requests go through the simulated mesh (a canary without
a Ready pod, a mesh that ignores the VirtualService, errors injected mid-step), counts come from
scraped counters and DQL buckets (a new series counts from its first scrape), and fewer seeds
(``JUDGE_SIM_SEEDS``, 40 by default) because every request is simulated.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / ".collections"))
sys.path.insert(0, str(REPO))

# pylint: disable=wrong-import-position
from ansible_collections.canary.istio.plugins.module_utils._analysis import rounds as analysis_rounds  # noqa: E402
from ansible_collections.canary.istio.plugins.module_utils._analysis import settings as analysis_settings  # noqa: E402
from ansible_collections.canary.istio.plugins.modules.canary_analysis import round_source  # noqa: E402
from bench.judgment import (  # noqa: E402
    BASELINE_ERRORS, BASELINE_MEDIAN_MS, CANARY_WEIGHT, CHECKS, RANK_CHECKS, RATE_PER_S, ROUND_S, ROUNDS)
from sandbox.sim import bookinfo  # noqa: E402
from sandbox.sim.record import ManualClock, Recorder  # noqa: E402
from sandbox.sim.routing import Mesh  # noqa: E402
from sandbox.sim.server import Faults, GuanceServer, Simulation  # noqa: E402
from sandbox.sim.traffic import Profiles, Simulator, TrafficSpec  # noqa: E402

KEY = "judgment-bench-key-7f3a9c"
NAMESPACE = "bench"
BASELINE, CANARY = "v1", "v6"
SCRAPE_S = 10  # DataKit's scrape of the sidecars, as on the sandbox
HISTORY_S = 60  # traffic before the step, so the DQL lookback buckets hold the baseline's counters
T0_MS = 1_764_000_000_000


@dataclass(frozen=True)
class SimScenario:
    """``crash_after_s``: from then on every canary request fails; ``no_pod``: the canary has no
    Ready pod; ``ignored``: the mesh ignores the VirtualService; ``omit``: Guance answers without
    series; ``down``: Guance answers 503."""

    name: str
    healthy: bool
    errors: float = BASELINE_ERRORS
    latency: float = 1.0
    crash_after_s: int | None = None
    no_pod: bool = False
    ignored: bool = False
    omit: bool = False
    down: bool = False
    rate: int = RATE_PER_S


SCENARIOS = [
    SimScenario("identical", True),
    SimScenario("+0.1 point of errors", True, errors=BASELINE_ERRORS + 0.001),
    SimScenario("+10% latency", True, latency=1.1),
    SimScenario("faster (-30% latency)", True, latency=0.7),
    SimScenario("+2 points of errors", False, errors=BASELINE_ERRORS + 0.02),
    SimScenario("+5 points of errors", False, errors=BASELINE_ERRORS + 0.05),
    SimScenario("crash after 40 s", False, crash_after_s=40),
    SimScenario("+50% latency", False, latency=1.5),
    SimScenario("+100% latency", False, latency=2.0),
    SimScenario("no Ready canary pod", False, no_pod=True),
    SimScenario("the mesh ignores the VirtualService", False, ignored=True),
    SimScenario("missing metrics", False, omit=True),
    SimScenario("Guance down", False, down=True),
    SimScenario("too little traffic (1 request/s)", False, rate=1),
]
MODES = [("single rates (default)", {}),
         ("confidence 0.95, rank test on durations", {"confidence": 0.95, "checks": RANK_CHECKS})]


def _mesh(no_pod: bool) -> Mesh:
    routes = [{"destination": {"host": "reviews", "subset": BASELINE}, "weight": 100 - CANARY_WEIGHT},
              {"destination": {"host": "reviews", "subset": CANARY}, "weight": CANARY_WEIGHT}]
    pods = [bookinfo.make_pod("reviews", BASELINE, NAMESPACE)] + ([] if no_pod else [bookinfo.make_pod("reviews", CANARY, NAMESPACE)])
    return Mesh(
        NAMESPACE,
        virtual_services=[{"kind": "VirtualService", "metadata": {"name": "reviews"},
                           "spec": {"hosts": ["reviews"], "http": [{"route": routes}]}}],
        destination_rules=[{"kind": "DestinationRule", "metadata": {"name": "reviews"}, "spec": {
            "host": "reviews", "subsets": [{"name": v, "labels": {"version": v}} for v in (BASELINE, CANARY)]}}],
        services=[bookinfo.make_service("reviews", NAMESPACE)], pods=pods)


class SimStep:
    """One step of one seed on a fresh simulator; ``sleep`` moves its clock and sends the traffic."""

    def __init__(self, scenario: SimScenario, seed: int) -> None:
        self.scenario = scenario
        self.clock = ManualClock(T0_MS)
        profiles = Profiles()
        profiles.set("reviews", BASELINE, NAMESPACE, error_rate=BASELINE_ERRORS, latency_ms=BASELINE_MEDIAN_MS)
        profiles.set("reviews", CANARY, NAMESPACE, error_rate=scenario.errors,
                     latency_ms=BASELINE_MEDIAN_MS * scenario.latency)
        self.profiles = profiles
        recorder = Recorder(scrape_interval_ms=SCRAPE_S * 1000)
        mesh = _mesh(scenario.no_pod)
        self.simulator = Simulator(lambda cluster, ns: mesh, recorder, profiles, seed=seed, calls=lambda service, version: [])
        if scenario.ignored:
            self.simulator.ignoring.add(("local", NAMESPACE))
        spec = TrafficSpec("local", NAMESPACE, "reviews", rate=scenario.rate)
        spec.next_ms = T0_MS - HISTORY_S * 1000
        self.simulator.specs.append(spec)
        self.simulator.run_until(T0_MS)
        faults = Faults(rate_limit=10**6, workspace_rate_limit=10**6, omit_series=scenario.omit,
                        status=503 if scenario.down else None)
        self.server = GuanceServer(Simulation(recorder=recorder, clock=self.clock, simulator=self.simulator,
                                              api_keys={KEY}, faults=faults))
        self.url = self.server.start()["guance_openapi"]
        self.crashed = False

    def sleep(self, seconds: float) -> None:
        self.clock.advance(int(seconds * 1000))
        crash = self.scenario.crash_after_s
        if crash is not None and not self.crashed and self.clock.now_ms() >= T0_MS + crash * 1000:
            # Traffic up to the crash with the old profile, then every canary request fails.
            self.simulator.run_until(T0_MS + crash * 1000)
            self.profiles.set("reviews", CANARY, NAMESPACE, error_rate=1.0)
            self.crashed = True
        self.simulator.run_until(self.clock.now_ms())

    def monotonic(self) -> float:
        return (self.clock.now_ms() - T0_MS) / 1000.0

    def close(self) -> None:
        self.server.stop()


def run_seed(scenario: SimScenario, options: dict, seed: int) -> tuple[str, int]:
    """(outcome, rounds): ``pass``, ``fail`` (a verdict or an error, both roll back) or
    ``inconclusive`` (fails the task by default, so it rolls back too)."""
    step = SimStep(scenario, seed)
    params = {"url": step.url, "api_key": KEY, "retry_budget": 0, "service": "reviews", "namespace": NAMESPACE,
              "canary_version": CANARY, "baseline_version": BASELINE, "istio_query_language": "dql",
              "scrape_interval": SCRAPE_S, "interval": ROUND_S, "iterations": ROUNDS, "min_requests": 50,
              "expected_weight": CANARY_WEIGHT, "checks": CHECKS, **options}
    try:
        plan = analysis_settings.plan_from_params(params)
        source = round_source(params, plan.provider, plan.step.interval_s)
        try:
            result = analysis_rounds.run_step(plan, source, step.clock.now_ms, step.monotonic, step.sleep)
        except analysis_rounds.StepError as exc:
            return "fail", len(exc.rounds) + 1
        finally:
            source.close()
    finally:
        step.close()
    if not result.failed:
        return "pass", len(result.rounds)
    return ("fail" if result.verdict == "fail" else "inconclusive"), len(result.rounds)


def run_scenario(scenario: SimScenario, options: dict, seeds: int) -> dict:
    outcomes = {"pass": 0, "fail": 0, "inconclusive": 0}
    rounds_to_fail: list[int] = []
    for seed in range(seeds):
        outcome, rounds = run_seed(scenario, options, seed * 7919 + 29)
        outcomes[outcome] += 1
        if outcome != "pass":
            rounds_to_fail.append(rounds)
    return {"outcomes": outcomes, "rounds_to_rollback": rounds_to_fail}
