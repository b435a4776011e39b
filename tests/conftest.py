# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Make ``ansible_collections.canary.istio`` importable for plain pytest (unit and integration).

Collections are imported by FQCN, so the repository must sit at
``<dir>/ansible_collections/canary/istio``. Under ``ansible-test units`` it already does; for plain
pytest, ``.collections/ansible_collections/canary/istio`` is a symlink to the repository root
(made here when missing). The path goes on ``sys.path`` and into ``ANSIBLE_COLLECTIONS_PATH``,
which pytest-ansible's ``--ansible-unit-inject-only`` hands to Ansible's collection finder; this
module runs before that plugin's ``pytest_configure``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _collections_dir() -> Path | None:
    """The directory holding ``ansible_collections/canary/istio``, or None when it cannot be made."""
    if REPO_ROOT.parent.parent.name == "ansible_collections":
        return REPO_ROOT.parents[2]  # already inside a collection tree (ansible-test units)
    tree = REPO_ROOT / ".collections"
    link = tree / "ansible_collections" / "canary" / "istio"
    if not link.exists():
        try:
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(Path("..", "..", ".."), target_is_directory=True)
        except OSError:
            return None
    return tree


_COLLECTIONS = _collections_dir()
if _COLLECTIONS is not None:
    if str(_COLLECTIONS) not in sys.path:
        sys.path.insert(0, str(_COLLECTIONS))
    _paths = [p for p in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep) if p]
    if str(_COLLECTIONS) not in _paths:
        os.environ["ANSIBLE_COLLECTIONS_PATH"] = os.pathsep.join([str(_COLLECTIONS)] + _paths)


# A skip whose reason starts with this is a case that does not apply (a data-driven test on a
# manifest without the thing it checks), not a missing prerequisite.
NOT_APPLICABLE = "not applicable: "


def _strict() -> bool:
    """Under CI and `make test`, a missing fixture or prerequisite fails rather than skips."""
    return os.environ.get("CANARY_ISTIO_REQUIRE_SANDBOX") == "1" or os.environ.get("CI", "").lower() in ("1", "true")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # pylint: disable=unused-argument
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and _strict()) or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if reason.startswith(("Skipped: " + NOT_APPLICABLE, NOT_APPLICABLE)):
        return
    report.outcome = "failed"
    report.longrepr = (f"{item.nodeid} was skipped ({reason}); under CI (CI=true or CANARY_ISTIO_REQUIRE_SANDBOX=1) a missing "
                       "prerequisite is a failure, not a skip")
