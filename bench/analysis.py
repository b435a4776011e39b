"""canary_analysis: HTTP requests per analysis round and the wall time of a round.

Run: .venv/bin/python -m bench.analysis   (BENCH_REPEAT=20 by default)

- Requests per round, counted on the server side: Guance = an in-process simulator (its own
  OpenAPI on loopback, seeded traffic, its request log); Prometheus = the sandbox's real
  Prometheus behind a loopback proxy that counts what reaches it. 1, 3 and 6 checks each.
- Wall time of one round (a) in-process: plan + query + judge (``plan_from_params``,
  ``round_source``, ``run_round``), and plan + judge alone on answers recorded once (no HTTP), the
  configurations interleaved round by round; (b) the task as Ansible runs it (iterations=1,
  interval=0), interleaved with ``ansible.builtin.ping`` as the floor.

The Guance server runs in this process: its DQL evaluation shares the interpreter (and its lock)
with the timed client, so Guance round times include the simulator's own work, which grows with
the number of queries; a real Guance answers from elsewhere.

The Prometheus provider cannot read traces or logs, so its 6 checks are the 3 Istio built-ins plus 3
custom PromQL metrics; Guance's are the 5 built-ins plus a custom DQL metric. The Prometheus namespace
has no traffic (a fresh machine has none to rely on): its rounds are inconclusive, which changes neither
the number of queries nor, much, their time. Medians, never asserted. Writes bench/results/analysis.json;
its notes are bench/notes/analysis.md, rendered with the result's ``figures``.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

from bench._common import RecordingProxy, print_notes
from sandbox import control, versions
from sandbox.sim import bookinfo
from sandbox.sim.record import Clock, Recorder
from sandbox.sim.routing import Mesh
from sandbox.sim.server import GuanceServer, Simulation
from sandbox.sim.traffic import Simulator, TrafficSpec

REPEAT = int(os.environ.get("BENCH_REPEAT", "20"))
RESULTS = versions.REPO_ROOT / "bench" / "results"
COLLECTIONS = versions.REPO_ROOT / ".collections"
KEY = "bench-analysis-key-8e2f0c5a7b"
NAMESPACE = "bench-analysis"
# Not v2/v3: in bookinfo those call ratings, which this mesh does not have (their spans would fail).
BASELINE, CANARY = "v1", "v6"
HISTORY_S = 90  # traffic generated into the past, so the first window already holds data
QUERY_PATH = "/api/v1/df/query_data_v1"

_BUILTIN_3 = [{"metric": "request_success_rate", "min": 99},
              {"metric": "request_error_rate", "max_over_baseline": 1},
              {"metric": "request_duration_p99", "max": 500, "max_ratio_to_baseline": 3}]
_SPAN_P95 = {"name": "span_p95_us", "version_tag": "version", "column": "p95",
             "query": f"T::`reviews`:(percentile(`duration`, 95) AS `p95`) {{ `namespace` = '{NAMESPACE}' }} [30s] BY `version`"}
_SEL = f'{{destination_workload_namespace="{NAMESPACE}",destination_version=~"{BASELINE}|{CANARY}"}}'
_PROM_CUSTOM = [
    {"name": "p50_ms", "version_tag": "destination_version", "query": "histogram_quantile(0.5, sum by (le, destination_version) "
     f"(rate(istio_request_duration_milliseconds_bucket{_SEL}[30s])))"},
    {"name": "p90_ms", "version_tag": "destination_version", "query": "histogram_quantile(0.9, sum by (le, destination_version) "
     f"(rate(istio_request_duration_milliseconds_bucket{_SEL}[30s])))"},
    {"name": "rps", "version_tag": "destination_version",
     "query": f"sum by (destination_version) (rate(istio_requests_total{_SEL}[30s]))"},
]
# configuration -> (provider, checks, custom metrics)
CONFIGS = {
    "guance 1": ("guance", _BUILTIN_3[:1], []),
    "guance 3": ("guance", _BUILTIN_3, []),
    "guance 6": ("guance", _BUILTIN_3 + [{"metric": "trace_error_rate", "max": 1}, {"metric": "error_log_count", "max": 0},
                                         {"metric": "span_p95_us", "max": 300_000}], [_SPAN_P95]),
    "prometheus 1": ("prometheus", _BUILTIN_3[:1], []),
    "prometheus 3": ("prometheus", _BUILTIN_3, []),
    "prometheus 6": ("prometheus", _BUILTIN_3 + [{"metric": m["name"], "max": 10_000} for m in _PROM_CUSTOM], _PROM_CUSTOM),
}
ANSIBLE_CONFIGS = ("guance 6", "prometheus 6")


class LocalGuance:
    """The simulator's Guance OpenAPI in-process, reviews v1/v6 50:50 at 20 requests a second."""

    def __init__(self) -> None:
        mesh = Mesh(
            NAMESPACE,
            virtual_services=[{"kind": "VirtualService", "metadata": {"name": "reviews"}, "spec": {
                "hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews", "subset": v}, "weight": 50}
                                                          for v in (BASELINE, CANARY)]}]}}],
            destination_rules=[{"kind": "DestinationRule", "metadata": {"name": "reviews"}, "spec": {
                "host": "reviews", "subsets": [{"name": v, "labels": {"version": v}} for v in (BASELINE, CANARY)]}}],
            services=[bookinfo.make_service("reviews", NAMESPACE)],
            pods=[bookinfo.make_pod("reviews", v, NAMESPACE) for v in (BASELINE, CANARY)])
        self.clock = Clock(speed=1.0)
        recorder = Recorder()  # DataKit-like scrapes every 10 s
        self.simulator = Simulator(lambda cluster, ns: mesh, recorder, seed=11)
        self.sim = Simulation(recorder=recorder, clock=self.clock, simulator=self.simulator, api_keys={KEY})
        self.sim.faults.rate_limit = self.sim.faults.workspace_rate_limit = 1_000_000  # Guance allows 20 a minute
        spec = TrafficSpec("local", NAMESPACE, "reviews", rate=20)
        spec.next_ms = self.clock.now_ms() - HISTORY_S * 1000
        self.simulator.specs.append(spec)
        self.server = GuanceServer(self.sim)
        self.url = self.server.start()["guance_openapi"]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 60  # the loop first sends the HISTORY_S seconds of requests
        while time.monotonic() < deadline and (spec.next_ms or 0) < self.clock.now_ms() - 1000:
            time.sleep(0.1)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.simulator.run_until(self.clock.now_ms())
            self._stop.wait(0.05)

    def requests_seen(self) -> int:
        with self.sim.lock:
            return sum(1 for seen in self.sim.requests_seen if seen[1] == QUERY_PATH)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.server.stop()


def params_for(config: str, guance_url: str, prometheus_url: str) -> dict:
    provider, checks, metrics = CONFIGS[config]
    params = {"provider": provider, "service": "reviews", "namespace": NAMESPACE, "canary_version": CANARY,
              "baseline_version": BASELINE, "window": 30, "min_requests": 20, "interval": 0, "iterations": 1,
              "inconclusive": "wait", "fail_on_inconclusive": False, "checks": checks}
    if metrics:
        params["metrics"] = metrics
    if provider == "guance":
        params.update(url=guance_url, api_key=KEY, istio_query_language="dql", scrape_interval=10, retry_budget=0)
    else:
        params.update(prometheus_url=prometheus_url)
    return params


class Replay:
    """A round source answering every round with answers recorded once: plan + judge without HTTP."""

    def __init__(self, answers: dict) -> None:
        self.answers, self.requests_made = answers, 0

    def query_round(self, queries, start_ms: int, end_ms: int) -> dict:  # pylint: disable=unused-argument
        return self.answers

    def close(self) -> None:
        pass


def one_round(params: dict, source=None):
    """Plan + query + judge, as the module does for one round: (report, queries, requests the
    client counted, the answers). ``source`` replaces the provider's client (see Replay)."""
    # Imported here: the collection is importable only once .collections is on sys.path.
    from ansible_collections.canary.istio.plugins.module_utils._analysis.rounds import run_round
    from ansible_collections.canary.istio.plugins.module_utils._analysis.settings import plan_from_params
    from ansible_collections.canary.istio.plugins.modules.canary_analysis import round_source

    plan = plan_from_params(params)
    source = source or round_source(params, plan.provider)
    answers = {}
    query_round = source.query_round

    def recording(*args):
        answers.update(query_round(*args))
        return answers

    source.query_round = recording
    try:
        return run_round(plan, source, 1, int(time.time() * 1000))[0], len(plan.queries), source.requests_made, answers
    finally:
        source.close()


def count_requests(guance: LocalGuance, prometheus_url: str) -> dict:
    """Per configuration: requests per round seen by the server, as the module counted them, verdict."""
    proxy = RecordingProxy(prometheus_url)
    counted = {}
    try:
        for config in CONFIGS:
            before = (guance.requests_seen(), proxy.count)
            report, queries, client_count, _answers = one_round(params_for(config, guance.url, proxy.url))
            server = guance.requests_seen() - before[0] if config.startswith("guance") else proxy.count - before[1]
            counted[config] = {"checks": len(CONFIGS[config][1]), "queries": queries, "server": server,
                               "client": client_count, "verdict": report.verdict.verdict}
    finally:
        proxy.close()
    return counted


def time_in_process(guance: LocalGuance, prometheus_url: str) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per configuration: seconds of whole rounds, and of plan + judge alone on recorded answers."""
    rounds: dict[str, list[float]] = {config: [] for config in CONFIGS}
    judged: dict[str, list[float]] = {config: [] for config in CONFIGS}
    recorded = {}
    for config in CONFIGS:  # warm-up (imports, first connections), and the answers to replay
        recorded[config] = one_round(params_for(config, guance.url, prometheus_url))[3]
    for _repetition in range(REPEAT):
        for config in CONFIGS:
            params = params_for(config, guance.url, prometheus_url)
            started = time.perf_counter()
            one_round(params)
            rounds[config].append(time.perf_counter() - started)
            started = time.perf_counter()
            one_round(params, Replay(recorded[config]))
            judged[config].append(time.perf_counter() - started)
    return rounds, judged


def time_in_ansible(guance: LocalGuance, prometheus_url: str) -> dict[str, list[float]]:
    tasks = []
    for i in range(REPEAT):
        tasks.append({"name": f"ping {i}", "ansible.builtin.ping": {}})
        for config in ANSIBLE_CONFIGS:
            tasks.append({"name": f"{config} {i}", "canary.istio.canary_analysis": params_for(config, guance.url, prometheus_url),
                          "no_log": True})
    play = [{"name": "analysis round", "hosts": "localhost", "gather_facts": False, "tasks": tasks}]
    with tempfile.TemporaryDirectory() as tmp:
        playbook, timings = Path(tmp, "bench.yml"), Path(tmp, "timings.jsonl")
        playbook.write_text(yaml.safe_dump(play, sort_keys=False))
        env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
               "ANSIBLE_CALLBACK_PLUGINS": str(versions.REPO_ROOT / "bench" / "callback_plugins"),
               "ANSIBLE_CALLBACKS_ENABLED": "task_timer", "TASK_TIMER_OUT": str(timings)}
        proc = subprocess.run([str(versions.REPO_ROOT / ".venv/bin/ansible-playbook"), str(playbook)],
                              env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"ansible-playbook failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
        rows = [json.loads(line) for line in timings.read_text().splitlines()]
    times: dict[str, list[float]] = {}
    for row in rows:
        times.setdefault(row["task"].rsplit(" ", 1)[0], []).append(row["seconds"])
    return times


def median_ms(values) -> float:
    return round(statistics.median(values) * 1000, 1)


def main() -> int:
    sys.path.insert(0, str(COLLECTIONS))  # the collection by its FQCN, as tests/conftest.py does
    control.up(1)
    prometheus_url = json.loads((versions.STATE_DIR / "endpoints.json").read_text()).get("prometheus")
    if not prometheus_url:
        print("the sandbox runs without Prometheus: nothing to compare with")
        return 1
    load_before = os.getloadavg()[0]
    guance = LocalGuance()
    try:
        counted = count_requests(guance, prometheus_url)
        in_process, plan_judge = time_in_process(guance, prometheus_url)
        in_ansible = time_in_ansible(guance, prometheus_url)
    finally:
        guance.close()
    ping = median_ms(in_ansible["ping"])
    rows = {}
    for config in CONFIGS:
        rows[config] = {**counted[config], "in_process_round_ms": median_ms(in_process[config]),
                        "plan_and_judge_ms": median_ms(plan_judge[config])}
        if config in in_ansible:
            rows[config]["ansible_task_ms"] = median_ms(in_ansible[config])
            rows[config]["ansible_above_ping_ms"] = round(rows[config]["ansible_task_ms"] - ping, 1)
    columns = ["provider, checks", "queries", "HTTP requests per round", "verdict", "round ms (in-process)",
               "plan + judge ms", "Ansible task ms", "task above ping ms"]
    table_rows = [[config, row["queries"], row["server"], row["verdict"], row["in_process_round_ms"], row["plan_and_judge_ms"],
                   row.get("ansible_task_ms", "-"), row.get("ansible_above_ping_ms", "-")] for config, row in rows.items()]
    result = {
        "title": "Guance: HTTP requests per analysis round and the analysis module's wall time",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": f"{platform.node()} {os.cpu_count()} cores",
        "load_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)], "repeat": REPEAT,
        "table": {"columns": columns, "rows": table_rows},
        "figures": {"ping_task_ms": ping},  # what bench/notes/analysis.md says
        "ping_task_ms": ping, "rounds": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "analysis.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'provider checks':<16}{'queries':>8}{'requests':>9}{'(module)':>9}{'verdict':>14}{'round ms':>10}"
          f"{'plan+judge ms':>15}{'task ms':>9}{'above ping':>12}")
    for config, row in rows.items():
        task = f"{row['ansible_task_ms']:>9.0f}{row['ansible_above_ping_ms']:>12.0f}" if "ansible_task_ms" in row else f"{'-':>9}{'-':>12}"
        print(f"{config:<16}{row['queries']:>8}{row['server']:>9}{row['client']:>9}{row['verdict']:>14}"
              f"{row['in_process_round_ms']:>10.1f}{row['plan_and_judge_ms']:>15.2f}{task}")
    print_notes("analysis", result)
    print(f"ping task {ping:.1f} ms; requests counted by the server (module's own count in brackets); medians of "
          f"{REPEAT}; load {load_before:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"results in {RESULTS / 'analysis.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
