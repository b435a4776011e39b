"""Running a module's ``main()`` in the test process, as Ansible would, for the unit tests.

One place for what differs between ansible-core releases (how a module gets its arguments, where
its warnings go), so the tests of each module only say which module, which arguments and which
environment.
"""
from __future__ import annotations

import contextlib
import json
import os
import typing as t

import pytest


def module_args(args: dict, monkeypatch) -> t.ContextManager:
    """A context in which AnsibleModule reads ``args`` (ansible-core 2.17 to 2.19 and later)."""
    from ansible.module_utils import basic

    try:
        from ansible.module_utils import _internal
        from ansible.module_utils.testing import patch_module_args
    except ImportError:  # ansible-core < 2.19
        monkeypatch.setattr(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode())
        return contextlib.nullcontext()
    # Under pytest Ansible's controller code is imported, which makes modules print their warnings
    # rather than return them.
    monkeypatch.setattr(_internal, "is_controller", False)
    return patch_module_args(args)


def run_main(main: t.Callable[[], None], args: dict, monkeypatch, capsys, *, clear_env: tuple[str, ...] = (),
             env: dict | None = None, check_mode: bool = False, diff: bool = False) -> tuple[dict, str]:
    """``main()`` run with ``args``; its JSON result and what it wrote to stderr.

    ``clear_env``: prefixes of environment variables removed first (GUANCE_, K8S_AUTH_...), so the
    machine's settings do not leak in; ``env``: variables set then.
    """
    for var in list(os.environ):
        if clear_env and var.startswith(clear_env):
            monkeypatch.delenv(var)
    for var, value in (env or {}).items():
        monkeypatch.setenv(var, value)
    args = dict(args, _ansible_remote_tmp="/tmp", _ansible_keep_remote_files=False, _ansible_check_mode=check_mode,
                _ansible_diff=diff)
    with module_args(args, monkeypatch), pytest.raises(SystemExit):
        main()
    captured = capsys.readouterr()
    return json.loads(captured.out[captured.out.index("{"):]), captured.err


def assert_spec_documented(documented: dict, spec: dict, where: str = "") -> None:
    """The options a module documents are its argument_spec: the same names, types, defaults,
    choices, required flags, elements and sub-options (``where``: the path shown on a mismatch)."""
    assert set(documented) == set(spec), where
    for name, option in spec.items():
        doc = documented[name]
        assert doc["type"] == option["type"], f"{where}{name}"
        assert doc.get("default") == option.get("default"), f"{where}{name}"
        assert doc.get("choices") == option.get("choices"), f"{where}{name}"
        assert bool(doc.get("required")) == bool(option.get("required")), f"{where}{name}"
        assert doc.get("elements") == option.get("elements"), f"{where}{name}"
        if "options" in option:
            assert_spec_documented(doc["suboptions"], option["options"], f"{where}{name}.")
