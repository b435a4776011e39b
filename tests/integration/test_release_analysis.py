"""The canary_release playbook with an analysis after each step, on the sandbox with the simulator.

The simulator sends traffic through the live VirtualService of the test's namespace and records it as
Istio does; its DataKit and the sandbox's real Prometheus scrape it every 2 s. The analysis asks
Guance (the simulator's OpenAPI, whose PromQL its MetricsQL engine answers) or Prometheus itself. Each test asserts
what the release did to the cluster (read back with the admin client, also while it runs) and the
verdict and numbers the analysis reported (the canary_analysis_result fact, printed by -v).

Versions are unique per test: the simulator's behaviour profiles are global per service and version.
The provider tests run a Guance and a Prometheus release side by side, in two namespaces.
"""
from __future__ import annotations

import calendar
import os
import re
import subprocess
import time

import pytest

from sandbox.api import collection_path
from sandbox.audit import WRITE_VERBS

from runners import REPO, VENV_BIN  # pylint: disable=import-error
from release_runs import (  # pylint: disable=import-error
    APP,
    events_of,
    failed_metrics,
    PROVIDERS,
    RATE,
    Release,
    with_events,
)

pytestmark = pytest.mark.integration


def test_healthy_canary_is_promoted_by_guance_and_prometheus(admin, namespace, other_namespace, endpoints,
                                                             versions_of_test, release_kubeconfig):
    stable, canary = versions_of_test
    releases = [Release(admin, endpoints, ns, stable, canary) for ns in (namespace, other_namespace)]
    for rel in releases:
        rel.wait_ready().traffic(RATE)
    # The Guance release also writes its steps as events (through canary_guance).
    runs = [releases[0].start(release_kubeconfig, releases[0].analysis("guance"), **with_events(endpoints)),
            releases[1].start(release_kubeconfig, releases[1].analysis("prometheus"))]
    for run, provider in zip(runs, PROVIDERS):
        run.finish()
        run.assert_promoted()
        preview, *results = run.analysis_results()
        # Before any change the analysis was tried once, in check mode: no canary yet, no verdict
        # that counts (step_weight none).
        assert preview["step_weight"] is None and "check mode" in preview["reason"], preview["reason"]
        # Then one analysis per step, each of two passing rounds; the same verdicts from both providers.
        assert [(r["step_weight"], r["verdict"], r["provider"]) for r in results] == \
            [(50, "pass", provider), (100, "pass", provider)], [r.get("reason") for r in results]
        for result in results:
            assert [r["verdict"] for r in result["rounds"]] == ["pass", "pass"], result["reason"]
            numbers = result["rounds"][-1]["numbers"][canary]
            assert numbers["request_success_rate"] == 100 and numbers["request_count"] >= 10, numbers
            assert numbers["request_duration_p99"] < 500, numbers
        # The rounds are the hold: the 50% step lasted its two 8 s rounds, not canary_interval (60 s).
        assert 16 <= run.first(100) - run.first(50) < 50, run.seen
    events = [(e["phase"], e["weight"], e["df_status"]) for e in events_of(endpoints, namespace)]
    assert events == [("start", "0", "info"), ("step", "50", "info"), ("analysis", "50", "ok"), ("step", "100", "info"),
                      ("analysis", "100", "ok"), ("promote", "100", "ok")], events
    assert not events_of(endpoints, other_namespace)  # canary_events is off there


def test_confidence_judges_the_steps_pooled_counts_in_a_release(admin, namespace, endpoints, versions_of_test,
                                                                release_kubeconfig):
    stable, canary = versions_of_test
    rel = Release(admin, endpoints, namespace, stable, canary)
    rel.wait_ready().traffic(RATE)
    checks = [{"metric": "request_success_rate", "min": 95, "weight": 3}, {"metric": "request_error_rate", "max_over_baseline": 1},
              {"metric": "request_duration_p99", "max": 500},
              {"metric": "request_duration", "max_ratio_to_baseline": 1.5, "weight": 2}]
    scoring = {"pass": 90, "marginal": 70, "on_marginal": "wait"}
    run = rel.start(release_kubeconfig, rel.analysis("guance", confidence=0.95, checks=checks, scoring=scoring,
                                                     detect_error_points=2))
    run.finish()
    run.assert_promoted()
    # The preview planned the release's 50% step before any change: 8 s windows of ~RATE/2 canary
    # requests a second cannot show +2 points of errors, and the release said so up front.
    preview, *_steps = run.analysis_results()
    assert [s["weight"] for s in preview["sample_plan"]["steps"]] == [50], preview["sample_plan"]
    assert preview["sample_plan"]["steps"][0]["long_enough"] is False
    said = " ".join(run.out.split())  # Ansible wraps a long warning
    assert "at 50% a step pools about" in said and "of errors at confidence 0.95 needs about" in said
    _preview, *results = run.analysis_results()
    assert [r["step_weight"] for r in results] == [50, 100]
    for result in results:
        # The release handed the confidence to the module: rates judged on counts, pooled.
        last = result["rounds"][-1]
        assert last["verdict"] == "pass" and "pooled over the step's rounds" in last["reason"], last["reason"]
        assert all(c["result"] in ("pass", "undecided") for r in result["rounds"] for c in r["checks"]), result["rounds"]
        # The p99 came from the duration buckets (Guance's PromQL answered by Prometheus), pooled.
        p99 = next(c for c in last["checks"] if c["metric"] == "request_duration_p99")
        assert "from the duration histogram" in p99["reason"] and p99["canary"] < 500, p99
        assert "sum by (le, destination_version)" in p99["query"]
        # The weights and the score came through the release; the rank test ran at 50% only (at 100%
        # the stable version has no traffic to compare with, so relative-only checks are dropped).
        assert [c["weight"] for c in last["checks"] if c["metric"] != "traffic_share"] == (
            [3.0, 1.0, 1.0, 2.0] if result["step_weight"] == 50 else [3.0, 1.0])
        assert last["score"] == 100.0
        if result["step_weight"] == 50:
            durations = next(c for c in last["checks"] if c["metric"] == "request_duration")
            assert durations["result"] == "pass" and "Mann-Whitney U" in durations["reason"], durations


# A step that cannot decide (far too few requests for min_requests, waited out): with
# on_inconclusive pause, a person at the terminal decides; without one, the release rolls back.
UNDECIDABLE = {"min_requests": 1_000_000, "inconclusive": "wait", "iterations": 1, "on_inconclusive": "pause"}


def test_an_inconclusive_step_goes_on_when_a_person_says_continue(admin, namespace, endpoints, versions_of_test,
                                                                  release_kubeconfig):
    stable, canary = versions_of_test
    rel = Release(admin, endpoints, namespace, stable, canary)
    rel.wait_ready().traffic(RATE)
    run = rel.start(release_kubeconfig, rel.analysis("guance", **UNDECIDABLE), terminal=True)
    run.answer("continue", times=2)  # at 50% and at 100%
    run.finish()
    run.assert_promoted()
    assert run.out.count('Type "continue" to go on to the next step') == 2
    assert "too few canary requests" in run.out


def test_an_inconclusive_step_rolls_back_when_nobody_can_answer(admin, namespace, endpoints, versions_of_test,
                                                                release_kubeconfig):
    stable, canary = versions_of_test
    rel = Release(admin, endpoints, namespace, stable, canary)
    rel.wait_ready().traffic(RATE)
    run = rel.start(release_kubeconfig, rel.analysis("guance", **UNDECIDABLE))
    run.finish()
    run.assert_rolled_back_at_first_step()
    said = " ".join(run.out.split())
    assert "Not waiting for response to prompt as stdin is not interactive" in said
    assert "the analysis was inconclusive" in said and "and nobody said continue (answer '';" in said


def test_canary_with_errors_rolls_back_within_one_interval(admin, namespace, other_namespace, endpoints,
                                                           versions_of_test, release_kubeconfig):
    stable, canary = versions_of_test
    releases = [Release(admin, endpoints, ns, stable, canary) for ns in (namespace, other_namespace)]
    releases[0].profile(canary, error_rate=0.2)  # profiles are global: both namespaces
    for rel in releases:
        rel.wait_ready().traffic(RATE)
    # Rounds 10 s apart: the first one fails and ends the step; the route goes back at once.
    interval = 10
    analysis = {"interval": interval, "iterations": 3}
    runs = [rel.start(release_kubeconfig, rel.analysis(provider, **analysis)) for rel, provider in zip(releases, PROVIDERS)]
    for run, provider in zip(runs, PROVIDERS):
        run.finish()
        run.assert_rolled_back_at_first_step()
        result = run.last_analysis()
        assert (result["provider"], result["step_weight"], result["verdict"]) == (provider, 50, "fail")
        # The first round failed and ended the step: one round, not the three a passing step needs.
        assert len(result["rounds"]) == 1 and failed_metrics(result) == ["request_success_rate"], result["reason"]
        success = result["rounds"][0]["numbers"][canary]["request_success_rate"]
        assert 65 < success < 92, success  # 20% errors
        assert re.search(r"failed in round 1: request_success_rate [0-9.]+ < min 99", run.out), run.out[-3000:]
        # The analysis itself sent traffic back (rollback: the stable version) as soon as the failing
        # round was judged, seconds before the playbook's rollback role would have; that role found
        # the route already back.
        assert result["rollback"]["weights"] == {stable: 100, canary: 0} and result["rollback"]["changed"], result
        # By the module's own records (not a poll's wall clock): written after the failing round and
        # before another round could have been due (the time is stamped in whole seconds).
        failed_at = result["rounds"][0]["end_ms"] / 1000
        back = calendar.timegm(time.strptime(result["rollback"]["at"], "%Y-%m-%dT%H:%M:%SZ"))
        assert failed_at - 1 <= back < failed_at + interval, (failed_at, result["rollback"])
        assert any(w == 0 for _at, w in run.seen)  # and the watcher saw the route go back


def test_slow_canary_rolls_back(admin, namespace, endpoints, versions_of_test, release_kubeconfig):
    stable, canary = versions_of_test
    rel = Release(admin, endpoints, namespace, stable, canary).wait_ready()
    rel.profile(canary, latency_ms=1500.0, latency_sigma=0.0)
    rel.traffic(RATE)
    run = rel.start(release_kubeconfig, rel.analysis("guance")).finish()
    run.assert_rolled_back_at_first_step()
    result = run.last_analysis()
    assert result["verdict"] == "fail" and failed_metrics(result) == ["request_duration_p99"], result["reason"]
    assert result["rounds"][0]["numbers"][canary]["request_duration_p99"] > 1000, result["rounds"]
    assert result["rounds"][0]["numbers"][canary]["request_success_rate"] == 100, result["rounds"]


def test_canary_whose_pods_vanish_rolls_back(admin, namespace, endpoints, versions_of_test, release_kubeconfig):
    stable, canary = versions_of_test
    rel = Release(admin, endpoints, namespace, stable, canary).wait_ready()
    rel.traffic(RATE)
    # The round looks at the last 4 s of its 8 s interval: by then the canary has had no Ready pod for
    # several seconds, and Envoy answers its share with 503 UH without reaching it.
    run = rel.start(release_kubeconfig, rel.analysis("guance", interval=8, window="4s", iterations=1))
    run.wait_for_weight(50)
    path = f"{collection_path('Deployment', namespace)}/{APP}-{canary}"
    deployment = admin.get(path)
    deployment["spec"]["replicas"] = 0
    admin.request("PUT", path, deployment)
    run.finish()
    run.assert_rolled_back_at_first_step()
    result = run.last_analysis()
    # The stable version served its share and the canary none of its 50%: the traffic share check
    # fails the round (before that check, no canary data was inconclusive; both roll back).
    assert [r["verdict"] for r in result["rounds"]] == ["fail"] and result["verdict"] == "fail", result["reason"]
    assert result["rounds"][0]["numbers"].get(canary, {}).get("request_count") in (None, 0), result["rounds"]
    assert "traffic_share observed 0% of" in result["reason"] and "configured 50%" in result["reason"], result["reason"]
    assert "the canary has no Ready pod" in result["reason"], result["reason"]


def test_canary_without_traffic_is_inconclusive_and_rolls_back(admin, namespace, endpoints, versions_of_test,
                                                               release_kubeconfig):
    stable, canary = versions_of_test
    rel = Release(admin, endpoints, namespace, stable, canary).wait_ready()  # no traffic in this namespace
    run = rel.start(release_kubeconfig, rel.analysis("guance", interval=3, iterations=2), **with_events(endpoints))
    run.finish()
    run.assert_rolled_back_at_first_step()
    result = run.last_analysis()
    assert [r["verdict"] for r in result["rounds"]] == ["inconclusive"] and result["verdict"] == "fail", result["reason"]
    assert "inconclusive: too few canary requests: 0 < min_requests 10" in run.out, run.out[-3000:]
    events = events_of(endpoints, namespace)
    assert [(e["phase"], e["weight"], e["df_status"]) for e in events] == \
        [("start", "0", "info"), ("step", "50", "info"), ("analysis", "50", "critical"), ("rollback", "0", "critical")], events
    assert events[0]["df_title"] == f"{APP} {canary} release started", events
    assert "too few canary requests" in events[2]["df_message"] and "Rolled back" not in events[3]["df_message"]
    assert events[3]["df_title"] == f"{APP} {canary} rolled back", events


def test_bad_analysis_settings_fail_before_any_change(admin, namespace, endpoints, versions_of_test,
                                                      release_kubeconfig, audit):
    stable, canary = versions_of_test
    rel = Release(admin, endpoints, namespace, stable, canary)
    audit.mark()
    cases = [
        ({"iteration": 3}, "canary_analysis.iteration. Supported parameters include"),
        ({"iterations": 0}, "Invalid canary_analysis: canary_analysis.iterations must be >= 1, the rounds per step (got 0)."),
        # Found by trying the analysis once, in check mode, before any change:
        ({"checks": [{"metric": "request_sucess_rate", "min": 99}]}, "request_sucess_rate"),
        ({"guance": {"url": endpoints["guance_openapi"], "api_key": "not-the-key"}}, "401 ft.InvalidAPIKey"),
    ]
    for settings, message in cases:
        proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "canary.istio.canary_release", "-e",
                               rel.extra(release_kubeconfig, rel.analysis("guance", **settings))],
                              env={**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections"),
                                   "ANSIBLE_NOCOLOR": "1"}, capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode != 0 and message in proc.stdout, (settings, proc.stdout[-2000:])
        assert endpoints["guance_api_key"] not in proc.stdout + proc.stderr
    assert audit.count("canary-release", WRITE_VERBS, namespace=namespace) == 0
    assert not admin.get(f"{collection_path('VirtualService', namespace)}/{APP}", ok_missing=True)
