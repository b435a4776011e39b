# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which API server and which credentials, in kubernetes.core's order: explicit options, else a
kubeconfig (``kubeconfig``/``context``, $KUBECONFIG, ~/.kube/config), else the pod's service account;
explicit options override what the kubeconfig says. Refuses settings that cannot work, naming the
option to fix.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import os
import typing as t

from ansible_collections.canary.istio.plugins.module_utils._http.safety import credential_problem, split_userinfo
from ansible_collections.canary.istio.plugins.module_utils._k8s.config import ClientConfig
from ansible_collections.canary.istio.plugins.module_utils._k8s.errors import K8sConfigError
from ansible_collections.canary.istio.plugins.module_utils._k8s.kubeconfig import config_from_kubeconfig, default_kubeconfig_paths, read_kubeconfig


SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


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
