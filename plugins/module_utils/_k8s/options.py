# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Kubernetes connection options and where their values come from: the task, else the
``K8S_AUTH_*`` environment variables.

The options, their aliases and the variables are kubernetes.core's, so ``module_defaults`` groups and
AWX's Kubernetes credential work unchanged.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import copy
import os
import typing as t


AUTH_PROXY_HEADERS_SPEC: dict[str, dict[str, t.Any]] = {
    "proxy_basic_auth": {"type": "str", "no_log": True},
    "basic_auth": {"type": "str", "no_log": True},
    "user_agent": {"type": "str"},
}

# Same names, types and aliases as kubernetes.core's connection options. No env fallbacks here:
# like kubernetes.core, the K8S_AUTH_* variables are read when the client is built, so their
# values never show up in the task's ``invocation``.
AUTH_ARG_SPEC: dict[str, dict[str, t.Any]] = {
    # no_log: a kubeconfig given as a dict holds tokens and keys.
    "kubeconfig": {"type": "raw", "no_log": True},
    "context": {"type": "str"},
    "host": {"type": "str"},
    "api_key": {"type": "str", "no_log": True},
    "username": {"type": "str"},
    "password": {"type": "str", "no_log": True},
    "validate_certs": {"type": "bool", "aliases": ["verify_ssl"]},
    "ca_cert": {"type": "path", "aliases": ["ssl_ca_cert"]},
    "client_cert": {"type": "path", "aliases": ["cert_file"]},
    # A path, not the key itself.
    "client_key": {"type": "path", "aliases": ["key_file"], "no_log": False},
    "proxy": {"type": "str"},
    "no_proxy": {"type": "str"},
    "proxy_headers": {"type": "dict", "options": AUTH_PROXY_HEADERS_SPEC},
    "persist_config": {"type": "bool"},
    "impersonate_user": {"type": "str"},
    "impersonate_groups": {"type": "list", "elements": "str"},
}


K8S_CONNECTION_OPTIONS: tuple[str, ...] = tuple(AUTH_ARG_SPEC)


# Environment variables per option, in the order they are read when the option is not set.
# kubernetes.core reads K8S_AUTH_<option> first, then K8S_AUTH_<kubernetes client attribute>.
AUTH_ENV_VARS: dict[str, tuple[str, ...]] = {
    "kubeconfig": ("K8S_AUTH_KUBECONFIG",),
    "context": ("K8S_AUTH_CONTEXT",),
    "host": ("K8S_AUTH_HOST",),
    "api_key": ("K8S_AUTH_API_KEY",),
    "username": ("K8S_AUTH_USERNAME",),
    "password": ("K8S_AUTH_PASSWORD",),
    "validate_certs": ("K8S_AUTH_VALIDATE_CERTS", "K8S_AUTH_VERIFY_SSL"),
    "ca_cert": ("K8S_AUTH_CA_CERT", "K8S_AUTH_SSL_CA_CERT"),
    "client_cert": ("K8S_AUTH_CLIENT_CERT", "K8S_AUTH_CERT_FILE"),
    "client_key": ("K8S_AUTH_CLIENT_KEY", "K8S_AUTH_KEY_FILE"),
    "proxy": ("K8S_AUTH_PROXY",),
    "no_proxy": ("K8S_AUTH_NO_PROXY",),
    "persist_config": ("K8S_AUTH_PERSIST_CONFIG",),
    "impersonate_user": ("K8S_AUTH_IMPERSONATE_USER",),
    "impersonate_groups": ("K8S_AUTH_IMPERSONATE_GROUPS",),
}


PROXY_HEADERS_ENV_PREFIX = "K8S_AUTH_PROXY_HEADERS_"


def auth_argument_spec(own: t.Mapping[str, t.Any] | None = None) -> dict[str, t.Any]:
    """A module's argument_spec: a deep copy of the connection options plus its own options.

    ``dict(AUTH_ARG_SPEC, **own)`` works too; the copy only guards the shared dicts.
    """
    spec = copy.deepcopy(AUTH_ARG_SPEC)
    for name, option in (own or {}).items():
        if name in spec:
            raise ValueError(f"option {name!r} is already a Kubernetes connection option")
        spec[name] = option
    return spec


def _env_bool(value: str) -> bool:
    # kubernetes.core: only 0, false and no (any case) are false.
    return value.strip().lower() not in ("0", "false", "no")


def resolve_auth_params(
    params: t.Mapping[str, t.Any], environ: t.Mapping[str, str] | None = None
) -> dict[str, t.Any]:
    """Connection settings: each option from the task, else from its K8S_AUTH_* variables.

    Returns every connection option (None when unset), with environment strings converted to the
    option's type.
    """
    env = os.environ if environ is None else environ
    auth: dict[str, t.Any] = {}
    for name in K8S_CONNECTION_OPTIONS:
        value = params.get(name)
        if value is None and name == "proxy_headers":
            headers = {
                key: env[PROXY_HEADERS_ENV_PREFIX + key.upper()]
                for key in AUTH_PROXY_HEADERS_SPEC
                if env.get(PROXY_HEADERS_ENV_PREFIX + key.upper())
            }
            value = headers or None
        elif value is None:
            raw = next((env[var] for var in AUTH_ENV_VARS[name] if env.get(var)), None)
            if raw is not None:
                if AUTH_ARG_SPEC[name]["type"] == "bool":
                    value = _env_bool(raw)
                elif name == "impersonate_groups":
                    value = [group.strip() for group in raw.split(",") if group.strip()]
                elif AUTH_ARG_SPEC[name]["type"] in ("path", "raw"):
                    value = os.path.expanduser(raw)
                else:
                    value = raw
        auth[name] = value
    return auth
