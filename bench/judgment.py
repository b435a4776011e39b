"""Judgment benchmark: how often the judge rolls back a healthy canary, and how fast it catches a
regression, with single-rate comparisons (today's default) and with ``confidence`` (counts pooled
over the step, judged by intervals).

The rounds are drawn, not served: each round's canary and baseline requests and 5xx answers are
binomial draws for a scenario (50 requests/s, canary at 10%, rounds of 30 s, three rounds per step:
about 150 canary and 1350 baseline requests a round), handed to the module's own round loop
(``run_step``) as the provider's answers. So the judge under test is the code users run; what is
not under test here is the query path (the integration and simulator tests hold that).

Checks, as a careful user would write them: success >= 95%, error rate <= baseline + 1 point, p99
<= 1.3 x baseline. Durations are log-normal (baseline median 50 ms, shape 0.4) counted into Istio's
duration buckets; with single rates the module gets the p99 per version (as PromQL's
histogram_quantile gives it), with ``confidence`` the buckets themselves.

Run: ``make judge-bench`` (``JUDGE_SEEDS`` seeds per scenario, 400 by default; about a minute).
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
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / ".collections"))

# pylint: disable=wrong-import-position
from ansible_collections.canary.istio.plugins.module_utils import _analysis_run as run  # noqa: E402
from ansible_collections.canary.istio.plugins.module_utils._analysis import histogram_quantile  # noqa: E402
from ansible_collections.canary.istio.plugins.module_utils._analysis_stats import wilson_interval  # noqa: E402

RATE_PER_S, CANARY_WEIGHT, ROUND_S, ROUNDS = 50, 10, 30, 3
BASELINE_ERRORS = 0.005
BASELINE_MEDIAN_MS, LATENCY_SHAPE = 50.0, 0.4
ISTIO_BUCKETS_MS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000)
CHECKS = [{"metric": "request_success_rate", "min": 95}, {"metric": "request_error_rate", "max_over_baseline": 1},
          {"metric": "request_duration_p99", "max_ratio_to_baseline": 1.3}]
# (name, canary error rate, canary latency factor, healthy?)
SCENARIOS = [
    ("identical", BASELINE_ERRORS, 1.0, True),
    ("+0.1 point of errors", BASELINE_ERRORS + 0.001, 1.0, True),
    ("+0.5 point of errors", BASELINE_ERRORS + 0.005, 1.0, True),
    ("+10% p99", BASELINE_ERRORS, 1.1, True),
    ("+2 points of errors", BASELINE_ERRORS + 0.02, 1.0, False),
    ("+5 points of errors", BASELINE_ERRORS + 0.05, 1.0, False),
    ("+10 points of errors", BASELINE_ERRORS + 0.10, 1.0, False),
    ("+50% p99", BASELINE_ERRORS, 1.5, False),
    ("+100% p99", BASELINE_ERRORS, 2.0, False),
]
MODES = [("single rates (default)", {}), ("confidence 0.95, pooled", {"confidence": 0.95}),
         ("confidence 0.8, pooled", {"confidence": 0.8})]


def _series(end_ms: int, value: float, **tags: str) -> dict:
    return {"name": "", "tags": tags, "columns": ["time", "value"], "rows": [[end_ms, value]]}


class DrawnRounds:
    """A provider whose answers are the scenario's draws, round after round: for each request, the
    version (by weight), a 5xx or not, and a duration counted into Istio's buckets."""

    def __init__(self, rng: random.Random, canary_errors: float, canary_latency: float) -> None:
        self.rng = rng
        self.profile = {"v2": (canary_errors, BASELINE_MEDIAN_MS * canary_latency), "v1": (BASELINE_ERRORS, BASELINE_MEDIAN_MS)}
        self.requests_made = 0

    def query_round(self, queries, start_ms: int, end_ms: int) -> dict:
        self.requests_made += 1
        rng = self.rng
        counts = {v: {"200": 0, "503": 0} for v in self.profile}
        buckets = {v: [0] * (len(ISTIO_BUCKETS_MS) + 1) for v in self.profile}
        for _ in range(RATE_PER_S * ROUND_S):
            version = "v2" if rng.random() < CANARY_WEIGHT / 100 else "v1"
            errors, median = self.profile[version]
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


def run_scenario(canary_errors: float, canary_latency: float, options: dict, seeds: int) -> dict:
    outcomes = {"pass": 0, "fail": 0, "inconclusive": 0}
    rounds_to_fail: list[int] = []
    for seed in range(seeds):
        params = {"service": "reviews", "namespace": "prod", "canary_version": "v2", "baseline_version": "v1",
                  "checks": CHECKS, "interval": ROUND_S, "iterations": ROUNDS, "min_requests": 50, **options}
        plan = run.plan_from_params(params)
        clock = [0.0]

        def sleep(seconds: float) -> None:
            clock[0] += seconds

        result = run.run_step(plan, DrawnRounds(random.Random(seed * 7919 + 13), canary_errors, canary_latency),
                              lambda: 1_700_000_000_000 + int(clock[0] * 1000), lambda: clock[0], sleep)
        verdict = result.verdict if not result.failed or result.verdict == "fail" else "inconclusive"
        outcomes[verdict] = outcomes.get(verdict, 0) + 1
        if result.failed:
            rounds_to_fail.append(len(result.rounds))
    return {"outcomes": outcomes, "rounds_to_rollback": rounds_to_fail}


def summarise(name: str, healthy: bool, mode: str, seeds: int, found: dict) -> dict:
    rolled_back = found["outcomes"]["fail"] + found["outcomes"]["inconclusive"]
    low, high = wilson_interval(rolled_back, seeds, 1.96)
    rounds = found["rounds_to_rollback"]
    return {
        "scenario": name, "healthy": healthy, "mode": mode, "seeds": seeds,
        "rolled_back": rolled_back, "rolled_back_pct": round(100 * rolled_back / seeds, 1),
        "rolled_back_ci95": [round(100 * low, 1), round(100 * high, 1)],
        "caught_within_2_rounds_pct": round(100 * sum(1 for r in rounds if r <= 2) / seeds, 1),
        "mean_rounds_to_rollback": round(sum(rounds) / len(rounds), 2) if rounds else None,
    }


def markdown(result: dict) -> str:
    lines = ["# Judgment benchmark", "",
             "Generated by `make judge-bench` (`bench/judgment.py`; figures in `bench/results/judgment.json`).",
             f"Run: {result['date']} on {result['machine']}, {result['seeds']} seeds per scenario.", "",
             "Each step: 50 requests/s, canary at 10%, three rounds of 30 s (about 150 canary and 1350 baseline",
             "requests a round), baseline at 0.5% of errors and a log-normal latency (median 50 ms, shape 0.4);",
             "checks success >= 95%, error rate <= baseline + 1 point, p99 <= 1.3 x baseline. Each request's",
             "version, status and duration are drawn and counted into Istio's buckets, and the answers handed",
             "to the module's own round loop: the judge is the code users run. A healthy canary rolled back is",
             "a false alarm; a regression not rolled back is a miss.", "",
             "| scenario | healthy | mode | rolled back | 95% interval | caught within 2 rounds | mean rounds to roll back |",
             "|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        lines.append(f"| {row['scenario']} | {'yes' if row['healthy'] else 'no'} | {row['mode']} | {row['rolled_back_pct']}% | "
                     f"{row['rolled_back_ci95'][0]}-{row['rolled_back_ci95'][1]}% | "
                     f"{'' if row['healthy'] else str(row['caught_within_2_rounds_pct']) + '%'} | "
                     f"{row['mean_rounds_to_rollback'] if row['mean_rounds_to_rollback'] is not None else '-'} |")
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
              "neither mode sees +50% reliably from the histogram; a doubled p99 crosses a bucket and is seen.",
              "Per-request span durations (Guance's T::) would resolve it; that is not built yet.", ""]
    return "\n".join(lines)


def main() -> int:
    seeds = int(os.environ.get("JUDGE_SEEDS", "400"))
    rows = []
    for name, errors, latency, healthy in SCENARIOS:
        for mode, options in MODES:
            rows.append(summarise(name, healthy, mode, seeds, run_scenario(errors, latency, options, seeds)))
            row = rows[-1]
            print(f"{name:24} {mode:26} rolled back {row['rolled_back_pct']:5}% "
                  f"(95% {row['rolled_back_ci95'][0]}-{row['rolled_back_ci95'][1]}%)", flush=True)
    result = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "machine": f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}",
              "seeds": seeds, "rows": rows}
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "judgment.json").write_text(json.dumps(result, indent=2) + "\n")
    (REPO / "docs" / "judgment.md").write_text(markdown(result))
    print(f"results: {out / 'judgment.json'}; page: {REPO / 'docs' / 'judgment.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
