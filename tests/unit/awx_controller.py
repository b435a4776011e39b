# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What an AWX controller does with ``awx/``, without an AWX: what ``configure.yml`` would send it,
and the private data directory it would build for a job of one of those templates.

- ``run_configure`` runs ``awx/configure.yml`` against a stand-in ``awx.awx`` collection whose
  action plugins return the arguments each task would send (``sent``).
- ``job_private_data_dir`` lays out a job as AWX hands it to ``ansible-runner``: the project
  checkout, the inventory, ``env/extravars`` (template variables, survey defaults, launch answers,
  in AWX's precedence: ``test_awx.launch_extra_vars``), ``env/envvars`` and the credential files
  from the credential types' injectors, rendered the way AWX renders them (``inject_credential``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from test_awx import launch_extra_vars

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


def make_stub_collection(root: Path) -> Path:
    """A stand-in awx.awx collection under ``root``; returns the collections path."""
    collection = root / "ansible_collections" / "awx" / "awx"
    (collection / "plugins" / "action").mkdir(parents=True, exist_ok=True)
    (collection / "meta").mkdir(exist_ok=True)
    (collection / "meta" / "runtime.yml").write_text("requires_ansible: '>=2.15.0'\n", encoding="utf-8")
    (collection / "galaxy.yml").write_text("namespace: awx\nname: awx\nversion: 24.6.1\n", encoding="utf-8")
    for module in MODULES:
        (collection / "plugins" / "action" / f"{module}.py").write_text(STUB, encoding="utf-8")
    return root


def run_configure(stub_collections: Path, *extra: str) -> dict[str, Any]:
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


def inject_credential(credential_type: dict[str, Any], inputs: dict[str, Any], env_dir: Path) -> dict[str, str]:
    """The environment a credential of this type gives a job, its files written under ``env_dir``.

    As AWX's ``CredentialType.inject_credential``: each ``injectors.file`` template (``template``
    or ``template.<name>``) is rendered with the inputs into a private file, whose path the other
    templates read as ``tower.filename[.<name>]`` (``awx.filename`` too); then each ``env`` value is
    rendered. Rendering is Jinja in a sandbox, undefined names an error."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    jinja = ImmutableSandboxedEnvironment(undefined=StrictUndefined)
    injectors = credential_type.get("injectors", {})
    filenames: dict[str, str] = {}
    for key, template in injectors.get("file", {}).items():
        path = env_dir / f"credential-{credential_type['name'].lower().replace(' ', '-')}-{key.replace('.', '-')}"
        path.write_text(jinja.from_string(template).render(**inputs), encoding="utf-8")
        path.chmod(0o600)
        filenames[key.split(".", 1)[1] if "." in key else ""] = str(path)
    names = filenames.pop("") if "" in filenames else dict(filenames)
    namespace = {"filename": names}
    return {name: jinja.from_string(template).render(**inputs, tower=namespace, awx=namespace)
            for name, template in injectors.get("env", {}).items()}


def job_private_data_dir(root: Path, template: dict[str, Any], answers: dict[str, Any], *, job_id: int,
                         inventory: Path, credentials: list[tuple[dict[str, Any], dict[str, Any]]],
                         env: dict[str, str] | None = None, launch_vars: dict[str, Any] | None = None) -> Path:
    """The private data directory of a job of ``template`` (a job_template payload as configure.yml
    sends it), ready for ``ansible-runner run <dir> -p <template playbook>``."""
    data_dir = root / f"job-{job_id}"
    project = data_dir / "project"
    # A project update checks the repository out: its files, nothing it ignores (.venv, .sandbox).
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO_ROOT, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO_ROOT / name
        if source.is_file():
            (project / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, project / name)
    (data_dir / "inventory").mkdir(parents=True)
    shutil.copy2(inventory, data_dir / "inventory" / "hosts.yml")
    env_dir = data_dir / "env"
    env_dir.mkdir()
    extra = launch_extra_vars(template.get("extra_vars", {}), template["survey_spec"], answers)
    extra.update(launch_vars or {})
    # AWX's own variables of every job.
    extra.update({"awx_job_id": job_id, "tower_job_id": job_id, "awx_job_template_name": template["name"],
                  "awx_user_name": "admin", "awx_host": "https://awx.example.com", "tower_host": "https://awx.example.com"})
    envvars = {"JOB_ID": str(job_id), "AWX_HOST": "https://awx.example.com", "ANSIBLE_RETRY_FILES_ENABLED": "False",
               "ANSIBLE_NOCOLOR": "1", **(env or {})}
    for credential_type, inputs in credentials:
        envvars.update(inject_credential(credential_type, inputs, env_dir))
    (env_dir / "extravars").write_text(json.dumps(extra), encoding="utf-8")
    (env_dir / "envvars").write_text(json.dumps(envvars), encoding="utf-8")
    # AWX reads the job's events, not runner's copy of the output: on an execution node the worker's
    # stdout is the event stream itself.
    (env_dir / "settings").write_text(json.dumps({"suppress_ansible_output": True, "job_timeout": 1800}), encoding="utf-8")
    return data_dir
