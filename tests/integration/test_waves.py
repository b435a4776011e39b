"""canary_release over three sandbox clusters in waves (one inventory host per cluster).

The failure is a real one: cluster 2 gets no simulated traffic, so its analysis has no data, the
round is inconclusive and that cluster rolls back after its first step; later waves never start.
"""
from __future__ import annotations

import json
import re
import uuid

import pytest
import requests
import yaml

from sandbox import cluster as sandbox_cluster
from sandbox import versions
from sandbox.api import collection_path

from runners import run_playbook  # pylint: disable=import-error

pytestmark = pytest.mark.integration
BOOKINFO = versions.BOOKINFO_DIR
IMAGE = "docker.io/istio/examples-bookinfo-reviews-v2:1.20.1"
# One simulator (one "Guance workspace") serves every cluster, each with the same namespace and
# service: the label keeps each cluster's analysis on its own numbers.
ANALYSIS = {"interval": 3, "iterations": 1, "window": 6, "min_requests": 5,
            "checks": [{"metric": "request_success_rate", "min": 95}],
            "labels": {"destination_cluster": "{{ inventory_hostname }}"}}


@pytest.fixture(name="clusters")
def three_clusters(sandbox):
    if len(sandbox) < 3:
        pytest.fail(f"the waves tests need 3 sandbox clusters, {len(sandbox)} running: python -m sandbox up --clusters 3",
                    pytrace=False)
    return sandbox[:3]


@pytest.fixture(name="endpoints")
def simulator_endpoints(sandbox) -> dict:
    return json.loads((versions.STATE_DIR / "endpoints.json").read_text())


@pytest.fixture(name="spread")
def bookinfo_on_every_cluster(request, clusters, endpoints):
    """The same fresh namespace with bookinfo (reviews v1 Ready) in each cluster; yields its name."""
    name = "t-" + re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:30].strip("-") + "-" + uuid.uuid4().hex[:6]
    docs = [d for d in yaml.safe_load_all((BOOKINFO / "platform/bookinfo.yaml").read_text())
            if d and d["metadata"]["name"] not in ("reviews-v2", "reviews-v3")]
    for c in clusters:
        api = c.admin()
        sandbox_cluster.create_namespace(api, name)
        api.wait_for(f"ServiceAccount default in {name}", lambda a=api: a.get(f"/api/v1/namespaces/{name}/serviceaccounts/default"), 30)
        api.apply_manifest(docs, name)
    for c in clusters:
        api = c.admin()
        path = f"{collection_path('Deployment', name)}/reviews-v1"
        api.wait_for(f"reviews-v1 Ready on {c.name}", lambda a=api: a.get(path).get("status", {}).get("readyReplicas") == 1, 90)
    yield name
    for c in clusters:
        _traffic(endpoints, c.name, name, 0)
        c.admin().delete(f"/api/v1/namespaces/{name}")


def _traffic(endpoints: dict, cluster: str, namespace: str, rate: float) -> None:
    settings = {"cluster": cluster, "namespace": namespace, "service": "reviews", "rate": rate}
    requests.post(endpoints["control"] + "/traffic", json=settings, timeout=10).raise_for_status()


def _inventory(tmp_path, clusters) -> str:
    hosts = {c.name: {"ansible_connection": "local", "canary_context": c.name} for c in clusters}
    inventory = {"all": {"vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
                         "children": {"canary_clusters": {"hosts": hosts}}}}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    return str(path)


def _release(tmp_path, clusters, namespace, endpoints, wave_size):
    extra = {"canary_app": "reviews", "canary_namespace": namespace, "canary_stable_version": "v1", "canary_version": "v2",
             "canary_image": IMAGE, "canary_steps": [50, 100], "canary_analysis": ANALYSIS,
             "canary_hosts": "canary_clusters", "canary_wave_size": wave_size,
             "canary_kubeconfig": str(versions.STATE_DIR / "kubeconfig-release"), "canary_report_dir": str(tmp_path / "reports"),
             "canary_release_id": "waves"}
    env = {"GUANCE_URL": endpoints["guance_openapi"], "GUANCE_API_KEY": endpoints["guance_api_key"]}
    return run_playbook("canary.istio.canary_release", "-i", _inventory(tmp_path, clusters), "-e", json.dumps(extra),
                        env=env, check=False)


def _state(c, namespace) -> tuple[dict | None, set[str]]:
    """(catch-all weights or None without a VirtualService, reviews Deployments) read back from the cluster."""
    api = c.admin()
    vs = api.get(f"{collection_path('VirtualService', namespace)}/reviews", ok_missing=True)
    weights = None
    if vs:
        route = [r for r in vs["spec"]["http"] if not r.get("match")][0]["route"]
        weights = {d["destination"]["subset"]: d.get("weight", 100 if len(route) == 1 else 0) for d in route}
    items = api.get(collection_path("Deployment", namespace), params={"labelSelector": "app=reviews"})["items"]
    return weights, {d["metadata"]["name"] for d in items}


def test_three_clusters_all_promoted(tmp_path, clusters, spread, endpoints):
    for c in clusters:
        _traffic(endpoints, c.name, spread, 30)
    # The canary cluster alone first, then the other two together.
    proc = _release(tmp_path, clusters, spread, endpoints, [1, 2])
    assert proc.returncode == 0, proc.stdout[-4000:]
    for c in clusters:
        assert _state(c, spread) == ({"v2": 100}, {"reviews-v2"}), c.name
    summary = proc.stdout[proc.stdout.rindex("Release summary"):]
    for c in clusters:
        assert re.search(rf"{c.name}: promoted", summary), summary
        records = json.loads((tmp_path / "reports" / "waves" / c.name / "records.json").read_text())
        assert records["outcome"]["status"] == "promoted"
        assert [r["weight"] for r in records["records"] if r["event"] == "step"] == [50, 100]


def test_failure_in_the_second_cluster_stops_the_waves(tmp_path, clusters, spread, endpoints):
    first, second, third = clusters
    _traffic(endpoints, first.name, spread, 30)
    _traffic(endpoints, third.name, spread, 30)  # would pass, but must never be reached
    proc = _release(tmp_path, clusters, spread, endpoints, 1)
    assert proc.returncode != 0, proc.stdout[-4000:]
    assert _state(first, spread) == ({"v2": 100}, {"reviews-v2"}), proc.stdout[-3000:] + proc.stderr[-3000:]
    # Rolled back after its first step: all traffic on v1; v2 is kept (at weight 0) to be looked at.
    weights, deployments = _state(second, spread)
    assert weights == {"v1": 100, "v2": 0} and deployments == {"reviews-v1", "reviews-v2"}, (weights, deployments)
    # Never started: no rules, no canary.
    assert _state(third, spread) == (None, {"reviews-v1"})
    summary = proc.stdout[proc.stdout.rindex("Release summary"):]
    assert re.search(rf"{first.name}: promoted", summary), summary
    assert re.search(rf"{second.name}: rolled back", summary), summary
    assert re.search(rf"{third.name}: not started", summary), summary
    # The report of the failed cluster has the failing analysis and the rollback; none for the third.
    records = json.loads((tmp_path / "reports" / "waves" / second.name / "records.json").read_text())
    assert records["outcome"]["status"] == "rolled_back"
    analysis = [r for r in records["records"] if r["event"] == "analysis"]
    assert analysis and analysis[-1]["analysis"]["verdict"] != "pass"
    assert (tmp_path / "reports" / "waves" / second.name / "report.html").is_file()
    assert not (tmp_path / "reports" / "waves" / third.name).exists()
