"""Guance guard rails of a release, on the sandbox with the simulator's Guance: the SLO pre-flight
refuses a release whose error budget is spent (nothing changed) unless forced, the service's
monitors are muted while the release runs and unmuted at its end (promoted or rolled back), and the
release's start is an event beside its steps and end.
"""
from __future__ import annotations

import threading
import uuid

import pytest
import requests

from sandbox.api import collection_path

from release_runs import (  # pylint: disable=import-error
    APP,
    events_of,
    RATE,
    Release,
    sim_post,
    weights,
)

pytestmark = pytest.mark.integration


def _guance(endpoints: dict) -> dict:
    return {"url": endpoints["guance_openapi"], "api_key": endpoints["guance_api_key"]}


def _slo(endpoints: dict, lost: float) -> str:
    name = f"reviews availability {uuid.uuid4().hex[:6]}"
    sim_post(endpoints, "slos", {"name": name, "goal": 95, "lost_minutes": lost})
    return name


def _state(endpoints: dict) -> dict:
    return requests.get(f"{endpoints['datakit']}/__sim/state", timeout=10).json()


def _mutes_of(endpoints: dict, cluster_host: str = "localhost") -> list[dict]:
    return [m for m in _state(endpoints)["mutes"] if m["name"] == f"canary.istio release of {APP} on {cluster_host}"]


def test_a_spent_error_budget_stops_the_release_before_any_change(admin, namespace, endpoints, versions_of_test,
                                                                  release_kubeconfig):
    stable, canary = versions_of_test
    rel = Release(admin, endpoints, namespace, stable, canary).wait_ready()
    spent = _slo(endpoints, lost=600)
    run = rel.start(release_kubeconfig, False, canary_steps=[50, 100], canary_interval=1, canary_slo=spent,
                    canary_guance=_guance(endpoints))
    run.finish()
    assert run.code != 0
    said = " ".join(run.out.split())
    assert f"canary_slo: SLO '{spent}' has -19.05% of its error budget left (600.0 of 504.0 minutes lost" in said, said[-3000:]
    assert "nothing was changed" in said
    # Nothing was written: no VirtualService, no canary Deployment.
    assert admin.get(f"{collection_path('VirtualService', namespace)}/{APP}", ok_missing=True) in (None, {})
    assert admin.get(f"{collection_path('Deployment', namespace)}/{APP}-{canary}", ok_missing=True) in (None, {})
    forced = rel.start(release_kubeconfig, False, canary_steps=[50], canary_interval=1, canary_slo=spent,
                       canary_slo_force=True, canary_guance=_guance(endpoints))
    forced.finish()
    assert forced.code == 0, forced.out[-3000:]
    assert "releasing anyway (canary_slo_force)" in " ".join(forced.out.split())
    assert weights(admin, namespace) == {stable: 50, canary: 50}


def test_the_monitors_are_muted_while_the_release_runs_and_unmuted_after_a_rollback(
        admin, namespace, endpoints, versions_of_test, release_kubeconfig):
    stable, canary = versions_of_test
    rel = Release(admin, endpoints, namespace, stable, canary).wait_ready()
    rel.profile(canary, error_rate=0.5)
    rel.traffic(RATE)
    healthy = _slo(endpoints, lost=50)
    seen: list[dict] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.extend(m for m in _mutes_of(endpoints) if m["uuid"] not in {s["uuid"] for s in seen})
            stop.wait(0.5)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    run = rel.start(release_kubeconfig, rel.analysis("guance"), canary_steps=[50, 100], canary_slo=healthy,
                    canary_mute=True, canary_mute_duration="30m", canary_events=True, canary_guance=_guance(endpoints))
    run.finish()
    stop.set()
    watcher.join()
    assert run.code != 0 and f"Rolled back: 100% of traffic is on {stable}" in run.out, run.out[-3000:]
    # One mute, of the service's events, for at most 30 minutes; gone at the end of the run.
    assert len(seen) == 1, seen
    assert seen[0]["filterString"] == f"service:{APP}" and seen[0]["end"] - seen[0]["start"] == 1800
    assert _mutes_of(endpoints) == []
    # Release markers: the start, the step, the verdict, the rollback.
    phases = [e["phase"] for e in events_of(endpoints, namespace)]
    assert phases[0] == "start" and "step" in phases and phases[-1] == "rollback", phases


def test_a_preview_reads_the_budget_and_mutes_nothing(admin, namespace, endpoints, versions_of_test, release_kubeconfig):
    import json
    import os
    import subprocess

    from runners import REPO, VENV_BIN  # pylint: disable=import-error

    stable, canary = versions_of_test
    rel = Release(admin, endpoints, namespace, stable, canary).wait_ready()
    healthy = _slo(endpoints, lost=0)
    extra = json.loads(rel.extra(release_kubeconfig, False, canary_slo=healthy, canary_mute=True,
                                 canary_guance=_guance(endpoints)))
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections"), "ANSIBLE_NOCOLOR": "1"}
    before = len(_state(endpoints)["mutes"])
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "canary.istio.canary_release", "--check", "--diff",
                           "-e", json.dumps(extra)], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert len(_state(endpoints)["mutes"]) == before
    assert admin.get(f"{collection_path('VirtualService', namespace)}/{APP}", ok_missing=True) in (None, {})
