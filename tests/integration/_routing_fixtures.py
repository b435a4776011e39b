"""Bookinfo objects and API-request counting shared by the traffic_split, fault_injection and
mesh_info integration tests.

Objects come from Istio's bookinfo manifests (fetched by `sandbox build`) and are created with the admin client (an
independent observer, not the collection's client). Requests are counted from the audit log by
the collection's User-Agent, so the tests' own admin reads and writes are never counted.
"""
from __future__ import annotations

import copy
import json

import yaml

from sandbox import versions
from sandbox.api import AdminApi, collection_path
from sandbox.audit import WRITE_VERBS, AuditLog

BOOKINFO = versions.BOOKINFO_DIR
MODULE_USER_AGENT = "canary.istio"  # _k8s.USER_AGENT


def manifest(relative: str) -> list[dict]:
    """Every document of a bookinfo manifest, e.g. ``networking/destination-rule-all.yaml``."""
    return [d for d in yaml.safe_load_all((BOOKINFO / relative).read_text()) if d]


def bookinfo_object(relative: str, kind: str, name: str) -> dict:
    """A fresh copy of one object of a bookinfo manifest."""
    for doc in manifest(relative):
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return copy.deepcopy(doc)
    raise KeyError(f"{kind} {name} not in {relative}")


def object_path(kind: str, namespace: str, name: str) -> str:
    return f"{collection_path(kind, namespace)}/{name}"


def create(admin: AdminApi, namespace: str, obj: dict) -> dict:
    body = copy.deepcopy(obj)
    body["metadata"] = {k: v for k, v in body["metadata"].items() if k in ("name", "labels", "annotations")}
    return admin.create(collection_path(body["kind"], namespace), body)


def deploy_app(admin: AdminApi, namespace: str, app: str, ready_versions=("v1",), service: bool = True,
               timeout: float = 90) -> None:
    """The app's Service and ServiceAccount and one Deployment per version, waited until Ready."""
    platform = "platform/bookinfo.yaml"
    docs = [bookinfo_object(platform, "ServiceAccount", f"bookinfo-{app}")]
    if service:
        docs.append(bookinfo_object(platform, "Service", app))
    docs += [bookinfo_object(platform, "Deployment", f"{app}-{v}") for v in ready_versions]
    admin.apply_manifest(docs, namespace)
    for version in ready_versions:
        path = object_path("Deployment", namespace, f"{app}-{version}")
        admin.wait_for(f"{app}-{version} Ready", lambda p=path: admin.get(p).get("status", {}).get("readyReplicas") == 1,
                       timeout)


def spec_of(admin: AdminApi, kind: str, namespace: str, name: str) -> dict:
    return admin.get(object_path(kind, namespace, name))["spec"]


def _json_numbers(value):
    # JSON has one number type: YAML's 100.0 is stored and read back by the API server as 100.
    if isinstance(value, dict):
        return {k: _json_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_numbers(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def canonical(value) -> str:
    """Byte-for-byte comparable text of a spec (key order and integral numbers normalised, as the
    API server stores JSON)."""
    return json.dumps(_json_numbers(value), sort_keys=True, separators=(",", ":"))


class Requests:
    """The collection's API requests in one namespace since the audit mark, by kind of request."""

    def __init__(self, audit: AuditLog, namespace: str):
        self.events = [
            e for e in audit.events()
            if e.get("userAgent") == MODULE_USER_AGENT and (e.get("objectRef") or {}).get("namespace") == namespace
        ]

    @staticmethod
    def _dry(event: dict) -> bool:
        return "dryRun=All" in event.get("requestURI", "")

    @property
    def reads(self) -> list[tuple[str, str]]:
        return [(e["verb"], e["objectRef"]["resource"]) for e in self.events if e["verb"] in ("get", "list", "watch")]

    @property
    def writes(self) -> list[tuple[str, str]]:
        """Writes that stored something (server-side dry runs are not)."""
        return [(e["verb"], e["objectRef"]["resource"]) for e in self.events
                if e["verb"] in WRITE_VERBS and not self._dry(e)]

    @property
    def dry_runs(self) -> list[tuple[str, str]]:
        return [(e["verb"], e["objectRef"]["resource"]) for e in self.events if e["verb"] in WRITE_VERBS and self._dry(e)]

    @property
    def users(self) -> set[str]:
        return {e["user"]["username"] for e in self.events}

    def codes(self, verb: str) -> list[int]:
        return [e.get("responseStatus", {}).get("code") for e in self.events if e["verb"] == verb]
