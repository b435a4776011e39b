"""A whole canary_release with analysis: the collection's own overhead by number of steps and clusters.

Run: .venv/bin/python -m bench.release_scale   (BENCH_REPEAT=1 by default: a repetition is six whole
releases, 34 analysed steps in all, about 8 minutes on a shared 2-core machine; BENCH_REPEAT=3 gives
medians over repetitions in about 25. Per-step figures are medians over the steps of a release.)

(a) canary_release with 2, 4, 8 and 16 steps (evenly spaced up to 100) on one sandbox cluster, each
step judged by canary_analysis against the simulator's Guance OpenAPI (its PromQL answered by the
sandbox's Prometheus). The ansible-playbook run's wall time minus its configured waits (each
analysis round waits one check interval; no other hold runs when the analysis is on) is the
collection's own overhead, Ansible's included. The task timer splits it into each step's (from one
step's traffic_split to the next, less that step's rounds) and the fixed rest (start, validation,
rules, lock, canary deployed, promotion, report).
(b) The same 2-step release on 1, 2 and 4 clusters at once: one inventory host per cluster, forks
and canary_wave_size the number of clusters (one wave); wall time against one cluster. The 2-step
single-cluster release is one run shared by (a) and (b).
Releases are interleaved repetition by repetition, each in a fresh namespace with reviews v1 and
simulated traffic, set up before the clock starts; an ansible-playbook run of one ping task is
measured beside them. Writes bench/results/release_scale.json; its notes are bench/notes/release_scale.md,
rendered with the result's ``figures``.
"""
from __future__ import annotations

import json
import os
import re
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import requests
import yaml

from bench import _common as common
from sandbox import control, versions

REPEAT = int(os.environ.get("BENCH_REPEAT", "1"))
STEP_COUNTS = (2, 4, 8, 16)
CLUSTER_COUNTS = (1, 2, 4)
CLUSTER_STEPS = 2  # (b) runs the 2-step release
IMAGE = "docker.io/istio/examples-bookinfo-reviews-v2:1.20.1"
RATE = 30  # simulated requests a second to reviews, per cluster
INTERVAL = 1  # seconds between rounds: the shortest the module takes
# A new series (the canary's, at the first step) needs two scrapes (every 2 s) before increase()
# sees it: rather than a long interval on every step, an inconclusive round is followed by another
# (inconclusive: wait; up to threshold rounds). Each round run is one interval of configured wait.
ANALYSIS = {"provider": "guance", "interval": INTERVAL, "iterations": 1, "threshold": 8, "inconclusive": "wait",
            "window": 8, "min_requests": 1, "checks": [{"metric": "request_success_rate", "min": 90}],
            "labels": {"destination_cluster": "{{ inventory_hostname }}"}}
STEP_TASK = "Shift traffic to the canary, weight"  # the shift_traffic role's traffic_split: a step begins
PROMOTE_TASK = "All traffic to the canary"  # the promote role's first task: the steps are over
TITLE = "A whole canary_release with analysis: overhead by number of steps and of clusters"


def steps_of(count: int) -> list[int]:
    return [round(100 * i / count) for i in range(1, count + 1)]


class Release:
    """One timed canary_release over the first ``clusters`` sandbox clusters, in a fresh namespace."""

    def __init__(self, clusters: list, steps: int, endpoints: dict, tmp: str):
        self.clusters, self.steps, self.endpoints, self.tmp = clusters, steps, endpoints, tmp
        self.ns = f"bench-scale-{steps}s{len(clusters)}c-{uuid.uuid4().hex[:6]}"

    def _traffic(self, rate: float) -> None:
        for c in self.clusters:
            requests.post(f"{self.endpoints['control']}/traffic", timeout=10,
                          json={"cluster": c.name, "namespace": self.ns, "service": "reviews", "rate": rate}).raise_for_status()

    def _inventory(self) -> str:
        hosts = {c.name: {"ansible_connection": "local", "canary_context": c.name} for c in self.clusters}
        path = Path(self.tmp, f"inventory-{self.ns}.yml")
        path.write_text(yaml.safe_dump({"all": {"vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
                                                "children": {"clusters": {"hosts": hosts}}}}))
        return str(path)

    def _vars(self) -> str:
        extra = {"canary_app": "reviews", "canary_namespace": self.ns, "canary_stable_version": "v1", "canary_version": "v2",
                 "canary_image": IMAGE, "canary_steps": steps_of(self.steps), "canary_hosts": "clusters",
                 "canary_wave_size": len(self.clusters), "canary_kubeconfig": str(common.RELEASE_KUBECONFIG),
                 "canary_report_dir": str(Path(self.tmp, "reports")), "canary_release_id": self.ns,
                 "canary_analysis": {**ANALYSIS, "guance": {"url": self.endpoints["guance_openapi"],
                                                            "api_key": self.endpoints["guance_api_key"]}}}
        path = Path(self.tmp, f"vars-{self.ns}.json")
        path.write_text(json.dumps(extra))
        return f"@{path}"

    def run(self) -> dict:
        common.in_parallel(lambda c: common.deploy_reviews(c.admin(), self.ns, ("v1",)), self.clusters)
        self._traffic(RATE)
        try:
            done = common.run_playbook("canary.istio.canary_release", "-i", self._inventory(), "-f", str(len(self.clusters)),
                                       "-e", self._vars())
        finally:
            self._traffic(0)
            for c in self.clusters:
                c.admin().delete(f"/api/v1/namespaces/{self.ns}")
        return self._measured(done)

    def _rounds(self, cluster: str) -> dict[int, int]:
        """Analysis rounds run on one cluster, by step number, from its release report's records."""
        path = Path(self.tmp, "reports", self.ns, cluster, "records.json")
        records = json.loads(path.read_text())["records"] if path.exists() else []
        return {r["step"]: len((r.get("analysis") or {}).get("rounds") or []) for r in records if r["event"] == "analysis"}

    def _measured(self, done: common.PlaybookRun) -> dict:
        """Wall time, configured waits (rounds x interval; the slowest cluster's when several), overhead, and
        on one cluster each step's overhead."""
        rounds = {c.name: self._rounds(c.name) for c in self.clusters}
        waits = max(sum(by_step.values()) for by_step in rounds.values()) * INTERVAL
        measured = {"steps": self.steps, "clusters": len(self.clusters), "ok": done.ok, "wall_s": round(done.seconds, 2),
                    "rounds": {name: sum(by_step.values()) for name, by_step in rounds.items()}, "waits_s": waits,
                    "overhead_s": round(done.seconds - waits, 2),
                    "first_task_s": round(min(t["start"] for t in done.tasks) - done.started_at, 2) if done.tasks else None,
                    "failure": None if done.ok else done.tail()[-1500:]}
        measured["slowest_tasks_s"] = slowest_tasks(done.tasks)
        if len(self.clusters) == 1 and done.ok:
            measured["step_overheads_s"] = step_overheads(done.tasks, rounds[self.clusters[0].name])
            measured["fixed_overhead_s"] = round(measured["overhead_s"] - sum(measured["step_overheads_s"]), 2)
        return measured


def step_overheads(tasks: list[dict], rounds: dict[int, int]) -> list[float]:
    """Each step's overhead: from its traffic_split to the next step's (or the promotion's), less its rounds' waits."""
    starts = sorted(t["start"] for t in tasks if STEP_TASK in t["task"])
    ends = starts[1:] + [min(t["start"] for t in tasks if PROMOTE_TASK in t["task"])]
    return [round(end - start - rounds.get(number, 0) * INTERVAL, 2) for number, (start, end) in enumerate(zip(starts, ends), 1)]


def slowest_tasks(tasks: list[dict], count: int = 8) -> dict[str, float]:
    """Seconds by task (names with their numbers as N, so a step's tasks add up over the steps; summed over
    hosts), the largest first: where the time goes."""
    total: dict[str, float] = {}
    for task in tasks:
        name = re.sub(r"\d+", "N", task["task"])
        total[name] = total.get(name, 0) + task["seconds"]
    return {name: round(seconds, 2) for name, seconds in sorted(total.items(), key=lambda item: -item[1])[:count]}


def ping_baseline() -> float:
    """Wall seconds of an ansible-playbook run of one ping task: what any playbook costs to start."""
    play = [{"name": "ping", "hosts": "localhost", "gather_facts": False, "tasks": [{"name": "ping", "ansible.builtin.ping": {}}]}]
    return common.run_playbook(play).seconds


def configurations() -> list[tuple[int, int]]:
    """(steps, clusters) of each release in a repetition; the 2-step single-cluster one serves both parts."""
    return [(steps, 1) for steps in STEP_COUNTS] + [(CLUSTER_STEPS, n) for n in CLUSTER_COUNTS if n > 1]


def _ok(found: list[dict]) -> list[dict]:
    """The runs that completed; all of them when none did (the table still shows something, marked by 'ok runs')."""
    return [r for r in found if r["ok"]] or found


def _median(values) -> float | str:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 2) if values else "-"


def rows_of(runs: dict[tuple[int, int], list[dict]]) -> list[list]:
    one_cluster = statistics.median(r["wall_s"] for r in _ok(runs[(CLUSTER_STEPS, 1)]))
    rows = []
    for (steps, clusters), found in runs.items():
        ok = _ok(found)
        wall = _median(r["wall_s"] for r in ok)
        rows.append([f"{steps} steps, {clusters} cluster{'s' if clusters > 1 else ''}", wall, _median(r["waits_s"] for r in ok),
                     _median(r["overhead_s"] for r in ok), _median(r.get("fixed_overhead_s") for r in ok),
                     _median(s for r in ok for s in r.get("step_overheads_s", [])), _median(r["overhead_to_ping"] for r in ok),
                     round(wall / one_cluster, 2) if steps == CLUSTER_STEPS else "-", f"{sum(r['ok'] for r in found)}/{len(found)}"])
    return rows


def per_step_slope(runs: dict[tuple[int, int], list[dict]]) -> float:
    """Least-squares slope of the median overhead against the number of steps (one cluster)."""
    medians = [statistics.median(r["overhead_s"] for r in _ok(runs[(steps, 1)])) for steps in STEP_COUNTS]
    return round(statistics.linear_regression(STEP_COUNTS, medians).slope, 2)


def figures(runs: dict, ping_s: float, slope: float) -> dict:
    """What the notes (bench/notes/release_scale.md) say, as data."""
    failed = [r for found in runs.values() for r in found if not r["ok"]]
    return {
        "repeat": REPEAT, "many_repetitions": REPEAT > 1, "rate_per_cluster": RATE, "interval_s": INTERVAL,
        "step_counts": list(STEP_COUNTS), "cluster_steps": CLUSTER_STEPS,
        "overhead_slope_s_per_step": slope, "ping_playbook_s": round(ping_s, 2),
        "first_task_s": _median(r["first_task_s"] for found in runs.values() for r in found),
        "cores": os.cpu_count(), "load_end": round(os.getloadavg()[0], 1),
        # [task, seconds] of the largest-step release, the task's name without its role
        "slowest_tasks": [[name.split(" : ")[-1], seconds] for name, seconds in _slowest(runs).items()],
        "failed_releases": len(failed), "first_failure": failed[0]["failure"][-300:] if failed else None,
    }


def _slowest(runs: dict, count: int = 5) -> dict[str, float]:
    found = _ok(runs[(max(STEP_COUNTS), 1)])[0].get("slowest_tasks_s", {})
    return dict(list(found.items())[:count])


def _set_rate_limit(endpoints: dict, limit: int | None) -> int:
    """Set the simulator's per-key rate limit (None: leave it); returns the one it had."""
    before = requests.get(f"{endpoints['control']}/state", timeout=10).json()["faults"]["rate_limit"]
    if limit is not None:
        requests.post(f"{endpoints['control']}/faults", json={"rate_limit": limit}, timeout=10).raise_for_status()
    return before


def main() -> int:
    load_before = os.getloadavg()[0]
    clusters = control.up(max(CLUSTER_COUNTS))
    endpoints = json.loads((versions.STATE_DIR / "endpoints.json").read_text())
    runs: dict[tuple[int, int], list[dict]] = {config: [] for config in configurations()}
    pings: list[float] = []
    limit_before = _set_rate_limit(endpoints, 100_000)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for repetition in range(REPEAT):
                for steps, count in configurations():
                    started = time.monotonic()
                    # Beside each release, so that their ratio holds even when the machine's load changes.
                    pings.append(ping_baseline())
                    measured = {**Release(clusters[:count], steps, endpoints, tmp).run(), "ping_playbook_s": round(pings[-1], 2)}
                    measured["overhead_to_ping"] = round(measured["overhead_s"] / pings[-1], 1)
                    runs[(steps, count)].append(measured)
                    print(f"[{repetition + 1}/{REPEAT}] {steps} steps, {count} cluster(s): wall {measured['wall_s']} s, waits "
                          f"{measured['waits_s']} s, ok {measured['ok']} ({time.monotonic() - started:.0f} s with setup)", flush=True)
    finally:
        _set_rate_limit(endpoints, limit_before)
    ping_s, slope = statistics.median(pings), per_step_slope(runs)
    columns = ["release", "wall s", "configured waits s", "overhead s", "fixed overhead s", "overhead per step s",
               "overhead / ping run", "wall / 1 cluster", "ok runs"]
    rows = rows_of(runs)
    result = {**common.header(TITLE, REPEAT, load_before), "table": {"columns": columns, "rows": rows},
              "figures": figures(runs, ping_s, slope), "ping_playbook_s": round(ping_s, 2), "overhead_slope_s_per_step": slope,
              "analysis": {k: v for k, v in ANALYSIS.items() if k != "labels"}, "rate_per_cluster": RATE,
              "runs": [r for found in runs.values() for r in found]}
    common.save_and_print("release_scale", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
