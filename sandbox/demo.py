"""`make demo`: three Guance-gated scenarios on bookinfo in the local sandbox.

Brings the sandbox up (building it the first time; the simulator and Prometheus come with it),
deploys bookinfo into namespace `prod`, sends simulated traffic from productpage to reviews, then:

1. releases reviews v2 with an A/B step for the testers (`end-user: jason` alone on v2), then steps
   10, 50, 100, with short analysis intervals: analysis passes, v2 is promoted;
2. releases a faulty v3 (the simulator makes 20% of its answers 500s) the same way: analysis fails
   at the A/B step, so only jason ever saw v3, and the A/B route goes at once;
3. injects a 7 s delay on ratings for `end-user: jason`, finds the slow traces with
   `canary.istio.guance_query` on `T::`, shows them, and removes the fault.

Every playbook runs as the least-privilege release identity; the Guance key reaches the modules the
way an AWX credential would pass it, as GUANCE_URL / GUANCE_API_KEY in the environment.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import requests
import yaml

from . import control, versions
from .api import collection_path

NAMESPACE = "prod"
# The testers first: an A/B step sends jason's requests alone to the canary, then the weights.
STEPS = [{"match": {"headers": {"end-user": {"exact": "jason"}}}}, 10, 50, 100]
STEP_WORDS = "A/B for jason, 10%, 50%, 100%"
TRAFFIC_RATE = 40  # requests per second from productpage to reviews
JASON_SHARE = 0.2  # share of those requests signed in as jason
# Analysis of each step: 2 rounds of 10 s, each over the last 10 s; 99% success and p99 <= 500 ms,
# and no worse than the stable version by more than 1 point of errors. At the A/B step the canary
# gets jason's 20% of 40 req/s, and at the first weight 10%: a 10 s round holds ~80 or ~40 of its
# requests, well over min_requests. (Rounds of
# 5 s held ~20: too close to min_requests, and on a quick machine the first round fell under it
# and v2 was rolled back.)
ANALYSIS = {
    "provider": "guance",
    "interval": 10,
    "iterations": 2,
    "window": 10,
    "min_requests": 20,
    "checks": [
        {"metric": "request_success_rate", "min": 99},
        {"metric": "request_error_rate", "max_over_baseline": 1},
        {"metric": "request_duration_p99", "max": 500},
    ],
}
# The delay is injected by the caller's sidecar (as in Envoy), so the slow spans are those of the
# callers of ratings (reviews) and of the request's root (productpage), not ratings' own.
SLOW_TRACES = (
    "T::re(`.*`):(`trace_id`, `service`, `version`, `resource`, `duration`) "
    "{ `namespace` = '%s', `duration` >= 7000000 } [2m] LIMIT 6" % NAMESPACE)
PLAYBOOKS = versions.REPO_ROOT / "playbooks"
REPORT_DIR = versions.STATE_DIR / "reports"
ANSIBLE_PLAYBOOK = versions.REPO_ROOT / ".venv/bin/ansible-playbook"


def say(text: str) -> None:
    print(f"\n[demo] {text}", flush=True)


class Simulator:
    """The simulator's control endpoints (docs/simulator.md)."""

    def __init__(self, endpoints: dict):
        self.control = endpoints["control"]

    def post(self, what: str, payload: dict) -> None:
        resp = requests.post(f"{self.control}/{what}", json=payload, timeout=10)
        resp.raise_for_status()


def _reset(admin) -> None:
    """Start from bookinfo as shipped, so the demo can run again on a running sandbox."""
    shutil.rmtree(REPORT_DIR, ignore_errors=True)
    paths = [f"{collection_path(kind, NAMESPACE)}/{name}" for kind in ("VirtualService", "DestinationRule")
             for name in ("reviews", "ratings")]
    paths += [f"{collection_path('Deployment', NAMESPACE)}/reviews-{v}" for v in ("v1", "v2", "v3")]
    for path in paths:
        admin.delete(path)
    for path in paths:
        admin.wait_for(f"{path} gone", lambda p=path: admin.get(p, ok_missing=True) == {}, 120)


def _fixture(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((versions.BOOKINFO_DIR / name).read_text()) if d]


def _deploy_bookinfo(admin) -> None:
    _reset(admin)
    # The first release deploys v2 itself; v1 serves today, v3 is an old version that release removes.
    admin.apply_manifest([d for d in _fixture("platform/bookinfo.yaml") if d["metadata"]["name"] != "reviews-v2"], NAMESPACE)
    # ratings is routed by its own VirtualService (all to v1), where scenario 3 puts its fault.
    admin.apply_manifest([d for d in _fixture("networking/destination-rule-all.yaml") if d["metadata"]["name"] == "ratings"]
                         + [d for d in _fixture("networking/virtual-service-all-v1.yaml") if d["metadata"]["name"] == "ratings"],
                         NAMESPACE)
    for name in ("reviews-v1", "reviews-v3", "ratings-v1"):
        path = f"{collection_path('Deployment', NAMESPACE)}/{name}"
        admin.wait_for(f"{name} Ready", lambda p=path: admin.get(p).get("status", {}).get("readyReplicas") == 1, 120)


def _weights(admin) -> str:
    vs = admin.get(f"{collection_path('VirtualService', NAMESPACE)}/reviews")
    route = vs["spec"]["http"][-1]["route"]
    return ", ".join(f"{d['destination']['subset']}={d.get('weight', 100)}%" for d in route)


SHOWN_OK = ("Analyse the step", "Try the analysis", "Take the release lock", "Report", "Hold the step")


def _progress(line: str, task: list[str]) -> str | None:
    """A condensed line for what matters: every change, every failure (with its message), the
    analyses that passed, and the plays' closing messages."""
    text = line.rstrip()
    if text.startswith("TASK ["):
        task[0] = text[len("TASK ["):text.rfind("]")].split(" : ", 1)[-1]
        return None
    status = text.split(":", 1)[0]
    name = task[0]
    if status == "changed" and name:
        task[0] = ""
        return f"  CHANGED  {name}"
    if status == "ok" and name.startswith(SHOWN_OK):
        task[0] = name if name == "Report" else ""  # its message follows
        return f"  ok       {name}"
    if status == "fatal" and name:
        task[0] = ""
        try:
            message = json.loads(text[text.index("=> ") + 3:]).get("msg", "")
        except ValueError:
            message = text
        return f"  FAILED   {name}: {message}"
    if text.lstrip().startswith('"msg": ') and name == "Report":
        task[0] = ""
        return "           " + text.strip()[len('"msg": '):].strip('"')
    return None


def _playbook(name: str, extra: dict, env: dict) -> tuple[int, float]:
    """ansible-playbook with a condensed view on the terminal; the whole output goes to a log file."""
    started = time.monotonic()
    log_dir = versions.STATE_DIR / "demo-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / f"{int(time.time())}-{name.replace('.yml', '')}.log"
    task = [""]
    with subprocess.Popen([str(ANSIBLE_PLAYBOOK), str(PLAYBOOKS / name), "-e", json.dumps(extra)], env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc, log_file.open("w") as log:
        for line in proc.stdout:
            log.write(line)
            shown = _progress(line, task)
            if shown:
                print(shown, flush=True)
    print(f"[demo] {name}: exit {proc.returncode} in {time.monotonic() - started:.0f}s; full output in {log_file}", flush=True)
    return proc.returncode, time.monotonic() - started


def _release(stable: str, canary: str, connection: dict, env: dict) -> tuple[int, float]:
    extra = {
        "canary_app": "reviews", "canary_namespace": NAMESPACE,
        "canary_stable_version": stable, "canary_version": canary,
        "canary_image": f"docker.io/istio/examples-bookinfo-reviews-{canary}:1.20.1",
        "canary_steps": STEPS, "canary_analysis": ANALYSIS, **connection,
        "canary_report_dir": str(REPORT_DIR), "canary_release_id": f"demo-reviews-{canary}",
    }
    say(f"ansible-playbook canary.istio.canary_release: reviews {stable} -> {canary}, steps {STEP_WORDS}, "
        f"analysis every {ANALYSIS['interval']}s x {ANALYSIS['iterations']} per step")
    return _playbook("canary_release.yml", extra, env)


def _slow_traces(endpoints: dict) -> list[list]:
    """Spans slower than 7 s: what `canary.istio.guance_query` returned (kept in a file by the play)."""
    result_file = versions.STATE_DIR / "demo-slow-traces.json"
    query = {"queries": [{"query": SLOW_TRACES, "name": "slow"}], "last": "2m"}
    keep = {"content": "{{ slow.results[0].series | to_json }}", "dest": str(result_file), "mode": "0600"}
    play = [{"name": "Find the slow traces", "hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "Query the spans of 7 s or more (T::)", "canary.istio.guance_query": query, "register": "slow"},
        {"name": "Keep the rows", "ansible.builtin.copy": keep}]}]
    play_file = versions.STATE_DIR / "demo-slow-traces.yml"
    play_file.write_text(yaml.safe_dump(play, sort_keys=False))
    subprocess.run([str(ANSIBLE_PLAYBOOK), str(play_file)], env=_env(endpoints), check=True, stdout=subprocess.DEVNULL)
    series = json.loads(result_file.read_text())
    return [dict(zip(s["columns"], row)) for s in series for row in s["rows"]]


def _env(endpoints: dict) -> dict:
    return {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(versions.REPO_ROOT / ".collections"),
            # The plays run on the implicit localhost on purpose: no inventory to warn about.
            "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
            "GUANCE_URL": endpoints["guance_openapi"], "GUANCE_API_KEY": endpoints["guance_api_key"]}


def main() -> int:
    t0 = time.monotonic()
    cluster = control.up(1)[0]
    admin = cluster.admin()
    endpoints = json.loads((versions.STATE_DIR / "endpoints.json").read_text())
    sim = Simulator(endpoints)
    env = _env(endpoints)
    connection = {"canary_kubeconfig": str(versions.STATE_DIR / "kubeconfig-release"), "canary_context": cluster.name}
    say(f"deploying bookinfo into namespace {NAMESPACE} on {cluster.name}")
    _deploy_bookinfo(admin)
    sim.post("traffic", {"cluster": cluster.name, "namespace": NAMESPACE, "service": "reviews", "rate": TRAFFIC_RATE,
                         "jason_share": JASON_SHARE})
    sim.post("profiles", {"service": "reviews", "version": "v3", "error_rate": 0.2})
    say(f"simulated traffic: {TRAFFIC_RATE} req/s productpage -> reviews ({JASON_SHARE:.0%} as jason); "
        "reviews v3 answers 20% of requests with 500")
    time.sleep(5)  # a first window of traffic on v1
    outcome = []

    say("1/3 healthy release of reviews v2")
    rc, took = _release("v1", "v2", connection, env)
    outcome.append(("1. release v2", "promoted" if rc == 0 else f"FAILED (exit {rc})", took, _weights(admin)))

    say("2/3 release of a faulty reviews v3 (20% errors): expect the analysis to fail at the A/B step and a rollback")
    rc, took = _release("v2", "v3", connection, env)
    outcome.append(("2. release faulty v3", "rolled back as expected" if rc != 0 else "PROMOTED (unexpected)", took,
                    _weights(admin)))
    scenario2_ok = rc != 0 and _weights(admin) == "v2=100%, v3=0%"

    say("3/3 a 7 s delay on ratings for end-user jason, found in the traces")
    fault = {"canary_namespace": NAMESPACE, "fault_injection_service": "ratings",
             "fault_injection_headers": {"end-user": {"exact": "jason"}}, "fault_injection_delay": {"fixed_delay": "7s"},
             **connection}
    rc3, took = _playbook("fault_injection.yml", fault, env)
    time.sleep(12)  # jason's calls now take 7 s; let some of them finish
    slow = _slow_traces(endpoints)
    print(f"[demo] spans of 7 s or more in the last 2 minutes (guance_query on T::): {len(slow)} shown")
    for span in slow:
        print(f"         trace {span.get('trace_id')}  {int(span.get('duration') or 0) / 1e6:5.2f} s  "
              f"{span.get('service')} {span.get('version') or ''}  {span.get('resource')}")
    rc4 = _playbook("fault_injection.yml", {**fault, "fault_injection_state": "absent"}, env)[0]
    outcome.append(("3. delay for jason", f"{len(slow)} slow traces found, fault removed" if slow and rc3 == rc4 == 0
                    else "FAILED", took, ""))
    sim.post("traffic", {"cluster": cluster.name, "namespace": NAMESPACE, "service": "reviews", "rate": 0})

    print("\n== demo summary ==")
    for name, result, seconds, weights in outcome:
        print(f"{name:<24} {result:<40} {seconds:6.0f}s  {weights}")
    for report in sorted(REPORT_DIR.glob("*/*/report.html")):
        print(f"release report: {report}  (and report.md beside it)")
    print(f"total {time.monotonic() - t0:.0f}s. Sandbox left running: {versions.STATE_DIR / 'kubeconfig'}; "
          "stop it with `.venv/bin/python -m sandbox down`.")
    ok = outcome[0][1] == "promoted" and scenario2_ok and bool(slow) and rc3 == rc4 == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
