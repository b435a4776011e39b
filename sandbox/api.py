"""A small admin-side HTTP helper for bootstrapping the sandbox and for tests' own checks.

Deliberately separate from the collection's `_k8s` client: tests use it as an independent observer
of what the modules did, so a bug in the collection's client cannot hide itself.
"""
from __future__ import annotations

import time
from typing import Any

import requests


class ApiError(RuntimeError):
    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


# REST collections of the kinds the sandbox and tests create, so no API discovery is needed.
KIND_PATHS = {
    "Namespace": "/api/v1/namespaces",
    "Service": "/api/v1/namespaces/{ns}/services",
    "ServiceAccount": "/api/v1/namespaces/{ns}/serviceaccounts",
    "ConfigMap": "/api/v1/namespaces/{ns}/configmaps",
    "Secret": "/api/v1/namespaces/{ns}/secrets",
    "Pod": "/api/v1/namespaces/{ns}/pods",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "VirtualService": "/apis/networking.istio.io/v1/namespaces/{ns}/virtualservices",
    "DestinationRule": "/apis/networking.istio.io/v1/namespaces/{ns}/destinationrules",
    "Gateway": "/apis/networking.istio.io/v1/namespaces/{ns}/gateways",
    "HTTPRoute": "/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes",
}


def collection_path(kind: str, namespace: str = "default") -> str:
    return KIND_PATHS[kind].format(ns=namespace)


def object_path(obj: dict, namespace: str | None = None) -> str:
    ns = namespace or obj["metadata"].get("namespace", "default")
    return f"{collection_path(obj['kind'], ns)}/{obj['metadata']['name']}"


class AdminApi:
    def __init__(self, server: str, token: str, ca_file: str, timeout: float = 30):
        self.server = server.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.session.verify = ca_file
        # Otherwise REQUESTS_CA_BUNDLE (set on these machines) silently replaces `verify`, and
        # proxy variables could route loopback traffic away.
        self.session.trust_env = False
        self.timeout = timeout

    def request(self, method: str, path: str, body: Any = None, params: dict | None = None,
                content_type: str = "application/json", ok_missing: bool = False) -> dict:
        resp = self.session.request(method, self.server + path, json=body, params=params,
                                    headers={"Content-Type": content_type}, timeout=self.timeout)
        if ok_missing and resp.status_code == 404:
            return {}
        if resp.status_code >= 400:
            try:
                message = resp.json().get("message", resp.text)
            except ValueError:
                message = resp.text
            raise ApiError(resp.status_code, message)
        return resp.json() if resp.content else {}

    def get(self, path: str, **kw) -> dict:
        return self.request("GET", path, **kw)

    def create(self, path: str, body: dict, exist_ok: bool = False) -> dict:
        try:
            return self.request("POST", path, body)
        except ApiError as exc:
            if exist_ok and exc.status == 409:
                return {}
            raise

    def apply_manifest(self, docs: list[dict], namespace: str) -> list[dict]:
        """Create every object of a manifest in `namespace` (objects that exist are left as they are)."""
        return [self.create(collection_path(d["kind"], namespace), d, exist_ok=True)
                for d in docs if d]

    def delete(self, path: str, **kw) -> dict:
        return self.request("DELETE", path, ok_missing=True, **kw)

    def wait_for(self, what: str, check, timeout: float, interval: float = 0.25):
        """Poll `check()` until it returns a truthy value; raise TimeoutError naming `what`."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                result = check()
                if result:
                    return result
            except (ApiError, requests.RequestException) as exc:
                last_error = exc
            time.sleep(interval)
        raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}"
                           + (f" (last error: {last_error})" if last_error else ""))
