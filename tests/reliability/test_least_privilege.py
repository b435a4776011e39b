"""Least privilege: the documented release role suffices, and each of its rules is needed

Each case binds a fresh identity (a ServiceAccount of a fresh namespace, with a token from the
TokenRequest API) ONLY to a ClusterRole built from `playbooks/files/release-rbac.yaml` as it is now,
by a RoleBinding in that namespace as docs/rbac.md says, then runs the canary_release playbook with
it. Two short flows cover every request a release makes: `promote` (an old version to delete, steps
50 and 100, no analysis, promotion) and `rollback` (steps 50 and 100, a Guance analysis that finds no
traffic, so the first step is inconclusive and the release rolls back). With the whole role both
complete; the audit log shows which verbs they used. With one rule removed, at least one flow must
fail with the API server's 403 naming a resource and a verb of that rule; a rule whose removal lets
both flows through is not needed, and the check fails.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections import defaultdict

import pytest
import yaml

from sandbox import cluster as sandbox_cluster
from sandbox.identities import Identity
from sandbox import versions
from sandbox.api import collection_path

from runners import REPO, VENV_BIN  # pylint: disable=import-error

APP = "reviews"
STABLE, CANARY, OLD = "v1", "v2", "v0"
RUN_TIMEOUT = 600  # seconds for one flow on a loaded machine
FLOWS = ("promote", "rollback")
# The API server's own words for a refusal, e.g. cannot patch resource "deployments/scale" in API
# group "apps". Ansible prints the message JSON-escaped in places, hence the optional backslashes.
FORBIDDEN = re.compile(r'cannot (\w+) resource \\*"([\w./]+)\\*" in API group \\*"([\w.]*)\\*"')
# The whole sentence, for the results: deployments.apps "reviews-v2" is forbidden: User "..." cannot ...
SENTENCE = re.compile(r'[\w.]+ (?:\\*"[\w.-]+\\*" )?is forbidden: User .+?in the namespace \\*"[\w-]+\\*"')


def _role() -> dict:
    return yaml.safe_load(sandbox_cluster.RELEASE_ROLE_FILE.read_text())


def _rule_id(rule: dict) -> str:
    return "+".join(f"{g or 'core'}/{r}" for g in rule["apiGroups"] for r in rule["resources"])


RULES = _role()["rules"]


@pytest.fixture(scope="module")
def endpoints(sandbox) -> dict:  # pylint: disable=unused-argument
    return json.loads((versions.STATE_DIR / "endpoints.json").read_text())


@pytest.fixture
def identities(admin, tmp_path):
    """identities(rules, tag) -> Identity; all deleted after the test."""
    made: list[Identity] = []

    def make(rules: list, tag: str) -> Identity:
        made.append(Identity(admin, rules, tag, tmp_path))
        return made[-1]

    yield make
    for identity in made:
        identity.delete()


def _deployment(version: str) -> dict:
    labels = {"app": APP, "version": version}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"{APP}-{version}", "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": APP, "image": f"bookinfo-reviews:{version}"}]}}}}


def _service() -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": APP, "labels": {"app": APP}},
            "spec": {"selector": {"app": APP}, "ports": [{"name": "http", "port": 9080}]}}


class Flow:
    """One canary_release run with an identity: started in the background, awaited by finish()."""

    def __init__(self, flow: str, identity: Identity, endpoints: dict, workdir):
        self.flow, self.identity = flow, identity
        self.log = workdir / f"{identity.namespace}.log"  # the whole output, kept with pytest's tmp_path
        admin, ns = identity.admin, identity.namespace
        # The app as it runs today (and, for promote, an old version the release deletes first).
        admin.apply_manifest([_service(), _deployment(STABLE)] + ([_deployment(OLD)] if flow == "promote" else []), ns)
        admin.wait_for(f"{APP}-{STABLE} Ready in {ns}", lambda: admin.get(
            f"{collection_path('Deployment', ns)}/{APP}-{STABLE}").get("status", {}).get("readyReplicas") == 1, 120)
        extra = {"canary_app": APP, "canary_namespace": ns, "canary_stable_version": STABLE, "canary_version": CANARY,
                 "canary_image": f"bookinfo-reviews:{CANARY}", "canary_steps": [50, 100], "canary_interval": 1,
                 "canary_delete_old_versions": flow == "promote", "canary_analysis": False,
                 "canary_kubeconfig": identity.kubeconfig, "canary_context": "sandbox-1",
                 "canary_report_dir": str(workdir / "reports")}
        if flow == "rollback":
            # No traffic in this namespace: the first step's round is inconclusive, which rolls back.
            extra["canary_analysis"] = {"provider": "guance", "interval": 2, "iterations": 1, "min_requests": 1,
                                        "guance": {"url": endpoints["guance_openapi"], "api_key": endpoints["guance_api_key"]}}
        env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections"), "ANSIBLE_NOCOLOR": "1",
               "ANSIBLE_FORCE_COLOR": "0"}
        self.started = time.monotonic()
        self.proc = subprocess.Popen([str(VENV_BIN / "ansible-playbook"), "canary.istio.canary_release", "-e", json.dumps(extra)],
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.out, self.code, self.seconds = "", None, 0.0

    def finish(self) -> Flow:
        try:
            self.out = self.proc.communicate(timeout=RUN_TIMEOUT)[0]
        finally:
            self.proc.kill()
            self.proc.wait()
        self.code, self.seconds = self.proc.returncode, round(time.monotonic() - self.started, 1)
        self.log.write_text(self.out)
        return self

    def weights(self) -> dict:
        vs = self.identity.admin.get(f"{collection_path('VirtualService', self.identity.namespace)}/{APP}", ok_missing=True)
        if not vs:
            return {}
        route = [r for r in vs["spec"]["http"] if not r.get("match")][0]["route"]
        return {d["destination"]["subset"]: d.get("weight", 100 if len(route) == 1 else 0) for d in route}

    def replicas(self, version: str) -> int | None:
        found = self.identity.admin.get(f"{collection_path('Deployment', self.identity.namespace)}/{APP}-{version}",
                                        ok_missing=True)
        return found["spec"]["replicas"] if found else None

    def refusals(self) -> list[tuple[str, str, str]]:
        """(verb, resource, group) of each 403 the play printed."""
        return sorted(set(FORBIDDEN.findall(self.out)))

    def failure(self) -> str:
        """The play's own failure message: its last fatal line."""
        fatal = [line for line in self.out.splitlines() if line.startswith("fatal: [")]
        return fatal[-1] if fatal else self.out[-300:]

    def forbidden(self) -> str:
        """The API server's refusal as the play's failure quotes it, unescaped."""
        found = SENTENCE.search(self.failure())
        return found.group(0).replace("\\", "") if found else ""


def _run_flows(identities, endpoints, tmp_path, rules: list, tag: str) -> dict[str, Flow]:
    """Both flows at once, each with its own identity holding `rules`."""
    started = {flow: Flow(flow, identities(rules, f"{tag}-{flow}"), endpoints, tmp_path) for flow in FLOWS}
    return {flow: run.finish() for flow, run in started.items()}


def _verbs_used(audit, user: str) -> dict[str, list[str]]:
    """group/resource[/subresource] -> verbs the identity's requests used (from the audit log)."""
    used = defaultdict(set)
    for event in audit.events(user):
        ref = event.get("objectRef") or {}
        if ref.get("resource"):
            name = "/".join(x for x in (ref.get("apiGroup") or "core", ref["resource"], ref.get("subresource")) if x)
            used[name].add(event["verb"])
    return {name: sorted(verbs) for name, verbs in sorted(used.items())}


def _granted_unused(used: dict[str, list[str]]) -> dict[str, list[str]]:
    unused = {}
    for rule in RULES:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                name = f"{group or 'core'}/{resource}"
                left = sorted(set(rule["verbs"]) - set(used.get(name, [])))
                if left:
                    unused[name] = left
    return unused


def test_documented_role_suffices_for_a_whole_release(identities, endpoints, tmp_path, audit, record):
    """A fresh identity bound only to the documented role promotes a release, and rolls one back"""
    flows = _run_flows(identities, endpoints, tmp_path, RULES, "full")
    promoted, rolled_back = flows["promote"], flows["rollback"]
    assert promoted.code == 0, promoted.out[-4000:]
    assert f"Release of {APP} {CANARY} in {promoted.identity.namespace} done: 100% on {CANARY}" in promoted.out
    assert promoted.weights() == {CANARY: 100}
    assert promoted.replicas(STABLE) is None and promoted.replicas(OLD) is None  # retired, and deleted first
    # The rollback flow fails on purpose (an inconclusive step), and its rollback must go through.
    assert rolled_back.code != 0 and "ROLLBACK FAILED" not in rolled_back.out, rolled_back.out[-4000:]
    assert f"Rolled back: 100% of traffic is on {STABLE}" in rolled_back.out, rolled_back.out[-4000:]
    assert rolled_back.weights() == {STABLE: 100, CANARY: 0} and rolled_back.replicas(CANARY) == 0
    used = {flow: _verbs_used(audit, run.identity.user) for flow, run in flows.items()}
    refused = [e for run in flows.values() for e in audit.events(run.identity.user) if e["responseStatus"]["code"] == 403]
    assert not refused, [(e["verb"], e["objectRef"]) for e in refused]
    merged = defaultdict(set)
    for verbs in used.values():
        for name, names in verbs.items():
            merged[name].update(names)
    record(seconds_promote=promoted.seconds, seconds_rollback=rolled_back.seconds,
           used_promote=used["promote"], used_rollback=used["rollback"],
           granted_but_unused_by_both=_granted_unused({k: sorted(v) for k, v in merged.items()}))


@pytest.mark.parametrize("index", range(len(RULES)), ids=[_rule_id(r) for r in RULES])
def test_each_rule_is_needed_and_its_absence_is_a_clear_403(identities, endpoints, tmp_path, record, index):
    """Without one rule of the role, a release fails with a 403 naming a resource and verb of that rule"""
    rule = RULES[index]
    reduced = [r for i, r in enumerate(RULES) if i != index]
    granted = {(verb, resource, group) for verb in rule["verbs"] for resource in rule["resources"]
               for group in rule["apiGroups"]}
    # The rollback flow first: it makes a request of every kind the promote flow makes but for a
    # delete of a Deployment (a rule it needs anyway), so it nearly always finds the 403 alone.
    runs: dict[str, Flow] = {}
    for flow in ("rollback", "promote"):
        run = runs[flow] = Flow(flow, identities(reduced, f"r{index}-{flow}"), endpoints, tmp_path).finish()
        if run.code != 0 and set(run.refusals()) & granted:
            break
    record(**{f"{flow}_exit": run.code for flow, run in runs.items()},
           **{f"{flow}_403": [" ".join(r) for r in run.refusals()] for flow, run in runs.items()},
           **{f"{flow}_message": run.forbidden() or run.failure()[-300:] for flow, run in runs.items() if run.code})
    assert run.code != 0 and set(run.refusals()) & granted, (
        f"rule {_rule_id(rule)} is not needed: without it "
        + "; ".join(f"the {flow} flow exited {run.code} (403s: {run.refusals()})" for flow, run in runs.items()))
    # Only this rule's permissions were refused, and the play's failure says so.
    assert set(run.refusals()) <= granted, run.refusals()
    assert FORBIDDEN.search(run.forbidden()), run.failure()
    # Never left half-way: no rules yet, or traffic all on stable.
    assert run.weights() in ({}, {STABLE: 100}, {STABLE: 100, CANARY: 0}), (run.weights(), run.out[-3000:])
