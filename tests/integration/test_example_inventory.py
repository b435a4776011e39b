"""The example inventory (inventories/example) names contexts the sandbox's release kubeconfig has:
here, where the sandbox is up, rather than in the unit tests, which run before it exists."""
from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from runners import REPO, VENV_BIN  # pylint: disable=import-error

pytestmark = pytest.mark.integration


def _hosts_of(data: dict, group: str) -> set[str]:
    found = set(data.get(group, {}).get("hosts", []))
    for child in data.get(group, {}).get("children", []):
        found |= _hosts_of(data, child)
    return found


def test_contexts_are_those_of_the_sandbox_release_kubeconfig(release_kubeconfig):
    contexts = {c["name"] for c in yaml.safe_load(open(release_kubeconfig, encoding="utf-8"))["contexts"]}
    run = subprocess.run([str(VENV_BIN / "ansible-inventory"), "-i", str(REPO / "inventories" / "example"), "--list"],
                         capture_output=True, text=True, check=True)
    data = json.loads(run.stdout)
    clusters = _hosts_of(data, "clusters")
    assert clusters
    assert {data["_meta"]["hostvars"][host]["canary_context"] for host in clusters} <= contexts
