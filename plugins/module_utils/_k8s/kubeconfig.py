# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Kubeconfig files read and merged the way kubectl does, and one context of them resolved into a
``ClientConfig``. Read with PyYAML: the ``kubernetes`` package is imported only for a user whose
credentials come from a plugin (exec_plugin.py).

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import base64
import os
import typing as t
from dataclasses import dataclass, field

from ansible_collections.canary.istio.plugins.module_utils._k8s.config import ClientConfig, write_secure_temp
from ansible_collections.canary.istio.plugins.module_utils._k8s.errors import K8sConfigError
from ansible_collections.canary.istio.plugins.module_utils._k8s.exec_plugin import credentials_from_plugin


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


def _material(entry: dict[str, t.Any], key: str, base_dir: str, owner: str, config: ClientConfig,
              origin: str) -> str | None:
    """The file of a certificate or key the kubeconfig gives inline (``<key>-data``, base64, written
    to a private temporary file) or by path (``<key>``, relative to the kubeconfig's folder)."""
    if entry.get(f"{key}-data"):
        return write_secure_temp(_b64(entry[f"{key}-data"], f"{key}-data of {owner}"), config)
    if entry.get(key):
        return _kubeconfig_file(entry[key], base_dir, f"{key} of {owner}", origin)
    return None


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
        config.ca_file = _material(cluster, "certificate-authority", cluster_entry.base_dir,
                                   f"cluster {cluster_name!r}", config, kubeconfig.origin)
        if cluster.get("proxy-url"):
            config.proxy = str(cluster["proxy-url"])

        base_dir = user_entry.base_dir if user_entry else cluster_entry.base_dir
        config.client_cert_file = _material(user, "client-certificate", base_dir, f"user {user_name!r}", config,
                                            kubeconfig.origin)
        config.client_key_file = _material(user, "client-key", base_dir, f"user {user_name!r}", config, kubeconfig.origin)

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
            credentials_from_plugin(config, name, cluster, user, base_dir, persist_config)
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
