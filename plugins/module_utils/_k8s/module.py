# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Kubernetes client of a module: built from its connection options, its secrets masked in
every output, its warnings shown.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import atexit
import typing as t

from ansible_collections.canary.istio.plugins.module_utils._errors import fail_from_error
from ansible_collections.canary.istio.plugins.module_utils._http.redact import mask_secrets
from ansible_collections.canary.istio.plugins.module_utils._http.safety import transport_warnings
from ansible_collections.canary.istio.plugins.module_utils._k8s.config import ClientConfig
from ansible_collections.canary.istio.plugins.module_utils._k8s.connection import load_client_config
from ansible_collections.canary.istio.plugins.module_utils._k8s.errors import K8sConfigError
from ansible_collections.canary.istio.plugins.module_utils._k8s.options import resolve_auth_params
from ansible_collections.canary.istio.plugins.module_utils._k8s.transport import DEFAULT_TIMEOUT, K8sClient


def client_from_params(
    params: t.Mapping[str, t.Any],
    environ: t.Mapping[str, str] | None = None,
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
    temp_dir: str | None = None,
) -> K8sClient:
    """A K8sClient from module-style parameters plus K8S_AUTH_* variables. Raises K8sConfigError."""
    config = load_client_config(resolve_auth_params(params, environ), environ, temp_dir)
    try:
        return K8sClient(config, timeout=timeout)
    except BaseException:
        config.cleanup()
        raise


def client_from_module(module: t.Any) -> K8sClient:
    """The K8sClient for an AnsibleModule's connection options; fails the module on bad input."""
    from ansible.module_utils.basic import missing_required_lib

    for package, name in (("requests", "requests"), ("yaml", "PyYAML")):
        try:
            __import__(package)
        except ImportError:
            module.fail_json(msg=missing_required_lib(name))
    try:
        client = client_from_params(module.params, temp_dir=module.tmpdir)
    except K8sConfigError as exc:
        fail_from_error(module, exc)
    # Secrets that came from a kubeconfig or the environment are not no_log options: mask them too.
    mask_secrets(module, client.config.secrets())
    atexit.register(client.close)
    for warning in connection_warnings(client.config):
        module.warn(warning)
    return client


def connection_warnings(config: ClientConfig) -> list[str]:
    """What the user should know about how this client talks to the API server."""
    has_credential = bool(config.token or config.password)
    return transport_warnings(config.server, "the Kubernetes API server", has_credential, config.verify_ssl)
