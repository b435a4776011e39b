# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers the object-owning modules (destination_rule, virtual_service) share: metadata they merge,
the whole object they want written, how they create, update or delete it, the object they return
and the spec-only diff they show.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import copy
import typing as t

from ansible_collections.canary.istio.plugins.module_utils._istio.common import IstioSpecError, specs_equal
from ansible_collections.canary.istio.plugins.module_utils._istio.api import istio_path, normalize_istio_api_version
from ansible_collections.canary.istio.plugins.module_utils._errors import doing
from ansible_collections.canary.istio.plugins.module_utils._k8s.module import client_from_module
from ansible_collections.canary.istio.plugins.module_utils._k8s.writes import ensure, ensure_absent


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


def wanted_object(live: dict | None, params: t.Mapping[str, t.Any], kind: str, spec: dict) -> dict | None:
    """The whole object to write with ``spec`` and the labels and annotations of ``params``, given
    the live one (None: missing), or None when the live one already has them all. Other metadata,
    labels and annotations of the live object stay."""
    labels = metadata_strings(params.get("labels"), "labels")
    annotations = metadata_strings(params.get("annotations"), "annotations")
    if live is None:
        metadata = merge_metadata({"name": params["name"], "namespace": params["namespace"]}, labels, annotations)
        return {
            "apiVersion": normalize_istio_api_version(params.get("api_version")),
            "kind": kind,
            "metadata": metadata,
            "spec": spec,
        }
    metadata = merge_metadata(live.get("metadata"), labels, annotations)
    if specs_equal(live.get("spec"), spec) and metadata == live.get("metadata"):
        return None
    wanted = copy.deepcopy(live)
    wanted["metadata"] = metadata
    wanted["spec"] = spec
    return wanted


def apply_object(
    module: t.Any, kind: str, plural: str, wanted: t.Callable[[dict | None, t.Mapping[str, t.Any]], dict | None]
) -> dict[str, t.Any]:
    """The result of making the Istio object of ``module.params`` present (as ``wanted(live, params)``
    builds it) or absent (``state``): changed, the object, and with --diff its spec before and after.
    CanaryError for whatever stops it."""
    params = module.params
    name, namespace, state = params["name"], params["namespace"], params["state"]
    label = "%s %s/%s" % (kind, namespace, name)
    collection = istio_path(params["api_version"], plural, namespace)
    path = istio_path(params["api_version"], plural, namespace, name)
    if state == "present":
        # Bad options fail here, before the cluster is contacted.
        wanted(None, params)

    client = client_from_module(module)
    with doing(("cannot delete %s" if state == "absent" else "cannot create or update %s") % label):
        if state == "absent":
            outcome = ensure_absent(client, path, dry_run=module.check_mode)
        else:
            outcome = ensure(client, collection, name, lambda live: wanted(live, params), dry_run=module.check_mode)

    result: dict[str, t.Any] = {"changed": outcome.changed, "result": result_object(outcome.after)}
    if module._diff:
        result["diff"] = spec_diff(outcome.before, outcome.after, label)
    return result
