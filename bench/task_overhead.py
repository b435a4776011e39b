"""Per-task wall time: traffic_split vs kubernetes.core.k8s making the same weight change vs ping.

Run: .venv/bin/python -m bench.task_overhead   (BENCH_REPEAT=20 by default)

All three kinds of task run in one playbook, interleaved round by round, so the machine's noise
falls on each alike; the figures are medians and ratios, never asserted. Also counts, from the
sandbox's audit log, the API requests each kind of task made. Writes bench/results/task_overhead.json;
its notes are bench/notes/task_overhead.md, rendered with the result's ``figures``.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import yaml

from bench._common import deploy_reviews, print_notes, reviews_rules
from bench._common import virtual_service as _virtual_service
from sandbox import control, versions
from sandbox.audit import WRITE_VERBS, AuditLog

REPEAT = int(os.environ.get("BENCH_REPEAT", "20"))
RESULTS = versions.REPO_ROOT / "bench" / "results"
KUBECONFIG = versions.STATE_DIR / "kubeconfig"


def _setup(admin, ns: str) -> None:
    deploy_reviews(admin, ns)
    reviews_rules(admin, ns, 100)


def _playbook(ns: str) -> list[dict]:
    conn = {"kubeconfig": str(KUBECONFIG), "context": "sandbox-1"}
    tasks = []
    for i in range(REPEAT):
        canary = 10 if i % 2 == 0 else 20  # every task is a real change
        tasks += [
            {"name": f"ping {i}", "ansible.builtin.ping": {}},
            {"name": f"traffic_split {i}", "canary.istio.traffic_split": {
                "name": "reviews", "namespace": ns, "stable": "v1", "canary": "v2", "canary_weight": canary, **conn}},
            {"name": f"k8s {i}", "kubernetes.core.k8s": {
                "state": "present", "definition": _virtual_service(ns, 100 - canary), **conn}},
        ]
    return [{"name": "task overhead", "hosts": "localhost", "gather_facts": False, "tasks": tasks}]


def _kind(task: str) -> str:
    return task.rsplit(" ", 1)[0]


def main() -> int:
    c = control.up(1)[0]
    admin = c.admin()
    ns = f"bench-overhead-{uuid.uuid4().hex[:6]}"
    _setup(admin, ns)
    audit = AuditLog(c).mark()
    with tempfile.TemporaryDirectory() as tmp:
        playbook, timings = Path(tmp, "bench.yml"), Path(tmp, "timings.jsonl")
        playbook.write_text(yaml.safe_dump(_playbook(ns), sort_keys=False))
        env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(versions.REPO_ROOT / ".collections"),
               "ANSIBLE_CALLBACK_PLUGINS": str(versions.REPO_ROOT / "bench" / "callback_plugins"),
               "ANSIBLE_CALLBACKS_ENABLED": "task_timer", "TASK_TIMER_OUT": str(timings)}
        started = time.monotonic()
        proc = subprocess.run([str(versions.REPO_ROOT / ".venv/bin/ansible-playbook"), str(playbook)],
                              env=env, capture_output=True, text=True, check=False)
        wall = time.monotonic() - started
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-2000:])
            return 1
        rows = [json.loads(line) for line in timings.read_text().splitlines()]
    events = audit.events("sandbox-admin")
    admin.delete(f"/api/v1/namespaces/{ns}")

    medians = {kind: statistics.median(r["seconds"] for r in rows if _kind(r["task"]) == kind)
               for kind in ("ping", "traffic_split", "k8s")}
    by_agent = {"traffic_split": "canary.istio", "k8s": "OpenAPI-Generator"}
    requests = {}
    for kind, agent in by_agent.items():
        mine = [e for e in events if e.get("userAgent", "").startswith(agent)]
        requests[kind] = {
            "reads_per_task": sum(1 for e in mine if e["verb"] not in WRITE_VERBS) / REPEAT,
            "writes_per_task": sum(1 for e in mine if e["verb"] in WRITE_VERBS) / REPEAT,
        }
    overhead = {k: medians[k] - medians["ping"] for k in ("traffic_split", "k8s")}
    ratio = round(overhead["traffic_split"] / overhead["k8s"], 3)
    table_rows = [[kind, round(medians[kind] * 1000), round(overhead.get(kind, 0) * 1000),
                   requests.get(kind, {}).get("reads_per_task", "-"), requests.get(kind, {}).get("writes_per_task", "-")]
                  for kind in ("ping", "traffic_split", "k8s")]
    result = {
        "title": "Per-task wall time: traffic_split, kubernetes.core.k8s and ping",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": f"{platform.node()} {os.cpu_count()} cores",
        "load_1m": round(os.getloadavg()[0], 2), "repeat": REPEAT,
        "table": {"columns": ["task", "median ms", "above ping ms", "API reads per task", "API writes per task"],
                  "rows": table_rows},
        "figures": {"overhead_ratio_traffic_split_to_k8s": ratio},  # what bench/notes/task_overhead.md says
        "playbook_wall_s": round(wall, 2),
        "median_task_s": {k: round(v, 4) for k, v in medians.items()},
        "overhead_above_ping_s": {k: round(v, 4) for k, v in overhead.items()},
        "overhead_ratio_traffic_split_to_k8s": ratio,
        "api_requests": requests,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "task_overhead.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'task':<16}{'median s':>10}{'above ping s':>14}{'reads':>8}{'writes':>8}")
    for kind in ("ping", "traffic_split", "k8s"):
        req = requests.get(kind, {})
        print(f"{kind:<16}{medians[kind]:>10.3f}{overhead.get(kind, 0):>14.3f}"
              f"{req.get('reads_per_task', 0):>8.1f}{req.get('writes_per_task', 0):>8.1f}")
    print_notes("task_overhead", result)
    print(f"overhead ratio traffic_split / kubernetes.core.k8s: {result['overhead_ratio_traffic_split_to_k8s']:.2f} "
          f"(aim: at most 0.5); {REPEAT} repetitions; results in {RESULTS / 'task_overhead.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
