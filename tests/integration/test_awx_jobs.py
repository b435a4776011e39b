"""AWX's job templates run the way AWX runs them, on the sandbox.

There is no AWX here; what it would do is done from ``awx/`` itself (tests/unit/awx_controller.py):
``configure.yml`` runs against a stand-in ``awx.awx`` that records each template as AWX would
store it (survey, extra variables, credentials), then each job gets the private data directory AWX
builds (the project, the inventory synced from its file, extra variables in AWX's precedence, the
credentials' injected files and environment) and is run with ``ansible-runner``, as AWX runs every
job: ``ansible-runner run`` on the controller, and once through ``transmit | worker | process``, the
stream AWX sends to its execution nodes. The answers are a person's, untouched survey defaults
included. What each job did is read back from the cluster.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from sandbox import versions
from sandbox.api import collection_path

from runners import REPO, VENV_BIN  # pylint: disable=import-error

sys.path.insert(0, str(REPO / "tests" / "unit"))
from awx_controller import job_private_data_dir, make_stub_collection, run_configure, sent  # noqa: E402  pylint: disable=import-error,wrong-import-position

pytestmark = pytest.mark.integration

APP = "reviews"
IMAGE = "docker.io/istio/examples-bookinfo-reviews-v2:1.20.1"
# Requests per second to reviews in the test's namespace. The templates' default analysis asks
# min_requests 20 of a round; at the 10% step an 8 s round then holds ~60 canary requests (fewer
# when the simulator's route poll and its 2 s scrapes eat into the window), far enough above the
# limit that a loaded machine's slower rounds never make a healthy round inconclusive.
RATE = 100
HEALTHY = {"error_rate": 0.0, "error_code": 500, "latency_ms": 20.0, "latency_sigma": 0.2}
INVENTORY = REPO / "inventories" / "example" / "hosts.yml"


@pytest.fixture(scope="module")
def awx(sandbox, tmp_path_factory):
    """The AWX objects configure.yml makes with both credentials attached, the credentials' inputs,
    and the directory standing for the persistent volume the reports go to."""
    endpoints = json.loads((versions.STATE_DIR / "endpoints.json").read_text())
    tmp = tmp_path_factory.mktemp("awx")
    reports = tmp / "persistent-volume" / "reports"
    kubeconfig = (versions.STATE_DIR / "kubeconfig-release").read_text()
    secrets = {"canary_awx_kubeconfig": kubeconfig, "canary_awx_guance_url": endpoints["guance_openapi"],
               "canary_awx_guance_api_key": endpoints["guance_api_key"], "canary_awx_report_dir": str(reports)}
    secrets_file = tmp / "secrets.json"
    secrets_file.write_text(json.dumps(secrets), encoding="utf-8")
    outcome = run_configure(make_stub_collection(tmp / "stub"), "-e", "canary_awx_scm_url=https://git.example.com/canary.istio.git",
                            "-e", "canary_awx_ee_image=registry.example.com/canary-istio-ee:0.1.0", "-e", f"@{secrets_file}")
    assert outcome["rc"] == 0, outcome["output"][-3000:]
    types = {ctype["name"]: ctype for ctype in sent(outcome, "credential_type")}
    credentials = {
        "canary.istio clusters": (types["Kubeconfig (multi-context)"], {"kubeconfig": kubeconfig}),
        "canary.istio Guance": (types["Guance API"], {"url": endpoints["guance_openapi"], "api_key": endpoints["guance_api_key"]}),
    }
    (workflow,) = sent(outcome, "workflow_job_template")
    return {"templates": {t["name"]: t for t in sent(outcome, "job_template")}, "credentials": credentials,
            "workflow": {node["identifier"]: node for node in workflow["workflow_nodes"]},
            "reports": reports, "root": tmp, "endpoints": endpoints, "jobs": iter(range(1001, 2000))}


def template(awx, name: str) -> dict:
    return awx["templates"][f"canary.istio: {name}"]


def build_job(awx, name: str, answers: dict, **launch_vars) -> tuple[Path, str]:
    """The private data directory of one job of the template, and its playbook."""
    chosen = template(awx, name)
    data_dir = job_private_data_dir(
        awx["root"], chosen, answers, job_id=next(awx["jobs"]), inventory=INVENTORY,
        credentials=[awx["credentials"][c] for c in chosen["credentials"]],
        # The collection as the execution environment has it installed.
        env={"ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections")}, launch_vars=launch_vars)
    return data_dir, chosen["playbook"]


def runner_env() -> dict:
    return {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def job_result(artifacts: Path) -> dict:
    """rc, status, stdout and events of a job as ansible-runner left them in its artifacts."""
    events = [json.loads(p.read_text()) for p in (artifacts / "job_events").glob("*.json")]
    events.sort(key=lambda e: e.get("counter", 0))
    stats = [e for e in events if e.get("event") == "playbook_on_stats"]
    return {"rc": int((artifacts / "rc").read_text()), "status": (artifacts / "status").read_text(),
            "stdout": (artifacts / "stdout").read_text(), "events": events,
            "artifact_data": stats[-1]["event_data"].get("artifact_data", {}) if stats else {}}


def run_job(awx, name: str, answers: dict, **launch_vars) -> dict:
    """``ansible-runner run``, as AWX runs a job on the controller; the job's directory is removed
    afterwards, as AWX removes it."""
    data_dir, playbook = build_job(awx, name, answers, **launch_vars)
    subprocess.run([str(VENV_BIN / "ansible-runner"), "run", str(data_dir), "-p", playbook, "--ident", "job"],
                   env=runner_env(), capture_output=True, text=True, timeout=1200, check=False)
    result = job_result(data_dir / "artifacts" / "job")
    shutil.rmtree(data_dir)
    return result


def run_remote_job(awx, name: str, answers: dict, **launch_vars) -> dict:
    """``ansible-runner transmit | worker | process``: the job streamed to an execution node, run in
    that node's own directory (deleted when done) and its events streamed back."""
    data_dir, playbook = build_job(awx, name, answers, **launch_vars)
    node_dir = awx["root"] / f"{data_dir.name}-node"
    runner = str(VENV_BIN / "ansible-runner")
    env = runner_env()
    transmit = subprocess.Popen([runner, "transmit", str(data_dir), "-p", playbook, "--ident", "job"], env=env,
                                stdout=subprocess.PIPE)
    worker = subprocess.Popen([runner, "worker", "--private-data-dir", str(node_dir), "--delete"], env=env,
                              stdin=transmit.stdout, stdout=subprocess.PIPE)
    transmit.stdout.close()
    processed = subprocess.run([runner, "process", str(data_dir), "--ident", "job"], env=env, stdin=worker.stdout,
                               capture_output=True, text=True, timeout=1200, check=False)
    worker.stdout.close()
    assert transmit.wait(60) == 0 and worker.wait(60) == 0, processed.stderr[-2000:]
    assert not node_dir.exists(), "the execution node keeps nothing of the job"
    result = job_result(data_dir / "artifacts" / "job")
    shutil.rmtree(data_dir)
    return result


def answers(namespace: str, stable: str, canary: str, **change) -> dict:
    """A person's answers to the release survey's required questions; the rest left at their defaults."""
    given = {"canary_app": APP, "canary_namespace": namespace, "canary_stable_version": stable,
             "canary_version": canary, "canary_image": IMAGE}
    given.update(change)
    return given


def _sim(awx, what: str, body: dict) -> None:
    resp = requests.post(f"{awx['endpoints']['datakit']}/__sim/{what}", json=body, timeout=10)
    assert resp.status_code == 200, resp.text


def _deploy_stable(admin, namespace: str, version: str) -> None:
    labels = {"app": APP, "version": version}
    admin.apply_manifest([
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": APP, "labels": {"app": APP}},
         "spec": {"selector": {"app": APP}, "ports": [{"name": "http", "port": 9080}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"{APP}-{version}", "labels": labels},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"containers": [{"name": APP, "image": IMAGE.replace("v2", "v1"),
                                                        "ports": [{"containerPort": 9080}]}]}}}},
    ], namespace)
    path = f"{collection_path('Deployment', namespace)}/{APP}-{version}"
    admin.wait_for(f"{APP}-{version} Ready", lambda: admin.get(path).get("status", {}).get("readyReplicas") == 1, 90)


def weights(admin, namespace: str) -> dict:
    vs = admin.get(f"{collection_path('VirtualService', namespace)}/{APP}", ok_missing=True)
    route = [r for r in vs["spec"]["http"] if not r.get("match")][0]["route"]
    return {d["destination"]["subset"]: d.get("weight", 100 if len(route) == 1 else 0) for d in route}


@pytest.fixture
def service(awx, admin, namespace):
    """reviews' stable version Ready in the test's namespace with traffic from the simulator; both
    versions (unique to the test: the simulator's profiles are per version) healthy to begin with."""
    uid = uuid.uuid4().hex[:6]
    stable, canary = f"s-{uid}", f"c-{uid}"
    for version in (stable, canary):
        _sim(awx, "profiles", {"service": APP, "version": version, **HEALTHY})
    _deploy_stable(admin, namespace, stable)
    _sim(awx, "traffic", {"cluster": "sandbox-1", "namespace": namespace, "service": APP, "rate": RATE})
    yield namespace, stable, canary
    _sim(awx, "traffic", {"cluster": "sandbox-1", "namespace": namespace, "service": APP, "rate": 0})


def report_dir(awx, namespace: str, canary: str) -> Path:
    return awx["reports"] / f"{namespace}-{APP}-{canary}" / "localhost"


def test_the_release_template_is_gated_and_rolls_back_a_faulty_canary(awx, admin, service):
    namespace, stable, canary = service
    _sim(awx, "profiles", {"service": APP, "version": canary, "error_rate": 0.3, "error_code": 503})
    job = run_job(awx, "canary release", answers(namespace, stable, canary, canary_interval=8))
    assert job["rc"] != 0 and job["status"] == "failed", job["stdout"][-3000:]
    # the analysis the template carries by default (the Guance credential is attached) caught it
    assert "request_success_rate" in job["stdout"] and "rolled back" in job["stdout"]
    assert weights(admin, namespace) == {stable: 100, canary: 0}
    summary = job["artifact_data"]["canary_release"]["localhost"]
    assert summary["outcome"].startswith("rolled back") and summary["weights"] == {stable: 100, canary: 0}
    assert summary["verdicts"] and summary["verdicts"][-1]["verdict"] == "fail"
    # the credential's key reaches the modules through the environment, never the job's output or artifacts
    key = awx["endpoints"]["guance_api_key"]
    assert key not in job["stdout"] and key not in json.dumps(job["events"])
    # The job's directory is gone; its report and records are on the persistent volume.
    kept = report_dir(awx, namespace, canary)
    assert summary["report"] == str(kept / "report.html")
    records = json.loads((kept / "records.json").read_text())
    assert records["outcome"]["status"] == "rolled_back", records["outcome"]
    assert [r["event"] for r in records["records"]][-1] == "rolled_back"
    assert (kept / "report.html").is_file()
    assert key not in (kept / "records.json").read_text() and key not in (kept / "report.html").read_text()
    # The rollback template on a service already rolled back changes nothing and succeeds.
    again = run_job(awx, "rollback", answers(namespace, stable, canary))
    assert again["rc"] == 0, again["stdout"][-3000:]
    assert weights(admin, namespace) == {stable: 100, canary: 0}


def test_a_release_through_an_execution_node_then_every_other_template(awx, admin, service):
    namespace, stable, canary = service
    # transmit | worker | process, as AWX sends a job to an execution node: to 50%, held there.
    job = run_remote_job(awx, "canary release", answers(namespace, stable, canary, canary_interval=8), canary_steps=[10, 50])
    assert job["rc"] == 0 and job["status"] == "successful", job["stdout"][-3000:]
    assert weights(admin, namespace) == {stable: 50, canary: 50}
    summary = job["artifact_data"]["canary_release"]["localhost"]
    assert summary["weights"] == {stable: 50, canary: 50} and [v["verdict"] for v in summary["verdicts"]] == ["pass", "pass"]
    records = json.loads((report_dir(awx, namespace, canary) / "records.json").read_text())
    assert [r["event"] for r in records["records"]].count("step") == 2

    people = answers(namespace, stable, canary)
    shifted = run_job(awx, "shift traffic", people, canary_weight=80)
    assert shifted["rc"] == 0, shifted["stdout"][-3000:]
    assert weights(admin, namespace) == {stable: 20, canary: 80}
    fault = {"canary_namespace": namespace, "fault_injection_service": APP}
    assert run_job(awx, "fault injection", fault)["rc"] == 0
    vs = admin.get(f"{collection_path('VirtualService', namespace)}/{APP}")
    assert any(route.get("fault") for route in vs["spec"]["http"]), "the reference fault is in place"
    assert run_job(awx, "fault injection", dict(fault, fault_injection_state="absent"))["rc"] == 0
    vs = admin.get(f"{collection_path('VirtualService', namespace)}/{APP}")
    assert not any(route.get("fault") for route in vs["spec"]["http"])
    promoted = run_job(awx, "promote", people)
    assert promoted["rc"] == 0, promoted["stdout"][-3000:]
    assert weights(admin, namespace) == {canary: 100}
    deployments = admin.get(collection_path("Deployment", namespace), params={"labelSelector": f"app={APP}"})["items"]
    assert {d["metadata"]["name"] for d in deployments} == {f"{APP}-{canary}"}
    assert run_job(awx, "delete old versions", people)["rc"] == 0


def lock_on(admin, namespace: str) -> dict | None:
    vs = admin.get(f"{collection_path('VirtualService', namespace)}/{APP}")
    raw = (vs["metadata"].get("annotations") or {}).get("canary.istio/release-lock")
    return json.loads(raw) if raw else None


def held_release(awx, admin, namespace: str, stable: str, canary: str) -> tuple[dict, dict]:
    """The workflow's release node: steps below 100, the lock kept for the decision. Returns the job
    and the artifacts AWX hands the later nodes as extra variables."""
    node = awx["workflow"]["release"]
    job = run_job(awx, "canary release", answers(namespace, stable, canary, canary_interval=8), **node["extra_data"])
    assert job["rc"] == 0, job["stdout"][-3000:]
    assert weights(admin, namespace) == {stable: 50, canary: 50}
    artifacts = job["artifact_data"]
    held = lock_on(admin, namespace)
    assert held and held["run"] == artifacts["canary_release_lock"]["run"], (held, artifacts)  # kept for the decision
    return job, artifacts


def test_a_regression_while_the_approval_waits_rolls_back_and_the_late_approval_is_refused(awx, admin, service):
    namespace, stable, canary = service
    _job, artifacts = held_release(awx, admin, namespace, stable, canary)
    # another release of the service is refused while the decision is pending
    other = run_job(awx, "canary release", answers(namespace, stable, "d-" + canary, canary_interval=0), canary_steps=[10])
    assert other["rc"] != 0 and "another release holds the lock" in other["stdout"], other["stdout"][-2000:]
    # the workflow's answers (canary_interval) and the release's artifacts reach the watch
    with ThreadPoolExecutor(max_workers=1) as pool:
        watching = pool.submit(run_job, awx, "watch the canary", answers(namespace, stable, canary), canary_interval=8,
                               canary_watch_seconds=300, **artifacts)
        time.sleep(20)  # a round or two pass on the healthy canary
        assert not watching.done(), "the watch keeps going while the decision is pending"
        _sim(awx, "profiles", {"service": APP, "version": canary, "error_rate": 0.5, "error_code": 503})
        watch = watching.result(timeout=300)
    assert watch["rc"] != 0 and "regressed while the release waited" in watch["stdout"], watch["stdout"][-3000:]
    assert weights(admin, namespace) == {stable: 100, canary: 0}
    assert lock_on(admin, namespace) is None
    # the release's report, on the persistent volume, holds the watch's rounds and its rollback
    records = json.loads((report_dir(awx, namespace, canary) / "records.json").read_text())["records"]
    rounds = [r for r in records if r["event"] == "analysis" and r.get("message", "").startswith("watch round")]
    assert rounds and rounds[0]["analysis"]["verdict"] == "pass" and rounds[-1]["analysis"]["verdict"] == "fail"
    assert records[-1]["event"] == "rolled_back"
    canary_deployment = admin.get(f"{collection_path('Deployment', namespace)}/{APP}-{canary}")
    assert canary_deployment["spec"]["replicas"] == 0
    # The approval comes after all: the promotion re-checks the canary and refuses.
    promote = run_job(awx, "promote", answers(namespace, stable, canary), canary_interval=8, **artifacts)
    assert promote["rc"] != 0 and "Not promoted" in promote["stdout"], promote["stdout"][-3000:]
    assert weights(admin, namespace) == {stable: 100, canary: 0}
    assert admin.get(f"{collection_path('Deployment', namespace)}/{APP}-{stable}", ok_missing=True), "stable kept"
    assert lock_on(admin, namespace) is None


def test_an_approval_ends_the_watch_and_the_promotion_takes_the_lock_over(awx, admin, service):
    namespace, stable, canary = service
    _job, artifacts = held_release(awx, admin, namespace, stable, canary)
    with ThreadPoolExecutor(max_workers=1) as pool:
        watching = pool.submit(run_job, awx, "watch the canary", answers(namespace, stable, canary), canary_interval=8,
                               canary_watch_seconds=300, **artifacts)
        time.sleep(12)
        promote = run_job(awx, "promote", answers(namespace, stable, canary), canary_interval=8, **artifacts)
        watch = watching.result(timeout=300)
    assert promote["rc"] == 0, promote["stdout"][-3000:]
    assert weights(admin, namespace) == {canary: 100}
    assert watch["rc"] == 0 and "the decision was made" in watch["stdout"], watch["stdout"][-3000:]
    assert lock_on(admin, namespace) is None
