# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The example inventory of clusters (``inventories/example``), shared by the command line and AWX's
inventory source: one host per cluster in wave groups, each reaching its cluster from the control
node. No cluster is contacted: a local play prints what each host would use, and the batches
`serial` makes of them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parents[2]
INVENTORY = REPO_ROOT / "inventories" / "example"
VENV_BIN = Path(sys.executable).parent

# The play header of the collection's playbooks, and what each host would hand the modules.
PROBE = """
- name: Probe
  hosts: "{{ canary_hosts | default('localhost') }}"
  gather_facts: false
  serial: "{{ canary_wave_size | default('100%') }}"
  tasks:
    - name: What the host uses
      ansible.builtin.debug:
        msg:
          connection: "{{ ansible_connection }}"
          python: "{{ ansible_python_interpreter }}"
          kubeconfig: "{{ canary_kubeconfig }}"
          context: "{{ canary_context }}"
"""


def probe(tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> list[dict[str, dict]]:
    """Each batch of the play: {host: what it uses}."""
    playbook = tmp_path / "probe.yml"
    playbook.write_text(PROBE, encoding="utf-8")
    run_env = {k: v for k, v in os.environ.items() if k != "K8S_AUTH_KUBECONFIG"}
    run_env.update(ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_NOCOLOR="1", **(env or {}))
    run = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", str(INVENTORY), str(playbook), *extra],
                         capture_output=True, text=True, env=run_env, check=False, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    plays = json.loads(run.stdout)["plays"]
    return [{host: result["msg"] for host, result in play["tasks"][0]["hosts"].items()} for play in plays]


def inventory() -> dict:
    run = subprocess.run([str(VENV_BIN / "ansible-inventory"), "-i", str(INVENTORY), "--list"],
                         capture_output=True, text=True, check=True)
    return json.loads(run.stdout)


def hosts_of(data: dict, group: str) -> set[str]:
    found = set(data.get(group, {}).get("hosts", []))
    for child in data.get(group, {}).get("children", []):
        found |= hosts_of(data, child)
    return found


def test_one_host_per_cluster_in_waves():
    data = inventory()
    clusters = hosts_of(data, "clusters")
    assert len(clusters) == 3
    assert len(hosts_of(data, "canary")) == 1, "the first wave is one cluster"
    assert hosts_of(data, "canary") | hosts_of(data, "wave1") == clusters
    assert not hosts_of(data, "canary") & hosts_of(data, "wave1")
    hostvars = data["_meta"]["hostvars"]
    contexts = [hostvars[host]["canary_context"] for host in clusters]
    assert len(set(contexts)) == len(contexts), "each host its own cluster"
    for host in clusters:
        assert hostvars[host]["ansible_connection"] == "local"
        assert "canary_kubeconfig" in hostvars[host]


def test_hosts_run_locally_with_the_sandbox_kubeconfig_as_an_absolute_path(tmp_path):
    batches = probe(tmp_path, "-e", "canary_hosts=clusters")
    (hosts,) = batches
    for host, used in hosts.items():
        assert used["connection"] == "local"
        assert used["python"] == str(VENV_BIN / "python") or Path(used["python"]).parent == VENV_BIN
        assert used["kubeconfig"] == str((REPO_ROOT / ".sandbox" / "kubeconfig-release").resolve())
        assert used["context"] == host


def test_kubeconfig_from_awx_credential_or_extra_var(tmp_path):
    (from_env,) = probe(tmp_path, "-e", "canary_hosts=canary", env={"K8S_AUTH_KUBECONFIG": "/runner/env/tmp_kubeconfig"})
    assert {used["kubeconfig"] for used in from_env.values()} == {"/runner/env/tmp_kubeconfig"}
    (from_var,) = probe(tmp_path, "-e", "canary_hosts=canary", "-e", "canary_clusters_kubeconfig=/etc/fleet.yaml",
                        env={"K8S_AUTH_KUBECONFIG": "/runner/env/tmp_kubeconfig"})
    assert {used["kubeconfig"] for used in from_var.values()} == {"/etc/fleet.yaml"}


def test_waves_start_with_the_canary_cluster(tmp_path):
    batches = probe(tmp_path, "-e", "canary_hosts=canary:wave1", "-e", "canary_wave_size=1")
    assert [list(batch) for batch in batches] == [["sandbox-1"], ["sandbox-2"], ["sandbox-3"]]
    batches = probe(tmp_path, "-e", "canary_hosts=clusters", "-e", '{"canary_wave_size": [1, "100%"]}')
    assert [sorted(batch) for batch in batches] == [["sandbox-1"], ["sandbox-2", "sandbox-3"]]
