"""What a -vvv run must never show, shared by the integration and reliability suites.

The Guance API key (sandbox endpoints.json) and the release identity's Kubernetes bearer token (from
kubeconfig-release), in every spelling a library or Ansible could print them: as they are,
base64-encoded, and as repr(), JSON and URLs quote them.
"""
from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from pathlib import Path

import yaml

from ansible_collections.canary.istio.plugins.module_utils._http.redact import secret_forms

from runners import REPO, VENV_BIN  # pylint: disable=import-error


def release_cluster_of(release_kubeconfig: str) -> dict:
    """server, CA file and bearer token of sandbox-1 in the release kubeconfig."""
    config = yaml.safe_load(Path(release_kubeconfig).read_text())
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == "sandbox-1")
    user = next(u["user"] for u in config["users"] if u["name"] == "sandbox-1")
    return {"server": cluster["server"], "ca": cluster["certificate-authority"], "token": user["token"]}


def secret_spellings(endpoints: dict, release_cluster: dict) -> dict[str, str]:
    """What must never show, by name: each secret in every spelling, and base64-encoded."""
    found = {}
    for name, secret in (("Guance API key", endpoints["guance_api_key"]), ("Kubernetes token", release_cluster["token"])):
        for number, form in enumerate(secret_forms(secret)):
            found[f"{name} (spelling {number})"] = form
        found[f"{name} (base64)"] = base64.b64encode(secret.encode()).decode()
    return found


def leaks(texts: dict[str, str], secrets: dict[str, str]) -> list[str]:
    return [f"{name} in {where}" for where, text in texts.items() for name, secret in secrets.items() if secret in text]


def ansible_env() -> dict:
    return {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections"), "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0"}


def playbook(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "ansible-playbook"), *args], env=ansible_env(), capture_output=True,
                          text=True, timeout=600, check=False)


def task_results(output: str) -> list[tuple[str, dict]]:
    """(status, result) of each task result printed: what `register` keeps. -vvv prints them indented."""
    decoder, found = json.JSONDecoder(), []
    for match in re.finditer(r"^(ok|changed|fatal|skipping): \[[^\]]+\].*?=> (?=\{)", output, re.MULTILINE):
        try:
            found.append((match.group(1), decoder.raw_decode(output, match.end())[0]))
        except ValueError:
            continue
    return found
