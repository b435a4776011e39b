"""The sandbox fixtures (sandbox_fixtures.py), shared with the reliability suite (tests/reliability)."""
from sandbox_fixtures import admin, audit, kubeconfig, module_runner, namespace, release_kubeconfig, sandbox  # noqa: F401  pylint: disable=import-error,unused-import
