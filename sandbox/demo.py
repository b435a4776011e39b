"""`make demo`: a canary release of bookinfo's reviews (v1 -> v2) on the local sandbox.

Brings the sandbox up (building it the first time), deploys bookinfo into namespace `prod`, runs
`ansible-playbook canary.istio.canary_release` with steps 10, 50, 100 as the least-privilege
release identity, and ends with a summary read back from the cluster.

Analysis between steps (Guance/Prometheus) and the HTML report come with their own issues; until
then each step is held for a few seconds and the summary is printed here.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import yaml

from . import control, versions
from .api import collection_path

NAMESPACE = "prod"
STEPS = [10, 50, 100]


def _reset(admin) -> None:
    """Start from bookinfo as shipped, so the demo can run again on a running sandbox."""
    paths = [f"{collection_path(kind, NAMESPACE)}/reviews" for kind in ("VirtualService", "DestinationRule")]
    paths += [f"{collection_path('Deployment', NAMESPACE)}/reviews-{v}" for v in ("v1", "v2", "v3")]
    for path in paths:
        admin.delete(path)
    for path in paths:
        admin.wait_for(f"{path} gone", lambda p=path: admin.get(p, ok_missing=True) == {}, 120)


def _deploy_bookinfo(admin) -> None:
    _reset(admin)
    docs = [d for d in yaml.safe_load_all((versions.FIXTURES_DIR / "bookinfo/platform/bookinfo.yaml").read_text()) if d]
    # The release deploys v2 itself; v1 serves today, v3 is an old version the release removes.
    admin.apply_manifest([d for d in docs if d["metadata"]["name"] != "reviews-v2"], NAMESPACE)
    for name in ("reviews-v1", "reviews-v3"):
        path = f"{collection_path('Deployment', NAMESPACE)}/{name}"
        admin.wait_for(f"{name} Ready", lambda p=path: admin.get(p).get("status", {}).get("readyReplicas") == 1, 120)


def _summary(admin) -> str:
    vs = admin.get(f"{collection_path('VirtualService', NAMESPACE)}/reviews")
    route = vs["spec"]["http"][-1]["route"]
    weights = ", ".join(f"{d['destination']['subset']}={d.get('weight', 100)}%" for d in route)
    deployments = admin.get(collection_path("Deployment", NAMESPACE), params={"labelSelector": "app=reviews"})["items"]
    subsets = admin.get(f"{collection_path('DestinationRule', NAMESPACE)}/reviews")["spec"]["subsets"]
    return "\n".join([
        "== release summary (read back from sandbox-1) ==",
        f"VirtualService reviews, catch-all route: {weights}",
        f"DestinationRule reviews subsets: {', '.join(s['name'] for s in subsets)}",
        f"Deployments of reviews: {', '.join(sorted(d['metadata']['name'] for d in deployments))}",
    ])


def main() -> int:
    cluster = control.up(1)[0]
    admin = cluster.admin()
    print(f"[demo] deploying bookinfo into namespace {NAMESPACE}", flush=True)
    _deploy_bookinfo(admin)
    extra = {
        "canary_app": "reviews", "canary_namespace": NAMESPACE,
        "canary_stable_version": "v1", "canary_version": "v2",
        "canary_image": "docker.io/istio/examples-bookinfo-reviews-v2:1.20.1",
        "canary_steps": STEPS, "canary_interval": 3, "canary_analysis": False,
        "canary_kubeconfig": str(versions.STATE_DIR / "kubeconfig-release"), "canary_context": cluster.name,
    }
    print(f"[demo] ansible-playbook canary.istio.canary_release: reviews v1 -> v2, steps {STEPS}", flush=True)
    started = time.monotonic()
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(versions.REPO_ROOT / ".collections")}
    proc = subprocess.run([str(versions.REPO_ROOT / ".venv/bin/ansible-playbook"), "canary.istio.canary_release",
                           "-e", json.dumps(extra)], env=env, check=False)
    print(f"[demo] release finished in {time.monotonic() - started:.0f}s (exit {proc.returncode})")
    print(_summary(admin))
    print(f"Sandbox left running: {versions.STATE_DIR / 'kubeconfig'}; stop it with `.venv/bin/python -m sandbox down`.")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
