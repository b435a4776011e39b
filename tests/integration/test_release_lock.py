"""release_lock on the real API server: exclusive, expiring, race-safe, check mode writes nothing."""
from __future__ import annotations

import json
import threading

from sandbox.api import collection_path
from sandbox.audit import WRITE_VERBS

from runners import run_module_process  # pylint: disable=import-error

LOCK = "canary.istio/release-lock"


def _make_vs(admin, ns):
    admin.create(collection_path("VirtualService", ns), {
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "reviews"},
        "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}]}})
    return f"{collection_path('VirtualService', ns)}/reviews"


def _lock(admin, path):
    raw = admin.get(path)["metadata"].get("annotations", {}).get(LOCK)
    return json.loads(raw) if raw else None


def test_lock_is_exclusive_idempotent_and_released(module_runner, admin, namespace, release_kubeconfig, audit):
    path = _make_vs(admin, namespace)
    args = dict(name="reviews", namespace=namespace, kubeconfig=release_kubeconfig)
    first = module_runner("release_lock", owner="job-1", **args)
    assert first["changed"] and first["outcome"] == "acquired"
    assert _lock(admin, path)["owner"] == "job-1"

    again = module_runner("release_lock", owner="job-1", **args)
    assert not again["changed"] and again["outcome"] == "held"

    spec_before = admin.get(path)["spec"]
    refused = module_runner("release_lock", owner="job-2", **args)
    assert refused["failed"] and "'job-1'" in refused["msg"] and refused["holder"]["owner"] == "job-1"
    assert _lock(admin, path)["owner"] == "job-1" and admin.get(path)["spec"] == spec_before

    not_mine = module_runner("release_lock", owner="job-2", state="absent", **args)
    assert not not_mine["changed"] and not_mine["outcome"] == "not_owner"
    released = module_runner("release_lock", owner="job-1", state="absent", **args)
    assert released["changed"] and released["outcome"] == "released" and _lock(admin, path) is None
    assert module_runner("release_lock", owner="job-1", state="absent", **args)["changed"] is False
    # acquire, acquire (held: no write), refused, not_owner, release, free: exactly 2 writes.
    assert audit.count("canary-release", WRITE_VERBS, "virtualservices", namespace) == 2


def test_expired_lock_is_taken_over_with_a_warning(module_runner, admin, namespace):
    path = _make_vs(admin, namespace)
    vs = admin.get(path)
    vs["metadata"].setdefault("annotations", {})[LOCK] = json.dumps(
        {"owner": "dead-job", "acquired": "2020-01-01T00:00:00Z", "expires": "2020-01-01T01:00:00Z"})
    admin.request("PUT", path, vs)
    result = module_runner("release_lock", name="reviews", namespace=namespace, owner="job-3")
    assert result["outcome"] == "taken_over" and result["previous"]["owner"] == "dead-job"
    assert any("dead-job" in w for w in result.get("warnings", []))
    assert _lock(admin, path)["owner"] == "job-3"


def test_check_mode_and_diff_write_nothing(module_runner, admin, namespace, audit):
    path = _make_vs(admin, namespace)
    audit.mark()
    result = module_runner("release_lock", check=True, diff=True, name="reviews", namespace=namespace, owner="job-1")
    assert result["changed"] and result["outcome"] == "acquired"
    assert result["diff"]["before"][LOCK] is None and result["diff"]["after"][LOCK]["owner"] == "job-1"
    assert _lock(admin, path) is None
    assert audit.count("sandbox-admin", ["create", "update", "patch", "delete"], "virtualservices", namespace) == 1
    dry = [e for e in audit.events("sandbox-admin") if e["verb"] == "update"]
    assert all("dryRun=All" in e["requestURI"] for e in dry)


def test_two_racing_releases_exactly_one_wins(kubeconfig, admin, namespace):
    _make_vs(admin, namespace)
    results = {}

    def take(owner):
        params = dict(name="reviews", namespace=namespace, owner=owner, kubeconfig=kubeconfig, context="sandbox-1")
        results[owner] = run_module_process("release_lock", params)

    threads = [threading.Thread(target=take, args=(f"job-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o, r in results.items() if not r.get("failed")]
    assert len(winners) == 1, results
    assert _lock(admin, f"{collection_path('VirtualService', namespace)}/reviews")["owner"] == winners[0]
