# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""REST paths of the core kinds the modules read and write. No discovery: these kinds live at fixed
places. Istio's paths are in ``_istio/api.py``.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

from urllib.parse import quote

from ansible_collections.canary.istio.plugins.module_utils._k8s.errors import K8sNameError


def segment(value: str, what: str) -> str:
    """``value`` as one segment of a REST path; K8sNameError when it cannot be one."""
    if not value or not isinstance(value, str) or value in (".", "..") or "/" in value:
        raise K8sNameError(f"{what} must be a non-empty Kubernetes name without '/', got {value!r}", what)
    return quote(value, safe="")


def deployments_path(namespace: str, name: str | None = None) -> str:
    path = f"/apis/apps/v1/namespaces/{segment(namespace, 'namespace')}/deployments"
    return f"{path}/{segment(name, 'name')}" if name is not None else path


def pods_path(namespace: str) -> str:
    return f"/api/v1/namespaces/{segment(namespace, 'namespace')}/pods"


def services_path(namespace: str, name: str | None = None) -> str:
    path = f"/api/v1/namespaces/{segment(namespace, 'namespace')}/services"
    return f"{path}/{segment(name, 'name')}" if name is not None else path
