"""Bookinfo's shape as the simulator needs it: which versions call whom, and hand-made objects for tests.

The call graph is bookinfo's own: productpage calls details and reviews; reviews v2 and v3 call
ratings (v1 shows no stars); the caller forwards `end-user` downstream, so a header route on
ratings sees jason's requests.
"""
from __future__ import annotations

VERSIONS = {"productpage": ["v1"], "details": ["v1"], "reviews": ["v1", "v2", "v3"], "ratings": ["v1"]}

# (service, version) -> services it calls while serving one request; "*" = any version.
CALLS: dict[tuple[str, str], list[str]] = {
    ("reviews", "v2"): ["ratings"],
    ("reviews", "v3"): ["ratings"],
}


def downstream_calls(service: str, version: str | None) -> list[str]:
    return CALLS.get((service, version or ""), CALLS.get((service, "*"), []))


def make_pod(app: str, version: str, namespace: str = "bookinfo", ready: bool = True, index: int = 0) -> dict:
    """A pod as a Deployment `app-version` would own it (ReplicaSet owner, pod-template-hash label)."""
    name = f"{app}-{version}"
    return {"kind": "Pod",
            "metadata": {"name": f"{name}-5d8f7c-{index:05d}", "namespace": namespace,
                         "labels": {"app": app, "version": version, "pod-template-hash": "5d8f7c"},
                         "ownerReferences": [{"kind": "ReplicaSet", "name": f"{name}-5d8f7c"}]},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def make_service(app: str, namespace: str = "bookinfo") -> dict:
    return {"kind": "Service", "metadata": {"name": app, "namespace": namespace},
            "spec": {"selector": {"app": app}, "ports": [{"port": 9080, "name": "http"}]}}


def all_pods(namespace: str = "bookinfo", not_ready: tuple[str, ...] = ()) -> list[dict]:
    """One pod per bookinfo version, Ready except the `app-version` names in `not_ready`."""
    return [make_pod(app, v, namespace, ready=f"{app}-{v}" not in not_ready)
            for app, versions in VERSIONS.items() for v in versions]


def all_services(namespace: str = "bookinfo") -> list[dict]:
    return [make_service(app, namespace) for app in VERSIONS]
