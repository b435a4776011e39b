# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""module_utils by layer (docs/code-layout.md): each package imports only the layers below it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

MODULE_UTILS = Path(__file__).resolve().parents[2] / "plugins" / "module_utils"
PREFIX = "ansible_collections.canary.istio.plugins.module_utils."

# What each part of module_utils may import besides itself. HTTP safety and redaction, and the
# error contract, are the floor; the Kubernetes client knows nothing of Istio; the
# Guance client serves the analysis and the event and query modules; the analysis and the report
# know nothing of Kubernetes.
ALLOWED = {
    "_http": set(),
    "_errors": set(),
    "_required": set(),
    "_k8s": {"_http", "_errors"},
    "_version_deployment": {"_errors"},
    "_istio": {"_http", "_errors", "_k8s"},
    "_guance": {"_http", "_errors"},
    "_analysis": {"_http", "_errors", "_guance"},
    "_report": {"_http", "_errors"},
}
FILES = sorted(p for p in MODULE_UTILS.rglob("*.py") if p.name != "__init__.py")


def part_of(path: Path) -> str:
    return path.relative_to(MODULE_UTILS).parts[0].removesuffix(".py")


def imported_parts(path: Path) -> set[str]:
    parts = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PREFIX):
            parts.add(node.module[len(PREFIX):].split(".")[0])
    return parts


def test_every_file_belongs_to_a_known_part() -> None:
    assert {part_of(p) for p in FILES} == set(ALLOWED)


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(MODULE_UTILS)) for p in FILES])
def test_imports_go_down_the_layers(path: Path) -> None:
    part = part_of(path)
    assert imported_parts(path) - {part} <= ALLOWED[part]
