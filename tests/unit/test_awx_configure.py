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
from pathlib import Path
from typing import Any

import pytest
import yaml

from awx_controller import make_stub_collection, run_configure, sent
from test_awx import (CREDENTIAL_TYPE_FILES, JOB_TEMPLATES, WORKFLOW, load_json, survey_of,
                      survey_spec_errors)

REPO_ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ["-e", "canary_awx_scm_url=https://git.example.com/canary.istio.git",
            "-e", "canary_awx_ee_image=registry.example.com/canary-istio-ee:0.1.0"]
SECRETS = {"canary_awx_kubeconfig": "apiVersion: v1\nkind: Config\n", "canary_awx_guance_url": "https://us1-openapi.guance.com",
           "canary_awx_guance_api_key": "tkn_do_not_show"}


def settings() -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / "awx" / "vars" / "settings.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def stub_collections(tmp_path_factory) -> Path:
    return make_stub_collection(tmp_path_factory.mktemp("stub"))


@pytest.fixture(scope="module")
def with_secrets(stub_collections, tmp_path_factory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("configure")
    secrets = tmp / "secrets.json"
    secrets.write_text(json.dumps(SECRETS), encoding="utf-8")
    overrides = {"canary_awx_extra_vars": {"canary_release": {"canary_steps": [5, 100], "canary_analysis": {"provider": "guance"}}}}
    return run_configure(stub_collections, *SETTINGS, "-e", f"@{secrets}", "-e", json.dumps(overrides))


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
        if template.get("guance"):  # the default analysis of settings.yml
            expected_vars.update(canary_analysis=settings()["canary_awx_analysis"])
        if template.get("report"):  # the persistent volume of settings.yml
            expected_vars.update(canary_report_dir=settings()["canary_awx_report_dir"])
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
    outcome = run_configure(stub_collections, *SETTINGS)
    assert outcome["rc"] == 0, outcome["output"]
    assert all(task["skipped"] for task in outcome["tasks"] if task["action"] == "awx.awx.credential")
    assert {tuple(template["credentials"]) for template in sent(outcome, "job_template")} == {()}
    # no Guance to ask: no template is gated (an analysis would fail every release)
    assert not any("canary_analysis" in template["extra_vars"] for template in sent(outcome, "job_template"))


def test_with_the_guance_credential_a_release_is_gated_by_default(stub_collections, tmp_path):
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps(SECRETS), encoding="utf-8")
    outcome = run_configure(stub_collections, *SETTINGS, "-e", f"@{secrets}")
    assert outcome["rc"] == 0, outcome["output"]
    by_name = {template["name"]: template for template in sent(outcome, "job_template")}
    release = by_name["canary.istio: canary release"]
    assert "canary.istio Guance" in release["credentials"]
    analysis = release["extra_vars"]["canary_analysis"]
    assert analysis["provider"] == "guance"
    assert {check["metric"] for check in analysis["checks"]} == {"request_success_rate", "request_error_rate",
                                                                 "request_duration_p99"}
    # only the templates that analyse: the release, the watch while a person decides, the promotion's re-check
    assert sorted(name for name, template in by_name.items() if "canary_analysis" in template["extra_vars"]) == [
        "canary.istio: canary release", "canary.istio: promote", "canary.istio: watch the canary"]


def test_a_template_variable_its_survey_also_asks_is_refused(stub_collections):
    outcome = run_configure(stub_collections, *SETTINGS, "-e", json.dumps({"canary_awx_extra_vars": {
        "rollback": {"canary_app": "reviews", "canary_scale_down": True}}}))
    assert outcome["rc"] != 0
    (guard,) = [task for task in outcome["tasks"] if task["name"].startswith("No extra variable of a template")]
    refused = [item for item in guard["items"] if item.get("failed")]
    assert len(refused) == 1 and "canary_awx_extra_vars.rollback" in refused[0]["msg"]
    assert "canary_app" in refused[0]["msg"] and "surveys/rollback.json" in refused[0]["msg"]
    assert not sent(outcome, "job_template"), "nothing is sent to AWX"


def test_settings_are_required(stub_collections):
    outcome = run_configure(stub_collections)
    assert outcome["rc"] != 0
    (check,) = [task for task in outcome["tasks"] if task["name"] == "Check the settings"]
    assert "canary_awx_scm_url" in check["items"][0]["msg"] and "canary_awx_ee_image" in check["items"][0]["msg"]
    assert not sent(outcome, "credential_type"), "nothing is sent before the settings are complete"
