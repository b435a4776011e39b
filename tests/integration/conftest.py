"""Session fixtures for integration tests on the sandbox's real API servers.

The sandbox is brought up once per session (or a running one reused). When it cannot start, tests
are skipped with a loud reason, except under CI or CANARY_ISTIO_REQUIRE_SANDBOX=1, where that is an
error: integration tests are never silently skipped there.
"""
from __future__ import annotations

import os
import re
import uuid

import pytest

from sandbox import cluster as sandbox_cluster
from sandbox import control, versions
from sandbox.api import AdminApi
from sandbox.audit import AuditLog

CLUSTERS = int(os.environ.get("CANARY_ISTIO_TEST_CLUSTERS", "2"))


def _must_run() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("CANARY_ISTIO_REQUIRE_SANDBOX"))


@pytest.fixture(scope="session")
def sandbox():
    before = [c.pids for c in control.load_clusters()]
    try:
        clusters = control.up(CLUSTERS)
    except Exception as exc:  # noqa: BLE001 - reported as skip or failure below
        reason = f"SANDBOX COULD NOT START, integration tests cannot run: {exc}"
        if _must_run():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    started_here = before != [c.pids for c in clusters]
    yield clusters
    if started_here and not os.environ.get("CANARY_ISTIO_KEEP_SANDBOX"):
        control.down()


@pytest.fixture(scope="session")
def kubeconfig(sandbox) -> str:
    return str(versions.STATE_DIR / "kubeconfig")


@pytest.fixture(scope="session")
def release_kubeconfig(sandbox) -> str:
    return str(versions.STATE_DIR / "kubeconfig-release")


@pytest.fixture(scope="session")
def admin(sandbox) -> AdminApi:
    """Admin access to sandbox-1 (the default cluster of every test)."""
    return sandbox[0].admin()


@pytest.fixture
def namespace(request, sandbox, admin):
    """A fresh namespace in sandbox-1, bound to the release role, deleted after the test."""
    base = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-")
    name = f"t-{base}-{uuid.uuid4().hex[:6]}"
    sandbox_cluster.create_namespace(admin, name)
    admin.wait_for(f"ServiceAccount default in {name}",
                   lambda: admin.get(f"/api/v1/namespaces/{name}/serviceaccounts/default"), 30)
    yield name
    admin.delete(f"/api/v1/namespaces/{name}")


@pytest.fixture
def audit(sandbox) -> AuditLog:
    return AuditLog(sandbox[0]).mark()


# --------------------------------------------------------------------------- running modules

REPO = versions.REPO_ROOT
VENV_BIN = REPO / ".venv" / "bin"


def run_module(module: str, params: dict, check: bool = False, diff: bool = False) -> dict:
    """Run one of the collection's modules in-process, as Ansible would, and return its result.

    The module's own code talks to the real API server; only the AnsiballZ wrapping is skipped
    (playbook tests cover that path). A failed module returns its result with `failed: true`.
    """
    import contextlib
    import importlib
    import io
    import json

    from unittest import mock

    from ansible.module_utils import _internal
    from ansible.module_utils.testing import patch_module_args

    mod = importlib.import_module(f"ansible_collections.canary.istio.plugins.modules.{module}")
    args = {**params, "_ansible_check_mode": check, "_ansible_diff": diff}
    out = io.StringIO()
    # pytest imports controller code, which makes modules print warnings instead of returning them.
    with patch_module_args(args), contextlib.redirect_stdout(out), \
            mock.patch.object(_internal, "is_controller", False):
        try:
            mod.main()
        except SystemExit:
            pass
    text = out.getvalue()
    return _as_controller_sees_it(json.loads(text[text.index("{"):]))


def _as_controller_sees_it(result: dict) -> dict:
    """Warnings as the plain strings a playbook shows (modules send structured ones since 2.19)."""
    result["warnings"] = [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", [])]
    return result


def run_module_process(module: str, params: dict) -> dict:
    """Run a module in its own Python process (for races between real concurrent writers)."""
    import json
    import subprocess
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".json") as args_file:
        json.dump({"ANSIBLE_MODULE_ARGS": params}, args_file)
        args_file.flush()
        proc = subprocess.run(
            [str(VENV_BIN / "python"), "-m", f"ansible_collections.canary.istio.plugins.modules.{module}",
             args_file.name], capture_output=True, text=True, timeout=120,
            env={**os.environ, "PYTHONPATH": str(REPO / ".collections")}, check=False)
    return _as_controller_sees_it(json.loads(proc.stdout[proc.stdout.index("{"):]))


@pytest.fixture
def module_runner(kubeconfig):
    """run(module, check=False, diff=False, **params) with the admin kubeconfig of sandbox-1."""

    def run(module: str, check: bool = False, diff: bool = False, **params) -> dict:
        params.setdefault("kubeconfig", kubeconfig)
        params.setdefault("context", "sandbox-1")
        return run_module(module, params, check=check, diff=diff)

    return run


def run_playbook(playbook: str, *args: str, env: dict | None = None, check: bool = True):
    """ansible-playbook from the venv, with this checkout as canary.istio. Returns CompletedProcess."""
    import subprocess

    full_env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections"),
                "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", **(env or {})}
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), playbook, *args], env=full_env,
                          capture_output=True, text=True, timeout=600, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"ansible-playbook failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    return proc
