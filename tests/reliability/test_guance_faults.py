"""Guance faults during a release's analysis: never a promotion, always a rollback

Each case runs the canary_release playbook (steps 50 and 100, a Guance analysis of 8 s rounds) on
the sandbox with healthy stable and canary versions and live simulated traffic, and turns a fault
on only once the canary has its 50% (the release tries the analysis once before any change, and a
fault then would stop it before anything moved: a case of its own, last). Faults are the
simulator's switches (`POST <datakit>/__sim/faults`, docs/simulator.md): 500 answers, answers
slower than the client's timeout, the per-key and workspace rate limits (401
ft.TriggerApi*CurrentLimiting), a refused key (401 as a live site answers, or 403 as documented: the key, read from
a file at each use, is replaced by a revoked one), a non-JSON 502 page, query answers without
series; and no traffic at all. The switches are put back as they were after each case. The same
release without a fault promotes (the control case), so each rollback is the fault's doing.
"""
from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest
import requests

from sandbox.api import collection_path
from sandbox.audit import WRITE_VERBS

from runners import REPO, VENV_BIN  # pylint: disable=import-error
from test_release_analysis import APP, RATE, Release, endpoints, weights  # noqa: F401  pylint: disable=import-error,unused-import

# The client gives up quickly, so a failing round does not wait out the default 60 s retry budget.
CLIENT = {"timeout": 1.5, "retry_budget": 3}
MIN_REQUESTS = 20  # a healthy 8 s round at 50% sees about 160 canary requests; a stopped one none

# case id -> (fault switches, or None for "stop the traffic"; the key is revoked; words the failure names)
CASES = {
    "status-500": ({"status": 500}, False, "server error 500"),
    "timeout": ({"delay_s": 4}, False, "no answer within timeout=1.5s"),
    "rate-limit-key": ({"rate_limit": 0}, False, "ft.TriggerApiAkCurrentLimiting"),
    "rate-limit-workspace": ({"workspace_rate_limit": 0}, False, "ft.TriggerApiWorkspaceCurrentLimiting"),
    "bad-key-403": ({"invalid_key_status": 403}, True, "the API key was refused (403 ft.InvalidAPIKey"),
    "bad-key-401": ({}, True, "the API key was refused (401 ft.InvalidAPIKey"),
    "non-json": ({"non_json": True}, False, "server error 502"),
    "no-series": ({"omit_series": True}, False, "too few canary requests"),
    "no-traffic": (None, False, "too few canary requests"),
}


def _datakit(endpoints: dict, method: str, what: str, body: dict | None = None) -> dict:  # pylint: disable=redefined-outer-name
    # Generous timeout: with delay_s on, the DataKit listener (control routes too) answers late.
    resp = requests.request(method, f"{endpoints['datakit']}/__sim/{what}", json=body, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.fixture
def faults(endpoints):  # pylint: disable=redefined-outer-name
    """faults(**switches) turns simulator faults on; all switches are put back as they were after the test."""
    before = _datakit(endpoints, "GET", "state")["faults"]
    yield lambda **switches: _datakit(endpoints, "POST", "faults", switches)
    _datakit(endpoints, "POST", "faults", before)
    assert _datakit(endpoints, "GET", "state")["faults"] == before


@pytest.fixture
def release(admin, namespace, endpoints):  # pylint: disable=redefined-outer-name
    """A healthy stable version with traffic; versions unique to the test."""
    uid = uuid.uuid4().hex[:6]
    stable, canary = f"s{uid}", f"c{uid}"  # profiles are global per version: fresh names, both healthy
    for version in (stable, canary):
        _datakit(endpoints, "POST", "profiles", {"service": APP, "version": version, "error_rate": 0.0,
                                                 "latency_ms": 20.0, "latency_sigma": 0.2})
    rel = Release(admin, endpoints, namespace, stable, canary).wait_ready()
    rel.traffic(RATE)
    yield rel
    rel.traffic(0)


@pytest.fixture
def key_file(endpoints, tmp_path):  # pylint: disable=redefined-outer-name
    """The Guance key in a file of its own, which the release reads at each use."""
    path = tmp_path / "guance-key"
    path.touch(mode=0o600)
    path.write_text(endpoints["guance_api_key"])
    return path


def _analysis(rel, key_file) -> dict:  # pylint: disable=redefined-outer-name
    # The key is read from its file at each use (extra vars are templated when used), as a vault
    # lookup would: replacing the file's content revokes the key in the middle of the release.
    key = "{{ lookup('ansible.builtin.file', '%s') }}" % key_file
    guance = {"url": rel.endpoints["guance_openapi"], "api_key": key, **CLIENT}
    return rel.analysis("guance", interval=8, window="8s", iterations=1, min_requests=MIN_REQUESTS, guance=guance)


def _outcome(run) -> dict:
    """What the last analysis said and where traffic ended, for the results."""
    result = run.last_analysis()
    return {"verdict": result.get("verdict"),
            "round_verdicts": [r["verdict"] for r in result.get("rounds") or []],
            "reason": (result.get("reason") or result.get("msg") or "")[:300],
            "final_weights": weights(run.rel.admin, run.rel.namespace), "weights_seen": run.weights_seen}


def _release_with_fault(rel, key_file, release_kubeconfig, tmp_path, turn_on):  # pylint: disable=redefined-outer-name
    run = rel.start(release_kubeconfig, _analysis(rel, key_file), canary_report_dir=str(tmp_path / "reports"))
    # Generous: on a loaded machine the tasks before the first step (rules, the canary Ready) can
    # take minutes.
    run.wait_for_weight(50, timeout=420)
    turn_on()  # well before the step's first round, one 8 s interval after the analysis starts
    return run.finish(timeout=600)


@pytest.mark.parametrize("case", list(CASES))
def test_guance_fault_during_analysis_rolls_back(release, key_file, release_kubeconfig, faults, tmp_path, record, case):  # pylint: disable=redefined-outer-name
    """A Guance fault during a step's analysis: no pass, the release rolls back to 100% stable"""
    switches, revoke_key, words = CASES[case]

    def turn_on() -> None:
        if switches is None:
            release.traffic(0)
        elif switches:
            faults(**switches)
        if revoke_key:
            key_file.write_text("revoked-" + uuid.uuid4().hex)

    run = _release_with_fault(release, key_file, release_kubeconfig, tmp_path, turn_on)
    outcome = _outcome(run)
    record(**outcome)
    result = run.last_analysis()
    # Provider errors leave the step without a verdict of the module's: kept as inconclusive.
    assert result["step_weight"] == 50 and result.get("verdict") in ("inconclusive", "fail"), outcome
    assert words in outcome["reason"], outcome
    # Rolled back, never promoted: the VirtualService is written back to all-stable, the canary
    # had its 50% and then nothing, and is scaled to 0.
    run.assert_rolled_back_at_first_step()


def test_same_release_without_a_fault_promotes(release, key_file, release_kubeconfig, tmp_path, record):  # pylint: disable=redefined-outer-name
    """The control case: the same release with no fault passes both steps and promotes"""
    run = _release_with_fault(release, key_file, release_kubeconfig, tmp_path, lambda: None)
    record(**_outcome(run))
    run.assert_promoted()
    assert [r["verdict"] for r in run.analysis_results()[1:]] == ["pass", "pass"]


def test_guance_fault_before_the_release_stops_it_before_any_change(release, key_file, release_kubeconfig, faults, audit,
                                                                    tmp_path, record):  # pylint: disable=redefined-outer-name
    """A Guance fault already there when the release starts: it stops before any change"""
    faults(status=500)
    extra = release.extra(release_kubeconfig, _analysis(release, key_file), canary_report_dir=str(tmp_path / "reports"))
    started = time.monotonic()
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "canary.istio.canary_release", "-e", extra],
                          env={**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections"), "ANSIBLE_NOCOLOR": "1"},
                          capture_output=True, text=True, timeout=600, check=False)
    fatal = [line for line in proc.stdout.splitlines() if line.startswith("fatal: [")]
    record(exit_code=proc.returncode, seconds=round(time.monotonic() - started, 1), failure=(fatal or [""])[-1][:300],
           writes=audit.count("canary-release", WRITE_VERBS, namespace=release.namespace))
    assert proc.returncode != 0 and "server error 500" in proc.stdout, proc.stdout[-3000:]
    assert release.endpoints["guance_api_key"] not in proc.stdout + proc.stderr
    assert audit.count("canary-release", WRITE_VERBS, namespace=release.namespace) == 0
    assert not release.admin.get(f"{collection_path('VirtualService', release.namespace)}/{APP}", ok_missing=True)
    assert release.admin.get(f"{collection_path('Deployment', release.namespace)}/{APP}-{release.canary}",
                             ok_missing=True) == {}
