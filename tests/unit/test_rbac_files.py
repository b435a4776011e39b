"""The release role and its two halves (routing, deploy) grant exactly the same, and the routing
half writes nothing but Istio objects."""
from __future__ import annotations

from pathlib import Path

import yaml

FILES = Path(__file__).resolve().parents[2] / "playbooks" / "files"


def grants(name: str) -> set[tuple[str, str, str]]:
    rules = yaml.safe_load((FILES / name).read_text())["rules"]
    return {(group, resource, verb) for rule in rules for group in rule["apiGroups"] for resource in rule["resources"]
            for verb in rule["verbs"]}


def test_routing_and_deploy_together_are_the_release_role() -> None:
    routing, deploy = grants("release-rbac-routing.yaml"), grants("release-rbac-deploy.yaml")
    assert routing | deploy == grants("release-rbac.yaml")
    assert not routing & deploy


def test_the_routing_role_writes_only_istio_objects() -> None:
    writes = {"create", "update", "patch", "delete", "deletecollection"}
    written = {(group, resource) for group, resource, verb in grants("release-rbac-routing.yaml") if verb in writes}
    assert written == {("networking.istio.io", "virtualservices"), ("networking.istio.io", "destinationrules"),
                       ("gateway.networking.k8s.io", "httproutes")}


def test_no_role_reads_secrets_or_changes_rbac() -> None:
    for name in ("release-rbac.yaml", "release-rbac-routing.yaml", "release-rbac-deploy.yaml"):
        resources = {resource for _group, resource, _verb in grants(name)}
        groups = {group for group, _resource, _verb in grants(name)}
        assert "secrets" not in resources and "rbac.authorization.k8s.io" not in groups and "*" not in resources
