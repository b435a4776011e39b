"""Judgment benchmark: how often the judge rolls back a healthy canary, and how fast it catches a
regression, with single-rate comparisons (today's default) and with ``confidence`` (counts pooled
over the step, judged by intervals).

The rounds are drawn, not served: each round's canary and baseline requests and 5xx answers are
binomial draws for a scenario (50 requests/s, canary at 10%, rounds of 30 s, three rounds per step:
about 150 canary and 1350 baseline requests a round), handed to the module's own round loop
(``run_step``) as the provider's answers. So the judge under test is the code users run; what is
not under test here is the query path (the integration and simulator tests hold that).

Checks, as a careful user would write them: success >= 95%, error rate <= baseline + 1 point, p99
<= 1.3 x baseline (or, in the last mode, the duration distribution by a rank test, allowed x1.3).
Durations are log-normal (baseline median 50 ms, shape 0.4) counted into Istio's duration
buckets; with single rates the module gets the p99 per version (as PromQL's
histogram_quantile gives it), with ``confidence`` the buckets themselves.

Scenarios: healthy canaries (identical, a little more errors or latency) and regressions (more
errors, errors for one header's users, a crash mid-step, a slower p99, a mesh that ignores the
weights), and the cases that must never promote: missing metrics, Guance down, too little traffic.

Run: ``make judge-bench`` (``JUDGE_SEEDS`` seeds per scenario, 400 by default; about a minute on two cores).
Writes ``bench/results/judgment.json`` and ``docs/judgment.md`` and prints the table.
"""
from __future__ import annotations

import bisect
import datetime
import json
import math
import os
import platform
import random
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / ".collections"))
sys.path.insert(0, str(REPO))

# pylint: disable=wrong-import-position
from ansible_collections.canary.istio.plugins.module_utils._analysis import rounds as analysis_rounds  # noqa: E402
from ansible_collections.canary.istio.plugins.module_utils._analysis import settings as analysis_settings  # noqa: E402
from ansible_collections.canary.istio.plugins.module_utils._analysis.answers import histogram_quantile  # noqa: E402
from ansible_collections.canary.istio.plugins.module_utils._analysis.stats import wilson_interval  # noqa: E402

RATE_PER_S, CANARY_WEIGHT, ROUND_S, ROUNDS = 50, 10, 30, 3
BASELINE_ERRORS = 0.005
BASELINE_MEDIAN_MS, LATENCY_SHAPE = 50.0, 0.4
ISTIO_BUCKETS_MS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000)
CHECKS = [{"metric": "request_success_rate", "min": 95}, {"metric": "request_error_rate", "max_over_baseline": 1},
          {"metric": "request_duration_p99", "max_ratio_to_baseline": 1.3}]


@dataclass(frozen=True)
class Scenario:
    """One kind of canary. ``crash_round``: from this round on every canary request fails;
    ``share``: the canary's real share of requests (a mesh that ignores the weights); ``no_data``:
    the provider answers without series; ``down``: the provider does not answer; ``rate``: requests
    a second to the service."""

    name: str
    healthy: bool
    errors: float = BASELINE_ERRORS
    latency: float = 1.0
    crash_round: int | None = None
    share: float = CANARY_WEIGHT / 100
    no_data: bool = False
    down: bool = False
    rate: int = RATE_PER_S


SCENARIOS = [
    Scenario("identical", True),
    Scenario("+0.1 point of errors", True, errors=BASELINE_ERRORS + 0.001),
    Scenario("+0.5 point of errors", True, errors=BASELINE_ERRORS + 0.005),
    Scenario("+10% p99", True, latency=1.1),
    Scenario("faster (-30% latency)", True, latency=0.7),
    Scenario("+2 points of errors", False, errors=BASELINE_ERRORS + 0.02),
    Scenario("+5 points of errors", False, errors=BASELINE_ERRORS + 0.05),
    Scenario("+10 points of errors", False, errors=BASELINE_ERRORS + 0.10),
    Scenario("errors for one header's users (20%)", False, errors=0.2),
    Scenario("crash in the second round", False, crash_round=2),
    Scenario("+50% p99", False, latency=1.5),
    Scenario("+100% p99", False, latency=2.0),
    Scenario("the mesh ignores the weights (canary 50%)", False, share=0.5),
    Scenario("missing metrics", False, no_data=True),
    Scenario("Guance down", False, down=True),
    Scenario("too little traffic (1 request/s)", False, rate=1),
]
MISSING_DATA = ("missing metrics", "Guance down", "too little traffic (1 request/s)", "no Ready canary pod")
# The same error checks with the duration distribution judged by a rank test instead of a p99.
RANK_CHECKS = CHECKS[:2] + [{"metric": "request_duration", "max_ratio_to_baseline": 1.3}]
MODES = [("single rates (default)", {}), ("confidence 0.95, pooled", {"confidence": 0.95}),
         ("confidence 0.8, pooled", {"confidence": 0.8}),
         ("confidence 0.95, rank test on durations", {"confidence": 0.95, "checks": RANK_CHECKS})]


def _series(end_ms: int, value: float, **tags: str) -> dict:
    return {"name": "", "tags": tags, "columns": ["time", "value"], "rows": [[end_ms, value]]}


class DrawnRounds:
    """A provider whose answers are the scenario's draws, round after round: for each request, the
    version (by weight), a 5xx or not, and a duration counted into Istio's buckets."""

    def __init__(self, rng: random.Random, scenario: Scenario) -> None:
        self.rng = rng
        self.scenario = scenario
        self.profile = {"v2": (scenario.errors, BASELINE_MEDIAN_MS * scenario.latency), "v1": (BASELINE_ERRORS, BASELINE_MEDIAN_MS)}
        self.requests_made = 0

    def query_round(self, queries, start_ms: int, end_ms: int) -> dict:
        self.requests_made += 1
        scenario = self.scenario
        if scenario.down:
            raise analysis_rounds.RoundQueryError("querying Guance: no answer within timeout=30s")
        if scenario.no_data:
            return {query.key: [] for query in queries}
        crashed = scenario.crash_round is not None and self.requests_made >= scenario.crash_round
        rng = self.rng
        counts = {v: {"200": 0, "503": 0} for v in self.profile}
        buckets = {v: [0] * (len(ISTIO_BUCKETS_MS) + 1) for v in self.profile}
        for _request in range(scenario.rate * ROUND_S):
            version = "v2" if rng.random() < scenario.share else "v1"
            errors, median = self.profile[version]
            errors = 1.0 if crashed and version == "v2" else errors
            counts[version]["503" if rng.random() < errors else "200"] += 1
            duration = median * math.exp(LATENCY_SHAPE * rng.gauss(0.0, 1.0))
            buckets[version][bisect.bisect_left(ISTIO_BUCKETS_MS, duration)] += 1
        requests = [_series(end_ms, n, destination_version=v, response_code=code)
                    for v, by_code in counts.items() for code, n in by_code.items() if n]
        histograms = {}
        for version, per_bucket in buckets.items():
            cumulative, total = {}, 0
            for bound, n in zip((*ISTIO_BUCKETS_MS, math.inf), per_bucket):
                total += n
                cumulative[bound] = total
            histograms[version] = cumulative
        answers = {}
        for query in queries:
            if query.key == "requests":
                answers[query.key] = requests
            elif query.key == "latency" and query.query.startswith("histogram_quantile"):
                answers[query.key] = [_series(end_ms, histogram_quantile(0.99, h), destination_version=v)
                                      for v, h in histograms.items() if h[math.inf]]
            elif query.key == "latency":
                answers[query.key] = [_series(end_ms, n, destination_version=v, le="+Inf" if b == math.inf else f"{b:g}")
                                      for v, h in histograms.items() for b, n in h.items()]
            else:
                answers[query.key] = []
        return answers


def run_scenario(scenario: Scenario, options: dict, seeds: int) -> dict:
    """Each seed one step, as a release runs it (the step's weight as ``expected_weight``). An error
    (the provider down) ends the step without a verdict, which a release rolls back."""
    outcomes = {"pass": 0, "fail": 0, "inconclusive": 0}
    rounds_to_fail: list[int] = []
    for seed in range(seeds):
        params = {"service": "reviews", "namespace": "prod", "canary_version": "v2", "baseline_version": "v1",
                  "checks": CHECKS, "interval": ROUND_S, "iterations": ROUNDS, "min_requests": 50,
                  "expected_weight": CANARY_WEIGHT, **options}
        plan = analysis_settings.plan_from_params(params)
        clock = [0.0]

        def sleep(seconds: float) -> None:
            clock[0] += seconds

        try:
            result = analysis_rounds.run_step(plan, DrawnRounds(random.Random(seed * 7919 + 13), scenario),
                                              lambda: 1_700_000_000_000 + int(clock[0] * 1000), lambda: clock[0], sleep)
        except analysis_rounds.StepError as exc:
            outcomes["fail"] += 1
            rounds_to_fail.append(len(exc.rounds) + 1)
            continue
        verdict = result.verdict if not result.failed or result.verdict == "fail" else "inconclusive"
        outcomes[verdict] = outcomes.get(verdict, 0) + 1
        if result.failed:
            rounds_to_fail.append(len(result.rounds))
    return {"outcomes": outcomes, "rounds_to_rollback": rounds_to_fail}


def summarise(name: str, healthy: bool, mode: str, seeds: int, found: dict) -> dict:
    rolled_back = found["outcomes"]["fail"] + found["outcomes"]["inconclusive"]
    promoted = found["outcomes"]["pass"]
    low, high = wilson_interval(rolled_back, seeds, 1.96)
    rounds = found["rounds_to_rollback"]
    return {
        "scenario": name, "healthy": healthy, "mode": mode, "seeds": seeds,
        "rolled_back": rolled_back, "rolled_back_pct": round(100 * rolled_back / seeds, 1), "promoted": promoted,
        "rolled_back_ci95": [round(100 * low, 1), round(100 * high, 1)],
        "caught_within_2_rounds_pct": round(100 * sum(1 for r in rounds if r <= 2) / seeds, 1),
        "mean_rounds_to_rollback": round(sum(rounds) / len(rounds), 2) if rounds else None,
    }


def _table(rows: list[dict]) -> list[str]:
    lines = ["| scenario | healthy | mode | promoted | rolled back | 95% interval | caught within 2 rounds | mean rounds to roll back |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['scenario']} | {'yes' if row['healthy'] else 'no'} | {row['mode']} | {row['promoted']} | "
                     f"{row['rolled_back_pct']}% | "
                     f"{row['rolled_back_ci95'][0]}-{row['rolled_back_ci95'][1]}% | "
                     f"{'' if row['healthy'] else str(row['caught_within_2_rounds_pct']) + '%'} | "
                     f"{row['mean_rounds_to_rollback'] if row['mean_rounds_to_rollback'] is not None else '-'} |")
    return lines


def markdown(result: dict) -> str:
    lines = ["# Judgment benchmark", "",
             "Generated by `make judge-bench` (`bench/judgment.py`; figures in `bench/results/judgment.json`).",
             f"Run: {result['date']} on {result['machine']}, {result['seeds']} seeds per scenario.", "",
             "Each step: 50 requests/s, canary at 10%, three rounds of 30 s (about 150 canary and 1350 baseline",
             "requests a round), baseline at 0.5% of errors and a log-normal latency (median 50 ms, shape 0.4);",
             "checks success >= 95%, error rate <= baseline + 1 point, p99 <= 1.3 x baseline. Each request's",
             "version, status and duration are drawn and counted into Istio's buckets, and the answers handed",
             "to the module's own round loop: the judge is the code users run. A healthy canary rolled back is",
             "a false alarm; a regression not rolled back is a miss.", "", "## Drawn rounds", ""]
    lines += _table(result["rows"])
    missing = [r for r in result["rows"] if r["scenario"] in MISSING_DATA]
    lines += ["", f"Promotions on missing data (missing metrics, Guance down, too little traffic), all modes: "
              f"{sum(r['promoted'] for r in missing)} of {sum(r['seeds'] for r in missing)} steps.", ""]
    lines += ["", "Read it so: with single rates, each round of ~150 canary requests compares one error rate with",
              "baseline + 1 point, and a healthy canary whose few errors bunch up in one round is rolled back.",
              "With `confidence`, the step's rounds are pooled and a bound fails only when the interval shows",
              "it (the confidence spread over the step's rounds), so false alarms stay below 1 - confidence per",
              "step, and large regressions still fail in the first round. A regression just past the bound",
              "(+2 points against a bound of baseline + 1, at ~150 requests a round) takes the pooled rounds to",
              "show: fewer are caught within two rounds than with single rates. Lower the confidence, or the",
              "bound, or hold steps longer (more requests) to catch it sooner; the rows show the trade.", "",
              "Latency: Istio's default duration buckets are coarse (100, 250, 500 ms...). A p99 of 127 ms and",
              "one 50% higher both fall in the 100-250 ms bucket, where the p99 is interpolated linearly, so",
              "no p99 check sees +50% reliably from the histogram; a doubled p99 crosses a bucket and is seen",
              "by single rates more often than by the p99's rank interval, which spans the top buckets at a few",
              "hundred requests. The last mode replaces the p99 check with `request_duration` (max_ratio_to_baseline",
              "1.3): a Mann-Whitney rank test on the whole histogram, every request counting instead of the two or",
              "three that make a p99, with the ratio of means as the effect and 1.3 as the dead zone. It sees a",
              "+50% and a doubled latency, and does not roll back +10% or a faster canary.", ""]
    sim = result.get("simulator")
    if sim:
        lines += ["## On the simulator", "",
                  f"`bench/judgment_sim.py`, {sim['seeds']} seeds per scenario: the same step (50 requests/s to",
                  "reviews, VirtualService 90/10 between v1 and the canary v6, three rounds of 30 s, the same checks)",
                  "served end to end but for the cluster: requests routed by the simulated mesh, counters scraped",
                  "every 10 s, the module's round loop with the real Guance client asking DQL over HTTP of the",
                  "simulator's OpenAPI, on a manual clock that the rounds' waits move. So the query path, the DQL",
                  "buckets (a new series counts from its first scrape) and the routing are under test too, and",
                  "failures the drawn rounds cannot make: a canary without a Ready pod, a mesh that ignores the",
                  "VirtualService, every canary request failing 40 s into the step. Not here: errors for one",
                  "header's users (the simulator's profiles do not depend on headers).", ""]
        lines += _table(sim["rows"])
        lines += ["", f"Promotions on missing data here: "
                  f"{sum(r['promoted'] for r in sim['rows'] if r['scenario'] in MISSING_DATA)} of "
                  f"{sum(r['seeds'] for r in sim['rows'] if r['scenario'] in MISSING_DATA)} steps.", ""]
    return "\n".join(lines)


def main() -> int:
    seeds = int(os.environ.get("JUDGE_SEEDS", "400"))
    rows = []
    for scenario in SCENARIOS:
        for mode, options in MODES:
            rows.append(summarise(scenario.name, scenario.healthy, mode, seeds, run_scenario(scenario, options, seeds)))
            row = rows[-1]
            print(f"{scenario.name:42} {mode:26} rolled back {row['rolled_back_pct']:5}% "
                  f"(95% {row['rolled_back_ci95'][0]}-{row['rolled_back_ci95'][1]}%)", flush=True)
    # Imported here: judgment_sim takes this file's settings, so it cannot be imported above.
    from bench import judgment_sim  # pylint: disable=import-outside-toplevel

    sim_seeds = int(os.environ.get("JUDGE_SIM_SEEDS", "40"))
    sim_rows = []
    for scenario in judgment_sim.SCENARIOS:
        for mode, options in judgment_sim.MODES:
            found = judgment_sim.run_scenario(scenario, options, sim_seeds)
            sim_rows.append(summarise(scenario.name, scenario.healthy, mode, sim_seeds, found))
            row = sim_rows[-1]
            print(f"simulator: {scenario.name:36} {mode:26} rolled back {row['rolled_back_pct']:5}% "
                  f"(95% {row['rolled_back_ci95'][0]}-{row['rolled_back_ci95'][1]}%)", flush=True)
    result = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "machine": f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}",
              "seeds": seeds, "rows": rows, "simulator": {"seeds": sim_seeds, "rows": sim_rows}}
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "judgment.json").write_text(json.dumps(result, indent=2) + "\n")
    (REPO / "docs" / "judgment.md").write_text(markdown(result))
    print(f"results: {out / 'judgment.json'}; page: {REPO / 'docs' / 'judgment.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
