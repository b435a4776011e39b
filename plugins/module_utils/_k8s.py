# -*- coding: utf-8 -*-
# Copyright: contributors to the canary.istio collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The one Kubernetes client of this collection's modules.

PRIVATE: this module_util is for the modules of canary.istio only and can change at any time.

Why our own client instead of kubernetes.core's: a task of kubernetes.core pays for importing the
``kubernetes`` package and for API discovery before its first request. Our modules only touch kinds
whose REST paths are known (Istio networking objects, Deployments, Pods, Services), so this file
speaks HTTP with ``requests`` and reads kubeconfig files with PyYAML. The ``kubernetes`` package is
imported only for kubeconfig users whose credentials come from an ``exec`` plugin or an
``auth-provider``, which need its loader.

The connection options, their aliases and the ``K8S_AUTH_*`` environment variables are the same as
kubernetes.core's, so ``module_defaults`` groups and AWX's Kubernetes credential work unchanged.

Layout: option spec and resolution (params > environment), kubeconfig reading, transport, errors,
REST paths, and the read-modify-write helpers the writing modules share.
"""

from __future__ import annotations

import atexit
import base64
import copy
import json
import logging
import os
import random
import re
import tempfile
import time
import typing as t
import warnings
from dataclasses import dataclass, field
from urllib.parse import quote

from ansible_collections.canary.istio.plugins.module_utils._http_safety import (
    credential_problem, redirect_refusal, split_userinfo, transport_warnings)
from ansible_collections.canary.istio.plugins.module_utils._redact import REDACTED, basic_auth_token, mask_secrets, redact

# ---------------------------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class K8sError(Exception):
    """Base of every error raised here. Messages never contain credentials."""


class K8sConfigError(K8sError):
    """The connection settings are unusable. ``option`` names the module option to fix."""

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


class K8sConnectionError(K8sError):
    """The API server could not be reached (DNS, refused connection, TLS, timeout)."""


class K8sApiError(K8sError):
    """The API server answered with an error status.

    ``message`` is the server's ``Status.message``; ``details`` its ``Status.details`` (for 422 the
    field causes).
    """

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        method: str | None = None,
        path: str | None = None,
        details: dict[str, t.Any] | None = None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.message = message
        self.method = method
        self.path = path
        self.details = details or {}
        where = f"{method} {path}: " if method and path else ""
        super().__init__(f"{where}{status} {reason}: {message}")


class K8sUnauthorizedError(K8sApiError):
    """401: the credentials were not accepted."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        # The server says no more than "Unauthorized": name the settings that hold the credentials.
        self.args = (
            f"{self.args[0]}. The API server did not accept the credentials: check 'api_key' (the bearer "
            "token) or the user of the kubeconfig's context; a token may have expired or been revoked",
        )


class K8sForbiddenError(K8sApiError):
    """403: RBAC does not allow the request."""


class K8sNotFoundError(K8sApiError):
    """404: the object (or its namespace, or its API version) does not exist."""


class K8sConflictError(K8sApiError):
    """409: stale resourceVersion on a write, or the object already exists on create."""


class K8sInvalidError(K8sApiError):
    """422: the object failed validation."""


_API_ERRORS: dict[int, type[K8sApiError]] = {
    401: K8sUnauthorizedError,
    403: K8sForbiddenError,
    404: K8sNotFoundError,
    409: K8sConflictError,
    422: K8sInvalidError,
}


# ---------------------------------------------------------------------------------------------
# Kubeconfig
# ---------------------------------------------------------------------------------------------

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@dataclass
class ClientConfig:
    """Everything the transport needs, resolved. Secret fields stay out of ``repr``."""

    server: str
    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_cert_file: str | None = None
    client_key_file: str | None = None
    ca_file: str | None = None
    verify_ssl: bool = True
    proxy: str | None = field(default=None, repr=False)
    no_proxy: str | None = None
    proxy_headers: dict[str, str] = field(default_factory=dict, repr=False)
    impersonate_user: str | None = None
    impersonate_groups: list[str] = field(default_factory=list)
    context: str | None = None
    kubeconfig_user: str | None = None
    namespace: str | None = None
    source: str = "parameters"
    temp_files: list[str] = field(default_factory=list, repr=False)
    # Where *-data certificates and keys are written: a module passes its own temporary directory,
    # which Ansible removes even when the run is killed before our cleanup.
    temp_dir: str | None = field(default=None, repr=False)

    def secrets(self) -> list[str]:
        """Strings that must never be shown: token, password, the Basic header they make, proxy
        and URL credentials."""
        values = [self.token, self.password]
        if self.username and self.password:
            values.append(basic_auth_token(self.username, self.password))
        for credentials in (self.proxy_headers.get(k) for k in ("proxy_basic_auth", "basic_auth")):
            if credentials:
                values.extend([credentials, base64.b64encode(credentials.encode("utf-8")).decode("ascii")])
        for url in (self.proxy, self.server):
            values.extend(split_userinfo(url or "")[1])
        return [v for v in values if v]

    def describe(self) -> dict[str, t.Any]:
        """Where the connection came from, safe to return from a module (no credentials)."""
        auth = "none"
        if self.token:
            auth = "token"
        elif self.username and self.password:
            auth = "basic"
        if self.client_cert_file:
            auth = "client-certificate" if auth == "none" else f"{auth}+client-certificate"
        return {
            "server": split_userinfo(self.server)[0],
            "source": self.source,
            "context": self.context,
            "user": self.kubeconfig_user,
            "auth": auth,
            "impersonate_user": self.impersonate_user,
            "validate_certs": self.verify_ssl,
        }

    def cleanup(self) -> None:
        """Remove the temp files holding *-data certificates and keys."""
        while self.temp_files:
            path = self.temp_files.pop()
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def _write_secure_temp(data: bytes, config: ClientConfig) -> str:
    # mkstemp creates the file with mode 0600, readable by this user only.
    fd, path = tempfile.mkstemp(prefix="canary-istio-", suffix=".pem", dir=config.temp_dir)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    config.temp_files.append(path)
    atexit.register(_unlink_quietly, path)
    return path


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=False)
    except (ValueError, TypeError):
        raise K8sConfigError(f"kubeconfig: {what} is not valid base64", option="kubeconfig") from None


def default_kubeconfig_paths(environ: t.Mapping[str, str] | None = None) -> list[str]:
    """What the Kubernetes client reads by default: $KUBECONFIG (a path list) or ~/.kube/config."""
    env = os.environ if environ is None else environ
    if env.get("KUBECONFIG"):
        return [os.path.expanduser(p) for p in env["KUBECONFIG"].split(os.pathsep) if p]
    home = env.get("HOME") or os.path.expanduser("~")
    return [os.path.join(home, ".kube", "config")]


@dataclass
class _Entry:
    """A named cluster/user/context of a kubeconfig, with the folder its relative paths start from."""

    body: dict[str, t.Any]
    base_dir: str


@dataclass
class Kubeconfig:
    """One or more kubeconfig files merged the way kubectl merges $KUBECONFIG: the first file that
    names a cluster, user or context wins, and the first current-context set wins."""

    clusters: dict[str, _Entry] = field(default_factory=dict)
    users: dict[str, _Entry] = field(default_factory=dict)
    contexts: dict[str, _Entry] = field(default_factory=dict)
    current_context: str | None = None
    origin: str = ""

    def add(self, doc: t.Any, base_dir: str, label: str) -> None:
        if doc is None:
            return
        if not isinstance(doc, dict):
            raise K8sConfigError(f"kubeconfig {label} is not a kubeconfig mapping", option="kubeconfig")
        for key, target, inner in (
            ("clusters", self.clusters, "cluster"),
            ("users", self.users, "user"),
            ("contexts", self.contexts, "context"),
        ):
            entries = doc.get(key) or []
            if not isinstance(entries, list):
                raise K8sConfigError(f"kubeconfig {label}: {key} must be a list of entries, got {type(entries).__name__}",
                                     option="kubeconfig")
            for index, item in enumerate(entries):
                # Only the types are named, never a value: a misplaced string may be a token.
                if not isinstance(item, dict):
                    raise K8sConfigError(
                        f"kubeconfig {label}: {key}[{index}] must be a mapping with name and {inner}, "
                        f"got a {type(item).__name__}", option="kubeconfig")
                if not item.get("name"):
                    raise K8sConfigError(
                        f"kubeconfig {label}: every entry of {key} needs a name", option="kubeconfig"
                    )
                body = item.get(inner) or {}
                if not isinstance(body, dict):
                    raise K8sConfigError(
                        f"kubeconfig {label}: the {inner} of {key[:-1]} {str(item['name'])!r} must be a mapping, "
                        f"got a {type(body).__name__}", option="kubeconfig")
                target.setdefault(str(item["name"]), _Entry(dict(body), base_dir))
        if not self.current_context and doc.get("current-context"):
            self.current_context = str(doc["current-context"])


def _readable_path(path: str) -> str:
    """``'config' in /root/.kube``: the kubeconfig option is no_log and Ansible masks its value
    wherever it appears in a result; naming file and folder apart keeps the path readable."""
    return f"{os.path.basename(path)!r} in {os.path.dirname(os.path.abspath(path))}"


def read_kubeconfig(kubeconfig: t.Any, from_env: str | None = None) -> Kubeconfig:
    """Parse a kubeconfig given as a path, a path list joined with os.pathsep, or a dict.

    ``from_env`` names the variable the path came from, for the error message.
    """
    import yaml  # lazily: only tasks that read a kubeconfig pay for it

    merged = Kubeconfig()
    if isinstance(kubeconfig, dict):
        merged.origin = "kubeconfig (dict)"
        merged.add(kubeconfig, os.getcwd(), "(dict)")
        return merged
    if not isinstance(kubeconfig, str) or not kubeconfig.strip():
        raise K8sConfigError(
            "kubeconfig must be a path to a kubeconfig file or a kubeconfig dict", option="kubeconfig"
        )
    paths = [os.path.expanduser(p) for p in kubeconfig.split(os.pathsep) if p]
    via = f" (from {from_env})" if from_env else ""
    found = [p for p in paths if os.path.isfile(p)]
    if not found:
        missing = "; ".join(f"no file {_readable_path(p)}" for p in paths)
        raise K8sConfigError(
            f"kubeconfig not found{via}: {missing}. Set the option 'kubeconfig' "
            "(or K8S_AUTH_KUBECONFIG) to an existing kubeconfig file",
            option="kubeconfig",
        )
    for path in found:
        try:
            with open(path, "rb") as handle:
                doc = yaml.safe_load(handle)
        except (OSError, yaml.YAMLError) as exc:
            # The YAML error quotes a line of the file, which may hold a token: keep only the place.
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise K8sConfigError(
                f"kubeconfig {_readable_path(path)}{via} cannot be read{where}: {type(exc).__name__}",
                option="kubeconfig",
            ) from None
        merged.add(doc, os.path.dirname(os.path.abspath(path)), path)
    merged.origin = "kubeconfig " + ", ".join(_readable_path(p) for p in found)
    return merged


def _abspath(value: str, base_dir: str) -> str:
    value = os.path.expanduser(value)
    return value if os.path.isabs(value) else os.path.join(base_dir, value)


def _kubeconfig_file(value: t.Any, base_dir: str, what: str, origin: str) -> str:
    """A file named by the kubeconfig (relative to its folder), which must exist."""
    path = _abspath(str(value), base_dir)
    if not os.path.isfile(path):
        raise K8sConfigError(f"{what} file {path} named in {origin} not found", option="kubeconfig")
    return path


def _kubeconfig_has_plugin(user: dict[str, t.Any]) -> bool:
    return bool(user.get("exec") or user.get("auth-provider"))


def config_from_kubeconfig(
    kubeconfig: Kubeconfig, context: str | None = None, persist_config: bool | None = None, temp_dir: str | None = None
) -> ClientConfig:
    """Resolve one context of a parsed kubeconfig into a ClientConfig."""
    name = context or kubeconfig.current_context
    available = ", ".join(sorted(kubeconfig.contexts)) or "none"
    if not name:
        raise K8sConfigError(
            f"{kubeconfig.origin} has no current-context: set the option 'context' "
            f"(or K8S_AUTH_CONTEXT); contexts: {available}",
            option="context",
        )
    if name not in kubeconfig.contexts:
        raise K8sConfigError(
            f"context {name!r} not found in {kubeconfig.origin}: set the option 'context' "
            f"(or K8S_AUTH_CONTEXT) to one of: {available}",
            option="context",
        )
    ctx = kubeconfig.contexts[name].body
    cluster_name = ctx.get("cluster")
    if not cluster_name or cluster_name not in kubeconfig.clusters:
        raise K8sConfigError(
            f"context {name!r} in {kubeconfig.origin} refers to cluster {cluster_name!r}, "
            "which the kubeconfig does not define",
            option="kubeconfig",
        )
    cluster_entry = kubeconfig.clusters[cluster_name]
    cluster = cluster_entry.body
    user_name = ctx.get("user")
    user_entry = kubeconfig.users.get(user_name) if user_name else None
    if user_name and user_entry is None:
        raise K8sConfigError(
            f"context {name!r} in {kubeconfig.origin} refers to user {user_name!r}, "
            "which the kubeconfig does not define",
            option="kubeconfig",
        )
    user = user_entry.body if user_entry else {}

    config = ClientConfig(
        server=str(cluster.get("server") or ""),
        context=name,
        kubeconfig_user=user_name,
        namespace=ctx.get("namespace"),
        source=kubeconfig.origin,
        temp_dir=temp_dir,
    )
    try:
        config.verify_ssl = not _insecure_skip_tls_verify(cluster, cluster_name, kubeconfig.origin)
        if cluster.get("certificate-authority-data"):
            data = _b64(cluster["certificate-authority-data"], f"certificate-authority-data of cluster {cluster_name!r}")
            config.ca_file = _write_secure_temp(data, config)
        elif cluster.get("certificate-authority"):
            config.ca_file = _kubeconfig_file(
                cluster["certificate-authority"], cluster_entry.base_dir,
                f"certificate-authority of cluster {cluster_name!r}", kubeconfig.origin)
        if cluster.get("proxy-url"):
            config.proxy = str(cluster["proxy-url"])

        base_dir = user_entry.base_dir if user_entry else cluster_entry.base_dir
        if user.get("client-certificate-data"):
            data = _b64(user["client-certificate-data"], f"client-certificate-data of user {user_name!r}")
            config.client_cert_file = _write_secure_temp(data, config)
        elif user.get("client-certificate"):
            config.client_cert_file = _kubeconfig_file(
                user["client-certificate"], base_dir, f"client-certificate of user {user_name!r}", kubeconfig.origin)
        if user.get("client-key-data"):
            data = _b64(user["client-key-data"], f"client-key-data of user {user_name!r}")
            config.client_key_file = _write_secure_temp(data, config)
        elif user.get("client-key"):
            config.client_key_file = _kubeconfig_file(
                user["client-key"], base_dir, f"client-key of user {user_name!r}", kubeconfig.origin)

        if user.get("token"):
            config.token = str(user["token"]).strip()
        elif user.get("tokenFile"):
            token_file = _abspath(user["tokenFile"], base_dir)
            try:
                with open(token_file, encoding="utf-8") as handle:
                    config.token = handle.read().strip()
            except OSError:
                raise K8sConfigError(
                    f"tokenFile {token_file} of user {user_name!r} in {kubeconfig.origin} cannot be read",
                    option="kubeconfig",
                ) from None
        elif _kubeconfig_has_plugin(user):
            _credentials_from_plugin(config, name, cluster, user, base_dir, persist_config)
        if user.get("username") and user.get("password") and not config.token:
            config.username = str(user["username"])
            config.password = str(user["password"])
        if user.get("as"):
            config.impersonate_user = str(user["as"])
        if user.get("as-groups"):
            config.impersonate_groups = [str(g) for g in user["as-groups"]]
    except BaseException:
        config.cleanup()
        raise
    return config


def _insecure_skip_tls_verify(cluster: dict[str, t.Any], name: str, origin: str) -> bool:
    """The cluster's ``insecure-skip-tls-verify``, a real YAML boolean: the quoted string
    ``"false"`` is truthy in Python and would turn verification off. Like kubectl, a CA together
    with it is a contradiction, refused rather than guessed."""
    value = cluster.get("insecure-skip-tls-verify", False)
    if not isinstance(value, bool):
        raise K8sConfigError(
            f"insecure-skip-tls-verify of cluster {name!r} in {origin} must be true or false without quotes, got "
            f"{value!r}", option="kubeconfig")
    if value and (cluster.get("certificate-authority-data") or cluster.get("certificate-authority")):
        raise K8sConfigError(
            f"cluster {name!r} in {origin} sets both insecure-skip-tls-verify and a certificate authority; "
            "kubectl refuses that too: remove insecure-skip-tls-verify (verify with the CA) or the CA", option="kubeconfig")
    return value


def _credentials_from_plugin(
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


def in_cluster_config(
    environ: t.Mapping[str, str] | None = None, sa_dir: str = SERVICE_ACCOUNT_DIR
) -> ClientConfig | None:
    """The pod's service account, when running inside a cluster (AWX container groups); else None."""
    env = os.environ if environ is None else environ
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    token_file = os.path.join(sa_dir, "token")
    if not host or not port or not os.path.isfile(token_file):
        return None
    with open(token_file, encoding="utf-8") as handle:
        token = handle.read().strip()
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6
    ca_file = os.path.join(sa_dir, "ca.crt")
    namespace = None
    if os.path.isfile(os.path.join(sa_dir, "namespace")):
        with open(os.path.join(sa_dir, "namespace"), encoding="utf-8") as handle:
            namespace = handle.read().strip() or None
    return ClientConfig(
        server=f"https://{host}:{port}",
        token=token,
        ca_file=ca_file if os.path.isfile(ca_file) else None,
        namespace=namespace,
        source="in-cluster service account",
    )


def load_client_config(
    auth: t.Mapping[str, t.Any], environ: t.Mapping[str, str] | None = None, temp_dir: str | None = None
) -> ClientConfig:
    """Turn resolved connection settings (see resolve_auth_params) into a ClientConfig.

    Follows kubernetes.core's order: when host plus api_key, username plus password, or client
    cert plus key are given, no kubeconfig is read. Else ``kubeconfig``/``context`` select a
    kubeconfig (by default $KUBECONFIG or ~/.kube/config). With neither, the in-cluster service
    account is tried first, then the default kubeconfig. Explicit options override what the
    kubeconfig says.
    """
    env = os.environ if environ is None else environ
    host = (auth.get("host") or "").rstrip("/") or None
    explicit = bool(host) and bool(
        auth.get("api_key")
        or (auth.get("username") and auth.get("password"))
        or (auth.get("client_cert") and auth.get("client_key"))
    )
    config: ClientConfig | None = None
    if explicit:
        config = ClientConfig(server=host or "")
    elif auth.get("kubeconfig") is not None or auth.get("context"):
        kubeconfig = auth.get("kubeconfig")
        from_env = None
        if kubeconfig is None:
            kubeconfig = os.pathsep.join(default_kubeconfig_paths(env))
            from_env = "KUBECONFIG" if env.get("KUBECONFIG") else None
        config = config_from_kubeconfig(
            read_kubeconfig(kubeconfig, from_env), auth.get("context"), auth.get("persist_config"), temp_dir
        )
    else:
        config = in_cluster_config(env)
        if config is None:
            paths = default_kubeconfig_paths(env)
            if any(os.path.isfile(p) for p in paths):
                config = config_from_kubeconfig(
                    read_kubeconfig(os.pathsep.join(paths)), None, auth.get("persist_config"), temp_dir
                )
            elif not host:
                raise K8sConfigError(
                    "no Kubernetes cluster configured: set the option 'kubeconfig' (and 'context'), "
                    "or 'host' with 'api_key', or the K8S_AUTH_* environment variables; "
                    f"no kubeconfig at {os.pathsep.join(paths)}",
                    option="kubeconfig",
                )
            else:
                config = ClientConfig(server=host)
    try:
        _apply_explicit_options(config, auth, host)
    except BaseException:
        config.cleanup()
        raise
    return config


def _apply_explicit_options(config: ClientConfig, auth: t.Mapping[str, t.Any], host: str | None) -> None:
    if host:
        config.server = host
        if config.source != "parameters":
            config.source += " (host from option)"
    if auth.get("api_key"):
        config.token = str(auth["api_key"])
    if auth.get("username"):
        config.username = str(auth["username"])
    if auth.get("password"):
        config.password = str(auth["password"])
    if auth.get("validate_certs") is not None:
        config.verify_ssl = bool(auth["validate_certs"])
    for option, attr in (("ca_cert", "ca_file"), ("client_cert", "client_cert_file"), ("client_key", "client_key_file")):
        if auth.get(option):
            path = os.path.expanduser(str(auth[option]))
            if not os.path.isfile(path):
                raise K8sConfigError(f"{option}: file {path} not found", option=option)
            setattr(config, attr, path)
    if auth.get("proxy"):
        config.proxy = str(auth["proxy"])
    if auth.get("no_proxy"):
        config.no_proxy = str(auth["no_proxy"])
    if auth.get("proxy_headers"):
        config.proxy_headers = {k: str(v) for k, v in auth["proxy_headers"].items() if v}
    if auth.get("impersonate_user"):
        config.impersonate_user = str(auth["impersonate_user"])
    if auth.get("impersonate_groups"):
        config.impersonate_groups = [str(g) for g in auth["impersonate_groups"]]
    _validate_config(config)


def _validate_config(config: ClientConfig) -> None:
    if not config.server:
        raise K8sConfigError(
            f"no API server URL in {config.source}: set the option 'host' (or K8S_AUTH_HOST)", option="host"
        )
    if not config.server.startswith(("https://", "http://")):
        raise K8sConfigError(
            f"host {split_userinfo(config.server)[0]!r} must be a URL such as https://127.0.0.1:6443", option="host"
        )
    if bool(config.client_cert_file) != bool(config.client_key_file):
        raise K8sConfigError(
            "client_cert and client_key must be given together (one of them is missing)", option="client_key"
        )
    from_kubeconfig = config.source != "parameters"
    for what, value, option in (("token", config.token, "kubeconfig" if from_kubeconfig else "api_key"),
                                ("username", config.username, "username"), ("password", config.password, "password"),
                                ("impersonate_user", config.impersonate_user, "impersonate_user")):
        _check_header_safe(what, value, option, config.source)
    for group in config.impersonate_groups or []:
        _check_header_safe("impersonate_groups entry", group, "impersonate_groups", config.source)


def _check_header_safe(what: str, value: str | None, option: str, source: str) -> None:
    """Refuse a credential that cannot travel in an HTTP header, naming it and never its value."""
    problem = credential_problem(value, f"the {what} from {source}")
    if problem:
        raise K8sConfigError(problem, option=option)


# ---------------------------------------------------------------------------------------------
# Transport
# ---------------------------------------------------------------------------------------------

DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 60.0)  # connect, read (seconds)
USER_AGENT = "canary.istio"


def _basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode("utf-8")).decode("ascii")


def _build_session(config: ClientConfig) -> t.Any:
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3 import HTTPHeaderDict

    groups = list(config.impersonate_groups)
    # proxy_headers go to the proxy (with CONNECT for https), as kubernetes.core sends them.
    extra_proxy_headers: dict[str, str] = {}
    if config.proxy_headers.get("proxy_basic_auth"):
        extra_proxy_headers["Proxy-Authorization"] = _basic(config.proxy_headers["proxy_basic_auth"])
    if config.proxy_headers.get("basic_auth"):
        extra_proxy_headers["Authorization"] = _basic(config.proxy_headers["basic_auth"])
    if config.proxy_headers.get("user_agent"):
        extra_proxy_headers["User-Agent"] = config.proxy_headers["user_agent"]

    class _Adapter(HTTPAdapter):
        def add_headers(self, request: t.Any, **kwargs: t.Any) -> None:
            # The API server reads one group per Impersonate-Group header line; requests keeps one
            # value per header name, so the repeated lines are added on the way out.
            if groups:
                headers = HTTPHeaderDict(dict(request.headers))
                for group in groups:
                    headers.add("Impersonate-Group", group)
                request.headers = headers

        def proxy_headers(self, proxy: str) -> dict[str, str]:
            headers = super().proxy_headers(proxy)
            headers.update(extra_proxy_headers)
            return headers

    session = requests.Session()
    session.trust_env = False  # like kubernetes.core: HTTP(S)_PROXY and .netrc do not apply
    adapter = _Adapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    if config.verify_ssl:
        session.verify = config.ca_file or True
    else:
        session.verify = False
    if config.client_cert_file and config.client_key_file:
        session.cert = (config.client_cert_file, config.client_key_file)
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    if config.token:
        headers["Authorization"] = "Bearer " + config.token
    elif config.username and config.password:
        headers["Authorization"] = _basic(f"{config.username}:{config.password}")
    if config.impersonate_user:
        headers["Impersonate-User"] = config.impersonate_user
    session.headers.update(headers)
    if config.proxy:
        bypass = False
        if config.no_proxy:
            from requests.utils import should_bypass_proxies

            bypass = should_bypass_proxies(config.server, no_proxy=config.no_proxy)
        if not bypass:
            session.proxies = {"http": config.proxy, "https": config.proxy}
    return session


def format_label_selector(labels: t.Mapping[str, str] | str | None) -> str | None:
    """``{"app": "reviews", "version": "v2"}`` -> ``"app=reviews,version=v2"`` (sorted)."""
    if labels is None or isinstance(labels, str):
        return labels
    return ",".join(f"{key}={labels[key]}" for key in sorted(labels))


class K8sClient:
    """A Kubernetes API client for known REST paths: JSON in, dicts out, K8sError on failure."""

    def __init__(self, config: ClientConfig, timeout: float | tuple[float, float] = DEFAULT_TIMEOUT) -> None:
        self.config = config
        self.timeout = timeout
        self.requests_made = 0
        self._session = _build_session(config)

    @property
    def server(self) -> str:
        return self.config.server

    def get(self, path: str) -> dict[str, t.Any]:
        """GET one object; raises K8sNotFoundError when it does not exist."""
        return self._request("GET", path)

    def list(self, path: str, label_selector: t.Mapping[str, str] | str | None = None) -> dict[str, t.Any]:
        """GET a collection (a ``*List`` object, objects under ``items``)."""
        selector = format_label_selector(label_selector)
        return self._request("GET", path, params={"labelSelector": selector} if selector else None)

    def create(self, path: str, body: dict[str, t.Any], dry_run: bool = False) -> dict[str, t.Any]:
        """POST ``body`` to the collection ``path``."""
        return self._request("POST", path, body=body, dry_run=dry_run)

    def replace(self, path: str, body: dict[str, t.Any], dry_run: bool = False) -> dict[str, t.Any]:
        """PUT the whole object; with ``metadata.resourceVersion`` set, a stale write gets 409."""
        return self._request("PUT", path, body=body, dry_run=dry_run)

    def delete(self, path: str, dry_run: bool = False) -> dict[str, t.Any]:
        """DELETE the object at ``path``."""
        return self._request("DELETE", path, dry_run=dry_run)

    def close(self) -> None:
        self._session.close()
        self.config.cleanup()

    def __enter__(self) -> K8sClient:
        return self

    def __exit__(self, *exc_info: t.Any) -> None:
        self.close()

    def _request(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        body: dict[str, t.Any] | None = None,
        dry_run: bool = False,
    ) -> dict[str, t.Any]:
        import requests

        if not path.startswith("/"):
            raise ValueError(f"API path must start with '/': {path!r}")
        query = dict(params or {})
        if dry_run:
            query["dryRun"] = "All"
        headers = {"Content-Type": "application/json"} if body is not None else None
        data = json.dumps(body).encode("utf-8") if body is not None else None
        secrets = self.config.secrets()
        self.requests_made += 1
        try:
            with warnings.catch_warnings():
                if not self.config.verify_ssl:
                    # validate_certs=false was asked for; client_from_module warns once instead.
                    from urllib3.exceptions import InsecureRequestWarning

                    warnings.simplefilter("ignore", InsecureRequestWarning)
                response = self._session.request(
                    method, self.config.server + path, params=query or None, data=data,
                    headers=headers, timeout=self.timeout, allow_redirects=False,
                )
        except requests.exceptions.SSLError as exc:
            raise K8sConnectionError(redact(
                f"{method} {path}: TLS error talking to {split_userinfo(self.config.server)[0]}: {exc}. Give the cluster's "
                "CA with 'ca_cert' (or certificate-authority in the kubeconfig), or set "
                "validate_certs=false for a test cluster", secrets)) from None
        except requests.exceptions.RequestException as exc:
            raise K8sConnectionError(redact(
                f"{method} {path}: cannot reach the API server {split_userinfo(self.config.server)[0]}: {exc}",
                secrets)) from None
        refusal = redirect_refusal(f"{method} {path} on {split_userinfo(self.config.server)[0]}", response,
                                   "host (or the server of the kubeconfig's cluster)")
        if refusal:
            raise K8sConnectionError(redact(refusal, secrets))
        if 200 <= response.status_code < 300:
            if not response.content:
                return {}
            try:
                return response.json()
            except ValueError:
                raise K8sApiError(response.status_code, response.reason or "",
                                  "the API server answered with a body that is not JSON", method, path) from None
        raise _api_error(method, path, response, secrets)


def _api_error(method: str, path: str, response: t.Any, secrets: list[str]) -> K8sApiError:
    status = response.status_code
    reason = response.reason or ""
    details: dict[str, t.Any] = {}
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict) and payload.get("kind") == "Status":
        message = str(payload.get("message") or reason)
        reason = str(payload.get("reason") or reason)
        details = payload.get("details") or {}
    else:
        message = (response.text or reason).strip()[:500]
    cls = _API_ERRORS.get(status, K8sApiError)
    return cls(status, reason, redact(message, secrets), method, path, details)


# ---------------------------------------------------------------------------------------------
# REST paths (no discovery: these kinds live at fixed places)
# ---------------------------------------------------------------------------------------------


def _segment(value: str, what: str) -> str:
    if not value or not isinstance(value, str) or value in (".", "..") or "/" in value:
        raise ValueError(f"{what} must be a non-empty Kubernetes name without '/', got {value!r}")
    return quote(value, safe="")


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
    path = f"/apis/{normalize_istio_api_version(api_version)}/namespaces/{_segment(namespace, 'namespace')}/{_segment(plural, 'plural')}"
    return f"{path}/{_segment(name, 'name')}" if name is not None else path


def deployments_path(namespace: str, name: str | None = None) -> str:
    path = f"/apis/apps/v1/namespaces/{_segment(namespace, 'namespace')}/deployments"
    return f"{path}/{_segment(name, 'name')}" if name is not None else path


def pods_path(namespace: str) -> str:
    return f"/api/v1/namespaces/{_segment(namespace, 'namespace')}/pods"


def services_path(namespace: str, name: str | None = None) -> str:
    path = f"/api/v1/namespaces/{_segment(namespace, 'namespace')}/services"
    return f"{path}/{_segment(name, 'name')}" if name is not None else path


# ---------------------------------------------------------------------------------------------
# Read-modify-write
# ---------------------------------------------------------------------------------------------


class UpdateResult(t.NamedTuple):
    """What a write helper did. ``after`` is the server's answer (the dry-run result in check mode)."""

    before: dict[str, t.Any] | None
    after: dict[str, t.Any] | None
    changed: bool
    attempts: int


# Attempts of a write that keeps meeting 409s. Each attempt's window (its GET to its PUT) is lost
# when anyone else writes the object meanwhile: with busy co-writers (controllers, people) on a slow
# API server, 5 attempts within ~3 s failed a release step, which then rolled back (50 writers at
# ~3 writes/s on a loaded sandbox). 20 attempts wait up to ~15 s (backoff capped at 1 s).
CONFLICT_RETRIES = 20


def _backoff(attempt: int) -> float:
    # 50 ms, 100 ms, 200 ms ... capped at 1 s, jittered so two writers do not retry in step.
    return min(1.0, 0.05 * (2 ** (attempt - 1))) * random.uniform(0.5, 1.0)


def _put_with_version(
    client: K8sClient, path: str, live: dict[str, t.Any], new: dict[str, t.Any], dry_run: bool
) -> dict[str, t.Any]:
    body = copy.deepcopy(new)
    version = (live.get("metadata") or {}).get("resourceVersion")
    body.setdefault("metadata", {})["resourceVersion"] = version
    return client.replace(path, body, dry_run=dry_run)


def update_with_retry(
    client: K8sClient,
    path: str,
    change: t.Callable[[dict[str, t.Any]], dict[str, t.Any]],
    dry_run: bool = False,
    retries: int = CONFLICT_RETRIES,
    live: dict[str, t.Any] | None = None,
) -> UpdateResult:
    """Apply ``change`` to a fresh read of the object at ``path`` and PUT it back.

    ``change(live) -> new`` gets a deep copy and must be pure, because it is applied again to a
    new read after a 409 (someone else wrote in between): that is how both changes survive. When
    ``new == live`` nothing is written. Raises K8sNotFoundError when the object does not exist,
    K8sConflictError when ``retries`` attempts all conflicted, and whatever ``change`` raises.

    ``live``: the object as the caller just read it (it had to look before deciding to write);
    the first attempt uses it instead of a second GET, later attempts read afresh.
    """
    attempt = 0
    first_read = live
    while True:
        attempt += 1
        live = first_read if attempt == 1 and first_read is not None else client.get(path)
        new = change(copy.deepcopy(live))
        if new == live:
            return UpdateResult(live, live, False, attempt)
        try:
            after = _put_with_version(client, path, live, new, dry_run)
        except K8sConflictError:
            if attempt >= retries:
                raise
            time.sleep(_backoff(attempt))
            continue
        return UpdateResult(live, after, True, attempt)


def ensure(
    client: K8sClient,
    path_collection: str,
    name: str,
    build: t.Callable[[dict[str, t.Any] | None], dict[str, t.Any] | None],
    dry_run: bool = False,
    retries: int = CONFLICT_RETRIES,
) -> UpdateResult:
    """Create or update the object ``name`` in the collection ``path_collection``.

    ``build(live_or_None) -> obj`` returns the whole wanted object (with apiVersion, kind and
    metadata.name when creating), or None to leave things as they are. A create that meets an
    object created meanwhile, or an update that meets a newer version, re-reads and rebuilds.
    """
    path = f"{path_collection}/{_segment(name, 'name')}"
    attempt = 0
    while True:
        attempt += 1
        try:
            live: dict[str, t.Any] | None = client.get(path)
        except K8sNotFoundError:
            live = None
        new = build(copy.deepcopy(live))
        if new is None or new == live:
            return UpdateResult(live, live, False, attempt)
        try:
            if live is None:
                after = client.create(path_collection, new, dry_run=dry_run)
            else:
                after = _put_with_version(client, path, live, new, dry_run)
        except (K8sConflictError, K8sNotFoundError) as exc:
            # 409: created or changed by someone else; 404 on PUT: deleted meanwhile. A 404 on
            # create means the namespace is missing, which a retry cannot fix.
            if attempt >= retries or (live is None and isinstance(exc, K8sNotFoundError)):
                raise
            time.sleep(_backoff(attempt))
            continue
        return UpdateResult(live, after, True, attempt)


def ensure_absent(client: K8sClient, path: str, dry_run: bool = False) -> UpdateResult:
    """Delete the object at ``path`` if it exists; a second run reports no change."""
    try:
        live = client.get(path)
    except K8sNotFoundError:
        return UpdateResult(None, None, False, 1)
    try:
        client.delete(path, dry_run=dry_run)
    except K8sNotFoundError:
        return UpdateResult(None, None, False, 1)  # deleted by someone else in between
    return UpdateResult(live, None, True, 1)


# ---------------------------------------------------------------------------------------------
# Module glue
# ---------------------------------------------------------------------------------------------


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
        module.fail_json(msg=str(exc), option=exc.option)
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


def fail_from_k8s_error(module: t.Any, exc: K8sError, action: str) -> t.NoReturn:
    """Fail the module with ``action`` and the API server's answer (status, reason, message)."""
    result: dict[str, t.Any] = {"msg": f"{action}: {exc}"}
    if isinstance(exc, K8sApiError):
        result.update(status=exc.status, reason=exc.reason)
        if exc.details.get("causes"):
            result["causes"] = exc.details["causes"]
    module.fail_json(**result)
    raise AssertionError("unreachable")  # fail_json exits
