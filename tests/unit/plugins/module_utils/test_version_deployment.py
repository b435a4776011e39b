# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_version_deployment.py: a version's Deployment cloned from the stable one or a manifest."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.canary.istio.plugins.module_utils import _version_deployment as vd


LABEL = "app.kubernetes.io/version"


def stable() -> dict:
    """A user's Deployment as the API server returns it: probes, affinity, two containers, an init
    container, pull secrets, a security context, annotations, status and server metadata."""
    labels = {"app": "reviews", LABEL: "1.0.0", "team": "books"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "reviews-1.0.0", "namespace": "prod", "uid": "u-1", "resourceVersion": "42",
                     "generation": 7, "creationTimestamp": "2026-01-01T00:00:00Z", "managedFields": [{"manager": "kubectl"}],
                     "labels": labels, "annotations": {"deployment.kubernetes.io/revision": "3", "owner": "books-team"}},
        "spec": {
            "replicas": 3, "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": "reviews", LABEL: "1.0.0"}},
            "template": {
                "metadata": {"labels": labels, "annotations": {"sidecar.istio.io/proxyCPU": "100m"}},
                "spec": {
                    "imagePullSecrets": [{"name": "registry"}],
                    "securityContext": {"runAsNonRoot": True},
                    "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                                            "labelSelector": {"matchLabels": {"app": "reviews"}}}}]}},
                    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "books", "effect": "NoSchedule"}],
                    "initContainers": [{"name": "migrate", "image": "reviews-migrate:1.0.0"}],
                    "containers": [
                        {"name": "reviews", "image": "reviews:1.0.0", "command": ["/start"],
                         "readinessProbe": {"httpGet": {"path": "/health", "port": 9080}, "periodSeconds": 5},
                         "livenessProbe": {"tcpSocket": {"port": 9080}}, "envFrom": [{"configMapRef": {"name": "cfg"}}]},
                        {"name": "log-shipper", "image": "shipper:3.1"}],
                },
            },
        },
        "status": {"replicas": 3, "readyReplicas": 3},
    }


def clone(**changes) -> dict:
    settings = dict(name="reviews-2.0.0", namespace="prod", version="2.0.0", version_label=LABEL,
                    images={"reviews": "reviews:2.0.0"}, pod_annotations={"datakit/prom.instances": "x"})
    settings.update(changes)
    return vd.for_version(stable(), **settings)


def test_a_clone_changes_only_what_makes_it_the_version() -> None:
    canary = clone()
    source = stable()
    assert canary["metadata"]["name"] == "reviews-2.0.0" and canary["metadata"]["namespace"] == "prod"
    assert canary["metadata"]["labels"] == {"app": "reviews", LABEL: "2.0.0", "team": "books",
                                            "app.kubernetes.io/managed-by": "canary.istio"}
    assert canary["metadata"]["annotations"] == {"owner": "books-team"}  # the revision is the server's
    for key in ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields"):
        assert key not in canary["metadata"]
    assert "status" not in canary
    assert canary["spec"]["selector"]["matchLabels"] == {"app": "reviews", LABEL: "2.0.0"}
    template = canary["spec"]["template"]
    assert template["metadata"]["labels"] == {"app": "reviews", LABEL: "2.0.0", "team": "books"}
    assert template["metadata"]["annotations"] == {"sidecar.istio.io/proxyCPU": "100m", "datakit/prom.instances": "x"}
    assert [c["image"] for c in template["spec"]["containers"]] == ["reviews:2.0.0", "shipper:3.1"]
    # Everything else of the pod, as it was.
    pod, was = copy.deepcopy(template["spec"]), source["spec"]["template"]["spec"]
    pod["containers"][0]["image"] = was["containers"][0]["image"]
    assert pod == was
    assert canary["spec"]["replicas"] == 3 and canary["spec"]["revisionHistoryLimit"] == 10
    assert source == stable()  # the stable Deployment read is not changed


def test_several_containers_and_init_containers_by_name_and_replicas() -> None:
    canary = clone(images={"reviews": "reviews:2.0.0", "log-shipper": "shipper:3.2", "migrate": "reviews-migrate:2.0.0"},
                   replicas=1)
    pod = canary["spec"]["template"]["spec"]
    assert [c["image"] for c in pod["containers"]] == ["reviews:2.0.0", "shipper:3.2"]
    assert pod["initContainers"][0]["image"] == "reviews-migrate:2.0.0" and canary["spec"]["replicas"] == 1


def test_an_unknown_container_names_the_ones_there_are() -> None:
    with pytest.raises(vd.DeploymentSpecError, match="images: the Deployment has no container 'review'; its containers "
                                                     "are log-shipper, migrate, reviews") as info:
        clone(images={"review": "x:1"})
    assert info.value.option == "images"


def test_a_selector_with_expressions_is_refused() -> None:
    source = stable()
    source["spec"]["selector"]["matchExpressions"] = [{"key": "tier", "operator": "In", "values": ["web"]}]
    with pytest.raises(vd.DeploymentSpecError, match="matchExpressions"):
        vd.for_version(source, name="n", namespace="prod", version="2", version_label=LABEL, images={})


def test_own_manifest_gets_the_app_and_the_version() -> None:
    manifest = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "whatever"},
                "spec": {"template": {"spec": {"containers": [{"name": "reviews", "image": "reviews:2"}]}}}}
    out = vd.own_manifest(manifest, app="reviews", name="reviews-v2", namespace="prod", version="v2",
                          version_label="version", images={})
    assert out["metadata"]["name"] == "reviews-v2"
    assert out["spec"]["selector"]["matchLabels"] == {"app": "reviews", "version": "v2"}
    assert out["spec"]["template"]["metadata"]["labels"] == {"app": "reviews", "version": "v2"}
    assert manifest["metadata"] == {"name": "whatever"}  # the input is not changed


@pytest.mark.parametrize("manifest, text", [
    ("text", "manifest must be a Deployment as a mapping, got str"),
    ({"apiVersion": "v1", "kind": "Pod"}, "manifest must be an apps/v1 Deployment, got v1 Pod"),
    ({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {}}, "manifest has no spec.template.spec.containers"),
    ({"spec": {"selector": {"matchLabels": {"tier": "web"}},
               "template": {"metadata": {"labels": {"app": "reviews"}}, "spec": {"containers": [{"name": "c"}]}}}},
     "the pod template's labels do not match the selector on tier"),
])
def test_bad_manifests_name_the_option(manifest, text) -> None:
    with pytest.raises(vd.DeploymentSpecError, match=text) as info:
        vd.own_manifest(manifest, app="reviews", name="n", namespace="prod", version="v2", version_label="version", images={})
    assert info.value.option == "manifest"


@pytest.mark.parametrize("pattern, name", [("{app}-{version}", "reviews-v2"), ("{version}-{app}", "v2-reviews"),
                                           ("{app}-canary-{version}", "reviews-canary-v2")])
def test_deployment_name(pattern, name) -> None:
    assert vd.deployment_name(pattern, "reviews", "v2") == name


@pytest.mark.parametrize("pattern, text", [("{app}", "has no {version}"), ("{app}-{version}-{x}", "only {app} and {version}"),
                                           ("{app}_{version}", "is not a Deployment name")])
def test_bad_name_patterns(pattern, text) -> None:
    with pytest.raises(vd.DeploymentSpecError, match=text.replace("{", r"\{").replace("}", r"\}")) as info:
        vd.deployment_name(pattern, "reviews", "v2")
    assert info.value.option == "name_pattern"


@pytest.mark.parametrize("key, ok", [("version", True), ("app.kubernetes.io/version", True), ("", False),
                                     ("has space", False), ("a/b/c", False)])
def test_version_label_keys(key, ok) -> None:
    if ok:
        assert vd.check_version_label(key) == key
    else:
        with pytest.raises(vd.DeploymentSpecError, match="is not a label key"):
            vd.check_version_label(key)


def test_the_put_body_keeps_live_metadata_and_takes_the_wanted_spec() -> None:
    live = clone()
    live["metadata"].update(resourceVersion="9", uid="u-2", labels=dict(live["metadata"]["labels"], extra="kept"))
    live["status"] = {"replicas": 3}
    wanted = clone(images={"reviews": "reviews:2.0.1"})
    del wanted["spec"]["template"]["spec"]["tolerations"]  # removed from the source: must go
    body = vd.put_body(live, wanted)
    assert body["metadata"]["resourceVersion"] == "9" and body["metadata"]["labels"]["extra"] == "kept"
    assert body["spec"] == wanted["spec"] and "status" not in body and "tolerations" not in body["spec"]["template"]["spec"]
    assert vd.same_deployment(live, dict(live, status={"replicas": 1}))
    assert not vd.same_deployment(live, body)


def test_readiness_and_reasons() -> None:
    deployment = {"metadata": {"generation": 2}, "spec": {"replicas": 2},
                  "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}}
    assert vd.is_ready(deployment) == (True, None)
    assert vd.is_ready(dict(deployment, status=dict(deployment["status"], observedGeneration=1))) == (False, None)
    condition = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "too slow"}
    stuck = dict(deployment, status={"conditions": [condition]})
    assert vd.is_ready(stuck) == (False, "ProgressDeadlineExceeded: too slow")
    pods = [
        {"metadata": {"name": "p1"}, "status": {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes are available"}]}},
        {"metadata": {"name": "p2"}, "status": {"phase": "Pending", "containerStatuses": [
            {"name": "reviews", "ready": False, "state": {"waiting": {"reason": "ImagePullBackOff", "message": "no such image"}}},
            {"name": "log-shipper", "ready": False, "state": {"running": {}}}]}},
    ]
    events = [{"type": "Warning", "reason": "Unhealthy", "message": "Readiness probe failed: 503",
               "involvedObject": {"name": "p2"}, "lastTimestamp": "2026-01-01T00:00:02Z"},
              {"type": "Warning", "reason": "Other", "message": "not ours", "involvedObject": {"name": "other"}},
              {"type": "Normal", "reason": "Pulling", "involvedObject": {"name": "p2"}}]
    assert vd.not_ready_reasons(pods, events) == [
        "pod p1 Pending (PodScheduled: Unschedulable 0/3 nodes are available)",
        "pod p2 Pending (container reviews waiting: ImagePullBackOff no such image; container log-shipper not ready)",
        "event p2: Unhealthy Readiness probe failed: 503"]
    assert vd.not_ready_reasons([], []) == ["no pods (the ReplicaSet could not create them: quota, admission, or a bad template)"]
