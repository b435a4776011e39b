"""Run the collection's modules and playbooks against the sandbox, as tests and benchmarks do.

Kept out of conftest.py so tests can import it by name (two conftest modules would be ambiguous).
"""
from __future__ import annotations

import os

from sandbox import versions

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
