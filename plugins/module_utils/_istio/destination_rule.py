# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""DestinationRule specs: subsets (name, labels, trafficPolicy) merged into the live spec.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import copy
import typing as t

from ansible_collections.canary.istio.plugins.module_utils._istio.common import IstioSpecError


def _label_value(value: t.Any, field: str, key: str) -> str:
    # YAML reads `version: 2` as a number; Kubernetes label values are strings.
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise IstioSpecError(field, "label %r must be a string, got %r; quote it in YAML" % (key, value))
    return value if isinstance(value, str) else str(value)


def _subset_from_option(item: t.Any, index: int) -> dict:
    field = "subsets"
    if not isinstance(item, dict):
        raise IstioSpecError(field, "subset #%d must be a dict with name and labels, got %r" % (index, item))
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise IstioSpecError(field, "subset #%d needs a name, e.g. {name: v1, labels: {version: v1}}" % index)
    labels = item.get("labels")
    if labels is None:
        labels = {}
    if not isinstance(labels, dict):
        raise IstioSpecError(field, "labels of subset %r must be a dict such as {version: v1}, got %r" % (name, labels))
    if not labels:
        # Istio reads a subset without labels as every pod of the host: all versions at once.
        raise IstioSpecError(field, "subset %r has no labels, so it would select every pod of the Service (all versions); "
                             "give the labels of one version, e.g. {version: %s}" % (name, name))
    subset: dict[str, t.Any] = {
        "name": name,
        "labels": {str(k): _label_value(v, field, str(k)) for k, v in labels.items()},
    }
    traffic_policy = item.get("traffic_policy")
    if traffic_policy is not None:
        if not isinstance(traffic_policy, dict):
            raise IstioSpecError(field, "traffic_policy of subset %r must be a dict (Istio TrafficPolicy), got %r" % (name, traffic_policy))
        subset["trafficPolicy"] = copy.deepcopy(traffic_policy)
    return subset


def build_destination_rule_spec(
    live_spec: dict | None,
    host: str,
    subsets: list[dict],
    traffic_policy: dict | None,
    purge_subsets: bool,
) -> dict:
    """The DestinationRule spec wanted, built on the live one.

    ``subsets`` items are ``{name, labels, traffic_policy?}`` (traffic_policy in Istio's camelCase,
    passed through). A listed subset replaces the labels of the live subset of that name, sets its
    trafficPolicy when given and keeps it otherwise, and keeps keys we do not know; live subsets
    not listed are kept unless ``purge_subsets``. New subsets are appended in the order given.
    ``trafficPolicy`` is set when given, kept otherwise; every other spec key is kept.
    """
    if not isinstance(host, str) or not host.strip():
        raise IstioSpecError("host", "give the host the rule applies to, e.g. host: reviews")
    if subsets is None:
        subsets = []
    if not isinstance(subsets, list):
        raise IstioSpecError("subsets", "subsets must be a list of {name, labels}, got %r" % (subsets,))
    wanted = [_subset_from_option(item, index) for index, item in enumerate(subsets)]
    names = [s["name"] for s in wanted]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise IstioSpecError("subsets", "subset %s is listed more than once; give each subset once" % ", ".join(map(repr, duplicates)))
    if traffic_policy is not None and not isinstance(traffic_policy, dict):
        raise IstioSpecError("traffic_policy", "traffic_policy must be a dict (Istio TrafficPolicy), got %r" % (traffic_policy,))

    spec = copy.deepcopy(live_spec) if live_spec else {}
    spec["host"] = host
    if traffic_policy is not None:
        spec["trafficPolicy"] = copy.deepcopy(traffic_policy)

    by_name = {s["name"]: s for s in wanted}
    merged = []
    for live in spec.get("subsets") or []:
        name = live.get("name") if isinstance(live, dict) else None
        if name in by_name:
            new = by_name.pop(name)
            _check_not_widened(live, new)
            if _same_labels(live, new) and "trafficPolicy" not in new:
                merged.append(live)  # unchanged: kept byte for byte
                continue
            subset = dict(live)
            subset.update(new)
            merged.append(subset)
        elif not purge_subsets:
            merged.append(live)
    merged.extend(s for s in wanted if s["name"] in by_name)
    if merged or "subsets" in spec:
        spec["subsets"] = merged
    return spec


def _live_labels(live: dict) -> dict[str, str]:
    return {str(k): str(v) for k, v in (live.get("labels") or {}).items()}


def _same_labels(live: dict, new: dict) -> bool:
    return _live_labels(live) == new["labels"]


def _check_not_widened(live: dict, new: dict) -> None:
    """Refuse to drop conditions from a live subset's selector: the subset would then also select
    pods it did not (another version's), and traffic weighted to it would reach them."""
    old = _live_labels(live)
    dropped = {k: v for k, v in old.items() if new["labels"].get(k) is None}
    if dropped and set(new["labels"].items()) <= set(old.items()):
        raise IstioSpecError(
            "subsets",
            "subset %r selects %s today; the labels given (%s) drop %s, so it would also select other pods (another "
            "version's); give its labels in full, or leave the subset out of subsets to keep it" % (
                live.get("name"), _selector(old), _selector(new["labels"]), _selector(dropped)),
        )


def _selector(labels: dict) -> str:
    return ",".join("%s=%s" % item for item in sorted(labels.items())) or "everything"


def subset_names(dr_spec: dict | None) -> list[str]:
    """Names of the DestinationRule's subsets, in order."""
    return [s["name"] for s in (dr_spec or {}).get("subsets") or [] if isinstance(s, dict) and s.get("name")]


def subset_labels(dr_spec: dict | None, name: str) -> dict | None:
    """Labels of subset ``name`` (a copy), or None when the DestinationRule has no such subset."""
    for subset in (dr_spec or {}).get("subsets") or []:
        if isinstance(subset, dict) and subset.get("name") == name:
            return dict(subset.get("labels") or {})
    return None
