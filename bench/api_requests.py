"""API requests per action, from the sandbox's audit log: reads and writes, and again on a second run.

Run: .venv/bin/python -m bench.api_requests

Each action runs as users run it, through ansible-playbook with the least-privilege release token,
so its requests are those of the identity ``canary-release`` in the cluster's audit log; nothing
else uses that identity. Each action runs twice with the same variables; the second run should
change nothing and write nothing. Three chains run side by side, each on its own sandbox cluster
(its own audit log), to keep the bench short on a busy machine:

- sandbox-1: one playbook running the modules traffic_split, destination_rule and fault_injection
  (a task each) and the promote and rollback roles, each twice, with a marker task between
  actions: a request belongs to the action whose markers enclose it (the task timer's times against
  the audit log's timestamps);
- sandbox-2: a whole canary_release (no analysis, holds of 1 s), then the same command again;
- sandbox-3: a release that stops at 50%, then again: the idempotent re-run of a release.

Requests are also told apart by task, which shows where each write comes from. Writes do not
depend on timing (reads by a few, where kubernetes.core polls), so each action runs once
(BENCH_REPEAT is not used). Writes bench/results/api_requests.json; its notes are
bench/notes/api_requests.md, rendered with the result's ``figures``.
"""
from __future__ import annotations

import json
import os
import tempfile
import threading
import uuid
from pathlib import Path

from bench import _common as common
from sandbox import control
from sandbox.api import collection_path
from sandbox.audit import AuditLog

IMAGE = "docker.io/istio/examples-bookinfo-reviews-v2:1.20.1"
RELEASE_STEPS = [10, 50, 100]
HELD_STEPS = [10, 50]  # a release that stops short of 100%: its second run is the idempotent re-run
RELEASE = f"canary_release {RELEASE_STEPS}"
HELD = f"canary_release {HELD_STEPS} (held)"
MARK = "@@ "  # prefix of the marker tasks between the actions of one playbook
TITLE = "API requests per action (audit log), and on a second, idempotent run"
SPLIT_READS_AIM = 3  # reads of a traffic_split that changes weights; a note says why when it takes more


def _versions(*names: str) -> list[dict]:
    return [{"name": v, "labels": {"version": v}} for v in names]


def role_vars(ns: str, context: str) -> dict:
    return {"canary_app": "reviews", "canary_namespace": ns, "canary_stable_version": "v1", "canary_version": "v2",
            "canary_kubeconfig": str(common.RELEASE_KUBECONFIG), "canary_context": context}


def _marker(action: str, which: str) -> dict:
    return {"name": f"{MARK}{action} {which}", "ansible.builtin.debug": {"msg": f"{action}, {which} run"}}


def actions_play(ns: dict[str, str], context: str) -> tuple[list[str], list[dict]]:
    """(action names, plays): each action's task twice, a marker before each run and one at the end.

    ``ns``: namespace of the modules, of promote, of rollback."""
    connection = {"kubeconfig": str(common.RELEASE_KUBECONFIG), "context": context}
    actions = {
        "traffic_split": {"canary.istio.traffic_split": {
            "name": "reviews", "namespace": ns["modules"], "stable": "v1", "canary": "v2", "canary_weight": 10, **connection}},
        "destination_rule": {"canary.istio.destination_rule": {
            "name": "reviews", "namespace": ns["modules"], "service_host": "reviews", "subsets": _versions("v1", "v2", "v3"),
            **connection}},
        "fault_injection": {"canary.istio.fault_injection": {
            "name": "reviews", "namespace": ns["modules"], "rule": "jason-delay", "headers": {"end-user": {"exact": "jason"}},
            "delay": {"fixed_delay": "7s", "percentage": 100}, **connection}},
        "promote (role)": {"ansible.builtin.include_role": {"name": "canary.istio.promote"}, "vars": role_vars(ns["promote"], context)},
        "rollback (role)": {"ansible.builtin.include_role": {"name": "canary.istio.rollback"}, "vars": role_vars(ns["rollback"], context)},
    }
    tasks = []
    for action, task in actions.items():
        for which in ("first", "second"):
            tasks += [_marker(action, which), {"name": action, **task}]
    tasks.append(_marker("end", ""))
    return list(actions), [{"name": "actions", "hosts": "localhost", "gather_facts": False, "tasks": tasks}]


def segments(events: list[dict], tasks: list[dict]) -> dict[str, list[dict]]:
    """Events by the marker task before them: '<action> first|second' -> events (requests before the
    first marker, if any, are left out: none of ours come before it)."""
    markers = sorted((t for t in tasks if t["task"].startswith(MARK)), key=lambda t: t["start"])
    grouped: dict[str, list[dict]] = {m["task"][len(MARK):].strip(): [] for m in markers}
    for event in events:
        received = common.epoch(event["requestReceivedTimestamp"])
        before = [m for m in markers if m["end"] <= received]
        if before:
            grouped[before[-1]["task"][len(MARK):].strip()].append(event)
    return grouped


def _tasks_between(tasks: list[dict], start: float, end: float) -> list[dict]:
    return [t for t in tasks if start <= t["start"] and t["end"] <= end and not t["task"].startswith(MARK)]


def counted(events: list[dict], tasks: list[dict], failure: str | None) -> dict:
    """Reads and writes of one run of an action, in all and by task."""
    return {**common.reads_writes(events), "writes_list": common.write_summary(events),
            "by_task": {task: {**common.reads_writes(evs), "writes_list": common.write_summary(evs)}
                        for task, evs in common.by_task(events, tasks).items()},
            "failure": failure}


def _failure(done: common.PlaybookRun) -> str | None:
    """The play's own error message (its last 'fatal' line), for the notes."""
    if done.ok:
        return None
    lines = [ln.strip() for ln in done.proc.stdout.splitlines() if ln.startswith("fatal")]
    return (lines[-1] if lines else done.tail())[:400]


def run_actions(c, ns: dict[str, str]) -> dict:
    """The modules and roles, each twice, in one playbook on cluster ``c``."""
    names, play = actions_play(ns, c.name)
    audit = AuditLog(c).mark()
    done = common.run_playbook(play)
    events = audit.events(common.RELEASE_USER)
    by_segment = segments(events, done.tasks)
    markers = {t["task"][len(MARK):].strip(): t for t in done.tasks if t["task"].startswith(MARK)}
    order = [f"{name} {which}" for name in names for which in ("first", "second")] + ["end"]
    measured: dict[str, dict] = {}
    for index, key in enumerate(order[:-1]):
        name, which = key.rsplit(" ", 1)
        if key not in markers:  # the play stopped before this action
            measured.setdefault(name, {})[which] = counted([], [], _failure(done) or "not run")
            continue
        end = markers[order[index + 1]]["start"] if order[index + 1] in markers else float("inf")
        tasks = _tasks_between(done.tasks, markers[key]["end"], end)
        failed = any(t["status"] == "failed" for t in tasks)
        measured.setdefault(name, {})[which] = counted(by_segment.get(key, []), tasks, _failure(done) if failed else None)
    return measured


def snapshot(admin, ns: str) -> dict[str, str]:
    """resourceVersion of each object a release touches in a namespace: what a write really changed."""
    found = {}
    for kind in ("VirtualService", "DestinationRule", "Deployment"):
        for obj in admin.get(collection_path(kind, ns))["items"]:
            found[f"{kind}/{obj['metadata']['name']}"] = obj["metadata"]["resourceVersion"]
    return found


def run_release(c, ns: str, steps: list[int], tmp: str) -> dict:
    """canary_release on cluster ``c``, then the same command again; each run counted on its own."""
    extra = {**role_vars(ns, c.name), "canary_image": IMAGE, "canary_steps": steps, "canary_interval": 1,
             "canary_analysis": False, "canary_report_dir": str(Path(tmp, "reports"))}
    path = Path(tmp, f"vars-{ns}.json")
    path.write_text(json.dumps(extra))
    admin, audit = c.admin(), AuditLog(c)
    measured = {}
    for which in ("first", "second"):
        before = snapshot(admin, ns)
        audit.mark()
        done = common.run_playbook("canary.istio.canary_release", "-e", f"@{path}")
        events = audit.events(common.RELEASE_USER)
        after = snapshot(admin, ns)
        measured[which] = {**counted(events, done.tasks, _failure(done)),
                           "objects_changed": sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))}
    return measured


def step_writes(run: dict) -> dict[str, int]:
    """Writes of each traffic step of a release, by task (the shift_traffic role's traffic_split)."""
    return {task.rsplit(" ", 1)[-1]: counts["writes"] for task, counts in run["by_task"].items()
            if "Shift traffic to the canary" in task}


def _task_writes(run: dict, words: str) -> int:
    return sum(counts["writes"] for task, counts in run["by_task"].items() if words in task)


def _top_readers(run: dict, count: int = 3) -> list[list]:
    """[task, reads] of the tasks that read most, most first (the task's name without its role)."""
    tasks = sorted(run["by_task"].items(), key=lambda item: -item[1]["reads"])[:count]
    return [[task.split(" : ")[-1], counts["reads"]] for task, counts in tasks]


def _expected_failure(action: str, which: str, failure: str) -> bool:
    """The release run again after its promotion stops at validation: the stable Deployment is gone."""
    return action == RELEASE and which == "second" and "does not exist" in failure


def figures(measured: dict) -> dict:
    """What the notes (bench/notes/api_requests.md) say, as data: counts, names, lists, and a flag
    for each note that is there only when a figure calls for it."""
    split, release, held = measured["traffic_split"], measured[RELEASE], measured[HELD]
    return {
        "release": RELEASE, "held": HELD,
        "release_step_writes": step_writes(release["first"]),
        "release_promotion_writes": _task_writes(release["first"], "All traffic to the canary"),
        "release_writes": release["first"]["writes_list"],
        "release_top_readers": _top_readers(release["first"]),
        "split_reads": split["first"]["reads"], "split_reads_rerun": split["second"]["reads"],
        "split_reads_aim": SPLIT_READS_AIM, "split_reads_above_aim": split["first"]["reads"] > SPLIT_READS_AIM,
        "held_rerun_writes": held["second"]["writes"], "held_rerun_writes_list": held["second"]["writes_list"],
        "held_rerun_objects_changed": held["second"]["objects_changed"],
        "held_rerun_dry_runs": held["second"].get("dry_runs", 0),
        "release_rerun_writes": release["second"]["writes"],
        "release_rerun_stopped_at_validation": _expected_failure(RELEASE, "second", release["second"]["failure"] or ""),
        "failures": [{"action": action, "run": which, "failure": runs[which]["failure"]}
                     for action, runs in measured.items() for which in ("first", "second")
                     if runs[which]["failure"] and not _expected_failure(action, which, runs[which]["failure"])],
    }


def prepare(clusters: list, uid: str) -> dict[str, tuple]:
    """Namespaces and what each needs: (cluster, reviews versions, stable weight of rules made beforehand or None)."""
    layout = {
        f"bench-req-mod-{uid}": (clusters[0], ("v1", "v2"), 100),  # the modules, one after the other
        f"bench-req-prom-{uid}": (clusters[0], ("v1", "v2"), 50),  # a canary at 50% to promote
        f"bench-req-rb-{uid}": (clusters[0], ("v1", "v2"), 50),  # and one to roll back
        f"bench-req-rel-{uid}": (clusters[1], ("v1",), None),  # the reference flow's start: v1 alone, no rules
        f"bench-req-held-{uid}": (clusters[2], ("v1",), None),
    }

    def one(ns: str) -> None:
        c, deployed, stable_weight = layout[ns]
        admin = c.admin()
        common.deploy_reviews(admin, ns, deployed)
        if stable_weight is not None:
            common.reviews_rules(admin, ns, stable_weight)

    common.in_parallel(one, list(layout))
    return layout


def run_chains(clusters: list, names: list[str], tmp: str) -> dict:
    modules_ns, promote_ns, rollback_ns, release_ns, held_ns = names
    results: dict[str, dict] = {}
    chains = {
        "actions": lambda: run_actions(clusters[0], {"modules": modules_ns, "promote": promote_ns, "rollback": rollback_ns}),
        RELEASE: lambda: {RELEASE: run_release(clusters[1], release_ns, RELEASE_STEPS, tmp)},
        HELD: lambda: {HELD: run_release(clusters[2], held_ns, HELD_STEPS, tmp)},
    }

    def chain(name: str) -> None:
        results[name] = chains[name]()
        print(f"{name}: done", flush=True)

    threads = [threading.Thread(target=chain, args=(name,)) for name in chains]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {**results["actions"], **results[RELEASE], **results[HELD]}


def main() -> int:
    load_before = os.getloadavg()[0]
    clusters = control.up(3)[:3]
    uid = uuid.uuid4().hex[:6]
    with tempfile.TemporaryDirectory() as tmp:
        layout = prepare(clusters, uid)
        try:
            measured = run_chains(clusters, list(layout), tmp)
        finally:
            for ns, (c, _versions_, _weight) in layout.items():
                c.admin().delete(f"/api/v1/namespaces/{ns}")
    columns = ["action", "reads", "writes", "second run reads", "second run writes"]
    rows = [[name, runs["first"]["reads"], runs["first"]["writes"], runs["second"]["reads"], runs["second"]["writes"]]
            for name, runs in measured.items()]
    result = {**common.header(TITLE, 1, load_before), "table": {"columns": columns, "rows": rows},
              "figures": figures(measured), "actions": measured}
    common.save_and_print("api_requests", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
