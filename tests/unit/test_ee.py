# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The execution environment: ``execution-environment.yml`` (ansible-builder schema v3) and the
collection's own ``meta/execution-environment.yml``.

No image is built (no container engine, no registry here). ``ansible-builder create`` writes the
build context; then the context's collection is installed the way the image's galaxy stage does
it, and ansible-builder's own introspection script reads its requirements, as the builder stage
does. What needs the network (kubernetes.core from Galaxy, packages from PyPI and dnf) is left out.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
# What the installed collection is made of (galaxy.yml's build_ignore drops the rest).
RUNTIME_DIRS = ("meta", "plugins", "roles", "playbooks")

pytestmark = pytest.mark.skipif(not (VENV_BIN / "ansible-builder").exists(),
                                reason="ansible-builder is not installed (pip install -r test-requirements.txt)")


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False,
                            env=dict(os.environ, ANSIBLE_NOCOLOR="1", **env))
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> Path:
    """The build context written by `ansible-builder create`."""
    out = tmp_path_factory.mktemp("ee") / "context"
    run([str(VENV_BIN / "ansible-builder"), "create", "-f", "execution-environment.yml", "-c", str(out),
         "--output-filename", "Containerfile"], REPO_ROOT)
    return out


@pytest.fixture(scope="module")
def installed(context, tmp_path_factory) -> Path:
    """The collection from the context installed as the image's galaxy stage installs it (the
    definition's own requirements file, run in /build), without Galaxy (kubernetes.core comes from
    the `ansible` package here)."""
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text(encoding="utf-8"))
    own = [entry for entry in requirements["collections"] if entry.get("type") == "dir"]
    only_own = tmp_path_factory.mktemp("req") / "requirements.yml"
    only_own.write_text(yaml.safe_dump({"collections": own}), encoding="utf-8")
    target = tmp_path_factory.mktemp("collections")
    # --force: the checkout is on ANSIBLE_COLLECTIONS_PATH for the unit tests, and would count as installed.
    run([str(VENV_BIN / "ansible-galaxy"), "collection", "install", "--no-deps", "--force", "-r", str(only_own),
         "-p", str(target)], context / "_build", ANSIBLE_COLLECTIONS_PATH=str(target))
    return target


def definition() -> dict:
    return yaml.safe_load((REPO_ROOT / "execution-environment.yml").read_text(encoding="utf-8"))


def test_definition_is_schema_v3_on_an_rpm_base_with_ansible_runner():
    ee = definition()
    assert ee["version"] == 3
    deps = ee["dependencies"]
    assert "ansible-runner" in deps["ansible_runner"]["package_pip"]
    assert deps["ansible_core"]["package_pip"].startswith("ansible-core>=2.17")
    assert deps["python_interpreter"]["python_path"].endswith("python3.11")
    assert (REPO_ROOT / deps["python"]).is_file()
    assert "bindep" not in str(deps.get("system", "")) or (REPO_ROOT / deps["system"]).is_file()


def test_create_writes_a_containerfile(context):
    containerfile = (context / "Containerfile").read_text(encoding="utf-8")
    assert f"EE_BASE_IMAGE=\"{definition()['images']['base_image']['name']}\"" in containerfile
    assert "ansible-galaxy collection install" in containerfile
    assert "introspect" in containerfile
    assert (context / "_build" / "requirements.txt").read_text(encoding="utf-8") == (
        REPO_ROOT / "requirements.txt").read_text(encoding="utf-8")


def test_context_holds_every_runtime_file_of_the_collection(context):
    entry = next(e for e in yaml.safe_load((context / "_build" / "requirements.yml").read_text(encoding="utf-8"))
                 ["collections"] if e.get("type") == "dir")
    copied = context / "_build" / entry["name"]
    tracked = subprocess.run(["git", "ls-files", *RUNTIME_DIRS], cwd=REPO_ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    wanted = {path for path in tracked if (REPO_ROOT / path).exists()}
    missing = sorted(path for path in wanted if not (copied / path).is_file())
    assert missing == [], "files the EE would lack"
    assert (copied / "galaxy.yml").is_file()


def test_installed_collection_brings_its_python_requirements(installed):
    """meta/execution-environment.yml, read by ansible-builder's introspection as in the image."""
    meta = yaml.safe_load((REPO_ROOT / "meta" / "execution-environment.yml").read_text(encoding="utf-8"))
    assert meta["version"] == 1
    collection = installed / "ansible_collections" / "canary" / "istio"
    for path in meta["dependencies"].values():
        assert (collection / path).is_file(), f"{path} must be in the built collection (galaxy.yml build_ignore)"
    import ansible_builder

    introspect = Path(ansible_builder.__file__).parent / "_target_scripts" / "introspect.py"
    found = yaml.safe_load(run([sys.executable, str(introspect), "introspect", str(installed)], REPO_ROOT).stdout)
    from_us = [line.split("#")[0].strip() for line in found["python"] if "from collection canary.istio" in line]
    assert "kubernetes>=24.2.0" in from_us and "requests>=2.28" in from_us
    assert found["system"] == []


def test_installed_collection_runs_its_playbooks(installed):
    """Every role and module a playbook names resolves in the collection as installed in the EE."""
    paths = os.pathsep.join([str(installed), str(Path(yaml.__file__).parents[1])])
    for playbook in sorted((REPO_ROOT / "playbooks").glob("*.yml")):
        run([str(VENV_BIN / "ansible-playbook"), "--syntax-check", f"canary.istio.{playbook.stem}"], installed,
            ANSIBLE_COLLECTIONS_PATH=paths, ANSIBLE_LOCALHOST_WARNING="0")
