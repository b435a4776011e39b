# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where Istio's networking objects live in the Kubernetes API: the group, the versions the
modules accept (the ``api_version`` option) and the REST paths of VirtualServices and
DestinationRules.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import typing as t

from ansible_collections.canary.istio.plugins.module_utils._k8s.paths import segment


ISTIO_API_GROUP = "networking.istio.io"

DEFAULT_ISTIO_API_VERSION = "networking.istio.io/v1"

ISTIO_API_VERSIONS: tuple[str, ...] = (
    "networking.istio.io/v1",
    "networking.istio.io/v1beta1",
    "networking.istio.io/v1alpha3",
)

ISTIO_API_ARG_SPEC: dict[str, dict[str, t.Any]] = {
    "api_version": {
        "type": "str",
        "default": DEFAULT_ISTIO_API_VERSION,
        "choices": list(ISTIO_API_VERSIONS),
    },
}

VIRTUAL_SERVICES = "virtualservices"

DESTINATION_RULES = "destinationrules"


def normalize_istio_api_version(api_version: str | None) -> str:
    """``networking.istio.io/v1beta1`` or plain ``v1beta1`` -> ``networking.istio.io/v1beta1``."""
    value = (api_version or DEFAULT_ISTIO_API_VERSION).strip()
    if "/" not in value:
        value = f"{ISTIO_API_GROUP}/{value}"
    if value not in ISTIO_API_VERSIONS:
        raise ValueError(f"api_version must be one of {', '.join(ISTIO_API_VERSIONS)}, got {api_version!r}")
    return value


def istio_path(api_version: str | None, plural: str, namespace: str, name: str | None = None) -> str:
    """``/apis/networking.istio.io/v1/namespaces/prod/virtualservices[/reviews]``."""
    path = f"/apis/{normalize_istio_api_version(api_version)}/namespaces/{segment(namespace, 'namespace')}/{segment(plural, 'plural')}"
    return f"{path}/{segment(name, 'name')}" if name is not None else path
