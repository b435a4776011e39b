# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Credentials from a kubeconfig user's ``exec`` plugin or ``auth-provider``, through the
``kubernetes`` package's loader, which knows the ExecCredential protocol and the provider flavours;
what a failing plugin printed is shown without anything that may be a secret.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import typing as t

from ansible_collections.canary.istio.plugins.module_utils._http.redact import REDACTED, redact
from ansible_collections.canary.istio.plugins.module_utils._k8s.config import ClientConfig
from ansible_collections.canary.istio.plugins.module_utils._k8s.errors import K8sConfigError


def credentials_from_plugin(
    config: ClientConfig,
    context: str,
    cluster: dict[str, t.Any],
    user: dict[str, t.Any],
    base_dir: str,
    persist_config: bool | None,
) -> None:
    """Credentials from an exec plugin or auth-provider, through the kubernetes package's loader.

    Only these users need the (slow to import) kubernetes package: it knows the ExecCredential
    protocol and the auth-provider flavours. We give it a one-context kubeconfig with absolute
    paths and copy back the bearer token and client certificate it produced.
    """
    try:
        from kubernetes import client as k8s_client
        from kubernetes import config as k8s_config
    except ImportError:
        raise K8sConfigError(
            f"context {context!r} gets its credentials from an exec plugin or auth-provider, which "
            "needs the Python package 'kubernetes' (pip install kubernetes)",
            option="kubeconfig",
        ) from None
    user = copy.deepcopy(user)
    exec_spec = user.get("exec")
    if isinstance(exec_spec, dict) and exec_spec.get("command"):
        command = str(exec_spec["command"])
        # kubectl: a command with a path separator is relative to the kubeconfig's folder.
        if os.sep in command and not os.path.isabs(command):
            exec_spec["command"] = os.path.join(base_dir, command)
    single = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": context,
        "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}}],
        # The server is all the loader needs from the cluster; TLS material is ours already.
        "clusters": [{"name": "c", "cluster": {"server": cluster.get("server") or "https://localhost"}}],
        "users": [{"name": "u", "user": user}],
    }
    loaded = k8s_client.Configuration()
    # The loader reports a failing plugin with logging.error and carries on without credentials:
    # collect those lines for our message instead of letting them reach stderr.
    captured = _CapturedLog()
    root = logging.getLogger()
    root.addHandler(captured)
    try:
        k8s_config.load_kube_config_from_dict(
            config_dict=single,
            context=context,
            client_configuration=loaded,
            persist_config=bool(persist_config),
        )
        failure = ""
    except Exception as exc:  # the loader raises many kinds; only the kind is shown
        failure = type(exc).__name__
    finally:
        root.removeHandler(captured)
    api_key = loaded.api_key or {}
    authorization = str(api_key.get("BearerToken") or api_key.get("authorization") or "")
    if authorization.lower().startswith("bearer "):
        config.token = authorization[7:].strip()
    if loaded.cert_file and loaded.key_file:
        config.client_cert_file = loaded.cert_file
        config.client_key_file = loaded.key_file
    if failure or not (config.token or config.client_cert_file):
        reason = failure or (_plugin_line(captured.first_line(), user, config) or "no token or client certificate in its output")
        raise K8sConfigError(
            f"context {context!r}: the exec plugin or auth-provider did not return credentials "
            f"({reason}); run it by hand (kubectl --context {context} get ns) to see why",
            option="kubeconfig",
        )


# A word this long of token characters is taken for a credential when a plugin's output is shown.
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9_\-.+/=]{32,}")


def _plugin_line(line: str, user: dict[str, t.Any], config: ClientConfig) -> str:
    """A line a failing exec plugin or auth-provider printed, without what may be secret in it:
    the values of the plugin's env and the provider's config, any credential already known, and
    any token-like word (plugins print tokens they could not use)."""
    exec_spec = user.get("exec") if isinstance(user.get("exec"), dict) else {}
    provider = user.get("auth-provider") if isinstance(user.get("auth-provider"), dict) else {}
    values = [str(e.get("value") or "") for e in exec_spec.get("env") or [] if isinstance(e, dict)]
    values.extend(str(v) for v in (provider.get("config") or {}).values() if isinstance(provider.get("config"), dict))
    return _TOKEN_LIKE.sub(REDACTED, redact(line, values + config.secrets()))


class _CapturedLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def first_line(self) -> str:
        return self.lines[0].splitlines()[0][:200] if self.lines and self.lines[0] else ""
