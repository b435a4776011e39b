"""Every role's meta/argument_specs.yml, read as Ansible reads it."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = sorted(Path(__file__).resolve().parents[2].joinpath("roles").glob("*/meta/argument_specs.yml"))


@pytest.mark.parametrize("path", ROLES, ids=[p.parts[-3] for p in ROLES])
def test_descriptions_hold_no_jinja(path) -> None:
    # Ansible hands the spec to its validation task as arguments, which it templates: a "{{" in a
    # description is evaluated at the role's start (a lookup in an example there failed releases).
    assert "{{" not in path.read_text() and "{%" not in path.read_text()
    assert yaml.safe_load(path.read_text())["argument_specs"]["main"]["options"]
