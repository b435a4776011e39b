# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``awx/configure.yml`` run for real, with what each awx.awx task would send to AWX recorded.

There is no AWX here. A stand-in ``awx.awx`` collection, first on the collections path, has an
action plugin per module used that returns the task's arguments as Ansible templated them. So the
playbook's own logic is what is tested: the JSON files reach AWX unchanged (AWX's injector templates
are not templated by Ansible), each job template gets its survey, playbook, credentials and extra
variables, the workflow its nodes, and secrets are never shown. Whether AWX accepts the payloads is
what ``test_awx.py`` checks with AWX's rules; the surveys are checked again here as sent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from test_awx import (CREDENTIAL_TYPE_FILES, JOB_TEMPLATES, WORKFLOW, load_json, survey_of,
                      survey_spec_errors)

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
MODULES = ("credential_type", "credential", "execution_environment", "project", "inventory", "inventory_source",
           "job_template", "workflow_job_template")
STUB = '''
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    """Stand-in for an awx.awx module: sends nothing, returns the arguments it was given."""

    def run(self, tmp=None, task_vars=None):
        return {"changed": True, "sent": self._task.args}
'''
SETTINGS = ["-e", "canary_awx_scm_url=https://git.example.com/canary.istio.git",
            "-e", "canary_awx_ee_image=registry.example.com/canary-istio-ee:0.1.0"]
SECRETS = {"canary_awx_kubeconfig": "apiVersion: v1\nkind: Config\n", "canary_awx_guance_url": "https://us1-openapi.guance.com",
           "canary_awx_guance_api_key": "tkn_do_not_show"}


@pytest.fixture(scope="module")
def stub_collections(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stub")
    collection = root / "ansible_collections" / "awx" / "awx"
    (collection / "plugins" / "action").mkdir(parents=True)
    (collection / "meta").mkdir()
    (collection / "meta" / "runtime.yml").write_text("requires_ansible: '>=2.15.0'\n", encoding="utf-8")
    (collection / "galaxy.yml").write_text("namespace: awx\nname: awx\nversion: 24.6.1\n", encoding="utf-8")
    for module in MODULES:
        (collection / "plugins" / "action" / f"{module}.py").write_text(STUB, encoding="utf-8")
    return root


def configure(stub_collections: Path, *extra: str) -> dict[str, Any]:
    """Run awx/configure.yml; each task's results on localhost in order, and the return code."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(stub_collections), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0")
    run = subprocess.run([str(VENV_BIN / "ansible-playbook"), "awx/configure.yml", *extra], cwd=REPO_ROOT,
                         capture_output=True, text=True, env=env, check=False, timeout=300)
    tasks = []
    for play in json.loads(run.stdout)["plays"]:
        for task in play["tasks"]:
            result = task["hosts"]["localhost"]
            items = result.get("results", [result])
            tasks.append({"name": task["task"]["name"], "action": result.get("action", ""), "items": items,
                          "skipped": bool(result.get("skipped"))})
    return {"rc": run.returncode, "tasks": tasks, "output": run.stdout + run.stderr}


def sent(outcome: dict[str, Any], module: str) -> list[dict[str, Any]]:
    return [item["sent"] for task in outcome["tasks"] if task["action"] == f"awx.awx.{module}"
            for item in task["items"] if "sent" in item]


@pytest.fixture(scope="module")
def with_secrets(stub_collections, tmp_path_factory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("configure")
    secrets = tmp / "secrets.json"
    secrets.write_text(json.dumps(SECRETS), encoding="utf-8")
    return configure(stub_collections, *SETTINGS, "-e", f"@{secrets}",
                     "-e", json.dumps({"canary_awx_extra_vars": {"canary_release": {"canary_steps": [5, 100],
                                                                                    "canary_analysis": {"provider": "guance"}}}}))


def test_credential_types_reach_awx_unchanged(with_secrets):
    assert with_secrets["rc"] == 0, with_secrets["output"]
    sent_types = {ctype["name"]: ctype for ctype in sent(with_secrets, "credential_type")}
    for path in CREDENTIAL_TYPE_FILES:
        expected = load_json(path)
        got = sent_types[expected["name"]]
        # AWX's own "{{ tower.filename.kubeconfig }}" and "{{ api_key }}" arrive as written.
        assert {key: got[key] for key in ("description", "kind", "inputs", "injectors")} == {
            key: expected[key] for key in ("description", "kind", "inputs", "injectors")}


def test_secrets_become_credentials_and_are_never_shown(with_secrets):
    credential_tasks = [task for task in with_secrets["tasks"] if task["action"] == "awx.awx.credential"]
    assert len(credential_tasks) == 2 and not any(task["skipped"] for task in credential_tasks)
    for secret in (SECRETS["canary_awx_guance_api_key"], "kind: Config"):
        assert secret not in with_secrets["output"]


def test_job_templates_get_survey_playbook_credentials_and_variables(with_secrets):
    templates = {template["name"]: template for template in sent(with_secrets, "job_template")}
    assert sorted(templates) == sorted(template["name"] for template in JOB_TEMPLATES)
    for template in JOB_TEMPLATES:
        got = templates[template["name"]]
        assert got["playbook"] == template["playbook"]
        assert got["survey_enabled"] is True and got["survey_spec"] == survey_of(template["id"])
        assert survey_spec_errors(got["survey_spec"]) == []
        wanted = ["canary.istio clusters"] + (["canary.istio Guance"] if template.get("guance") else [])
        assert got["credentials"] == wanted
        assert got["ask_variables_on_launch"] is True and got["project"] == "canary.istio"
        expected_vars = dict(template.get("extra_vars", {}))
        if template["id"] == "canary_release":
            expected_vars.update(canary_steps=[5, 100], canary_analysis={"provider": "guance"})
        assert got["extra_vars"] == expected_vars


def test_workflow_gets_its_nodes_and_survey(with_secrets):
    (workflow,) = sent(with_secrets, "workflow_job_template")
    assert workflow["survey_spec"] == survey_of(WORKFLOW["id"])
    assert [node["identifier"] for node in workflow["workflow_nodes"]] == [n["identifier"] for n in WORKFLOW["nodes"]]
    organizations = {node["unified_job_template"].get("organization", {}).get("name")
                     for node in workflow["workflow_nodes"] if node["unified_job_template"]["type"] == "job_template"}
    assert organizations == {"Default"}
    assert workflow["destroy_current_nodes"] is True


def test_project_inventory_and_ee(with_secrets):
    (project,) = sent(with_secrets, "project")
    assert project["scm_url"] == "https://git.example.com/canary.istio.git"
    assert "credential" not in project, "no SCM credential unless one is named"
    (source,) = sent(with_secrets, "inventory_source")
    assert (REPO_ROOT / source["source_path"]).is_file()
    (ee,) = sent(with_secrets, "execution_environment")
    assert ee["image"] == "registry.example.com/canary-istio-ee:0.1.0"


def test_without_secrets_no_credential_is_made_or_attached(stub_collections):
    outcome = configure(stub_collections, *SETTINGS)
    assert outcome["rc"] == 0, outcome["output"]
    assert all(task["skipped"] for task in outcome["tasks"] if task["action"] == "awx.awx.credential")
    assert {tuple(template["credentials"]) for template in sent(outcome, "job_template")} == {()}


def test_settings_are_required(stub_collections):
    outcome = configure(stub_collections)
    assert outcome["rc"] != 0
    (check,) = [task for task in outcome["tasks"] if task["name"] == "Check the settings"]
    assert "canary_awx_scm_url" in check["items"][0]["msg"] and "canary_awx_ee_image" in check["items"][0]["msg"]
    assert not sent(outcome, "credential_type"), "nothing is sent before the settings are complete"
