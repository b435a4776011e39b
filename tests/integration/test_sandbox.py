"""The sandbox is a real control plane: controllers, validation, RBAC, independence, audit."""
from __future__ import annotations

import pytest
import requests
import yaml

from sandbox import versions
from sandbox.api import AdminApi, ApiError, collection_path

from sandbox.audit import WRITE_VERBS

BOOKINFO = versions.BOOKINFO_DIR / "platform" / "bookinfo.yaml"


def _bookinfo_docs() -> list[dict]:
    return [d for d in yaml.safe_load_all(BOOKINFO.read_text()) if d]


def _pods(admin: AdminApi, ns: str, selector: str) -> list[dict]:
    return admin.get(collection_path("Pod", ns), params={"labelSelector": selector})["items"]


def _ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in pod.get("status", {}).get("conditions", []))


def _vs(name: str, **http) -> dict:
    route = {"route": [{"destination": {"host": name, "subset": "v1"}}], **http}
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": name}, "spec": {"hosts": [name], "http": [route]}}


def _release_api(c) -> AdminApi:
    return AdminApi(c.server, c.release_token, str(c.ca_file))


def test_bookinfo_reviews_v1_becomes_available_and_delete_removes_pods(admin, namespace):
    admin.apply_manifest(_bookinfo_docs(), namespace)
    deploy_path = f"{collection_path('Deployment', namespace)}/reviews-v1"

    def available():
        status = admin.get(deploy_path).get("status", {})
        conds = {c["type"]: c["status"] for c in status.get("conditions", [])}
        return conds.get("Available") == "True" and status.get("readyReplicas") == 1

    admin.wait_for("reviews-v1 Available", available, 60)
    pods = _pods(admin, namespace, "app=reviews,version=v1")
    assert len(pods) == 1 and _ready(pods[0])
    assert pods[0]["spec"]["nodeName"] == "kwok-node-0"  # placed by the real scheduler

    admin.delete(deploy_path)
    admin.wait_for("reviews-v1 pods gone", lambda: not _pods(admin, namespace, "app=reviews,version=v1"), 60)
    # Other versions are untouched by the cascade.
    assert _pods(admin, namespace, "app=reviews,version=v2")


def test_invalid_virtual_service_is_rejected_by_the_crd_cel_rule(admin, namespace):
    with pytest.raises(ApiError) as err:
        admin.create(collection_path("VirtualService", namespace), _vs("reviews", timeout="0s"))
    assert err.value.status == 422
    assert "1ms" in str(err.value)
    admin.create(collection_path("VirtualService", namespace), _vs("reviews", timeout="5s"))


def test_strict_field_validation_rejects_unknown_fields(admin, namespace):
    body = _vs("ratings")
    body["spec"]["http"][0]["notAField"] = True
    with pytest.raises(ApiError) as err:
        admin.request("POST", collection_path("VirtualService", namespace), body,
                      params={"fieldValidation": "Strict"})
    assert err.value.status in (400, 422)
    assert "notAField" in str(err.value)


def test_release_token_has_exactly_the_release_verbs(sandbox, admin, namespace):
    c = sandbox[0]
    release = _release_api(c)
    vs_path = collection_path("VirtualService", namespace)
    dr_path = collection_path("DestinationRule", namespace)
    release.create(vs_path, _vs("reviews"))
    vs = release.get(f"{vs_path}/reviews")
    vs["spec"]["http"][0]["timeout"] = "3s"
    release.request("PUT", f"{vs_path}/reviews", vs)
    release.create(dr_path, {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                             "metadata": {"name": "reviews"},
                             "spec": {"host": "reviews", "subsets": [{"name": "v1", "labels": {"version": "v1"}}]}})
    dr = release.get(f"{dr_path}/reviews")
    dr["spec"]["subsets"].append({"name": "v2", "labels": {"version": "v2"}})
    release.request("PUT", f"{dr_path}/reviews", dr)

    deployment = next(d for d in _bookinfo_docs() if d["kind"] == "Deployment"
                      and d["metadata"]["name"] == "ratings-v1")
    deployment["spec"]["template"]["spec"].pop("serviceAccountName", None)
    release.create(collection_path("Deployment", namespace), deployment)
    release.delete(f"{collection_path('Deployment', namespace)}/ratings-v1")

    forbidden = [
        lambda: release.get(collection_path("Secret", namespace)),
        lambda: release.request("DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                                "virtualservices.networking.istio.io"),
        lambda: release.get(collection_path("VirtualService", "default")),  # outside its namespace
    ]
    for call in forbidden:
        with pytest.raises(ApiError) as err:
            call()
        assert err.value.status == 403
    # The CRD is still there: the forbidden delete changed nothing.
    admin.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/virtualservices.networking.istio.io")


def test_two_clusters_are_independent(sandbox, namespace):
    if len(sandbox) < 2:
        pytest.skip("needs CANARY_ISTIO_TEST_CLUSTERS >= 2")
    first, second = sandbox[0].admin(), sandbox[1].admin()
    assert sandbox[0].server != sandbox[1].server
    first.create(collection_path("VirtualService", namespace), _vs("reviews"))
    assert first.get(f"{collection_path('VirtualService', namespace)}/reviews")
    assert second.get(f"{collection_path('VirtualService', namespace)}/reviews", ok_missing=True) == {}
    assert second.get(f"/api/v1/namespaces/{namespace}", ok_missing=True) == {}


def test_audit_log_counts_requests_by_verb_and_resource(sandbox, namespace, audit):
    release = _release_api(sandbox[0])
    path = collection_path("VirtualService", namespace)
    release.create(path, _vs("details"))
    release.get(f"{path}/details")
    release.get(f"{path}/details")
    release.get(path)
    user = "canary-release"
    assert audit.count(user, ["create"], "virtualservices", namespace) == 1
    assert audit.count(user, ["get"], "virtualservices", namespace) == 2
    assert audit.count(user, ["list"], "virtualservices", namespace) == 1
    assert audit.count(user, WRITE_VERBS) == 1


def test_kubeconfigs_have_one_context_per_cluster(sandbox, kubeconfig, release_kubeconfig):
    for path, token_attr in ((kubeconfig, "admin_token"), (release_kubeconfig, "release_token")):
        doc = yaml.safe_load(open(path))
        assert [c["name"] for c in doc["contexts"]] == [c.name for c in sandbox]
        for c, user in zip(sandbox, doc["users"]):
            assert user["user"]["token"] == getattr(c, token_attr)
        server = doc["clusters"][0]["cluster"]
        resp = requests.get(server["server"] + "/version", verify=server["certificate-authority"],
                            headers={"Authorization": f"Bearer {doc['users'][0]['user']['token']}"},
                            timeout=10)
        assert resp.json()["gitVersion"] == f"v{versions.K8S_VERSION}"


def test_kwok_node_renews_its_lease_so_pods_stay_ready(admin):
    """A node without a renewed lease goes NotReady after the grace period, and its pods with it."""
    import datetime

    path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/kwok-node-0"
    first = admin.wait_for("kwok-node-0's lease", lambda: admin.get(path, ok_missing=True), 30)
    admin.wait_for("the lease renewed", lambda: admin.get(path)["spec"]["renewTime"] != first["spec"]["renewTime"], 60)
    renewed = datetime.datetime.strptime(admin.get(path)["spec"]["renewTime"][:19], "%Y-%m-%dT%H:%M:%S")
    assert abs((datetime.datetime.utcnow() - renewed).total_seconds()) < 60
    node = admin.get("/api/v1/nodes/kwok-node-0")
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])
