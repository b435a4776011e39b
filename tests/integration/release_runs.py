"""Releases on the sandbox with the simulator, shared by the release tests: the simulator's
endpoints and behaviour profiles, a namespace's stable version (Release), a canary_release run
watched while it runs (Run), and what the run left in the cluster and in Guance.

The simulator sends traffic through the live VirtualService of the test's namespace and records it as
Istio does; its DataKit and the sandbox's real Prometheus scrape it every 2 s.
"""
from __future__ import annotations

import fcntl
import json
import os
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

from runners import REPO, VENV_BIN  # pylint: disable=import-error

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


def sim_post(endpoints: dict, what: str, body: dict) -> None:
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


def healthy_versions(endpoints: dict, separator: str = ".") -> tuple[str, str]:
    """(stable, canary): names unique to the test, both healthy until the test says otherwise."""
    uid = uuid.uuid4().hex[:6]
    stable, canary = f"s-{uid}{separator}1", f"c-{uid}{separator}2"
    for version in (stable, canary):
        sim_post(endpoints, "profiles", {"service": APP, "version": version, **HEALTHY})
    return stable, canary


@pytest.fixture
def versions_of_test(endpoints):
    # "-" and "." on purpose: they must reach PromQL and DQL escaped for their syntax (a hyphen
    # once made every round an error).
    return healthy_versions(endpoints)


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
        sim_post(self.endpoints, "profiles", {"service": APP, "version": version, **settings})

    def traffic(self, rate: float) -> None:
        sim_post(self.endpoints, "traffic", {"cluster": "sandbox-1", "namespace": self.namespace, "service": APP,
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


HTTP_ROUTES = "/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes"


def weights(admin, ns) -> dict:
    """subset -> weight of the catch-all route of VirtualService reviews, as Istio reads it; with no
    VirtualService, version -> weight of the catch-all rule of HTTPRoute reviews (its backends are
    Services reviews-<version>)."""
    vs = admin.get(f"{collection_path('VirtualService', ns)}/{APP}", ok_missing=True)
    if not vs:
        route = admin.get(f"{HTTP_ROUTES.format(ns=ns)}/{APP}", ok_missing=True)
        if not route:
            return {}
        every = [{"path": {"type": "PathPrefix", "value": "/"}}]  # the API server's default for no matches
        backends = [r for r in route["spec"]["rules"] if r.get("matches", every) == every][0]["backendRefs"]
        return {b["name"][len(APP) + 1:]: b.get("weight", 1) for b in backends}
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
        self.assert_promoted_after([50, 100])

    def assert_promoted_after(self, seen: list[int]) -> None:
        """Promoted, the canary's weights having been ``seen`` in that order."""
        rel = self.rel
        assert self.code == 0, self.out[-4000:]
        assert weights(rel.admin, rel.namespace) == {rel.canary: 100}
        assert self.weights_seen == seen, self.seen
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


def with_events(endpoints: dict) -> dict:
    return {"canary_events": True,
            "canary_guance": {"url": endpoints["guance_openapi"], "api_key": endpoints["guance_api_key"]}}


def failed_metrics(result: dict) -> list[str]:
    return [c["metric"] for c in result["checks"] if c["result"] == "fail"]
