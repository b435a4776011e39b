"""Session fixtures for tests on the sandbox's real API servers (integration and reliability suites).

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

from runners import run_module  # pylint: disable=import-error

CLUSTERS = int(os.environ.get("CANARY_ISTIO_TEST_CLUSTERS", "3"))


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


@pytest.fixture
def module_runner(kubeconfig):
    """run(module, check=False, diff=False, **params) with the admin kubeconfig of sandbox-1."""

    def run(module: str, check: bool = False, diff: bool = False, **params) -> dict:
        params.setdefault("kubeconfig", kubeconfig)
        params.setdefault("context", "sandbox-1")
        return run_module(module, params, check=check, diff=diff)

    return run
