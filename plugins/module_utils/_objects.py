# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers the object-owning modules (destination_rule, virtual_service) share: metadata they merge,
the object they return and the spec-only diff they show.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import copy

from ansible_collections.canary.istio.plugins.module_utils._istio import IstioSpecError


def metadata_strings(values: dict | None, option: str) -> dict[str, str]:
    """Label or annotation values as the strings Kubernetes needs; YAML numbers become text."""
    result: dict[str, str] = {}
    for key, value in (values or {}).items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise IstioSpecError(option, "the value of %r must be a string, got %r; quote it in YAML" % (key, value))
        result[str(key)] = value if isinstance(value, str) else str(value)
    return result


def merge_metadata(metadata: dict | None, labels: dict[str, str], annotations: dict[str, str]) -> dict:
    """``metadata`` with ``labels`` and ``annotations`` set; every other key, label and annotation stays."""
    merged = copy.deepcopy(metadata) if metadata else {}
    for key, wanted in (("labels", labels), ("annotations", annotations)):
        if wanted:
            merged[key] = dict(merged.get(key) or {}, **wanted)
    return merged


def result_object(obj: dict | None) -> dict:
    """The object to return: managedFields are bookkeeping of the API server, noise to a reader."""
    if not obj:
        return {}
    shown = copy.deepcopy(obj)
    (shown.get("metadata") or {}).pop("managedFields", None)
    return shown


def spec_diff(before: dict | None, after: dict | None, label: str) -> dict:
    """Ansible's diff of the spec alone; an object that does not exist shows as {}."""
    return {
        "before": copy.deepcopy((before or {}).get("spec") or {}),
        "after": copy.deepcopy((after or {}).get("spec") or {}),
        "before_header": "%s (spec)" % label,
        "after_header": "%s (spec)" % label,
    }


def vs_diff(before_spec: dict, after_spec: dict, namespace: str, name: str) -> dict:
    """Ansible's diff of a VirtualService's spec alone, headed with the object it belongs to."""
    return spec_diff({"spec": before_spec}, {"spec": after_spec}, "VirtualService %s/%s" % (namespace, name))
