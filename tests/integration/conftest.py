"""The sandbox fixtures (sandbox_fixtures.py), shared with the reliability suite (tests/reliability), and the
simulator's (release_runs.py)."""
from pathlib import Path

import pytest

from sandbox_fixtures import admin, audit, kubeconfig, module_runner, namespace, release_kubeconfig, sandbox  # noqa: F401  pylint: disable=import-error,unused-import
from release_runs import endpoints, other_namespace, versions_of_test  # noqa: F401  pylint: disable=import-error,unused-import

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items):
    """Every test here needs the sandbox: marked `integration`, whether its file says so or not."""
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)
