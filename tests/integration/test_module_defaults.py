"""A play's module_defaults for group/canary.istio.guance reach the modules the roles run.

The canary_analysis role hands its own Guance connection (canary_analysis_guance) to the module
through module_defaults keyed by the module: a key for the group at the task would replace the
play's group defaults whole. Here the role gets no connection of its own and no GUANCE_*
variable is set, so the only way the module can reach the simulator's Guance is the play's group
defaults.
"""
from __future__ import annotations

import json

import pytest
import yaml

from sandbox import versions

from runners import run_playbook  # pylint: disable=import-error

pytestmark = pytest.mark.integration


def test_the_plays_guance_group_defaults_reach_the_roles_analysis(sandbox, namespace, tmp_path):
    endpoints = json.loads((versions.STATE_DIR / "endpoints.json").read_text())
    play = {
        "hosts": "localhost", "gather_facts": False,
        "module_defaults": {"group/canary.istio.guance": {"url": endpoints["guance_openapi"],
                                                          "api_key": endpoints["guance_api_key"]}},
        "tasks": [{"name": "Analyse a version that gets no traffic",
                   "ansible.builtin.include_role": {"name": "canary.istio.canary_analysis"},
                   "vars": {"canary_analysis_service": "reviews", "canary_analysis_namespace": namespace,
                            "canary_analysis_canary_version": "v-nobody", "canary_analysis_interval": 0}}],
    }
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([play], sort_keys=False), encoding="utf-8")
    run = run_playbook(str(playbook), env={"GUANCE_URL": "", "GUANCE_API_KEY": ""}, check=False)
    # Guance answered (no canary requests in an empty namespace): the connection came from the play.
    assert run.returncode != 0 and "too few canary requests: 0 < min_requests 1" in run.stdout, run.stdout[-3000:]
    assert endpoints["guance_api_key"] not in run.stdout


def test_the_plays_cluster_group_defaults_reach_the_roles_tasks(sandbox, namespace, kubeconfig, tmp_path):
    """The roles key their cluster by module too: a play naming its cluster for
    group/canary.istio.istio keeps it inside the roles' blocks (a group key there replaced it, and
    the tasks fell back to the default kubeconfig: another cluster, or none)."""
    play = {
        "hosts": "localhost", "gather_facts": False,
        "module_defaults": {"group/canary.istio.istio": {"kubeconfig": kubeconfig}},
        "tasks": [{"name": "Roll back a release that never was",
                   "ansible.builtin.include_role": {"name": "canary.istio.rollback"},
                   "vars": {"canary_app": "reviews", "canary_namespace": namespace,
                            "canary_stable_version": "v1", "canary_version": "v2"}}],
    }
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([play], sort_keys=False), encoding="utf-8")
    run = run_playbook(str(playbook), env={"KUBECONFIG": "", "K8S_AUTH_KUBECONFIG": "", "HOME": str(tmp_path)},
                       check=False)
    # The sandbox answered: the namespace exists there and has no VirtualService reviews.
    assert f"VirtualService {namespace}/reviews not found" in run.stdout, run.stdout[-3000:]
    assert "no Kubernetes cluster configured" not in run.stdout
