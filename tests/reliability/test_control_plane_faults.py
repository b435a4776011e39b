"""Control plane faults during a release: kube-apiserver killed, etcd restarted.

A real `ansible-playbook canary.istio.canary_release` (steps 20, 50, 100; 5 s holds; no analysis)
runs in the background, and the check crashes kube-apiserver (SIGKILL) while a step holds, or while
a step's VirtualService write is inside it, or crashes etcd during a hold and starts it again. The
play must fail with a message naming the API server (or wait for it) and leave the weights at a
state the release really had. The checks share one release: each runs the same play again (same
owner, so it takes over the lock the failed run left) and must resume where traffic is; the last
one must promote. A release costs minutes of Ansible on a loaded machine, so it is not repeated.
"""
from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import threading
import time
import uuid

import pytest

from sandbox import cluster as sandbox_cluster
from sandbox import control
from sandbox.api import collection_path

from runners import REPO, VENV_BIN  # pylint: disable=import-error

pytestmark = pytest.mark.integration

APP, STABLE, CANARY = "reviews", "v1", "v2"
IMAGE = "docker.io/istio/examples-bookinfo-reviews-v2:1.20.1"
STEPS = [20, 50, 100]
HOLD = 5  # seconds each step is held: room to act between steps, short enough for the suite
LOCK = "canary.istio/release-lock"
# Where the VirtualService may be after a failed run: before any step, at a step, or rolled back.
VALID_WEIGHTS = [{STABLE: 100 - w, CANARY: w} for w in [0, *STEPS]] + [{CANARY: 100}]
HOLD_TASK = "Hold the step for seconds"


# --------------------------------------------------------------------------- the release


def release_objects(version: str = STABLE) -> list[dict]:
    """Service `reviews` and Deployment `reviews-<version>`: what the release starts from."""
    labels = {"app": APP, "version": version}
    return [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": APP, "labels": {"app": APP}},
         "spec": {"selector": {"app": APP}, "ports": [{"name": "http", "port": 9080}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"{APP}-{version}", "labels": labels},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"containers": [{"name": APP, "image": IMAGE.replace("v2", version),
                                                        "ports": [{"containerPort": 9080}]}]}}}},
    ]


def deploy_stable(admin, namespace: str) -> None:
    admin.apply_manifest(release_objects(), namespace)
    path = f"{collection_path('Deployment', namespace)}/{APP}-{STABLE}"
    admin.wait_for(f"{APP}-{STABLE} Ready", lambda: admin.get(path).get("status", {}).get("readyReplicas") == 1, 90)


def release_vars(namespace: str, kubeconfig: str, **overrides) -> dict:
    extra = {"canary_app": APP, "canary_namespace": namespace, "canary_stable_version": STABLE,
             "canary_version": CANARY, "canary_image": IMAGE, "canary_steps": STEPS, "canary_interval": HOLD,
             "canary_analysis": False, "canary_delete_old_versions": False,
             "canary_kubeconfig": kubeconfig, "canary_context": "sandbox-1"}
    extra.update(overrides)
    return extra


def vs_path(namespace: str) -> str:
    return f"{collection_path('VirtualService', namespace)}/{APP}"


def weights(admin, namespace: str) -> dict:
    """subset -> weight of the catch-all route, as Istio reads it (a lone destination gets 100)."""
    vs = admin.get(vs_path(namespace), ok_missing=True)
    if not vs:
        return {}
    route = [r for r in vs["spec"]["http"] if not r.get("match")][0]["route"]
    if len(route) == 1:
        return {route[0]["destination"]["subset"]: 100}
    return {d["destination"]["subset"]: d.get("weight", 0) for d in route}


def lock_of(admin, namespace: str) -> str | None:
    return (admin.get(vs_path(namespace))["metadata"].get("annotations") or {}).get(LOCK)


class Play:
    """ansible-playbook canary.istio.canary_release in the background, its output read line by line
    as it comes (with the time each line arrived), so a test can act at a given task."""

    def __init__(self, extra: dict):
        env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections"), "ANSIBLE_NOCOLOR": "1",
               "ANSIBLE_FORCE_COLOR": "0", "PYTHONUNBUFFERED": "1"}
        self.started = time.monotonic()
        self.proc = subprocess.Popen([str(VENV_BIN / "ansible-playbook"), "canary.istio.canary_release",
                                      "-e", json.dumps(extra)],
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line))

    @property
    def out(self) -> str:
        return "".join(line for _t, line in self.lines)

    def times_of(self, text: str) -> list[float]:
        return [t for t, line in self.lines if text in line]

    def wait_for_line(self, text: str, count: int = 1, timeout: float = 240) -> float:
        """Wait until `text` has appeared on `count` lines; the time of the last one."""
        deadline = time.monotonic() + timeout
        while len(self.times_of(text)) < count:
            assert self.proc.poll() is None or self._reader.is_alive(), \
                f"the play ended before {text!r} x{count}:\n{self.out[-3000:]}"
            assert time.monotonic() < deadline, f"no {text!r} x{count} within {timeout:.0f}s:\n{self.out[-3000:]}"
            time.sleep(0.05)
        return self.times_of(text)[count - 1]

    def finish(self, timeout: float = 300) -> int:
        try:
            self.proc.wait(timeout=timeout)
        finally:
            self.proc.kill()
            self.proc.wait()
            self._reader.join(10)
        return self.proc.returncode


def failure_messages(out: str) -> list[str]:
    """The `msg` of every `fatal:` line of a play's output, in order."""
    messages = []
    for line in out.splitlines():
        if line.startswith("fatal:") and "=> " in line:
            try:
                messages.append(json.loads(line.split("=> ", 1)[1]).get("msg", ""))
            except ValueError:
                messages.append(line)
    return messages


def assert_clear_failure(rc: int, out: str, *expected: str) -> str:
    """The play failed with the release's own message naming the cause, and no Python traceback.
    Returns that message, shortened for the record (its API path and urllib3's detail left out)."""
    assert rc != 0, out[-3000:]
    assert "Traceback" not in out and "MODULE FAILURE" not in out, out[-5000:]
    release = [m for m in failure_messages(out) if m.startswith("Release of")]
    assert release, out[-3000:]
    for text in expected:
        assert text in release[0], release[0]
    short = re.sub(r"(GET|PUT) /apis/\S+: ", "", release[0])
    return re.sub(r"(cannot reach the API server \S+?): .*?(?=, and the ROLLBACK|\): traffic may|$)", r"\1 (...)", short)[:500]


# --------------------------------------------------------------------------- the release under test


class Release:
    """One release of reviews v1 -> v2 in a namespace of its own, shared by the checks of this file:
    each runs the same play again from wherever the previous one left the traffic (that is the
    resume), injects its fault and restores the control plane. Run alone, a check starts afresh."""

    def __init__(self, c, admin, namespace: str, kubeconfig: str):
        self.cluster, self.admin, self.namespace, self.kubeconfig = c, admin, namespace, kubeconfig

    def play(self) -> Play:
        return Play(release_vars(self.namespace, self.kubeconfig))

    def weights(self) -> dict:
        return weights(self.admin, self.namespace)

    def kill_apiserver(self) -> None:
        control.stop_component(self.cluster, "kube-apiserver", kill=True)

    def restore(self) -> None:
        """etcd and kube-apiserver running and ready again (etcd first: the API server needs it)."""
        for name in ("etcd", "kube-apiserver"):
            if not sandbox_cluster.component_status(self.cluster)[name]:
                control.start_component(self.cluster, name)


@pytest.fixture(scope="module", name="release")
def release_in_own_namespace(sandbox, release_kubeconfig):
    c = sandbox[0]
    admin = c.admin()
    ns = f"t-control-plane-faults-{uuid.uuid4().hex[:6]}"
    sandbox_cluster.create_namespace(admin, ns)
    admin.wait_for(f"ServiceAccount default in {ns}", lambda: admin.get(f"/api/v1/namespaces/{ns}/serviceaccounts/default"), 30)
    deploy_stable(admin, ns)
    release = Release(c, admin, ns, release_kubeconfig)
    yield release
    release.restore()
    admin.delete(f"/api/v1/namespaces/{ns}")


def resumed_from(play: Play, live: int) -> str:
    """The play resumed at the live weight, skipping the steps below it; its own words, for the record."""
    skipped = [w for w in STEPS if w < live]
    if not skipped:
        return f"nothing to skip (live weight {live}%)"
    line = f"Resuming at {live}% on {CANARY}; skipping steps {skipped}"
    assert line in play.out, play.out[-3000:]
    return line


def holds_until(live: int, weight: int) -> int:
    """How many holds a run that resumes at `live` begins until the one after the step at `weight`."""
    return [w for w in STEPS if w >= live].index(weight) + 1


# --------------------------------------------------------------------------- a webhook that holds a write


class HoldingWebhook:
    """A validating admission webhook (HTTPS on loopback) that holds the release's VirtualService
    write setting the canary to `weight` until the test let it go: the write is then inside
    kube-apiserver, admitted by nothing yet and not stored. Every other request is allowed at once."""

    def __init__(self, workdir, namespace: str, weight: int):
        import http.server
        import ssl

        self.namespace, self.weight = namespace, weight
        self.held, self.release = threading.Event(), threading.Event()
        cert, key = workdir / "webhook.crt", workdir / "webhook.key"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                       check=True, capture_output=True)
        self.ca_bundle = base64.b64encode(cert.read_bytes()).decode()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        webhook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the name http.server calls
                review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if webhook.is_the_write(review["request"]):
                    webhook.held.set()
                    webhook.release.wait(30)
                body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                                   "response": {"uid": review["request"]["uid"], "allowed": True}}).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the API server that asked is gone

            def log_message(self, *args):  # quiet
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.name = f"hold-{namespace}"[:63]

    def is_the_write(self, request: dict) -> bool:
        if self.held.is_set() or request["userInfo"]["username"] != "canary-release":
            return False
        new, old = (_catch_all_weight(request.get(k) or {}) for k in ("object", "oldObject"))
        return new == self.weight and old != self.weight

    def configuration(self) -> dict:
        return {
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": self.name},
            "webhooks": [{
                "name": "hold.reliability.canary.istio", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                # Ignore: once the test is over, a webhook that is gone must not block anything.
                "failurePolicy": "Ignore", "timeoutSeconds": 30,
                "clientConfig": {"url": f"https://127.0.0.1:{self.server.server_address[1]}/",
                                 "caBundle": self.ca_bundle},
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": self.namespace}},
                "rules": [{"apiGroups": ["networking.istio.io"], "apiVersions": ["*"],
                           "resources": ["virtualservices"], "operations": ["UPDATE"]}],
            }],
        }

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()


def _catch_all_weight(vs: dict) -> int | None:
    routes = [r for r in (vs.get("spec") or {}).get("http") or [] if not r.get("match")]
    if not routes:
        return None
    destinations = routes[-1].get("route", [])
    if len(destinations) == 1:  # a lone destination takes everything, whatever its weight says
        return 100 if destinations[0]["destination"].get("subset") == CANARY else 0
    return next((d.get("weight", 0) for d in destinations if d["destination"].get("subset") == CANARY), 0)


WEBHOOKS = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"


@pytest.fixture(name="holding_webhook")
def holding_webhook_installed(release, tmp_path):
    """A HoldingWebhook on the last step's write (100%), registered with sandbox-1 and in effect."""
    hook = HoldingWebhook(tmp_path, release.namespace, STEPS[-1])
    release.admin.create(WEBHOOKS, hook.configuration())
    yield hook
    hook.close()
    release.restore()
    release.admin.delete(f"{WEBHOOKS}/{hook.name}")


# --------------------------------------------------------------------------- the checks


def test_apiserver_killed_between_steps(release, record):
    """kube-apiserver killed while a step holds: the play fails naming the API server and traffic stays at that step"""
    live = release.weights().get(CANARY, 0)
    play = release.play()
    try:
        # The 50% step is acknowledged and its hold has begun: nothing talks to the API server
        # until the next step.
        play.wait_for_line(HOLD_TASK, count=holds_until(live, 50))
        step = release.weights()
        killed = time.monotonic()
        release.kill_apiserver()
        rc = play.finish(timeout=240)
        failed_after = round(time.monotonic() - killed, 1)
    finally:
        play.finish(timeout=1)
        release.restore()
    message = assert_clear_failure(rc, play.out, "cannot reach the API server", release.cluster.server)
    # The next step never reached the server, nor did the rollback: still at the step it held.
    assert step == {STABLE: 50, CANARY: 50} and release.weights() == step, (step, release.weights())
    record(resumed=resumed_from(play, live), killed_during_hold_at=step, play_failed_s_after_kill=failed_after,
           weights_after=release.weights(), message=message)


def test_apiserver_killed_during_a_step_write(release, holding_webhook, record):
    """kube-apiserver killed while a step's VirtualService write is inside it: the write is lost whole, the play fails naming the API server"""
    live = release.weights().get(CANARY, 0)
    play = release.play()
    try:
        deadline = time.monotonic() + 300
        while not holding_webhook.held.wait(0.2):
            assert play.proc.poll() is None and time.monotonic() < deadline, f"no 100% write came:\n{play.out[-3000:]}"
        # The PUT of the 100% step is inside kube-apiserver, awaiting its admission: crash it there.
        release.kill_apiserver()
        holding_webhook.release.set()
        rc = play.finish(timeout=240)
    finally:
        play.finish(timeout=1)
        release.restore()
    message = assert_clear_failure(rc, play.out, "cannot reach the API server", release.cluster.server)
    assert "weight 100" in message, message
    # Nothing of the write was stored: exactly the previous step's weights.
    assert release.weights() == {STABLE: 50, CANARY: 50}
    record(resumed=resumed_from(play, live), killed="while kube-apiserver held the 100% PUT for admission (not stored)",
           weights_after=release.weights(), message=message)


ETCD_DOWN = 15  # seconds: an etcd restart, shorter than the API server's 34-60 s request timeouts


def test_etcd_crash_and_restart_during_a_release(release, record):
    """etcd crashed during a hold and started 15 s later: the re-run resumes, its next step waits for etcd (or fails clearly), and the release promotes"""
    live = release.weights().get(CANARY, 0)
    play = release.play()
    try:
        # During the 50% hold: the 100% step comes while etcd is down.
        held = play.wait_for_line(HOLD_TASK, count=holds_until(live, 50))
        control.stop_component(release.cluster, "etcd", kill=True)
        time.sleep(ETCD_DOWN)
        started = time.monotonic()
        control.start_component(release.cluster, "etcd")
        ready_s = round(time.monotonic() - started, 1)
        rc = play.finish(timeout=300)
    finally:
        play.finish(timeout=1)
        release.restore()
    details = {"resumed": resumed_from(play, live), "etcd_down_s": ETCD_DOWN, "apiserver_ready_s_after_etcd_start": ready_s}
    holds = play.times_of(HOLD_TASK)
    after = [t for t in holds if t > held]
    if after:
        # How long the 100% step took, from the end of the hold etcd died in: it sat in the API server.
        details["next_step_s"] = round(after[0] - held - HOLD, 1)
    assert "Traceback" not in play.out and "MODULE FAILURE" not in play.out, play.out[-3000:]
    if rc == 0:
        details["outcome"] = "the play waited for etcd and promoted"
    else:
        details.update(outcome="the play failed", message=assert_clear_failure(rc, play.out),
                       weights_after=release.weights())
        assert details["weights_after"] in VALID_WEIGHTS, details
        rerun = release.play()
        assert rerun.finish(timeout=400) == 0, rerun.out[-3000:]
        details["rerun"] = resumed_from(rerun, details["weights_after"].get(CANARY, 0))
    assert release.weights() == {CANARY: 100}
    assert lock_of(release.admin, release.namespace) is None
    record(**details)
