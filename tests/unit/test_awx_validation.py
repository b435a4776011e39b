# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The job templates' answers through the playbooks' real validation.

Each case launches a playbook the way AWX would: the extra vars are built from the template's
extra_vars, the survey defaults and the answers (``launch_extra_vars``, AWX's precedence), then
``ansible-playbook --check`` runs the playbook itself with every endpoint pointing at a closed port
(127.0.0.1:1). Good answers must get through every validation task (validate_argument_spec and
assert, the playbook's and its roles') and fail only where a task first reaches for the cluster or
Guance; bad answers must be refused by a validation task whose message names the variable, before
anything is sent anywhere. The runs go in parallel, two at a time, once per session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from test_awx import (JOB_TEMPLATES, WORKFLOW, answer_errors, launch_extra_vars, survey_of,
                      template_by_id, template_by_name)

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
NOWHERE = "127.0.0.1:1"
VALIDATION_ACTIONS = {"validate_argument_spec", "assert", "fail"}

# Answers a person would give the required questions that have no default.
ANSWERS: dict[str, Any] = {
    "canary_app": "reviews",
    "canary_namespace": "prod",
    "canary_stable_version": "v1",
    "canary_version": "v2",
    "canary_image": "docker.io/istio/examples-bookinfo-reviews-v2:1.20.1",
    "canary_weight": 10,
    "fault_injection_service": "ratings",
}

KUBECONFIG = f"""
apiVersion: v1
kind: Config
clusters: [{{name: nowhere, cluster: {{server: "https://{NOWHERE}", insecure-skip-tls-verify: true}}}}]
users: [{{name: nobody, user: {{token: not-a-token}}}}]
contexts: [{{name: nowhere, context: {{cluster: nowhere, user: nobody}}}}]
current-context: nowhere
"""


def answers_for(template_id: str, **change: Any) -> dict[str, Any]:
    questions = survey_of(template_id)["spec"]
    given = {q["variable"]: ANSWERS[q["variable"]] for q in questions if q["required"] and "default" not in q}
    given.update(change)
    return given


def other_choices(template_id: str) -> dict[str, Any]:
    """For every multiple-choice question, a choice other than its default."""
    return {q["variable"]: next(c for c in q["choices"] if c != q.get("default"))
            for q in survey_of(template_id)["spec"] if q["type"] == "multiplechoice"}


def _settings() -> dict[str, Any]:
    import yaml

    return yaml.safe_load((REPO_ROOT / "awx" / "vars" / "settings.yml").read_text(encoding="utf-8"))


# What the release job's artifacts give the workflow's later jobs (set_stats): the watch needs the
# lock the release holds while a person decides.
ARTIFACTS = {"watch": {"canary_release_lock": {"name": "reviews", "owner": "reviews/v2 by admin@awx", "run": "1042"}}}

# (case id, playbook, extra vars, expected): "valid", or the variables the refusal must name.
CASES: list[tuple[str, str, dict[str, Any], Any]] = []
for _template in JOB_TEMPLATES:
    _id, _survey = _template["id"], survey_of(_template["id"])
    # As configure.yml makes the template with the Guance credential: the default analysis.
    _configured = {"canary_analysis": _settings()["canary_awx_analysis"]} if _template.get("guance") else {}
    _template_vars = dict(_template.get("extra_vars", {}), **_configured, **ARTIFACTS.get(_template["id"], {}))
    CASES.append((f"{_id}-defaults", _template["playbook"],
                  launch_extra_vars(_template_vars, _survey, answers_for(_id)), "valid"))
    if other_choices(_id):
        CASES.append((f"{_id}-other-choices", _template["playbook"],
                      launch_extra_vars(_template_vars, _survey, answers_for(_id, **other_choices(_id))), "valid"))
    # No answers at all (AWX refuses that itself; a launch through the API with the survey off does
    # not): one check names every required variable.
    CASES.append((f"{_id}-no-answers", _template["playbook"], launch_extra_vars(_template_vars, _survey, {}),
                  [q["variable"] for q in _survey["spec"] if q["required"]]))


def _bad(template_id: str, label: str, **values: Any) -> None:
    template = template_by_id(template_id)
    extra = launch_extra_vars(template.get("extra_vars", {}), survey_of(template_id), answers_for(template_id))
    extra.update(values)
    CASES.append((f"{template_id}-{label}", template["playbook"], extra, sorted(values)))


# Answers AWX lets through (extra vars given at launch skip the survey's types) that the playbooks
# refuse. Type errors of one check come together in one message.
_bad("canary_release", "not-numbers-nor-bools", canary_interval="soon", canary_delete_old_versions="maybe",
     canary_events="perhaps")
_bad("canary_release", "same-version", canary_version="v1")
_bad("canary_release", "version-not-a-label", canary_version="V2")
_bad("canary_release", "decreasing-steps", canary_steps=[50, 10])
# Why canary_steps is not a survey question: a text answer stays a string.
_bad("canary_release", "steps-as-text", canary_steps="10,100")
# An AWX job has no terminal to ask at: a pause step is refused there, before any change.
_bad("canary_release", "pause-step", canary_steps=[10, {"pause": True}, 100], awx_job_id=42)
_bad("canary_release", "ab-step-matching-nothing", canary_steps=[{"match": {}}, 100])
_bad("shift_traffic", "weight-not-a-number", canary_weight="half")
_bad("rollback", "unknown-action", rollback_canary_action="shred")
_bad("fault_injection", "unknown-state", fault_injection_state="maybe")


def _docs_extra_vars() -> dict[str, Any]:
    """The canary_awx_extra_vars example of docs/awx.md, as written there."""
    import re

    import yaml

    text = (REPO_ROOT / "docs" / "awx.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "canary_awx_extra_vars:" in b]
    return yaml.safe_load(textwrap.dedent(block))["canary_awx_extra_vars"]


# The release as configure.yml makes it with the Guance credential (gated by canary_awx_analysis),
# and with docs/awx.md's example variables: both must pass the playbook's validation as written.
_release_template = template_by_id("canary_release")
for _label, _vars in (("gated-default", {"canary_analysis": _settings()["canary_awx_analysis"]}),
                      ("docs-example", _docs_extra_vars()["canary_release"])):
    CASES.append((f"canary_release-{_label}", _release_template["playbook"],
                  launch_extra_vars(dict(_release_template.get("extra_vars", {}), **_vars), survey_of("canary_release"),
                                    answers_for("canary_release")), "valid"))

# The workflow's release node: the template's vars, the node's extra_data, the workflow's answers.
_release_node = next(node for node in WORKFLOW["nodes"] if node["identifier"] == "release")
_release = template_by_name(_release_node["unified_job_template"]["name"])
CASES.append(("workflow-release-node", _release["playbook"],
              launch_extra_vars(dict(_release.get("extra_vars", {}), **_release_node["extra_data"]),
                                survey_of(WORKFLOW["id"]), answers_for(WORKFLOW["id"])), "valid"))


def short_action(action: str) -> str:
    return action.rsplit(".", 1)[-1]


def run_playbook(tmp_dir: Path, case_id: str, playbook: str, extra_vars: dict[str, Any]) -> dict[str, Any]:
    """Run the playbook in check mode with nothing reachable; the tasks of localhost in order."""
    vars_file = tmp_dir / f"{case_id}.json"
    vars_file.write_text(json.dumps(extra_vars), encoding="utf-8")
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="0", K8S_AUTH_KUBECONFIG=str(tmp_dir / "kubeconfig"),
               GUANCE_URL=f"http://{NOWHERE}", GUANCE_API_KEY="not-a-key")
    run = subprocess.run([str(VENV_BIN / "ansible-playbook"), playbook, "--check", "-e", f"@{vars_file}"],
                         cwd=REPO_ROOT, capture_output=True, text=True, env=env, check=False, timeout=300)
    try:
        plays = json.loads(run.stdout)["plays"]
    except (ValueError, KeyError):
        return {"error": run.stdout + run.stderr, "tasks": []}
    tasks = []
    for play in plays:
        for task in play["tasks"]:
            for result in task["hosts"].values():
                tasks.append({"name": task["task"]["name"], "action": short_action(result.get("action", "")),
                              "failed": bool(result.get("failed")), "skipped": bool(result.get("skipped")),
                              "msg": str(result.get("msg", ""))})
    return {"error": None if plays else run.stdout + run.stderr, "tasks": tasks}


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory) -> dict[str, dict[str, Any]]:
    """The outcome of every case selected in this session (`-k` runs fewer playbooks)."""
    selected = {item.callspec.params.get("case_id") for item in request.session.items if hasattr(item, "callspec")}
    tmp_dir = tmp_path_factory.mktemp("awx-launch")
    (tmp_dir / "kubeconfig").write_text(KUBECONFIG, encoding="utf-8")
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {case_id: pool.submit(run_playbook, tmp_dir, case_id, playbook, extra)
                   for case_id, playbook, extra, _expected in CASES if case_id in selected}
        return {case_id: future.result() for case_id, future in futures.items()}


def reached_nowhere(task: dict[str, Any]) -> bool:
    return NOWHERE in task["msg"] or "Connection refused" in task["msg"]


def first_failure(outcome: dict[str, Any]) -> dict[str, Any] | None:
    return next((task for task in outcome["tasks"] if task["failed"]), None)


@pytest.mark.parametrize("case_id, extra_vars", [(c[0], c[2]) for c in CASES if c[3] == "valid"],
                         ids=[c[0] for c in CASES if c[3] == "valid"])
def test_awx_accepts_and_the_playbook_validates(outcomes, case_id, extra_vars):
    template_id = next((t["id"] for t in JOB_TEMPLATES if case_id.startswith(t["id"] + "-")), WORKFLOW["id"])
    for question in survey_of(template_id)["spec"]:
        assert answer_errors(question, extra_vars) == [], question["variable"]
    outcome = outcomes[case_id]
    assert outcome["error"] is None, outcome["error"]
    checks = [task for task in outcome["tasks"] if task["action"] in VALIDATION_ACTIONS and not task["skipped"]]
    assert checks, "no validation ran"
    # A fail task that reports the unreachable cluster (promote's refusal after its re-check could
    # not reach it) is no refused answer.
    assert [task for task in checks if task["failed"] and not reached_nowhere(task)] == []
    failure = first_failure(outcome)
    # The run gets past every check and stops at the first request to the (absent) cluster or Guance.
    assert failure is not None and failure["action"] not in VALIDATION_ACTIONS, outcome["tasks"]
    assert reached_nowhere(failure), failure


# Refusals that are not yet clean, each with what goes wrong (strict: the test says when it is fixed).
KNOWN_GAPS: dict[str, str] = {}


@pytest.mark.parametrize("case_id, variables", [
    pytest.param(c[0], c[3], id=c[0], marks=[pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[c[0]])]
                 if c[0] in KNOWN_GAPS else [])
    for c in CASES if c[3] != "valid"])
def test_the_playbook_refuses_bad_answers(outcomes, case_id, variables):
    outcome = outcomes[case_id]
    assert outcome["error"] is None, outcome["error"]
    failure = first_failure(outcome)
    assert failure is not None, "accepted"
    assert failure["action"] in VALIDATION_ACTIONS, failure
    assert [var for var in variables if var not in failure["msg"]] == [], failure["msg"]
    reached = [task for task in outcome["tasks"] if task["action"] not in VALIDATION_ACTIONS and not task["skipped"]
               and task["action"] not in ("set_fact", "debug", "include_role", "include_tasks")]
    assert reached == [], "something ran before the refusal"
