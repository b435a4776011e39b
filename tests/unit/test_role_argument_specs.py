"""Every role's meta/argument_specs.yml, read as Ansible reads it."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ansible_collections.canary.istio.tests.unit.script_loader import load_script

ROLES = sorted(Path(__file__).resolve().parents[2].joinpath("roles").glob("*/meta/argument_specs.yml"))


@pytest.mark.parametrize("path", ROLES, ids=[p.parts[-3] for p in ROLES])
def test_descriptions_hold_no_jinja(path) -> None:
    # Ansible hands the spec to its validation task as arguments, which it templates: a "{{" in a
    # description is evaluated at the role's start (a lookup in an example there failed releases).
    assert "{{" not in path.read_text() and "{%" not in path.read_text()
    assert yaml.safe_load(path.read_text())["argument_specs"]["main"]["options"]


# --- the analysis options: declared once, in the canary_analysis module ---------------------------

REPO_ROOT = Path(__file__).resolve().parents[2]
generate_role_specs = load_script("docs/generate_role_specs.py")
# What reaches the module some other way than canary_analysis_<option> (generate_role_specs.PASSED).
NOT_PASSED = {"rollback", "expected_weight", "prometheus_token", "prometheus_username", "prometheus_password"}
# The release's own keys of canary_analysis: handled by the playbook or the role, not the module.
RELEASE_OWN = {"on_inconclusive", "guance", "verify_traffic_share"}


def test_the_role_options_of_the_module_are_written_from_its_documentation() -> None:
    assert generate_role_specs.SPECS.read_text() == generate_role_specs.expected_text(), \
        "roles/canary_analysis/meta/argument_specs.yml is out of date: run python docs/generate_role_specs.py"


def test_every_option_of_the_module_reaches_it_from_the_role() -> None:
    # A new module option is either passed by the role (and written into its spec) or listed here.
    assert set(generate_role_specs.module_options()) == set(generate_role_specs.PASSED) | NOT_PASSED
    tasks = (REPO_ROOT / "roles" / "canary_analysis" / "tasks" / "main.yml").read_text()
    missing = [name for name in generate_role_specs.PASSED if f"    {name}: " not in tasks]
    assert not missing, f"roles/canary_analysis/tasks/main.yml does not pass {missing} to the module"


def _shape(spec: dict) -> dict:
    """Type, elements, choices and sub-options (recursively): what validation checks."""
    shape = {key: spec.get(key) for key in ("type", "elements", "choices")}
    subs = spec.get("options") or spec.get("suboptions")
    if subs:
        shape["options"] = {name: _shape(sub) for name, sub in subs.items()}
    return shape


def test_the_release_keys_of_canary_analysis_are_the_module_options_with_their_types() -> None:
    release = yaml.safe_load((REPO_ROOT / "playbooks" / "vars" / "release_spec.yml").read_text())["canary_spec_analysis"]
    module = generate_role_specs.module_options()
    unknown = set(release) - set(generate_role_specs.PASSED) - RELEASE_OWN
    assert not unknown, f"canary_spec_analysis keys the module does not have: {sorted(unknown)}"
    for key in set(release) - RELEASE_OWN:
        expected = _shape(module[key])
        if release[key].get("choices") is None:
            expected["choices"] = None  # a key the release leaves unset when not given takes no choices
        assert _shape(release[key]) == expected, key
    analyse = (REPO_ROOT / "playbooks" / "tasks" / "analyse_step.yml").read_text()
    assert all(f"canary_release_analysis.{key}" in analyse for key in set(release) - {"guance"}), \
        "analyse_step.yml does not hand every key of canary_analysis to the role"
