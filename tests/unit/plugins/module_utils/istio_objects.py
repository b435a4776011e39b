# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""DestinationRules and pods as the API server returns them, for the tests of ``_istio``."""

from __future__ import annotations


def dr(name, host, subsets, namespace="prod", created="2026-01-01T00:00:00Z", **spec):
    return {
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created},
        "spec": dict(host=host, subsets=[{"name": s, "labels": {"version": s}} for s in subsets], **spec),
    }


def pod(name, labels, ready=True, deleting=False):
    metadata = {"name": name, "labels": labels}
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": metadata,
            "status": {"conditions": [{"type": "PodScheduled", "status": "True"},
                                      {"type": "Ready", "status": "True" if ready else "False"}]}}
