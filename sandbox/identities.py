"""Identities bound to a given set of RBAC rules, for tests of what a role allows.

Each is a ServiceAccount of a fresh namespace, bound by a RoleBinding (as docs/rbac.md says to
bind the release roles) to a ClusterRole made of the given rules, with a kubeconfig holding a
token from the TokenRequest API.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import yaml

from . import cluster as sandbox_cluster
from .api import AdminApi

RBAC = "/apis/rbac.authorization.k8s.io/v1"


def role_rules(path: Path) -> list[dict]:
    """The rules of a ClusterRole file."""
    return yaml.safe_load(path.read_text())["rules"]


class Identity:
    """A fresh namespace with a ServiceAccount bound only to a ClusterRole holding ``rules``."""

    def __init__(self, admin: AdminApi, rules: list, tag: str, workdir: Path, context: str = "sandbox-1"):
        self.admin = admin
        uid = uuid.uuid4().hex[:6]
        self.namespace = f"lp-{tag}-{uid}"[:63]
        self.role = f"canary-istio-test-{tag}-{uid}"[:63]
        self.user = f"system:serviceaccount:{self.namespace}:releaser"
        self.kubeconfig = str(workdir / f"kubeconfig-{self.namespace}")
        self.context = context
        sandbox_cluster.create_namespace(admin, self.namespace, release_binding=False)
        admin.create(f"{RBAC}/clusterroles", {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                                              "metadata": {"name": self.role}, "rules": rules})
        admin.create(f"{RBAC}/namespaces/{self.namespace}/rolebindings", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "canary-istio-release"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": self.role},
            "subjects": [{"kind": "ServiceAccount", "name": "releaser", "namespace": self.namespace}]})
        admin.create(f"/api/v1/namespaces/{self.namespace}/serviceaccounts",
                     {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "releaser"}})
        token = admin.create(f"/api/v1/namespaces/{self.namespace}/serviceaccounts/releaser/token", {
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}})
        self.token = token["status"]["token"]
        doc = sandbox_cluster.kubeconfig_doc([(context, admin.server, str(admin.session.verify), self.token)], context)
        with open(os.open(self.kubeconfig, os.O_WRONLY | os.O_CREAT, 0o600), "w", encoding="utf-8") as out:
            out.write(yaml.safe_dump(doc))

    def api(self) -> AdminApi:
        """A client of the API server acting as this identity."""
        return AdminApi(self.admin.server, self.token, self.admin.session.verify)

    def delete(self) -> None:
        self.admin.delete(f"/api/v1/namespaces/{self.namespace}")
        self.admin.delete(f"{RBAC}/clusterroles/{self.role}")
