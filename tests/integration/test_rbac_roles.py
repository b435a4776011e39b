"""The routing-only role (playbooks/files/release-rbac-routing.yaml) on the real API server: it
shifts traffic, reads the mesh and takes the lock, and the API server refuses it any write to
workloads."""
from __future__ import annotations

import pytest

from _routing_fixtures import bookinfo_object, create, deploy_app, object_path
from sandbox import versions
from sandbox.api import ApiError, collection_path
from sandbox.identities import Identity, role_rules

pytestmark = pytest.mark.integration

ROUTING_ROLE = versions.REPO_ROOT / "playbooks" / "files" / "release-rbac-routing.yaml"
VS = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "reviews"},
      "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}]}}


@pytest.fixture
def routing_identity(admin, tmp_path):
    identity = Identity(admin, role_rules(ROUTING_ROLE), "routing", tmp_path)
    yield identity
    identity.delete()


def test_routing_role_shifts_traffic_and_cannot_touch_workloads(admin, routing_identity, module_runner):
    ns = routing_identity.namespace
    deploy_app(admin, ns, "reviews", ("v1", "v2"))
    create(admin, ns, bookinfo_object("networking/destination-rule-all.yaml", "DestinationRule", "reviews"))
    create(admin, ns, VS)
    auth = {"kubeconfig": routing_identity.kubeconfig, "context": routing_identity.context}

    moved = module_runner("traffic_split", namespace=ns, name="reviews", stable="v1", canary="v2", canary_weight=10, **auth)
    assert moved.get("failed") is not True, moved
    assert moved["changed"] and moved["weights"] == {"v1": 90, "v2": 10}
    mesh = module_runner("mesh_info", namespace=ns, service_host="reviews", **auth)
    assert mesh.get("failed") is not True and mesh["version_weights"] == {"v1": 90, "v2": 10}, mesh
    lock = module_runner("release_lock", namespace=ns, name="reviews", owner="ci", run="1", **auth)
    assert lock["outcome"] == "acquired", lock

    releaser = routing_identity.api()
    refused = [
        ("POST", collection_path("Deployment", ns), bookinfo_object("platform/bookinfo.yaml", "Deployment", "reviews-v3"),
         'cannot create resource "deployments"'),
        ("DELETE", object_path("Deployment", ns, "reviews-v1"), None, 'cannot delete resource "deployments"'),
        ("PUT", object_path("Service", ns, "reviews"), admin.get(object_path("Service", ns, "reviews")),
         'cannot update resource "services"'),
    ]
    for method, path, body, words in refused:
        with pytest.raises(ApiError) as err:
            releaser.request(method, path, body)
        assert err.value.status == 403 and words in str(err.value), (method, path)
