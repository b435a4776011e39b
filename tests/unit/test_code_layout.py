# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""module_utils by layer (docs/code-layout.md): each package imports only the layers below it; and
the unit tests follow the layout they test: one test file per source file, named after it."""

from __future__ import annotations

import ast
import collections
import difflib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODULE_UTILS = REPO / "plugins" / "module_utils"
PREFIX = "ansible_collections.canary.istio.plugins.module_utils."

# What each part of module_utils may import besides itself. HTTP safety and redaction, and the
# error contract, are the floor; the Kubernetes client knows nothing of Istio; the
# Guance client serves the analysis and the event and query modules; the analysis and the report
# know nothing of Kubernetes.
ALLOWED = {
    "_http": set(),
    "_errors": set(),
    "_required": set(),
    "_durations": {"_errors"},
    "_main": {"_errors", "_required"},
    "_k8s": {"_http", "_errors"},
    "_version_deployment": {"_errors"},
    "_istio": {"_http", "_errors", "_k8s"},
    "_guance": {"_http", "_errors"},
    "_analysis": {"_http", "_errors", "_durations", "_guance"},
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


# ---------------------------------------------------------------------------------------------
# One unit test file per source file
# ---------------------------------------------------------------------------------------------

TESTS = REPO / "tests"
UNIT_PLUGINS = Path(__file__).resolve().parent / "plugins"
# A folder of unit tests: the source files its tests are named after, and how.
TESTED = {
    UNIT_PLUGINS / "module_utils": (MODULE_UTILS, sorted(p for p in MODULE_UTILS.rglob("*.py") if p.name != "__init__.py"),
                                    "a test of _<package>/<file>.py is test_<package>_<file>.py, of _<file>.py test_<file>.py"),
    UNIT_PLUGINS / "modules": (REPO / "plugins" / "modules", sorted((REPO / "plugins" / "modules").glob("*.py")),
                               "a test of <module>.py is test_<module>.py"),
}


def all_test_files() -> list[Path]:
    """Every test file under tests/, as pytest finds them."""
    return sorted(p for pattern in ("test_*.py", "*_test.py") for p in TESTS.rglob(pattern) if "__pycache__" not in p.parts)


def expected_test_name(source: Path, root: Path, taken: set[str]) -> str:
    """``_<package>/<file>.py`` -> ``test_<package>_<file>.py``, ``_<file>.py`` -> ``test_<file>.py``,
    a module ``<module>.py`` -> ``test_<module>.py``; with ``_module`` added when a test elsewhere
    under tests/ has that name already (pytest and ansible-test units import tests by basename)."""
    stem = "_".join(part.lstrip("_") for part in source.relative_to(root).with_suffix("").parts)
    name = f"test_{stem}.py"
    return f"test_{stem}_module.py" if name in taken else name


def test_every_unit_test_file_is_named_after_a_source_file() -> None:
    problems = []
    for folder, (root, sources, rule) in TESTED.items():
        taken = {p.name for p in all_test_files() if p.parent != folder}
        expected = {expected_test_name(source, root, taken): source for source in sources}
        for test_file in sorted(folder.glob("test_*.py")):
            if test_file.name not in expected:
                close = difflib.get_close_matches(test_file.name, expected, n=1, cutoff=0.5)
                hint = f"; should it be {close[0]}, for {expected[close[0]].relative_to(REPO)}?" if close else ""
                problems.append(f"{test_file.relative_to(REPO)} is named after no source file in {root.relative_to(REPO)}"
                                f" ({rule}){hint}")
    assert not problems, "\n".join(problems)


def test_every_test_file_name_is_unique() -> None:
    by_name = collections.defaultdict(list)
    for path in all_test_files():
        by_name[path.name].append(str(path.relative_to(REPO)))
    assert not {name: paths for name, paths in by_name.items() if len(paths) > 1}, (
        "pytest and ansible-test units import tests by their file name; these names are used twice: "
        + "; ".join(", ".join(paths) for name, paths in sorted(by_name.items()) if len(paths) > 1))
