# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A doc fragment's options against the argument spec they document (for the tests of
``_k8s/options.py`` and ``_istio/api.py``)."""

from __future__ import annotations

from pathlib import Path

import yaml


REPO = Path(__file__).resolve().parents[4]


def _fragment_options(name: str) -> dict:
    path = REPO / "plugins" / "doc_fragments" / f"{name}.py"
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102 - our own file
    return yaml.safe_load(namespace["ModuleDocFragment"].DOCUMENTATION)["options"]


def _doc_normalized(options: dict) -> dict:
    return {
        name: {
            "type": doc.get("type", "str"),
            "aliases": sorted(doc.get("aliases", [])),
            "elements": doc.get("elements"),
            "default": doc.get("default"),
            "choices": doc.get("choices"),
            "options": _doc_normalized(doc["suboptions"]) if doc.get("suboptions") else None,
        }
        for name, doc in options.items()
    }


def _spec_for_doc(spec: dict) -> dict:
    return {
        name: {
            "type": option.get("type", "str"),
            "aliases": sorted(option.get("aliases", [])),
            "elements": option.get("elements"),
            "default": option.get("default"),
            "choices": option.get("choices"),
            "options": _spec_for_doc(option["options"]) if option.get("options") else None,
        }
        for name, option in spec.items()
    }
