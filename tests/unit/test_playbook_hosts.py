"""A canary_hosts that matches no host of the inventory fails every playbook, naming the variable.

Without the check, Ansible skips a play whose host pattern matches nothing and the job ends green
having done nothing (for a rollback, the worst outcome). No cluster is contacted: the check play
runs on the control node before any play that would.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = ["canary_release", "delete_old_versions", "fault_injection", "promote", "rollback", "shift_traffic", "watch"]
INVENTORY = REPO / "inventories" / "example" / "hosts.yml"


def _play(playbook: str, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run([str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", str(INVENTORY), str(REPO / "playbooks" / playbook),
                           *extra], env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_a_mistyped_canary_hosts_fails_before_anything_runs(playbook):
    out = _play(f"{playbook}.yml", "-e", "canary_hosts=clustrs")
    assert out.returncode != 0, out.stdout[-2000:]
    assert "canary_hosts: 'clustrs' matches no host of the inventory" in out.stdout
    assert "groups: clusters, canary, wave1" in out.stdout  # the fix: what the inventory offers
    plays = [line.split("]")[0] for line in out.stdout.splitlines() if line.startswith("PLAY [")]
    assert plays == ["PLAY [Check the clusters named by canary_hosts"], plays  # no later play started


@pytest.mark.parametrize("pattern", ["clusters", "canary:wave1", "sandbox-2", "localhost"])
def test_patterns_that_match_pass_the_check(pattern):
    out = _play("plays/check_hosts.yml", "-e", f"canary_hosts={pattern}")
    assert out.returncode == 0, out.stdout[-2000:]
