"""A user's own Deployment, as a real user's looks: probes, affinity, tolerations, two containers,
an init container, pull secrets, a security context, annotations, and versions told apart by
app.kubernetes.io/version. Shared by the version_deployment and release tests."""
from __future__ import annotations

LABEL = "app.kubernetes.io/version"
IMAGE_V1 = "docker.io/istio/examples-bookinfo-reviews-v1:1.20.3"
IMAGE_V2 = "docker.io/istio/examples-bookinfo-reviews-v2:1.20.3"


def users_deployment(version: str = "1.0.0", name: str | None = None) -> dict:
    labels = {"app": "reviews", LABEL: version, "team": "books"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name or f"reviews-{version}", "labels": labels, "annotations": {"owner": "books-team"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "reviews", LABEL: version}},
            "template": {
                "metadata": {"labels": labels, "annotations": {"sidecar.istio.io/proxyCPU": "100m"}},
                "spec": {
                    "imagePullSecrets": [{"name": "registry"}],
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 1000},
                    "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                                            "labelSelector": {"matchLabels": {"app": "reviews"}}}}]}},
                    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "books", "effect": "NoSchedule"}],
                    "initContainers": [{"name": "migrate", "image": "busybox:1.36", "command": ["true"]}],
                    "containers": [
                        {"name": "reviews", "image": IMAGE_V1, "ports": [{"containerPort": 9080}],
                         "readinessProbe": {"httpGet": {"path": "/health", "port": 9080}, "periodSeconds": 5},
                         "livenessProbe": {"tcpSocket": {"port": 9080}, "initialDelaySeconds": 10},
                         "envFrom": [{"configMapRef": {"name": "reviews-config", "optional": True}}]},
                        {"name": "log-shipper", "image": "fluent/fluent-bit:3.1"}],
                },
            },
        },
    }
