"""The release playbooks end to end on the sandbox, with the least-privilege release token.

Each test asserts the cluster itself (through the admin client), not what the play printed.
"""
from __future__ import annotations

import json
import subprocess
import time

import pytest
import yaml

from sandbox import versions
from sandbox.api import collection_path
from sandbox.audit import WRITE_VERBS

from _users_deployment import IMAGE_V2, LABEL, users_deployment  # pylint: disable=import-error
from runners import REPO, VENV_BIN, run_playbook  # pylint: disable=import-error

BOOKINFO = versions.BOOKINFO_DIR
IMAGE = "docker.io/istio/examples-bookinfo-reviews-v2:1.20.1"


def _docs(relative: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((BOOKINFO / relative).read_text()) if d]


def _vs(admin, ns, name="reviews"):
    return admin.get(f"{collection_path('VirtualService', ns)}/{name}", ok_missing=True)


def _weights(admin, ns, name="reviews") -> dict:
    """subset -> weight of the catch-all route (the first without match: Envoy takes the first
    route that matches), as Istio reads it (a lone destination gets 100)."""
    vs = _vs(admin, ns, name)
    route = [r for r in vs["spec"]["http"] if not r.get("match")][0]["route"]
    if len(route) == 1:
        return {route[0]["destination"]["subset"]: 100}
    return {d["destination"]["subset"]: d.get("weight", 0) for d in route}


def _deployments(admin, ns) -> set[str]:
    items = admin.get(collection_path("Deployment", ns), params={"labelSelector": "app=reviews"})["items"]
    return {d["metadata"]["name"] for d in items}


def _pods(admin, ns, version) -> list[dict]:
    return admin.get(collection_path("Pod", ns), params={"labelSelector": f"app=reviews,version={version}"})["items"]


def _subsets(admin, ns) -> list[str]:
    dr = admin.get(f"{collection_path('DestinationRule', ns)}/reviews")
    return [s["name"] for s in dr["spec"]["subsets"]]


@pytest.fixture
def bookinfo(admin, namespace):
    """bookinfo's platform manifest (reviews v1, v2, v3 and the rest), all Ready."""
    admin.apply_manifest(_docs("platform/bookinfo.yaml"), namespace)
    for name in ("reviews-v1", "reviews-v2", "reviews-v3", "ratings-v1"):
        path = f"{collection_path('Deployment', namespace)}/{name}"
        admin.wait_for(f"{name} Ready", lambda p=path: admin.get(p).get("status", {}).get("readyReplicas") == 1, 90)
    return namespace


def _extra(namespace, release_kubeconfig, **overrides) -> str:
    extra = {
        "canary_app": "reviews", "canary_namespace": namespace,
        "canary_stable_version": "v1", "canary_version": "v2", "canary_image": IMAGE,
        "canary_steps": [10, 100], "canary_interval": 0, "canary_analysis": False,
        "canary_kubeconfig": release_kubeconfig, "canary_context": "sandbox-1",
    }
    extra.update(overrides)
    return json.dumps(extra)


def _play(name, namespace, release_kubeconfig, *args, check=True, **overrides):
    return run_playbook(f"canary.istio.{name}", "-e", _extra(namespace, release_kubeconfig, **overrides), *args,
                        check=check)


def test_reference_flow_step_by_step(admin, bookinfo, release_kubeconfig, audit):
    ns = bookinfo
    # Steps 1-6: old versions gone, rules, canary deployed, 90/10 (the release stops at 10%).
    first = _play("canary_release", ns, release_kubeconfig, canary_steps=[10])
    # The last word is read back from the cluster through the routing model, not the intended weights.
    assert "stopped at 10% on v2; traffic now: v1 90%, v2 10% (VirtualService 'reviews' route #0)" in first.stdout, \
        first.stdout[-2000:]
    assert _deployments(admin, ns) == {"reviews-v1", "reviews-v2"}
    admin.wait_for("reviews-v3 pods gone", lambda: not _pods(admin, ns, "v3"), 60)
    assert _subsets(admin, ns) == ["v1", "v2"]
    assert _weights(admin, ns) == {"v1": 90, "v2": 10}
    assert _pods(admin, ns, "v1") and _pods(admin, ns, "v2")
    deployment = admin.get(f"{collection_path('Deployment', ns)}/reviews-v2")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert 'measurement_name = "istio_prom"' in annotations["datakit/prom.instances"]
    assert "custom_tags" in annotations["proxy.istio.io/config"]

    # The same play again changes nothing. Our modules write only the lock (taken and released);
    # the canary's Deployment is sent as a dry run only, which shows it would stay the same.
    audit.mark()
    version_before = deployment["metadata"]["resourceVersion"]
    second = _play("canary_release", ns, release_kubeconfig, canary_steps=[10])
    assert "changed=0" in second.stdout.split("PLAY RECAP")[-1], second.stdout[-3000:]
    events = [e for e in audit.events("canary-release") if e["verb"] in WRITE_VERBS]
    writes = [(e["verb"], e["objectRef"]["resource"], e["userAgent"].split("/")[0])
              for e in events if "dryRun" not in e["requestURI"]]
    assert sorted(writes) == [("update", "virtualservices", "canary.istio"),
                              ("update", "virtualservices", "canary.istio")], writes
    dry = [(e["verb"], e["objectRef"]["resource"]) for e in events if "dryRun" in e["requestURI"]]
    assert dry == [("update", "deployments")], dry
    assert admin.get(f"{collection_path('Deployment', ns)}/reviews-v2")["metadata"]["resourceVersion"] == version_before

    # Step 8: resume to 100% and promote: v1 gone, its subset dropped, all traffic on v2.
    audit.mark()
    promoted = _play("canary_release", ns, release_kubeconfig, canary_steps=[10, 100])
    assert "promoted; traffic now: v2 100% (VirtualService 'reviews' route #0)" in promoted.stdout, promoted.stdout[-2000:]
    assert _weights(admin, ns) == {"v2": 100}
    # One routing write for the step at 100, which is already the promotion's route; the other two
    # VirtualService writes are the lock, taken and released.
    vs_writes = [e["verb"] for e in audit.events("canary-release")
                 if e["verb"] in WRITE_VERBS and e["objectRef"]["resource"] == "virtualservices"]
    assert vs_writes == ["update", "update", "update"], vs_writes
    assert _deployments(admin, ns) == {"reviews-v2"}
    admin.wait_for("reviews-v1 pods gone", lambda: not _pods(admin, ns, "v1"), 60)
    assert _subsets(admin, ns) == ["v2"]
    assert "canary.istio/release-lock" not in (_vs(admin, ns)["metadata"].get("annotations") or {})


def test_single_action_playbooks_and_second_runs(admin, bookinfo, release_kubeconfig):
    ns = bookinfo
    _play("canary_release", ns, release_kubeconfig, canary_steps=[0], canary_delete_old_versions=False)
    assert _weights(admin, ns) == {"v1": 100, "v2": 0}
    for weight, expected in ((25, {"v1": 75, "v2": 25}), (50, {"v1": 50, "v2": 50})):
        _play("shift_traffic", ns, release_kubeconfig, canary_weight=weight)
        assert _weights(admin, ns) == expected
    again = _play("shift_traffic", ns, release_kubeconfig, canary_weight=50)
    assert "changed=0" in again.stdout.split("PLAY RECAP")[-1]

    _play("rollback", ns, release_kubeconfig)
    assert _weights(admin, ns) == {"v1": 100, "v2": 0}
    assert admin.get(f"{collection_path('Deployment', ns)}/reviews-v2")["spec"]["replicas"] == 0
    again = _play("rollback", ns, release_kubeconfig)
    assert "changed=0" in again.stdout.split("PLAY RECAP")[-1]

    _play("delete_old_versions", ns, release_kubeconfig)
    assert _deployments(admin, ns) == {"reviews-v1", "reviews-v2"}
    again = _play("delete_old_versions", ns, release_kubeconfig)
    assert "changed=0" in again.stdout.split("PLAY RECAP")[-1]


def test_delete_old_versions_refuses_a_version_with_traffic(admin, bookinfo, release_kubeconfig):
    ns = bookinfo
    _play("canary_release", ns, release_kubeconfig, canary_stable_version="v3", canary_version="v2",
          canary_steps=[0], canary_delete_old_versions=False)
    # v3 serves everything; deleting "all but v1 and v2" must refuse and delete nothing.
    proc = _play("delete_old_versions", ns, release_kubeconfig, check=False)
    assert proc.returncode != 0
    assert "v3 of reviews still receive traffic" in proc.stdout
    assert _deployments(admin, ns) == {"reviews-v1", "reviews-v2", "reviews-v3"}


def test_fault_flow_jason_delay_on_ratings(admin, bookinfo, release_kubeconfig):
    ns = bookinfo
    vs_path = collection_path("VirtualService", ns)
    ratings = next(d for d in _docs("networking/virtual-service-all-v1.yaml") if d["metadata"]["name"] == "ratings")
    admin.create(vs_path, ratings)
    before = admin.get(f"{vs_path}/ratings")["spec"]
    fault = {"fault_injection_service": "ratings", "fault_injection_rule": "jason-delay",
             "fault_injection_headers": {"end-user": {"exact": "jason"}},
             "fault_injection_delay": {"fixed_delay": "7s", "percentage": 100}}
    _play("fault_injection", ns, release_kubeconfig, **fault)
    http = admin.get(f"{vs_path}/ratings")["spec"]["http"]
    assert http[0]["name"] == "jason-delay"
    assert http[0]["match"] == [{"headers": {"end-user": {"exact": "jason"}}}]
    assert http[0]["fault"]["delay"]["fixedDelay"] == "7s"
    assert http[1:] == before["http"]  # the catch-all is untouched
    again = _play("fault_injection", ns, release_kubeconfig, **fault)
    assert "changed=0" in again.stdout.split("PLAY RECAP")[-1]

    _play("fault_injection", ns, release_kubeconfig, fault_injection_state="absent", **fault)
    assert admin.get(f"{vs_path}/ratings")["spec"] == before


def _background_release(ns, release_kubeconfig, **overrides) -> subprocess.Popen:
    import os

    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.Popen([str(VENV_BIN / "ansible-playbook"), "canary.istio.canary_release", "-e",
                             _extra(ns, release_kubeconfig, **overrides)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_weight(admin, ns, subset, weight, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        vs = _vs(admin, ns)
        if vs and _weights(admin, ns).get(subset) == weight:
            return
        if proc.poll() is not None:
            raise AssertionError(f"release ended before {subset} reached {weight}:\n{proc.stdout.read()[-3000:]}")
        time.sleep(0.3)
    raise AssertionError(f"{subset} never reached {weight}")


def test_failure_after_traffic_moved_rolls_back(admin, bookinfo, release_kubeconfig):
    ns = bookinfo
    proc = _background_release(ns, release_kubeconfig, canary_steps=[10, 50, 100], canary_interval=8,
                               canary_delete_old_versions=False)
    try:
        _wait_weight(admin, ns, "v2", 10, proc)
        # The canary loses its pods during the hold: the next step must refuse and roll back.
        deployment_path = f"{collection_path('Deployment', ns)}/reviews-v2"
        deployment = admin.get(deployment_path)
        deployment["spec"]["replicas"] = 0
        admin.request("PUT", deployment_path, deployment)
        out = proc.communicate(timeout=300)[0]
    finally:
        proc.kill()
    assert proc.returncode != 0
    assert "Rolled back: 100% of traffic is on v1" in out, out[-3000:]
    # The step after the hold is refused for the real reason: the canary's subset lost its pods.
    assert "subset 'v2' has no Ready pod" in out, out[-3000:]
    assert _weights(admin, ns) == {"v1": 100, "v2": 0}
    assert "canary.istio/release-lock" not in (_vs(admin, ns)["metadata"].get("annotations") or {})


def test_interrupted_release_resumes_and_a_concurrent_one_is_refused(admin, bookinfo, release_kubeconfig):
    ns = bookinfo
    # A long hold: the refused release below must finish while this one still holds 20%, even on a
    # loaded machine (it is killed mid-hold anyway).
    proc = _background_release(ns, release_kubeconfig, canary_steps=[20, 60, 100], canary_interval=180,
                               canary_delete_old_versions=False)
    try:
        _wait_weight(admin, ns, "v2", 20, proc)
        # Another release of the same service, by someone else, while this one runs.
        other = _play("canary_release", ns, release_kubeconfig, check=False, canary_version="v3",
                      canary_release_id="someone-else")
        assert other.returncode != 0
        assert "another release holds the lock" in other.stdout
        # The same release by the same user, started again while the first run still holds it:
        # refused too (both would hold the lock, and the first to end would drop it under the other).
        twin = _play("canary_release", ns, release_kubeconfig, check=False, canary_steps=[20, 60, 100],
                     canary_interval=0, canary_delete_old_versions=False)
        assert twin.returncode != 0
        assert "another run of this release holds the lock" in twin.stdout and "canary_resume=true" in twin.stdout
        assert _weights(admin, ns) == {"v1": 80, "v2": 20}
        assert "canary.istio/release-lock" in _vs(admin, ns)["metadata"]["annotations"]
    finally:
        proc.kill()  # interrupted mid-hold: no cleanup ran, the lock is still there
        proc.wait()
    assert "canary.istio/release-lock" in _vs(admin, ns)["metadata"]["annotations"]

    # The same release, run again by the same user, taking the dead run's place: resumes from 20%
    # and never goes below it.
    resumed = _play("canary_release", ns, release_kubeconfig, canary_steps=[10, 20, 60, 100],
                    canary_interval=0, canary_delete_old_versions=False, canary_resume=True)
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert "took the release lock over from run" in resumed.stdout + resumed.stderr
    assert "Resuming at 20%" in resumed.stdout and "skipping steps 10%" in resumed.stdout
    assert _weights(admin, ns) == {"v2": 100}


def test_bad_variables_fail_before_any_change(admin, bookinfo, release_kubeconfig, audit):
    ns = bookinfo
    cases = [
        ({"canary_steps": [10, 150]}, "canary_steps"),
        ({"canary_steps": [50, 10]}, "never decrease"),
        ({"canary_steps": "ten"}, "canary_steps"),
        ({"canary_version": "v1"}, "must differ"),
        ({"canary_stable_version": "v9"}, "canary_stable_version: Deployment reviews-v9 does not exist"),
        ({"canary_interval": "soon"}, "canary_interval"),
    ]
    for overrides, message in cases:
        proc = _play("canary_release", ns, release_kubeconfig, check=False, **overrides)
        assert proc.returncode != 0, overrides
        assert message in proc.stdout, (overrides, proc.stdout[-2000:])
    missing_app = json.loads(_extra(ns, release_kubeconfig))
    del missing_app["canary_app"]
    proc = run_playbook("canary.istio.canary_release", "-e", json.dumps(missing_app), check=False)
    assert proc.returncode != 0 and "canary_app" in proc.stdout
    assert audit.count("canary-release", WRITE_VERBS, namespace=ns) == 0


def test_check_diff_previews_and_writes_nothing(admin, bookinfo, release_kubeconfig, audit):
    ns = bookinfo
    proc = _play("canary_release", ns, release_kubeconfig, "--check", "--diff")
    assert "Would run the steps 10%, 100% of reviews on v2" in proc.stdout
    assert _vs(admin, ns) == {}
    assert _deployments(admin, ns) == {"reviews-v1", "reviews-v2", "reviews-v3"}
    writes = [(e["verb"], e["requestURI"]) for e in audit.events("canary-release")
              if e["verb"] in WRITE_VERBS and e.get("objectRef", {}).get("namespace") == ns]
    assert writes and all("dryRun=All" in uri for _verb, uri in writes), writes

    # With rules in place, the preview shows each step's weights as a diff of the VirtualService.
    _play("canary_release", ns, release_kubeconfig, canary_steps=[0], canary_delete_old_versions=False)
    audit.mark()
    proc = _play("canary_release", ns, release_kubeconfig, "--check", "--diff", canary_steps=[10, 50])
    assert '"weight": 10' in proc.stdout or "weight: 10" in proc.stdout
    assert _weights(admin, ns) == {"v1": 100, "v2": 0}
    writes = [(e["verb"], e["requestURI"]) for e in audit.events("canary-release")
              if e["verb"] in WRITE_VERBS and e.get("objectRef", {}).get("namespace") == ns]
    assert all("dryRun=All" in uri for _verb, uri in writes), writes


def test_resumed_release_that_fails_before_its_steps_still_rolls_back(admin, bookinfo, release_kubeconfig):
    ns = bookinfo
    _play("canary_release", ns, release_kubeconfig, canary_steps=[30], canary_delete_old_versions=False)
    assert _weights(admin, ns) == {"v1": 70, "v2": 30}
    # Someone sends 10% to v3 by hand; the resumed run then refuses to delete v3 (it gets traffic),
    # which fails the release before any step, with 30% already on the canary.
    # (v3 needs a subset: a route to a subset the DestinationRule lacks reaches no pod, by Envoy's
    # rules, and v3 could go.)
    dr_path = f"{collection_path('DestinationRule', ns)}/reviews"
    dr = admin.get(dr_path)
    dr["spec"]["subsets"].append({"name": "v3", "labels": {"version": "v3"}})
    admin.request("PUT", dr_path, dr)
    path = f"{collection_path('VirtualService', ns)}/reviews"
    vs = admin.get(path)
    route = vs["spec"]["http"][-1]["route"]
    route[0]["weight"] = 60
    route.append({"destination": {"host": "reviews", "subset": "v3"}, "weight": 10})
    admin.request("PUT", path, vs)
    proc = _play("canary_release", ns, release_kubeconfig, check=False, canary_steps=[30, 100])
    assert proc.returncode != 0
    assert "v3 of reviews still receive traffic (v3: VirtualService 'reviews' route #0 to subset 'v3' (10%))" in proc.stdout
    assert "Rolled back: 100% of traffic is on v1" in proc.stdout, proc.stdout[-3000:]
    assert _weights(admin, ns) == {"v1": 100, "v2": 0}


def test_a_version_the_api_server_would_refuse_is_refused_before_any_write(admin, namespace, audit, release_kubeconfig):
    audit.mark()
    long_version = "v" + "1" * 70  # a label value holds 63 characters at most
    proc = _play("canary_release", namespace, release_kubeconfig, check=False, canary_version=long_version)
    assert proc.returncode != 0
    assert "canary_version is 71 characters long; a label value holds at most 63" in proc.stdout
    writes = [e for e in audit.events() if e["verb"] in WRITE_VERBS and (e.get("objectRef") or {}).get("namespace") == namespace]
    assert writes == []


def test_a_release_of_the_users_own_deployment_keeps_it_whole(admin, namespace, release_kubeconfig):
    # The user's Deployment: probes, affinity, two containers and more, versions told apart by
    # app.kubernetes.io/version, Deployments named <app>-server-<version>; the user's names for the
    # routing objects, and a VirtualService for the mesh and an ingress gateway at once.
    ns = namespace
    pattern = "{app}-server-{version}"
    names = {"canary_virtual_service": "reviews-routes", "canary_destination_rule": "reviews-subsets",
             "canary_gateways": ["mesh", "istio-system/edge-gateway"], "canary_version_label": LABEL,
             "canary_deployment_name_pattern": pattern}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "reviews", "labels": {"app": "reviews"}},
               "spec": {"selector": {"app": "reviews"}, "ports": [{"name": "http", "port": 9080}]}}
    admin.apply_manifest([service, users_deployment("1.0.0", name="reviews-server-1.0.0")], ns)
    stable_path = f"{collection_path('Deployment', ns)}/reviews-server-1.0.0"
    admin.wait_for("reviews-server-1.0.0 Ready", lambda: admin.get(stable_path).get("status", {}).get("readyReplicas") == 2, 90)
    stable = admin.get(stable_path)

    # Stop at 50%: both versions serve, each by its own subset on app.kubernetes.io/version.
    half = _play("canary_release", ns, release_kubeconfig, canary_steps=[50], canary_stable_version="1.0.0",
                 canary_version="2.0.0", canary_image=IMAGE_V2, **names)
    assert ("stopped at 50% on 2.0.0; traffic now: 1.0.0 50%, 2.0.0 50% (VirtualService 'reviews-routes' route #0)"
            in half.stdout), half.stdout[-2000:]
    assert _vs(admin, ns, "reviews-routes")["spec"]["gateways"] == ["mesh", "istio-system/edge-gateway"]
    rule = admin.get(f"{collection_path('DestinationRule', ns)}/reviews-subsets")
    subsets = [(s["name"], s["labels"]) for s in rule["spec"]["subsets"]]
    assert subsets == [("1.0.0", {LABEL: "1.0.0"}), ("2.0.0", {LABEL: "2.0.0"})]
    canary = admin.get(f"{collection_path('Deployment', ns)}/reviews-server-2.0.0")
    pod, was = canary["spec"]["template"], stable["spec"]["template"]
    assert pod["metadata"]["labels"][LABEL] == "2.0.0" and canary["spec"]["replicas"] == 2
    assert [c["image"] for c in pod["spec"]["containers"]] == [IMAGE_V2, "fluent/fluent-bit:3.1"]
    for key in ("affinity", "tolerations", "imagePullSecrets", "securityContext", "initContainers"):
        assert pod["spec"][key] == was["spec"][key], key
    for key in ("readinessProbe", "livenessProbe", "envFrom"):
        assert pod["spec"]["containers"][0][key] == was["spec"]["containers"][0][key], key
    annotations = pod["metadata"]["annotations"]
    assert annotations["sidecar.istio.io/proxyCPU"] == "100m" and 'value: "2.0.0"' in annotations["proxy.istio.io/config"]

    # Promote: the stable version's Deployment and subset go, found by the same label and pattern.
    done = _play("canary_release", ns, release_kubeconfig, canary_steps=[50, 100], canary_stable_version="1.0.0",
                 canary_version="2.0.0", canary_image=IMAGE_V2, **names)
    assert "promoted; traffic now: 2.0.0 100%" in done.stdout, done.stdout[-2000:]
    assert _deployments(admin, ns) == {"reviews-server-2.0.0"}
    rule = admin.get(f"{collection_path('DestinationRule', ns)}/reviews-subsets")
    assert [s["name"] for s in rule["spec"]["subsets"]] == ["2.0.0"]
    assert "canary.istio/release-lock" not in (_vs(admin, ns, "reviews-routes")["metadata"].get("annotations") or {})
