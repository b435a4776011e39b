# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every error message of the collection is in docs/troubleshooting.md, so none goes undocumented silently.

The literal text of each message is collected from the code: ``fail_json(msg=...)`` and the
constructors of error classes (``...Error(...)``) in ``plugins/``, and the ``msg`` of
``ansible.builtin.fail`` and ``fail_msg`` of ``ansible.builtin.assert`` in ``roles/*/tasks`` and
``playbooks/``. A message is split at its placeholders (``%s``, ``{value}``, ``{{ jinja }}``); every
piece of at least MIN_FRAGMENT characters that has a space in it (so not a bare option name) must
appear in the page, whitespace collapsed. Write a message in the page as the user sees it, with
``<placeholders>`` for what varies.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
PAGE = REPO_ROOT / "docs" / "troubleshooting.md"
MIN_FRAGMENT = 15
PERCENT_PLACEHOLDER = re.compile(r"%(?:\([^)]*\))?[-#0 +]*\d*(?:\.\d+)?[sdrfgixX]")
JINJA_PLACEHOLDER = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _fragments(pieces: list[str]) -> list[str]:
    """The literal pieces worth checking: long enough, and more than one word."""
    found = []
    for piece in pieces:
        for part in PERCENT_PLACEHOLDER.split(piece.replace("%%", "%")):
            part = _collapse(part).strip(" :;,.()")
            if len(part) >= MIN_FRAGMENT and " " in part:
                found.append(part)
    return found


def _string_pieces(node: ast.AST) -> list[str]:
    """Literal text inside a message expression: plain strings and the constant parts of f-strings."""
    pieces = []
    for child in ast.walk(node):
        if isinstance(child, ast.JoinedStr):
            pieces.extend(value.value for value in child.values if isinstance(value, ast.Constant))
    formatted = {id(value) for child in ast.walk(node) if isinstance(child, ast.JoinedStr) for value in child.values}
    for child in ast.walk(node):
        if isinstance(child, ast.Constant) and isinstance(child.value, str) and id(child) not in formatted:
            pieces.append(child.value)
    return pieces


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def python_messages() -> list[tuple[str, str]]:
    """(where, fragment) for fail_json msgs and error constructors in plugins/."""
    found = []
    for path in sorted((REPO_ROOT / "plugins").glob("**/*.py")):
        if path.parent.name == "doc_fragments":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _call_name(node)
            if name == "fail_json":
                parts = [keyword.value for keyword in node.keywords if keyword.arg == "msg"]
            elif name.endswith("Error") and name not in ("AssertionError",):
                parts = list(node.args) + [keyword.value for keyword in node.keywords if keyword.arg == "message"]
            else:
                continue
            where = "%s:%d" % (path.relative_to(REPO_ROOT), node.lineno)
            for part in parts:
                found.extend((where, fragment) for fragment in _fragments(_string_pieces(part)))
    return found


def _task_messages(tasks) -> list[str]:
    messages = []
    for task in tasks if isinstance(tasks, list) else []:
        if not isinstance(task, dict):
            continue
        for key in ("block", "rescue", "always", "tasks"):
            messages.extend(_task_messages(task.get(key)))
        if isinstance(task.get("ansible.builtin.fail"), dict):
            messages.append(task["ansible.builtin.fail"].get("msg", ""))
        if isinstance(task.get("ansible.builtin.assert"), dict):
            messages.append(task["ansible.builtin.assert"].get("fail_msg", ""))
    return [message for message in messages if isinstance(message, str)]


def yaml_messages() -> list[tuple[str, str]]:
    """(where, fragment) for ansible.builtin.fail msgs and assert fail_msgs in roles and playbooks."""
    paths = sorted(REPO_ROOT.glob("roles/*/tasks/*.yml")) + sorted(REPO_ROOT.glob("playbooks/**/*.yml"))
    found = []
    for path in paths:
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            plays = document if isinstance(document, list) else []
            messages = _task_messages(plays)
            for play in plays:
                if isinstance(play, dict):
                    for key in ("pre_tasks", "tasks", "post_tasks", "handlers"):
                        messages.extend(_task_messages(play.get(key)))
            for message in messages:
                pieces = JINJA_PLACEHOLDER.split(message)
                found.extend((str(path.relative_to(REPO_ROOT)), fragment) for fragment in _fragments(pieces))
    return found


def _page_text() -> str:
    return _collapse(PAGE.read_text(encoding="utf-8").replace("\\|", "|"))


def test_the_collection_has_messages_to_check():
    # Guards the extraction itself: a change that made it find nothing would pass everything below.
    python, playbook = python_messages(), yaml_messages()
    assert len(python) > 150
    assert len(playbook) >= 8
    assert any(fragment.startswith("ttl: must be from 1 second to") for where, fragment in python)
    assert any("ROLLBACK FAILED too" in fragment for where, fragment in playbook)


@pytest.mark.parametrize("source", [python_messages, yaml_messages])
def test_every_message_is_in_troubleshooting(source):
    page = _page_text()
    missing = sorted({"%s: %s" % (where, fragment) for where, fragment in source() if fragment not in page})
    assert not missing, "docs/troubleshooting.md lacks these messages (add each with its meaning and fix):\n" + "\n".join(missing)


@pytest.mark.parametrize("text, expected", [
    ("name: VirtualService %s/%s not found; create it with canary.istio.virtual_service first",
     ["name: VirtualService", "not found; create it with canary.istio.virtual_service first"]),
    ("ttl: %d", []),
    ("route", []),
])
def test_fragments(text, expected):
    assert _fragments([text]) == expected
