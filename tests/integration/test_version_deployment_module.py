"""canary.istio.version_deployment on the sandbox's real API server: the canary is the user's own
Deployment cloned (probes, affinity, two containers, an init container, pull secrets, a custom
version label key), written once and then left alone, and a version that cannot become Ready
fails saying why."""
from __future__ import annotations

import pytest

from sandbox.api import collection_path

from _users_deployment import IMAGE_V1, IMAGE_V2, LABEL, users_deployment  # pylint: disable=import-error

pytestmark = pytest.mark.integration


def deployment(admin, namespace: str, name: str) -> dict:
    return admin.get(f"{collection_path('Deployment', namespace)}/{name}")


def test_the_canary_is_the_users_deployment_cloned(admin, namespace, module_runner) -> None:
    admin.apply_manifest([users_deployment()], namespace)
    params = dict(app="reviews", namespace=namespace, version="2.0.0", from_version="1.0.0", version_label=LABEL,
                  images={"reviews": IMAGE_V2}, pod_annotations={"canary.istio/test": "yes"}, progress_deadline=120)
    preview = module_runner("version_deployment", check=True, **params)
    assert preview.get("failed") is not True, preview.get("msg")
    assert preview["changed"] is True and preview["ready"] is False
    assert not admin.get(f"{collection_path('Deployment', namespace)}/reviews-2.0.0", ok_missing=True)

    result = module_runner("version_deployment", **params)
    assert result.get("failed") is not True, result.get("msg")
    assert result["changed"] is True and result["ready"] is True
    assert result["source"] == "from 1.0.0's Deployment reviews-1.0.0"
    canary, stable = deployment(admin, namespace, "reviews-2.0.0"), deployment(admin, namespace, "reviews-1.0.0")
    assert canary["spec"]["selector"]["matchLabels"] == {"app": "reviews", LABEL: "2.0.0"}
    assert canary["metadata"]["labels"][LABEL] == "2.0.0" and canary["metadata"]["labels"]["team"] == "books"
    assert canary["metadata"]["annotations"]["owner"] == "books-team"
    assert canary["spec"]["replicas"] == 2
    pod, was = canary["spec"]["template"], stable["spec"]["template"]
    assert pod["metadata"]["labels"] == {"app": "reviews", LABEL: "2.0.0", "team": "books"}
    assert pod["metadata"]["annotations"] == {"sidecar.istio.io/proxyCPU": "100m", "canary.istio/test": "yes"}
    assert [c["image"] for c in pod["spec"]["containers"]] == [IMAGE_V2, "fluent/fluent-bit:3.1"]
    # Probes, affinity, tolerations, pull secrets, security context, init container: all kept.
    for key in ("affinity", "tolerations", "imagePullSecrets", "securityContext", "initContainers"):
        assert pod["spec"][key] == was["spec"][key], key
    for key in ("readinessProbe", "livenessProbe", "envFrom", "ports"):
        assert pod["spec"]["containers"][0][key] == was["spec"]["containers"][0][key], key
    # Its pods run under the version label the subsets will select.
    pods = admin.get(f"/api/v1/namespaces/{namespace}/pods", params={"labelSelector": f"{LABEL}=2.0.0"})["items"]
    assert len(pods) == 2

    again = module_runner("version_deployment", **params)
    assert again.get("failed") is not True and again["changed"] is False, again
    assert deployment(admin, namespace, "reviews-2.0.0")["metadata"]["generation"] == canary["metadata"]["generation"]

    newer = module_runner("version_deployment", diff=True, **dict(params, images={"log-shipper": "fluent/fluent-bit:3.2"}))
    assert newer["changed"] is True and newer["ready"] is True
    containers = deployment(admin, namespace, "reviews-2.0.0")["spec"]["template"]["spec"]["containers"]
    assert [c["image"] for c in containers] == [IMAGE_V1, "fluent/fluent-bit:3.2"]  # cloned afresh from 1.0.0
    assert newer["diff"]["before"]["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE_V2


def test_an_unknown_container_changes_nothing(admin, namespace, module_runner) -> None:
    admin.apply_manifest([users_deployment()], namespace)
    result = module_runner("version_deployment", app="reviews", namespace=namespace, version="2.0.0", from_version="1.0.0",
                           version_label=LABEL, images={"review": IMAGE_V2})
    assert result["failed"] is True and result["option"] == "images"
    assert result["msg"] == ("images: the Deployment has no container 'review'; its containers are log-shipper, migrate, "
                             "reviews")
    assert not admin.get(f"{collection_path('Deployment', namespace)}/reviews-2.0.0", ok_missing=True)


def test_a_version_that_cannot_be_scheduled_fails_saying_why(admin, namespace, module_runner) -> None:
    manifest = users_deployment("9.9.9")
    manifest["spec"]["template"]["spec"]["nodeSelector"] = {"disktype": "no-such-node"}
    result = module_runner("version_deployment", app="reviews", namespace=namespace, version="9.9.9", manifest=manifest,
                           version_label=LABEL, progress_deadline=8)
    assert result["failed"] is True and result["source"] == "manifest"
    assert result["msg"].startswith("reviews-9.9.9 (manifest) is not Ready: not Ready within 8s; pod reviews-9.9.9-")
    assert any("PodScheduled: Unschedulable" in line for line in result["not_ready"]), result["not_ready"]
