"""Release steps beyond weights, on the sandbox with the simulator: an A/B step for jason, a shadow
(mirror) step and a pause step, each judged by the same analysis and rolled back the same way.

The simulator routes by the live VirtualService as Envoy does (header matches, mirrors); what the
tests assert is read back from the cluster and from the analysis the play reported.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox.api import collection_path

from runners import REPO, VENV_BIN  # pylint: disable=import-error
from release_runs import (  # pylint: disable=import-error
    APP,
    RATE,
    Release,
    sim_post,
    weights,
)

pytestmark = pytest.mark.integration

JASON = {"match": {"headers": {"end-user": {"exact": "jason"}}}}
JASON_SHARE = 0.3


def _live_vs(rel: Release) -> dict:
    return rel.admin.get(f"{collection_path('VirtualService', rel.namespace)}/{APP}")


def _route_names(rel: Release) -> list[str]:
    return [r.get("name") for r in _live_vs(rel)["spec"]["http"]]


def _traffic(rel: Release, jason_share: float = JASON_SHARE) -> None:
    sim_post(rel.endpoints, "traffic", {"cluster": "sandbox-1", "namespace": rel.namespace, "service": APP,
                                        "rate": RATE, "jason_share": jason_share})


def _report(tmp_path: Path) -> dict:
    found = sorted(tmp_path.rglob("*.json"))
    assert found, f"no report under {tmp_path}"
    return json.loads(found[-1].read_text())


def test_an_ab_step_for_jason_is_judged_on_his_requests_then_the_weights_follow(
        admin, namespace, endpoints, versions_of_test, release_kubeconfig, tmp_path):
    stable, canary = versions_of_test
    rel = Release(admin, endpoints, namespace, stable, canary).wait_ready()
    _traffic(rel)
    run = rel.start(release_kubeconfig, rel.analysis("guance"), canary_steps=[JASON, 50, 100],
                    canary_report_dir=str(tmp_path))
    run.finish()
    assert run.code == 0, run.out[-4000:]
    # Plain traffic: 0% during the A/B step, then the weights.
    assert run.weights_seen == [0, 50, 100], run.seen
    preview, ab, *rest = run.analysis_results()
    assert "check mode" in preview["reason"], preview["reason"]
    # The A/B step: no traffic share to check (jason's requests are not a weight), canary requests
    # all came from the A/B route.
    assert ab["step_weight"] is None and ab["verdict"] == "pass", ab["reason"]
    assert ab["rounds"][-1]["numbers"][canary]["request_count"] >= 10, ab["rounds"][-1]["numbers"]
    assert [r["step_weight"] for r in rest] == [50, 100]
    # Promotion removed the A/B route with everything else of the canary's steps.
    assert "canary-match-" + canary not in _route_names(rel)
    report = _report(tmp_path)
    steps = [r for r in report["records"] if r["event"] == "step"]
    assert [(s.get("kind"), s.get("label"), s["weight"]) for s in steps] == [
        ("match", "A/B end-user exact jason", 0), ("weight", "50%", 50), ("weight", "100%", 100)]


def test_a_failing_ab_step_rolls_back_and_takes_the_route_away(admin, namespace, endpoints, versions_of_test,
                                                               release_kubeconfig):
    stable, canary = versions_of_test
    rel = Release(admin, endpoints, namespace, stable, canary).wait_ready()
    rel.profile(canary, error_rate=0.5)
    _traffic(rel)
    run = rel.start(release_kubeconfig, rel.analysis("guance"), canary_steps=[JASON, 100])
    run.finish()
    assert run.code != 0, run.out[-3000:]
    assert f"Rolled back: 100% of traffic is on {stable}" in run.out, run.out[-3000:]
    # Plain traffic never moved; the A/B route is gone and everything goes to the stable version.
    assert run.weights_seen == [0], run.seen
    assert "canary-match-" + canary not in _route_names(rel)
    assert weights(admin, namespace) == {stable: 100, canary: 0}
    assert "request_success_rate" in [c["metric"] for c in run.last_analysis()["checks"] if c["result"] == "fail"]


def test_a_shadow_step_judges_the_canary_on_copies_and_a_rollback_removes_the_mirror(
        admin, namespace, endpoints, versions_of_test, release_kubeconfig):
    stable, canary = versions_of_test
    rel = Release(admin, endpoints, namespace, stable, canary).wait_ready()
    _traffic(rel, jason_share=0.0)
    # The release stops at the shadow step (its last): the mirror stays for a person to decide.
    run = rel.start(release_kubeconfig, rel.analysis("prometheus"), canary_steps=[{"mirror": 100}])
    run.finish()
    assert run.code == 0, run.out[-4000:]
    result = run.last_analysis()
    assert result["verdict"] == "pass" and result["step_weight"] is None, result["reason"]
    # Every canary request is a copy: plain traffic never reached it.
    assert result["rounds"][-1]["numbers"][canary]["request_count"] >= 10
    assert run.weights_seen == [0], run.seen
    default = _live_vs(rel)["spec"]["http"][-1]
    assert default["mirror"]["subset"] == canary and default["mirrorPercentage"] == {"value": 100}
    # The rollback playbook takes the mirror away with the weights.
    rollback = _playbook("rollback", rel, release_kubeconfig)
    assert rollback.returncode == 0, rollback.stdout[-3000:]
    default = _live_vs(rel)["spec"]["http"][-1]
    assert "mirror" not in default and "mirrorPercentage" not in default
    assert weights(admin, namespace) == {stable: 100, canary: 0}


def _playbook(name: str, rel: Release, release_kubeconfig: str, **extra):
    import os
    import subprocess

    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections"), "ANSIBLE_NOCOLOR": "1"}
    variables = {"canary_app": APP, "canary_namespace": rel.namespace, "canary_stable_version": rel.stable,
                 "canary_version": rel.canary, "canary_kubeconfig": release_kubeconfig, "canary_context": "sandbox-1",
                 **extra}
    return subprocess.run([str(VENV_BIN / "ansible-playbook"), f"canary.istio.{name}", "-e", json.dumps(variables)],
                          env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300, check=False)


def test_a_pause_step_goes_on_when_a_person_says_continue(admin, namespace, endpoints, versions_of_test,
                                                          release_kubeconfig):
    stable, canary = versions_of_test
    rel = Release(admin, endpoints, namespace, stable, canary).wait_ready()
    _traffic(rel, jason_share=0.0)
    run = rel.start(release_kubeconfig, False, terminal=True, canary_steps=[50, {"pause": True}, 100], canary_interval=1)
    run.answer("continue", times=1)
    run.finish()
    assert run.code == 0, run.out[-4000:]
    assert weights(admin, namespace) == {canary: 100}
    assert run.weights_seen == [50, 100], run.seen


def test_a_pause_step_rolls_back_when_nobody_can_answer(admin, namespace, endpoints, versions_of_test,
                                                        release_kubeconfig):
    stable, canary = versions_of_test
    rel = Release(admin, endpoints, namespace, stable, canary).wait_ready()
    _traffic(rel, jason_share=0.0)
    run = rel.start(release_kubeconfig, False, canary_steps=[50, {"pause": True}, 100], canary_interval=1)
    run.finish()
    assert run.code != 0, run.out[-3000:]
    said = " ".join(run.out.split())
    assert 'pause step 2 was not answered "continue" (answer \'\'; a run without a terminal cannot be asked)' in said, said[-3000:]
    assert weights(admin, namespace) == {stable: 100, canary: 0}
    assert run.weights_seen == [50, 0], run.seen


def _changes(rel: Release) -> dict:
    import requests

    state = requests.get(f"{rel.endpoints['datakit']}/__sim/state", timeout=10).json()
    spec = next(s for s in state["traffic"] if s["namespace"] == rel.namespace)
    return spec["changes"]


def test_sticky_sessions_keep_users_on_the_canary_and_the_rollback_removes_them(
        admin, namespace, endpoints, versions_of_test, release_kubeconfig):
    stable, canary = versions_of_test
    rel = Release(admin, endpoints, namespace, stable, canary).wait_ready()
    sim_post(endpoints, "traffic", {"cluster": "sandbox-1", "namespace": namespace, "service": APP, "rate": RATE, "users": 40})
    run = rel.start(release_kubeconfig, False, canary_steps=[50], canary_interval=15, canary_sticky=3600)
    run.finish()
    assert run.code == 0, run.out[-4000:]
    http = _live_vs(rel)["spec"]["http"]
    assert [r.get("name") for r in http][0] == "canary-sticky-" + canary
    changes = _changes(rel)
    # At 50% without stickiness ~300 of these 600 requests would change version; with it a user
    # moves to the canary once and never back.
    assert changes.get(f"{canary}->{stable}", 0) == 0 and changes.get(f"{stable}->{canary}", 0) > 0, changes
    rollback = _playbook("rollback", rel, release_kubeconfig)
    assert rollback.returncode == 0, rollback.stdout[-3000:]
    http = _live_vs(rel)["spec"]["http"]
    assert [r.get("name") for r in http] == [http[-1].get("name")]
    assert all("headers" not in d for d in http[-1]["route"]), http[-1]
    assert weights(admin, namespace) == {stable: 100, canary: 0}
