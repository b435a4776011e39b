"""Concurrency: other writers on the VirtualService during a release, and two releases at once.

Real `ansible-playbook canary.istio.canary_release` runs on sandbox-1. Fifty writer threads change
the parts of the release's VirtualService the release does not own, as controllers and people do,
while its steps run; two releases of one service started together must leave one refused by the lock.
What each writer and release wrote is read from the audit log and from a watch on the VirtualService.

The writers' pace is bounded: every write of anyone moves the object's resourceVersion, so the
release's own read-modify-write (GET, then PUT with that version) loses when someone else writes in
its window. On a loaded sandbox (API server median latency 0.65 s) writers committing ~1.5-3 writes/s
with fast retries made the release's lock PUT conflict 20 times in a row, and the release failed.
"""
from __future__ import annotations

import json
import os
import random
import re
import subprocess
import threading
import time

import pytest
import requests

from sandbox import cluster as sandbox_cluster
from sandbox.api import ApiError, collection_path
from sandbox.audit import WRITE_VERBS

from runners import REPO, VENV_BIN  # pylint: disable=import-error

pytestmark = pytest.mark.integration

APP, STABLE = "reviews", "v1"
IMAGE = "docker.io/istio/examples-bookinfo-reviews-v2:1.20.1"
WRITERS = 50
RELEASE_USER = "canary-release"


# --------------------------------------------------------------------------- the service and its release


def _stable_objects() -> list[dict]:
    labels = {"app": APP, "version": STABLE}
    return [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": APP, "labels": {"app": APP}},
         "spec": {"selector": {"app": APP}, "ports": [{"name": "http", "port": 9080}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"{APP}-{STABLE}", "labels": labels},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"containers": [{"name": APP, "image": IMAGE.replace("v2", STABLE),
                                                        "ports": [{"containerPort": 9080}]}]}}}},
    ]


@pytest.fixture(name="stable")
def stable_deployed(admin, namespace) -> str:
    """reviews v1 Ready in the test's namespace, with its Service."""
    admin.apply_manifest(_stable_objects(), namespace)
    path = f"{collection_path('Deployment', namespace)}/{APP}-{STABLE}"
    admin.wait_for(f"{APP}-{STABLE} Ready", lambda: admin.get(path).get("status", {}).get("readyReplicas") == 1, 90)
    return namespace


def _vs_path(namespace: str) -> str:
    return f"{collection_path('VirtualService', namespace)}/{APP}"


def _catch_all(vs: dict) -> dict:
    return [r for r in vs["spec"]["http"] if not r.get("match")][0]


def _weights(vs: dict) -> dict:
    """subset -> weight of the catch-all route, as Istio reads it (a lone destination gets 100)."""
    route = _catch_all(vs)["route"]
    if len(route) == 1:
        return {route[0]["destination"]["subset"]: 100}
    return {d["destination"]["subset"]: d.get("weight", 0) for d in route}


def _release_vars(namespace: str, kubeconfig: str, version: str, steps: list[int], hold: int, **overrides) -> str:
    extra = {"canary_app": APP, "canary_namespace": namespace, "canary_stable_version": STABLE,
             "canary_version": version, "canary_image": IMAGE.replace("v2", version), "canary_steps": steps,
             "canary_interval": hold, "canary_analysis": False, "canary_delete_old_versions": False,
             "canary_kubeconfig": kubeconfig, "canary_context": "sandbox-1"}
    extra.update(overrides)
    return json.dumps(extra)


def _start_release(extra: str) -> subprocess.Popen:
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_FORCE_COLOR": "0"}
    return subprocess.Popen([str(VENV_BIN / "ansible-playbook"), "canary.istio.canary_release", "-e", extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen, timeout: float = 300) -> str:
    try:
        return proc.communicate(timeout=timeout)[0]
    finally:
        proc.kill()
        proc.wait()


class VsWatch:
    """Every version of VirtualService `reviews` the API server stored, from a watch begun before the
    release: the canary weights of its catch-all route in the order they were written.

    The watch is a series of short ones, each resumed from the last version seen (so none is missed):
    a stream cannot be closed safely from another thread while it reads, but a short one ends alone."""

    def __init__(self, admin, namespace: str, canary: str):
        self.admin, self.namespace, self.canary = admin, namespace, canary
        self.last_rv = admin.get(collection_path("VirtualService", namespace))["metadata"]["resourceVersion"]
        self.weights: list[int] = []  # the canary's weight, one entry per change of it
        self.versions = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            response = self.admin.session.get(
                self.admin.server + collection_path("VirtualService", self.namespace),
                params={"watch": "1", "resourceVersion": self.last_rv, "fieldSelector": f"metadata.name={APP}",
                        "timeoutSeconds": "3"}, stream=True, timeout=(10, 30))
            with response:
                for line in response.iter_lines():
                    self._seen(json.loads(line))

    def _seen(self, event: dict) -> None:
        if event["type"] not in ("ADDED", "MODIFIED"):
            return
        self.versions += 1
        self.last_rv = event["object"]["metadata"]["resourceVersion"]
        weight = _weights(event["object"]).get(self.canary, 0)
        if not self.weights or self.weights[-1] != weight:
            self.weights.append(weight)

    def stop(self, last_rv: str) -> None:
        """Stop watching once the version `last_rv` (the latest one) has come."""
        deadline = time.monotonic() + 30
        while self.last_rv != last_rv and time.monotonic() < deadline:
            time.sleep(0.1)
        self._stop.set()
        self._thread.join(35)


def _is_subsequence(wanted: list[int], seen: list[int]) -> bool:
    rest = iter(seen)
    return all(any(w == s for s in rest) for w in wanted)


# --------------------------------------------------------------------------- 50 writers


class Writer(threading.Thread):
    """Changes its own part of the VirtualService now and then until told to stop, as a controller
    would: a header-match route of its own (its timeout and retries), an annotation, or a label.
    Routes go by read-modify-write with the resourceVersion, the annotation and the label by a JSON
    merge patch of that one key (a map: no list is replaced; the server applies it to the latest
    version). A 409, a 5xx or a timeout is retried after a jittered exponential backoff, as a
    controller's work queue requeues; `written` is the last value the API server acknowledged."""

    KINDS = ("route", "annotation", "label")
    # Seconds between two writes of one writer: 50 writers commit ~1.7 writes/s in all. Much more
    # starves the release's own read-modify-write on a loaded sandbox (see the module docstring).
    PAUSE = (20.0, 40.0)

    def __init__(self, index: int, api, path: str, stop: threading.Event):
        super().__init__(daemon=True)
        self.index, self.api, self.path, self.stop_event = index, api, path, stop
        self.kind = self.KINDS[index % len(self.KINDS)]
        self.key = f"w{index}"
        self.written = 0
        self.conflicts = 0  # 409s retried
        self.errors = 0  # 5xx and timeouts retried
        self.error: Exception | None = None

    def run(self) -> None:
        pause = random.uniform(0, self.PAUSE[0])  # the first writes spread too: writers not in step
        try:
            while not self.stop_event.wait(pause):
                if self._write(self.written + 1):
                    self.written += 1
                pause = random.uniform(*self.PAUSE)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def _write(self, value: int) -> bool:
        """True once the API server took the value; False when told to stop before it did."""
        attempt = 0
        while not self.stop_event.is_set():
            try:
                self._send(value)
                return True
            except ApiError as exc:
                if exc.status != 409 and exc.status < 500:
                    raise
                self.conflicts += exc.status == 409
                self.errors += exc.status >= 500
            except requests.Timeout:
                self.errors += 1
            attempt += 1
            time.sleep(min(5.0, 0.1 * 2 ** attempt) * random.uniform(0.5, 1.0))
        return False

    def _send(self, value: int) -> None:
        if self.kind == "route":
            vs = self.api.get(self.path)
            self._change(vs, value)
            self.api.request("PUT", self.path, vs)  # carries the resourceVersion it read
            return
        field = "labels" if self.kind == "label" else "annotations"
        self.api.request("PATCH", self.path, {"metadata": {field: {self.field_key: str(value)}}},
                         content_type="application/merge-patch+json")

    @property
    def field_key(self) -> str:
        return f"reliability-{self.key}" if self.kind == "label" else f"reliability.canary.istio/{self.key}"

    def _change(self, vs: dict, value: int) -> None:
        http = vs["spec"]["http"]
        route = next((r for r in http if r.get("name") == self.key), None)
        if route is None:
            # Ahead of the catch-all, which must stay last; to another service, so no version of
            # reviews gets traffic the release does not know about.
            route = {"name": self.key, "match": [{"headers": {"x-writer": {"exact": self.key}}}],
                     "route": [{"destination": {"host": "ratings"}}]}
            http.insert(0, route)
        route["timeout"] = f"{value}s"
        route["retries"] = {"attempts": value % 5 + 1, "perTryTimeout": "2s"}

    def value_in(self, vs: dict) -> int | None:
        """What of this writer's is in `vs` (None: lost)."""
        if self.kind != "route":
            found = (vs["metadata"].get("labels" if self.kind == "label" else "annotations") or {}).get(self.field_key)
        else:
            route = next((r for r in vs["spec"]["http"] if r.get("name") == self.key), {})
            found = route.get("timeout", "").rstrip("s") or None
            if route and route.get("retries", {}).get("attempts") != int(found) % 5 + 1:
                return None
        return int(found) if found is not None else None


def test_fifty_writers_on_the_virtualservice_during_a_release(sandbox, admin, stable, release_kubeconfig, audit, record):
    """50 writers change routes, annotations and labels of the VirtualService while the release steps: no field lost, every step applied"""
    ns = stable
    steps, hold = [20, 50, 80, 100], 2
    watch = VsWatch(admin, ns, "v2")
    proc = _start_release(_release_vars(ns, release_kubeconfig, "v2", steps, hold))
    stop = threading.Event()
    path = _vs_path(ns)
    try:
        # The play creates the VirtualService (create_rules); the writers start on it at once.
        admin.wait_for("VirtualService reviews", lambda: admin.get(path, ok_missing=True), 120)
        writers = [Writer(i, sandbox[0].admin(), path, stop) for i in range(WRITERS)]
        for writer in writers:
            writer.start()
        out = _finish(proc)
    finally:
        stop.set()
        proc.kill()
    for writer in writers:
        writer.join(60)
    final = admin.get(path)
    watch.stop(final["metadata"]["resourceVersion"])
    assert proc.returncode == 0, out[-4000:]
    assert not [w.error for w in writers if w.error], [repr(w.error) for w in writers if w.error][:3]

    lost = {w.key: (w.written, w.value_in(final)) for w in writers if w.value_in(final) != (w.written or None)}
    assert not lost, f"writers' last values missing or stale (written, found): {lost}"
    assert _weights(final) == {"v2": 100}
    # Every step was stored, in order (the watch sees every version the API server stored).
    assert _is_subsequence(steps, watch.weights), watch.weights

    events = [e for e in audit.events() if e.get("objectRef", {}).get("resource") == "virtualservices"
              and e.get("objectRef", {}).get("namespace") == ns and e["verb"] in WRITE_VERBS]
    release = [e for e in events if e["user"]["username"] == RELEASE_USER]
    stored = [e["verb"] for e in release if e.get("responseStatus", {}).get("code", 0) < 300]
    # The rules' create, then updates: the lock taken, one per step (the last one is the promotion's
    # route too), the lock released. Every 409 in between was retried.
    assert stored == ["create"] + ["update"] * (len(steps) + 2), [(e["verb"], e["responseStatus"]) for e in release]
    record(writers=WRITERS, writer_writes=sum(w.written for w in writers),
           writer_conflicts_retried=sum(w.conflicts for w in writers), writer_errors_retried=sum(w.errors for w in writers),
           release_vs_writes_stored=len(stored),
           release_conflicts_409=sum(e.get("responseStatus", {}).get("code") == 409 for e in release),
           all_vs_writes=len(events), vs_versions_watched=watch.versions,
           canary_weights_seen=watch.weights, steps=steps)


# --------------------------------------------------------------------------- two releases at once


def _rules(namespace: str) -> list[dict]:
    """The service as it runs today: all traffic on v1, subsets for every version it may release."""
    return [
        {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": APP},
         "spec": {"host": APP, "subsets": [{"name": v, "labels": {"version": v}} for v in ("v1", "v2", "v3")]}},
        {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": APP},
         "spec": {"hosts": [APP], "http": [{"route": [{"destination": {"host": APP, "subset": "v1"}}]}]}},
    ]


def _service_account_kubeconfig(admin, c, namespace: str, name: str, path) -> str:
    """A kubeconfig for a ServiceAccount bound to the release role: a second release identity, so the
    audit log tells the two releases' requests apart."""
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}
    admin.create(collection_path("ServiceAccount", namespace), account)
    admin.create(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": sandbox_cluster.RELEASE_ROLE},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]})
    token = admin.create(f"{collection_path('ServiceAccount', namespace)}/{name}/token", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}})
    entry = ("sandbox-1", c.server, str(c.ca_file), token["status"]["token"])
    path.write_text(json.dumps(sandbox_cluster.kubeconfig_doc([entry], "sandbox-1")))
    os.chmod(path, 0o600)
    return str(path)


def test_two_releases_of_one_service_started_together(sandbox, admin, stable, release_kubeconfig, audit, tmp_path, record):
    """Two canary_release plays of one service started together: one is refused by the lock and writes nothing, the other completes"""
    ns = stable
    admin.apply_manifest(_rules(ns), ns)
    other_kubeconfig = _service_account_kubeconfig(admin, sandbox[0], ns, "release-b", tmp_path / "kubeconfig-b")
    other_user = f"system:serviceaccount:{ns}:release-b"
    audit.mark()
    watch_v2, watch_v3 = VsWatch(admin, ns, "v2"), VsWatch(admin, ns, "v3")
    plays = {
        "v2": (RELEASE_USER, _start_release(_release_vars(ns, release_kubeconfig, "v2", [20, 100], 2, canary_release_id="release-a"))),
        "v3": (other_user, _start_release(_release_vars(ns, other_kubeconfig, "v3", [20, 100], 2, canary_release_id="release-b"))),
    }
    outs = {version: _finish(proc) for version, (_user, proc) in plays.items()}
    final = admin.get(_vs_path(ns))
    watch_v2.stop(final["metadata"]["resourceVersion"])
    watch_v3.stop(final["metadata"]["resourceVersion"])
    codes = {version: proc.returncode for version, (_user, proc) in plays.items()}
    assert sorted(codes.values())[0] == 0 and sorted(codes.values())[1] != 0, {v: o[-2000:] for v, o in outs.items()}
    winner = next(v for v, code in codes.items() if code == 0)
    loser = next(v for v, code in codes.items() if code != 0)

    refused = outs[loser]
    holder = "release-a" if winner == "v2" else "release-b"
    assert "another release holds the lock" in refused and f"owner '{holder}'" in refused, refused[-3000:]
    message = re.search(r"another release holds the lock: [^\n\"]*", refused).group(0)
    # The loser wrote nothing at all (its rules were already there); the winner promoted its version.
    loser_writes = [(e["verb"], e["objectRef"].get("resource"), e["responseStatus"].get("code"))
                    for e in audit.events(plays[loser][0]) if e["verb"] in WRITE_VERBS]
    assert loser_writes == [], loser_writes
    assert admin.get(f"{collection_path('Deployment', ns)}/{APP}-{loser}", ok_missing=True) == {}
    assert (watch_v2 if loser == "v2" else watch_v3).weights in ([], [0]), "the refused release's version got traffic"
    assert _weights(final) == {winner: 100}
    assert "canary.istio/release-lock" not in (final["metadata"].get("annotations") or {})
    winner_writes = sum(1 for e in audit.events(plays[winner][0]) if e["verb"] in WRITE_VERBS)
    record(winner=f"{APP} {winner}", refused=message, refused_release_writes=len(loser_writes),
           winner_writes=winner_writes, winner_weights_seen=(watch_v2 if winner == "v2" else watch_v3).weights)
