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
import fcntl
import json
import os
import re
import subprocess
import termios
import threading
import time
import uuid

import pytest
import requests

from sandbox import cluster as sandbox_cluster
from sandbox import versions
from sandbox.api import collection_path
from sandbox.audit import WRITE_VERBS

from runners import REPO, VENV_BIN  # pylint: disable=import-error

pytestmark = pytest.mark.integration

APP = "reviews"
CANARY_IMAGE = "docker.io/istio/examples-bookinfo-reviews-v2:1.20.1"
RATE = 40  # requests per second to reviews in the test's namespace
HEALTHY = {"error_rate": 0.0, "error_code": 500, "latency_ms": 20.0, "latency_sigma": 0.2}
PROVIDERS = ("guance", "prometheus")


@pytest.fixture(scope="module")
def endpoints(sandbox) -> dict:
    path = versions.STATE_DIR / "endpoints.json"
    if not path.exists():
        pytest.fail(f"{path} is missing: the sandbox runs without its simulator", pytrace=False)
    found = json.loads(path.read_text())
    if not found.get("prometheus"):
        pytest.fail("the sandbox's simulator runs without Prometheus", pytrace=False)
    return found


def _sim(endpoints: dict, what: str, body: dict) -> None:
    resp = requests.post(f"{endpoints['datakit']}/__sim/{what}", json=body, timeout=10)
    assert resp.status_code == 200, resp.text


@pytest.fixture
def other_namespace(admin, namespace):
    """A second fresh namespace, bound to the release role like `namespace`, deleted after the test."""
    name = f"{namespace[:50]}-b"
    sandbox_cluster.create_namespace(admin, name)
    admin.wait_for(f"ServiceAccount default in {name}",
                   lambda: admin.get(f"/api/v1/namespaces/{name}/serviceaccounts/default"), 30)
    yield name
    admin.delete(f"/api/v1/namespaces/{name}")


@pytest.fixture
def versions_of_test(endpoints):
    """(stable, canary): names unique to this test, both healthy until the test says otherwise."""
    uid = uuid.uuid4().hex[:6]
    # "-" and "." on purpose: they must reach PromQL and DQL escaped for their syntax (a hyphen
    # once made every round an error).
    stable, canary = f"s-{uid}.1", f"c-{uid}.2"
    for version in (stable, canary):
        _sim(endpoints, "profiles", {"service": APP, "version": version, **HEALTHY})
    return stable, canary


class Release:
    """One namespace's release: the stable version deployed by the test, the canary by the play."""

    def __init__(self, admin, endpoints: dict, namespace: str, stable: str, canary: str):
        self.admin, self.endpoints, self.namespace, self.stable, self.canary = admin, endpoints, namespace, stable, canary
        self.admin.apply_manifest([_service(), _deployment(stable)], namespace)

    def wait_ready(self) -> Release:
        path = f"{collection_path('Deployment', self.namespace)}/{APP}-{self.stable}"
        self.admin.wait_for(f"{APP}-{self.stable} Ready",
                            lambda: self.admin.get(path).get("status", {}).get("readyReplicas") == 1, 90)
        return self

    def profile(self, version: str, **settings) -> None:
        _sim(self.endpoints, "profiles", {"service": APP, "version": version, **settings})

    def traffic(self, rate: float) -> None:
        _sim(self.endpoints, "traffic", {"cluster": "sandbox-1", "namespace": self.namespace, "service": APP,
                                         "rate": rate})

    def analysis(self, provider: str, **overrides) -> dict:
        # The first round comes one interval after the shift. The simulator routes by what it read up
        # to 1 s before; Prometheus' increase() misses what a new series counted before its first
        # scrape (every 2 s) and needs two samples in the window. On a loaded machine a scrape of the
        # simulator's growing /metrics can time out, too. 8 s leave the canary's series enough samples.
        spec = {"provider": provider, "interval": 8, "iterations": 2, "window": "8s", "min_requests": 10}
        if provider == "guance":
            spec["guance"] = {"url": self.endpoints["guance_openapi"], "api_key": self.endpoints["guance_api_key"]}
        else:
            spec["prometheus_url"] = self.endpoints["prometheus"]
        spec.update(overrides)
        return spec

    def extra(self, release_kubeconfig: str, analysis: dict, **overrides) -> str:
        extra = {
            "canary_app": APP, "canary_namespace": self.namespace,
            "canary_stable_version": self.stable, "canary_version": self.canary, "canary_image": CANARY_IMAGE,
            "canary_steps": [50, 100], "canary_analysis": analysis, "canary_delete_old_versions": False,
            "canary_kubeconfig": release_kubeconfig, "canary_context": "sandbox-1",
        }
        extra.update(overrides)
        return json.dumps(extra)

    def start(self, release_kubeconfig: str, analysis: dict, terminal: bool = False, **overrides) -> Run:
        return Run(self, release_kubeconfig, analysis, terminal, **overrides)


def _service() -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": APP, "labels": {"app": APP}},
            "spec": {"selector": {"app": APP}, "ports": [{"name": "http", "port": 9080}]}}


def _deployment(version: str) -> dict:
    labels = {"app": APP, "version": version}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"{APP}-{version}", "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": APP, "image": CANARY_IMAGE.replace("v2", "v1"),
                                                           "ports": [{"containerPort": 9080}]}]}}}}


def weights(admin, ns) -> dict:
    """subset -> weight of the catch-all route of VirtualService reviews, as Istio reads it."""
    vs = admin.get(f"{collection_path('VirtualService', ns)}/{APP}", ok_missing=True)
    if not vs:
        return {}
    route = [r for r in vs["spec"]["http"] if not r.get("match")][0]["route"]
    if len(route) == 1:
        return {route[0]["destination"]["subset"]: 100}
    return {d["destination"]["subset"]: d.get("weight", 0) for d in route}


def _take_terminal() -> None:
    # In the child, before exec: make the pty on stdin the session's controlling terminal.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Run:
    """ansible-playbook canary.istio.canary_release -v in the background, and a thread that polls the
    VirtualService meanwhile, noting when each canary weight was first seen (wall time)."""

    def __init__(self, rel: Release, release_kubeconfig: str, analysis: dict, terminal: bool = False, **overrides):
        self.rel = rel
        self.seen: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections"), "ANSIBLE_NOCOLOR": "1",
               "ANSIBLE_FORCE_COLOR": "0"}
        command = [str(VENV_BIN / "ansible-playbook"), "canary.istio.canary_release", "-v", "-e",
                   rel.extra(release_kubeconfig, analysis, **overrides)]
        self.code: int | None = None
        self.out = ""
        # Read the output as it comes: a full pipe (-v prints every result) would block the play in
        # the middle of a step while the test waits on another release side by side.
        self._lines: list[str] = []
        self._terminal: int | None = None
        if terminal:
            # A person at a terminal: the play's own controlling terminal, so that pause prompts.
            self._terminal, person = os.openpty()
            self.proc = subprocess.Popen(command, env=env, stdin=person, stdout=person, stderr=person,
                                         start_new_session=True, preexec_fn=_take_terminal)
            os.close(person)
            self._reader = threading.Thread(target=self._read_terminal, daemon=True)
        else:
            # No terminal, as under AWX: stdin is not interactive.
            self.proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, text=True)
            self._reader = threading.Thread(target=lambda: self._lines.extend(self.proc.stdout), daemon=True)
        self._reader.start()

    def _read_terminal(self) -> None:
        while True:
            try:
                data = os.read(self._terminal, 65536)
            except OSError:  # the play ended and closed its side
                return
            if not data:
                return
            self._lines.append(data.decode(errors="replace").replace("\r\n", "\n"))

    def answer(self, text: str, times: int, timeout: float = 240) -> None:
        """Type ``text`` at each of ``times`` prompts of the release, as they come."""
        deadline = time.monotonic() + timeout
        for answered in range(times):
            while "".join(self._lines).count('Type "continue"') <= answered:
                assert self.proc.poll() is None, f"the release ended before prompt {answered + 1}:\n{''.join(self._lines)[-3000:]}"
                assert time.monotonic() < deadline, "no prompt came"
                time.sleep(0.1)
            os.write(self._terminal, text.encode() + b"\r")

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                weight = weights(self.rel.admin, self.rel.namespace).get(self.rel.canary)
            except Exception:  # noqa: BLE001 - a failed read is retried at the next poll
                weight = None
            if weight is not None and (not self.seen or self.seen[-1][1] != weight):
                self.seen.append((time.time(), weight))
            self._stop.wait(0.1)

    def wait_for_weight(self, weight: int, timeout: float = 150) -> None:
        deadline = time.monotonic() + timeout
        while self.first(weight) is None:
            assert self.proc.poll() is None, f"the release ended before {weight}%:\n{''.join(self._lines)[-3000:]}"
            assert time.monotonic() < deadline, f"the release never reached {weight}%"
            time.sleep(0.05)

    def finish(self, timeout: float = 420) -> Run:
        try:
            self.proc.wait(timeout=timeout)
        finally:
            self.proc.kill()
            self.proc.wait()
            self._reader.join(timeout=30)
            self.out = "".join(self._lines)
            self._stop.set()
            self._thread.join()
        self.code = self.proc.returncode
        if self._terminal is not None:
            os.close(self._terminal)
        # Even with -v, which prints every task's result and every fact, the key never shows.
        assert self.rel.endpoints["guance_api_key"] not in self.out
        return self

    @property
    def weights_seen(self) -> list[int]:
        return [w for _at, w in self.seen]

    def first(self, weight: int) -> float | None:
        return next((at for at, w in self.seen if w == weight), None)

    def analysis_results(self) -> list[dict]:
        """Each canary_analysis_result fact the play set, in order (-v prints each task's result);
        not the resets to null between steps."""
        facts = [json.loads(line.split(" => ", 1)[1])["ansible_facts"] for line in self.out.splitlines()
                 if line.startswith("ok: [") and '{"ansible_facts": {' in line and '"canary_analysis_result": {' in line]
        return [f["canary_analysis_result"] for f in facts if f.get("canary_analysis_result")]

    def last_analysis(self) -> dict:
        results = self.analysis_results()
        assert results, f"no canary_analysis_result in the output:\n{self.out[-3000:]}"
        return results[-1]

    def assert_promoted(self) -> None:
        rel = self.rel
        assert self.code == 0, self.out[-4000:]
        assert weights(rel.admin, rel.namespace) == {rel.canary: 100}
        assert self.weights_seen == [50, 100], self.seen
        assert f"Release of {APP} {rel.canary} in {rel.namespace} done: 100% on {rel.canary}" in self.out

    def assert_rolled_back_at_first_step(self) -> None:
        rel = self.rel
        assert self.code != 0, self.out[-3000:]
        assert f"Rolled back: 100% of traffic is on {rel.stable}" in self.out, self.out[-3000:]
        assert weights(rel.admin, rel.namespace) == {rel.stable: 100, rel.canary: 0}
        # The canary got 50% (the first step) and then nothing: never the second step.
        assert self.weights_seen == [50, 0], self.seen
        deployment = rel.admin.get(f"{collection_path('Deployment', rel.namespace)}/{APP}-{rel.canary}")
        assert deployment["spec"]["replicas"] == 0


def events_of(endpoints: dict, namespace: str) -> list[dict]:
    """The release events written for `namespace`, oldest first, read through the DataKit API (no key,
    so the reads do not count against the OpenAPI's rate limit)."""
    query = ("E::`custom`:(`time`, `df_title`, `df_status`, `df_message`, `phase`, `weight`, `version`) "
             f"{{ `namespace` = '{namespace}' }}")
    resp = requests.post(f"{endpoints['datakit']}/v1/query/raw", json={"queries": [{"query": query}]}, timeout=10)
    assert resp.status_code == 200, resp.text
    events = []
    for series in resp.json()["content"][0]["series"]:
        events += [dict(zip(series["columns"], row)) for row in series["values"]]
    return sorted(events, key=lambda e: e["time"])


def _with_events(endpoints: dict) -> dict:
    return {"canary_events": True,
            "canary_guance": {"url": endpoints["guance_openapi"], "api_key": endpoints["guance_api_key"]}}


def _failed_metrics(result: dict) -> list[str]:
    return [c["metric"] for c in result["checks"] if c["result"] == "fail"]


def test_healthy_canary_is_promoted_by_guance_and_prometheus(admin, namespace, other_namespace, endpoints,
                                                             versions_of_test, release_kubeconfig):
    stable, canary = versions_of_test
    releases = [Release(admin, endpoints, ns, stable, canary) for ns in (namespace, other_namespace)]
    for rel in releases:
        rel.wait_ready().traffic(RATE)
    # The Guance release also writes its steps as events (through canary_guance).
    runs = [releases[0].start(release_kubeconfig, releases[0].analysis("guance"), **_with_events(endpoints)),
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
    assert events == [("step", "50", "info"), ("analysis", "50", "ok"), ("step", "100", "info"),
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
        assert len(result["rounds"]) == 1 and _failed_metrics(result) == ["request_success_rate"], result["reason"]
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
    assert result["verdict"] == "fail" and _failed_metrics(result) == ["request_duration_p99"], result["reason"]
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
    run = rel.start(release_kubeconfig, rel.analysis("guance", interval=3, iterations=2), **_with_events(endpoints))
    run.finish()
    run.assert_rolled_back_at_first_step()
    result = run.last_analysis()
    assert [r["verdict"] for r in result["rounds"]] == ["inconclusive"] and result["verdict"] == "fail", result["reason"]
    assert "inconclusive: too few canary requests: 0 < min_requests 10" in run.out, run.out[-3000:]
    events = events_of(endpoints, namespace)
    assert [(e["phase"], e["weight"], e["df_status"]) for e in events] == \
        [("step", "50", "info"), ("analysis", "50", "critical"), ("rollback", "0", "critical")], events
    assert "too few canary requests" in events[1]["df_message"] and "Rolled back" not in events[2]["df_message"]
    assert events[2]["df_title"] == f"{APP} {canary} rolled back", events


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
