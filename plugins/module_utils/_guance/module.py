# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What every Guance module does with its connection before the first request.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import typing as t

from ansible_collections.canary.istio.plugins.module_utils._guance.client import GuanceClient
from ansible_collections.canary.istio.plugins.module_utils._guance.errors import GuanceConfigError
from ansible_collections.canary.istio.plugins.module_utils._guance.settings import API_OPENAPI, GuanceConfig
from ansible_collections.canary.istio.plugins.module_utils._http.redact import mask_secrets


def guance_client(module: t.Any, config: GuanceConfig) -> GuanceClient:
    """The module's client: the key masked in every result the module returns (each spelling
    Ansible could print), the connection's warnings said. No request is sent yet."""
    mask_secrets(module, config.secrets())
    for warning in config.warnings():
        module.warn(warning)
    return GuanceClient(config)


def require_openapi(config: GuanceConfig, what: str) -> None:
    """GuanceConfigError naming ``api`` when ``what`` (SLOs, mutes) needs the OpenAPI and the
    connection is a DataKit, which serves neither."""
    if config.api != API_OPENAPI:
        raise GuanceConfigError("api: %s through the OpenAPI; set api=openapi with its url and api_key" % what, "api")
