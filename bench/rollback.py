"""Time to roll back: from a failing verdict, and from a regression's start, to traffic back on stable.

Run: .venv/bin/python -m bench.rollback   (BENCH_REPEAT=2 by default: each repetition is two whole
releases side by side, 1-3 minutes each on this shared 2-core machine, so a run takes 5-10 minutes)

Each repetition runs ``canary.istio.canary_release`` twice, side by side, each in a fresh namespace
of sandbox-1 with simulated traffic (steps [50, 100]; analysis by the guance provider with a short
window, one round every INTERVAL_S, threshold 1):

- verdict: the canary answers 50 % errors from the start, so the first round fails;
- regression: the canary is healthy, its step holds REGRESSION_ROUNDS rounds, and 50 % errors are
  switched on (``POST <datakit>/__sim/profiles``) at a known wall time, a chosen lead before one of
  the rounds (seen live through a timing proxy in front of Guance), once the other release has ended
  so that its rollback does not load the machine meanwhile; the leads are spread over the interval.

Beside each pair, a probe without Ansible: a namespace split 50/50 by the admin, its canary switched
to errors, and Prometheus asked every 0.1 s with the analysis' own request query (built by
``_analysis.build_promql``) and the same counting series new in the window in full: how soon each
shows the 5xx, i.e. what the scrape interval and increase() add to detection.

The times come from the rounds' ``end_ms`` (the canary_analysis_result fact, printed by -v), the
proxy (when the failing round's answer came: the verdict known), the API server's audit log (the
VirtualService write back, µs: made by the analysis module itself, its rollback option), Ansible's log
(ANSIBLE_LOG_PATH, ms: the rollback role's traffic_split task start, what the write used to wait for)
and the simulator's spans (the last request it routed to the canary), all clocks of this machine. Medians and spread, never asserted. Writes
bench/results/rollback.json; its notes are bench/notes/rollback.md, rendered with the result's ``figures``.
"""
from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import requests

from bench._common import RecordingProxy, print_notes
from sandbox import cluster, control, versions
from sandbox.api import collection_path
from sandbox.audit import AuditLog

REPEAT = int(os.environ.get("BENCH_REPEAT", "2"))
RESULTS = versions.REPO_ROOT / "bench" / "results"
COLLECTIONS = versions.REPO_ROOT / ".collections"
APP = "reviews"
IMAGE = "docker.io/istio/examples-bookinfo-reviews-v2:1.20.1"
RATE = 40  # requests per second to reviews in each namespace: 20 a second reach the canary at 50 %
INTERVAL_S = 5
WINDOW_S = 5
AIM_MS = (INTERVAL_S + 1) * 1000  # issue 8: traffic restored within one check interval + 1 s
REGRESSION_ROUNDS = 24  # the healthy step's rounds: time for the other release to end, then the regression
HEALTHY = {"error_rate": 0.0, "error_code": 500, "latency_ms": 20.0, "latency_sigma": 0.2}
REGRESSED = {**HEALTHY, "error_rate": 0.5}
USER = "canary-release"
PROBE_QUERY = "regression -> 5xx in the round's query (probe)"
PROBE_PLAIN = "regression -> 5xx in increase() alone (probe)"
SCENARIOS = ("verdict", "regression")
ROLLBACK_TASK = "TASK [canary.istio.rollback : All traffic back to"


# ---------------------------------------------------------------------------------------------
# The sandbox side: namespace, versions, traffic, simulator
# ---------------------------------------------------------------------------------------------


def _sim(endpoints: dict, what: str, body: dict) -> None:
    resp = requests.post(f"{endpoints['datakit']}/__sim/{what}", json=body, timeout=10)
    resp.raise_for_status()


def _manifests(stable: str) -> list[dict]:
    labels = {"app": APP, "version": stable}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": APP, "labels": {"app": APP}},
               "spec": {"selector": {"app": APP}, "ports": [{"name": "http", "port": 9080}]}}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"{APP}-{stable}", "labels": labels},
                  "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                           "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                               {"name": APP, "image": IMAGE.replace("v2", "v1"), "ports": [{"containerPort": 9080}]}]}}}}
    return [service, deployment]


def prepare(admin, endpoints: dict, scenario: str) -> dict:
    """A fresh namespace with the stable version Ready and traffic flowing; versions unique to the run
    (the simulator's behaviour profiles are global per service and version)."""
    uid = uuid.uuid4().hex[:6]
    run = {"scenario": scenario, "namespace": f"bench-rollback-{scenario[:3]}-{uid}", "stable": f"s{uid}", "canary": f"c{uid}"}
    ns = run["namespace"]
    cluster.create_namespace(admin, ns)
    admin.wait_for("default ServiceAccount", lambda: admin.get(f"/api/v1/namespaces/{ns}/serviceaccounts/default"), 30)
    admin.apply_manifest(_manifests(run["stable"]), ns)
    path = f"{collection_path('Deployment', ns)}/{APP}-{run['stable']}"
    admin.wait_for(f"{APP}-{run['stable']} Ready", lambda: admin.get(path).get("status", {}).get("readyReplicas") == 1, 90)
    _sim(endpoints, "profiles", {"service": APP, "version": run["stable"], **HEALTHY})
    _sim(endpoints, "profiles", {"service": APP, "version": run["canary"], **(REGRESSED if scenario == "verdict" else HEALTHY)})
    _sim(endpoints, "traffic", {"cluster": "sandbox-1", "namespace": ns, "service": APP, "rate": RATE})
    return run


def clean_up(admin, endpoints: dict, run: dict) -> None:
    _sim(endpoints, "traffic", {"cluster": "sandbox-1", "namespace": run["namespace"], "service": APP, "rate": 0})
    admin.delete(f"/api/v1/namespaces/{run['namespace']}")


def last_canary_request_s(endpoints: dict, run: dict) -> float | None:
    """When the simulator last routed a request to the canary: its newest server span (DataKit API,
    no key, so it does not count against the OpenAPI's rate limit)."""
    query = f"T::`{APP}`:(`start`) {{ `namespace` = '{run['namespace']}', `version` = '{run['canary']}' }} LIMIT 1"
    resp = requests.post(f"{endpoints['datakit']}/v1/query/raw", json={"queries": [{"query": query}]}, timeout=10)
    resp.raise_for_status()
    series = resp.json()["content"][0].get("series") or []
    starts = [row[series[0]["columns"].index("start")] for row in series[0]["values"]] if series else []
    return max(starts) / 1e6 if starts else None


# ---------------------------------------------------------------------------------------------
# The release
# ---------------------------------------------------------------------------------------------


def release_vars(run: dict, endpoints: dict, guance_url: str) -> dict:
    iterations = 3 if run["scenario"] == "verdict" else REGRESSION_ROUNDS
    # inconclusive: wait, so a thin first window (a new series, a late scrape) cannot roll back a healthy
    # canary before the regression; a failing round still ends the step at once (threshold 1).
    analysis = {"provider": "guance", "interval": INTERVAL_S, "iterations": iterations, "threshold": 1,
                "window": f"{WINDOW_S}s", "min_requests": 10, "inconclusive": "wait",
                "guance": {"url": guance_url, "api_key": endpoints["guance_api_key"]}}
    return {"canary_app": APP, "canary_namespace": run["namespace"], "canary_stable_version": run["stable"],
            "canary_version": run["canary"], "canary_image": IMAGE, "canary_steps": [50, 100],
            "canary_analysis": analysis, "canary_delete_old_versions": False,
            "canary_kubeconfig": str(versions.STATE_DIR / "kubeconfig-release"), "canary_context": "sandbox-1",
            "canary_report_dir": str(Path(tempfile.gettempdir()) / "bench-rollback-reports")}


class Play:
    """One ``ansible-playbook canary.istio.canary_release -v`` in the background, its output and
    Ansible's log (with ms timestamps) in files of `tmp`."""

    def __init__(self, run: dict, endpoints: dict, tmp: Path) -> None:
        self.run = run
        self.guance = RecordingProxy(endpoints["guance_openapi"])
        self.log, self.out = Path(tmp, f"{run['scenario']}.log"), Path(tmp, f"{run['scenario']}.out")
        env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS), "ANSIBLE_NOCOLOR": "1",
               "ANSIBLE_LOG_PATH": str(self.log)}
        with open(self.out, "w", encoding="utf-8") as out:
            self.proc = subprocess.Popen([str(versions.REPO_ROOT / ".venv/bin/ansible-playbook"), "canary.istio.canary_release",
                                          "-v", "-e", json.dumps(release_vars(run, endpoints, self.guance.url))],
                                         env=env, stdout=out, stderr=subprocess.STDOUT, text=True)

    def wait(self, timeout: float = 600) -> None:
        try:
            self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.guance.close()
        self.run["code"] = self.proc.returncode
        if os.environ.get("BENCH_ROLLBACK_KEEP_LOG"):  # a folder to keep each play's log in, to look into a figure
            Path(os.environ["BENCH_ROLLBACK_KEEP_LOG"], f"{self.run['namespace']}.log").write_text(self.log.read_text())

    def lines(self) -> list[tuple[float, str]]:
        return log_lines(self.log)


def log_lines(log: Path) -> list[tuple[float, str]]:
    """(epoch seconds, message) of each record in Ansible's log (local time, ms)."""
    lines = []
    for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
        stamp, sep, message = line.partition(" p=")
        if not sep or len(stamp) != 23:
            continue  # a continuation line of a multi-line record
        try:
            seconds = time.mktime(time.strptime(stamp[:19], "%Y-%m-%d %H:%M:%S")) + int(stamp[20:]) / 1000
        except ValueError:
            continue
        lines.append((seconds, message.split("| ", 1)[-1]))
    return lines


def regress_during_rounds(play: Play, other: Play, endpoints: dict, lead: float) -> None:
    """Switch the canary to 50 % errors `lead` seconds before one of the step's rounds, once the other
    release of the pair has ended (so that its rollback does not load the machine meanwhile). Rounds
    keep a fixed pace from the module's start, so the next ones are due a whole number of intervals
    after the last query the proxy saw (the first query is the play's check-mode try, before the step)."""
    other.proc.wait()
    while play.proc.poll() is None and len(play.guance.seen()) < 2:
        time.sleep(0.1)
    seen = play.guance.seen()
    if play.proc.poll() is not None or len(seen) - 1 > REGRESSION_ROUNDS - 3:
        return  # the step is over, or nearly: no round left to catch the regression
    last_round = seen[-1][0]
    due = last_round + INTERVAL_S * math.ceil((time.time() + 0.2 + lead - last_round) / INTERVAL_S)
    time.sleep(max(0.0, due - lead - time.time()))
    play.run["regressed_at"] = time.time()
    _sim(endpoints, "profiles", {"service": APP, "version": play.run["canary"], **REGRESSED})


def analysis_result(out: str) -> dict | None:
    """The last canary_analysis_result fact the play set (-v prints each task's result)."""
    facts = [json.loads(line.split(" => ", 1)[1])["ansible_facts"] for line in out.splitlines()
             if line.startswith("ok: [") and '"canary_analysis_result": {' in line]
    results = [f["canary_analysis_result"] for f in facts if f.get("canary_analysis_result")]
    return results[-1] if results else None


def _audit_s(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def vs_writes(events: list[dict], ns: str) -> list[tuple[float, float]]:
    """(received, completed) of each write to a VirtualService in `ns`, from audit events."""
    return [(_audit_s(e["requestReceivedTimestamp"]), _audit_s(e["stageTimestamp"])) for e in events
            if e["verb"] in ("update", "patch") and e.get("objectRef", {}).get("resource") == "virtualservices"
            and e.get("objectRef", {}).get("namespace") == ns]


def measure(play: Play, events: list[dict], endpoints: dict) -> dict:
    """The play's timestamps (epoch seconds): the failing round, the verdict known, the VirtualService
    write after the failing round, the rollback task's start, the last canary request."""
    run = play.run
    result = analysis_result(play.out.read_text(errors="replace")) or {}
    run.update(verdict=result.get("verdict"), rounds=[(r["end_ms"] / 1000, r["verdict"], r["numbers"].get(run["canary"], {}).get("request_success_rate"))
                                                      for r in result.get("rounds", [])])
    failing = next((r for r in result.get("rounds", []) if r["verdict"] == "fail"), None)
    if failing is None or run["code"] == 0:
        return run
    lines = play.lines()
    writes = [w for w in vs_writes(events, run["namespace"]) if w[0] >= failing["end_ms"] / 1000]
    answered = [done for sent, done in play.guance.seen() if sent >= failing["end_ms"] / 1000]
    run.update(failed_round_end=failing["end_ms"] / 1000, failed_round=failing["round"],
               verdict_known_at=answered[0] if answered else None,
               rollback_task_at=next((at for at, text in lines if text.startswith(ROLLBACK_TASK)), None),
               write=writes[0] if writes else None, last_canary_request=last_canary_request_s(endpoints, run))
    return run


def release_pair(c, endpoints: dict, runs: list[dict], lead: float) -> list[dict]:
    """The verdict and the regression release side by side; the regression comes once the verdict
    release has ended."""
    audit = AuditLog(c).mark()
    with tempfile.TemporaryDirectory() as tmp:
        plays = [Play(run, endpoints, Path(tmp)) for run in runs]
        injector = threading.Thread(target=regress_during_rounds, args=(plays[1], plays[0], endpoints, lead), daemon=True)
        injector.start()
        for play in plays:
            play.wait()
        injector.join()
        time.sleep(1.5)  # the simulator's poll (1 s) and a tick: its last canary request is behind us
        events = audit.events(USER)
        return [measure(play, events, endpoints) for play in plays]


# ---------------------------------------------------------------------------------------------
# How soon a regression shows in the analysis' request query (no Ansible)
# ---------------------------------------------------------------------------------------------


def prepare_probe(admin, endpoints: dict) -> dict:
    """A namespace whose VirtualService sends 50 % to a healthy canary, written by the admin."""
    run = prepare(admin, endpoints, "probe")
    ns, versions_ = run["namespace"], (run["stable"], run["canary"])
    admin.apply_manifest([_manifests(run["canary"])[1]], ns)
    path = f"{collection_path('Deployment', ns)}/{APP}-{run['canary']}"
    admin.wait_for(f"{APP}-{run['canary']} Ready", lambda: admin.get(path).get("status", {}).get("readyReplicas") == 1, 90)
    admin.create(collection_path("DestinationRule", ns), {
        "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": APP},
        "spec": {"host": APP, "subsets": [{"name": v, "labels": {"version": v}} for v in versions_]}})
    admin.create(collection_path("VirtualService", ns), {
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": APP},
        "spec": {"hosts": [APP], "http": [{"route": [{"destination": {"host": APP, "subset": v}, "weight": 50} for v in versions_]}]}})
    return run


def request_queries(run: dict) -> dict[str, str]:
    """The analysis' own request query (Prometheus provider, as Guance's PromQL has it less the
    prefix), which counts a series new in the window in full, and increase() alone, which does not."""
    # Imported here: the collection is importable only once .collections is on sys.path.
    from ansible_collections.canary.istio.plugins.module_utils._analysis.queries import (
        AnalysisTarget,
        Q_REQUESTS,
        build_promql,
    )

    target = AnalysisTarget(service=APP, canary_version=run["canary"], baseline_version=run["stable"],
                            namespace=run["namespace"], window_seconds=WINDOW_S, step_seconds=WINDOW_S)
    query = build_promql(target)[Q_REQUESTS].query
    counter = query[query.index("increase(") + len("increase("):query.index(f"[{WINDOW_S}s]")]
    plain = query.replace(f"({counter} unless {counter} offset {WINDOW_S}s) or ", "")
    assert plain != query, "the analysis' request query no longer counts new series as expected here"
    return {"analysis query": query, "increase() alone": plain}


def shows_errors(endpoints: dict, query: str, canary: str) -> bool:
    resp = requests.get(f"{endpoints['prometheus']}/api/v1/query", params={"query": query, "time": time.time()}, timeout=10)
    resp.raise_for_status()
    return any(r["metric"].get("destination_version") == canary and r["metric"].get("response_code", "").startswith("5")
               and float(r["value"][1]) > 0 for r in resp.json()["data"]["result"])


def scrape_lag(admin, endpoints: dict) -> dict:
    """ms from the canary's switch to 50 % errors until each query, evaluated now, shows them."""
    run = prepare_probe(admin, endpoints)
    try:
        time.sleep(3 * WINDOW_S)  # both versions' 200 series scraped a few times
        queries = request_queries(run)
        regressed, seen = time.time(), {}
        _sim(endpoints, "profiles", {"service": APP, "version": run["canary"], **REGRESSED})
        while len(seen) < len(queries) and time.time() - regressed < 6 * WINDOW_S:
            for name, query in queries.items():
                if name not in seen and shows_errors(endpoints, query, run["canary"]):
                    seen[name] = round((time.time() - regressed) * 1000, 1)
            time.sleep(0.1)
        return {"scenario": "probe", "namespace": run["namespace"], "queries": queries, "errors_seen_ms": seen}
    finally:
        clean_up(admin, endpoints, run)


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def _ms(later: float | None, earlier: float | None) -> float | None:
    return None if later is None or earlier is None else round((later - earlier) * 1000, 1)


def delays(run: dict) -> dict:
    """The run's delays in ms (None where a time is missing)."""
    write = run.get("write") or (None, None)
    out = {
        "round end -> Guance answered (verdict known)": _ms(run.get("verdict_known_at"), run.get("failed_round_end")),
        # The analysis module writes the route back itself (its rollback option) before it returns.
        "verdict known -> VS write received": _ms(write[0], run.get("verdict_known_at")),
        "VS write received -> done": _ms(write[1], write[0]),
        "failing round end -> VS written": _ms(write[1], run.get("failed_round_end")),
        "VS written -> last request to canary": _ms(run.get("last_canary_request"), write[1]),
        # What the rollback role would have added: its traffic_split starts this much later (and
        # finds nothing to write).
        "VS written -> rollback task start": _ms(run.get("rollback_task_at"), write[1]),
    }
    if run["scenario"] == "probe":
        seen = run.get("errors_seen_ms", {})
        return {PROBE_QUERY: seen.get("analysis query"), PROBE_PLAIN: seen.get("increase() alone")}
    if run["scenario"] == "regression":
        regressed = run.get("regressed_at")
        due = [end for end, _verdict, _success in run.get("rounds", []) if regressed is not None and end >= regressed]
        out.update({
            "regression -> next round end": _ms(due[0] if due else None, regressed),
            "regression -> failing round end": _ms(run.get("failed_round_end"), regressed),
            "regression -> VS written": _ms(write[1], regressed),
            "regression -> last request to canary": _ms(run.get("last_canary_request"), regressed),
        })
    return out


def summarise(runs: list[dict]) -> dict:
    """Per scenario and measure: median, min, max, n over the runs that rolled back."""
    values: dict = {}
    for run in runs:
        for name, value in delays(run).items():
            if value is not None:  # the probe's figures are about regressions: in that column
                column = "regression" if run["scenario"] == "probe" else run["scenario"]
                values.setdefault(column, {}).setdefault(name, []).append(value)
    return {scenario: {name: {"median_ms": round(statistics.median(v), 1), "min_ms": min(v), "max_ms": max(v), "n": len(v)}
                       for name, v in measures.items()} for scenario, measures in values.items()}


def regression_counts(runs: list[dict]) -> dict:
    """Of the regression runs with figures: how many met the aim, and which regressions the first
    round after them did not see (lead before that round in ms, the canary's success rate in it)."""
    figures = [(r, delays(r)) for r in runs if r["scenario"] == "regression"]
    figures = [(r, d) for r, d in figures if d.get("regression -> VS written") is not None]
    missed = []
    for run, d in figures:
        if d["regression -> failing round end"] != d["regression -> next round end"]:
            success = next(s for end, _v, s in run["rounds"] if end >= run["regressed_at"])
            missed.append({"lead_ms": d["regression -> next round end"], "success_rate": success})
    return {"runs": len(figures),
            "within_aim": sum(1 for _r, d in figures if d["regression -> VS written"] <= AIM_MS),
            "restored_within_aim": sum(1 for _r, d in figures if (d["regression -> last request to canary"] or 1e9) <= AIM_MS),
            "missed_by_next_round": missed}


def table_rows(summary: dict) -> list[list]:
    """One row per measure: median and range per scenario ("-" where the scenario has no such figure)."""
    names = list(dict.fromkeys(name for measures in summary.values() for name in measures))
    rows = []
    for name in names:
        row: list = [name]
        for scenario in SCENARIOS:
            m = summary.get(scenario, {}).get(name)
            row += [m["median_ms"], f"{m['min_ms']:.0f}-{m['max_ms']:.0f}"] if m else ["-", "-"]
        rows.append(row)
    return rows


def figures(summary: dict, counts: dict) -> dict:
    """What the notes (bench/notes/rollback.md) say, as data: the settings, and medians in ms ("-"
    where no run has that figure)."""
    verdict = summary.get("verdict", {})
    regression = summary.get("regression", {})

    def median(measures: dict, name: str):
        return measures.get(name, {}).get("median_ms", "-")

    return {
        "rate": RATE, "interval_s": INTERVAL_S, "window_s": WINDOW_S, "repeat": REPEAT, "aim_ms": AIM_MS,
        "verdict_round_to_write_ms": median(verdict, "failing round end -> VS written"),
        "regression_round_to_write_ms": median(regression, "failing round end -> VS written"),
        "regression_to_write_ms": median(regression, "regression -> VS written"),
        "write_to_rollback_task_ms": median(verdict, "VS written -> rollback task start"),
        "probe_query_ms": median(regression, PROBE_QUERY), "probe_plain_ms": median(regression, PROBE_PLAIN),
        "regression_run_count": counts["runs"], "within_aim": counts["within_aim"],
        "restored_within_aim": counts["restored_within_aim"],
        # [lead before the round in ms, the canary's success rate in it] of each regression the next round missed
        "missed_by_next_round": [[m["lead_ms"], round(m["success_rate"], 2)] for m in counts["missed_by_next_round"]],
    }


def run_all(admin, endpoints: dict, c) -> list[dict]:
    runs = []
    with ThreadPoolExecutor(3) as pool:
        for index in range(REPEAT):
            # The probe needs no Ansible: it is done while the plays are still deploying.
            probe = pool.submit(scrape_lag, admin, endpoints)
            pair = list(pool.map(lambda scenario: prepare(admin, endpoints, scenario), SCENARIOS))
            try:
                runs += release_pair(c, endpoints, pair, lead=INTERVAL_S * (index + 0.5) / REPEAT)
            finally:
                for run in pair:
                    clean_up(admin, endpoints, run)
            pair.append(probe.result())
            runs.append(pair[-1])
            for run in pair:
                print(f"[bench rollback] {index + 1}/{REPEAT} {run['scenario']}: exit {run.get('code', '-')}, verdict {run.get('verdict', '-')}, "
                      f"{ {k: v for k, v in delays(run).items() if v is not None} }", flush=True)
    return runs


def main() -> int:
    sys.path.insert(0, str(COLLECTIONS))  # the collection by its FQCN, as tests/conftest.py does
    c = control.up(1)[0]
    admin = c.admin()
    endpoints = json.loads((versions.STATE_DIR / "endpoints.json").read_text())
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    runs = run_all(admin, endpoints, c)
    summary = summarise(runs)
    counts = regression_counts(runs)
    rows = table_rows(summary)
    result = {
        "title": "Time to roll back: failing verdict and regression to the VirtualService written back",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": f"{platform.node()} {os.cpu_count()} cores",
        "load_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)], "repeat": REPEAT,
        "table": {"columns": ["from -> to", "verdict median ms", "verdict range ms", "regression median ms",
                              "regression range ms"], "rows": rows},
        "figures": figures(summary, counts),
        "interval_s": INTERVAL_S, "window_s": WINDOW_S, "aim_ms": AIM_MS, "regression_runs": counts,
        "wall_s": round(time.monotonic() - started, 1), "summary": summary,
        "runs": [{**r, "delays_ms": delays(r)} for r in runs],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "rollback.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'from -> to':<46}{'verdict ms':>12}{'range':>13}{'regression ms':>15}{'range':>13}")
    for row in rows:
        print(f"{row[0]:<46}{row[1]:>12}{row[2]:>13}{row[3]:>15}{row[4]:>13}")
    print_notes("rollback", result)
    print(f"interval {INTERVAL_S} s, window {WINDOW_S} s: regression -> VS written within {AIM_MS} ms in "
          f"{counts['within_aim']} of {counts['runs']} runs; missed by the next round {len(counts['missed_by_next_round'])}; "
          f"medians of {REPEAT} pairs, load {load_before:.1f} -> {os.getloadavg()[0]:.1f}, {result['wall_s']:.0f} s; "
          f"results in {RESULTS / 'rollback.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
