"""What the benches share: bookinfo's reviews in a fresh namespace, ansible-playbook runs timed task by
task, API requests from the audit log told apart by task, an HTTP proxy that notes the requests it
passes on, and the result file every bench writes (data only: its notes' words are bench/notes/<name>.md,
rendered by bench/_notes.py)."""
from __future__ import annotations

import datetime
import http.server
import json
import os
import platform
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import yaml

from bench._notes import notes_of
from sandbox import cluster, versions
from sandbox.api import collection_path
from sandbox.audit import WRITE_VERBS

RESULTS = versions.REPO_ROOT / "bench" / "results"
ANSIBLE_PLAYBOOK = versions.REPO_ROOT / ".venv" / "bin" / "ansible-playbook"
ADMIN_KUBECONFIG = versions.STATE_DIR / "kubeconfig"
RELEASE_KUBECONFIG = versions.STATE_DIR / "kubeconfig-release"
RELEASE_USER = "canary-release"  # the least-privilege identity of kubeconfig-release
BETWEEN_TASKS = "(between tasks)"


class RecordingProxy:
    """Loopback HTTP proxy to one upstream that notes when each request came and when it was answered:
    requests counted where the server sees them, and a client's rounds seen live."""

    HEADERS = ("content-type", "accept", "authorization", "df-api-key")

    def __init__(self, upstream: str) -> None:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format, *args):  # pylint: disable=redefined-builtin
                pass

            def _forward(self) -> None:
                received = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() in proxy.HEADERS}
                resp = requests.request(self.command, upstream.rstrip("/") + self.path, data=body, headers=headers, timeout=60)
                self.send_response(resp.status_code)
                self.send_header("Content-Type", resp.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(resp.content)))
                self.end_headers()
                self.wfile.write(resp.content)
                with proxy.lock:
                    proxy.requests.append((received, time.time()))

            do_GET = do_POST = _forward

        self.lock = threading.Lock()
        self.requests: list[tuple[float, float]] = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def seen(self) -> list[tuple[float, float]]:
        """(received, answered) of each request passed on, epoch seconds, oldest first."""
        with self.lock:
            return list(self.requests)

    @property
    def count(self) -> int:
        return len(self.seen())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def deploy_reviews(admin, ns: str, versions_: tuple[str, ...] = ("v1", "v2")) -> None:
    """A fresh namespace bound to the release role, with bookinfo's reviews Service and these versions Ready."""
    cluster.create_namespace(admin, ns)
    admin.wait_for("default ServiceAccount", lambda: admin.get(f"/api/v1/namespaces/{ns}/serviceaccounts/default"), 30)
    docs = [d for d in yaml.safe_load_all((versions.BOOKINFO_DIR / "platform" / "bookinfo.yaml").read_text()) if d]
    wanted = {("Service", "reviews"), ("ServiceAccount", "bookinfo-reviews")} | {("Deployment", f"reviews-{v}") for v in versions_}
    admin.apply_manifest([d for d in docs if (d["kind"], d["metadata"]["name"]) in wanted], ns)
    for version in versions_:
        path = f"{collection_path('Deployment', ns)}/reviews-{version}"
        admin.wait_for(f"reviews-{version} Ready", lambda p=path: admin.get(p).get("status", {}).get("readyReplicas") == 1, 90)


def reviews_rules(admin, ns: str, stable_weight: int) -> None:
    """DestinationRule reviews with subsets v1 and v2, and VirtualService reviews split between them."""
    admin.create(collection_path("DestinationRule", ns), {
        "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": "reviews"},
        "spec": {"host": "reviews", "subsets": [{"name": v, "labels": {"version": v}} for v in ("v1", "v2")]}})
    admin.create(collection_path("VirtualService", ns), virtual_service(ns, stable_weight))


def virtual_service(ns: str, stable_weight: int) -> dict:
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "reviews", "namespace": ns},
            "spec": {"hosts": ["reviews"], "http": [{"route": [
                {"destination": {"host": "reviews", "subset": "v1"}, "weight": stable_weight},
                {"destination": {"host": "reviews", "subset": "v2"}, "weight": 100 - stable_weight}]}]}}


def ansible_env(**extra: str) -> dict:
    """This checkout as canary.istio, plain output, and the task timer on."""
    return {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(versions.REPO_ROOT / ".collections"),
            "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_CALLBACK_PLUGINS": str(versions.REPO_ROOT / "bench" / "callback_plugins"),
            "ANSIBLE_CALLBACKS_ENABLED": "task_timer", **extra}


class PlaybookRun:
    """One ansible-playbook run: its process, start (epoch s), wall seconds (start to exit), the task timer's lines."""

    def __init__(self, proc: subprocess.CompletedProcess, started_at: float, seconds: float, tasks: list[dict]):
        self.proc, self.started_at, self.seconds, self.tasks = proc, started_at, seconds, tasks

    @property
    def ok(self) -> bool:
        return self.proc.returncode == 0

    def tail(self) -> str:
        return f"{self.proc.stdout[-3000:]}\n{self.proc.stderr[-2000:]}"


def run_playbook(playbook: str | Path | list, *args: str, env: dict | None = None) -> PlaybookRun:
    """ansible-playbook on a playbook name or path, or on plays (a list, written to a temporary file)."""
    with tempfile.TemporaryDirectory() as tmp:
        if isinstance(playbook, list):
            path = Path(tmp, "bench.yml")
            path.write_text(yaml.safe_dump(playbook, sort_keys=False))
            playbook = path
        timings = Path(tmp, "timings.jsonl")
        started_at, started = time.time(), time.monotonic()
        proc = subprocess.run([str(ANSIBLE_PLAYBOOK), str(playbook), *args], env=ansible_env(TASK_TIMER_OUT=str(timings), **(env or {})),
                              capture_output=True, text=True, check=False, timeout=900)
        seconds = time.monotonic() - started
        tasks = [json.loads(line) for line in timings.read_text().splitlines()] if timings.exists() else []
    return PlaybookRun(proc, started_at, seconds, tasks)


def is_dry_run(event: dict) -> bool:
    return event["verb"] in WRITE_VERBS and "dryRun=" in event.get("requestURI", "")


def is_write(event: dict) -> bool:
    """A write that can change the cluster: a dry run (how version_deployment asks whether an
    update would change anything) is counted on its own."""
    return event["verb"] in WRITE_VERBS and not is_dry_run(event)


def reads_writes(events: list[dict]) -> dict:
    writes = sum(1 for e in events if is_write(e))
    dry = sum(1 for e in events if is_dry_run(e))
    return {"reads": len(events) - writes - dry, "writes": writes, "dry_runs": dry}


def epoch(stamp: str) -> float:
    """An audit log timestamp (RFC 3339, UTC) as epoch seconds, the task timer's clock."""
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def by_task(events: list[dict], tasks: list[dict]) -> dict[str, list[dict]]:
    """Audit events grouped by the task whose start-end span holds their receipt time (one host runs
    one task at a time); the rest under BETWEEN_TASKS. Tasks of the same name share a group."""
    grouped: dict[str, list[dict]] = {}
    for event in events:
        received = epoch(event["requestReceivedTimestamp"])
        task = next((t["task"] for t in tasks if t["start"] <= received <= t["end"]), BETWEEN_TASKS)
        grouped.setdefault(task, []).append(event)
    return grouped


def in_parallel(function, items: list) -> list:
    """function(item) for each item in threads (setting up namespaces is mostly waiting for pods)."""
    with ThreadPoolExecutor(max(1, len(items))) as pool:
        return list(pool.map(function, items))


def write_summary(events: list[dict]) -> list[str]:
    """Each write as 'verb resource' (e.g. 'update virtualservices'), in order."""
    return [f"{e['verb']} {e.get('objectRef', {}).get('resource', e['requestURI'])}" for e in events if is_write(e)]


def header(title: str, repeat: int, load_before: float) -> dict:
    """The fields every bench result starts with (bench/publish.py reads them)."""
    return {"title": title, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": f"{platform.node()} {os.cpu_count()} cores",
            "load_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)], "repeat": repeat}


def save(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def save_and_print(name: str, result: dict) -> Path:
    """Write bench/results/<name>.json and print its table and notes: the end of every bench."""
    path = save(name, result)
    print_table(result["table"]["columns"], result["table"]["rows"])
    print_notes(name, result)
    print(f"results in {path}")
    return path


def print_notes(name: str, result: dict) -> None:
    """The notes of a bench's result: bench/notes/<name>.md rendered with its ``figures``."""
    for note in notes_of(name, result):
        print(f"- {note}")


def print_table(columns: list[str], rows: list[list]) -> None:
    cells = [[str(c) for c in columns]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for row in cells:
        print("  ".join(cell.ljust(width) if i == 0 else cell.rjust(width) for i, (cell, width) in enumerate(zip(row, widths))))
