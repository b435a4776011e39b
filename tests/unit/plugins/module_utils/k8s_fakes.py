# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A Kubernetes-like API server in a thread (objects by path, resourceVersion checks on PUT,
dryRun=All), kubeconfigs and an AnsibleModule with the connection options, for the tests of
``_k8s``, ``_istio`` and the modules that write to a cluster."""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from ansible_collections.canary.istio.plugins.module_utils._istio.api import VIRTUAL_SERVICES, istio_path
from ansible_collections.canary.istio.plugins.module_utils._k8s.module import client_from_params
from ansible_collections.canary.istio.plugins.module_utils._k8s.options import auth_argument_spec
from ansible_collections.canary.istio.plugins.module_utils._k8s.transport import K8sClient
from ansible_collections.canary.istio.tests.unit.plugins.modules.module_main import module_args


TOKEN = "s3cr3t-token-9f8e7d6c5b4a"
PASSWORD = "hunter2-password-Zq"


COLLECTIONS = ("virtualservices", "destinationrules", "deployments", "pods", "services")


class FakeApiServer:
    def __init__(self, tls_context: ssl.SSLContext | None = None, token: str | None = None) -> None:
        self.objects: dict[str, dict] = {}
        self.requests: list[dict] = []
        self.token = token
        self.resource_version = 100
        # Called with (server, method, path) before a write is handled: stands in for another
        # writer acting between our read and our write.
        self.before_write = None
        self.lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"api": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        scheme = "http"
        if tls_context is not None:
            self.httpd.socket = tls_context.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FakeApiServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def next_version(self) -> str:
        self.resource_version += 1
        return str(self.resource_version)

    def put_object(self, path: str, obj: dict) -> dict:
        obj = json.loads(json.dumps(obj))
        obj.setdefault("metadata", {})["resourceVersion"] = self.next_version()
        self.objects[path] = obj
        return obj

    def writes(self) -> list[dict]:
        return [r for r in self.requests if r["method"] in ("POST", "PUT", "DELETE")]


def status(code: int, reason: str, message: str, details: dict | None = None) -> tuple[int, dict]:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
            "reason": reason, "code": code}
    if details:
        body["details"] = details
    return code, body


class _Handler(BaseHTTPRequestHandler):
    api: FakeApiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def _handle(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        peer = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
        record = {
            "method": self.command, "path": url.path, "query": query, "body": body,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "groups": self.headers.get_all("Impersonate-Group") or [],
            "client_cn": dict(x[0] for x in peer["subject"]).get("commonName") if peer else None,
        }
        api = self.api
        with api.lock:
            api.requests.append(record)
            code, payload = self._route(api, self.command, url.path, query, body)
        if isinstance(payload, (bytes, str)):
            data = payload.encode() if isinstance(payload, str) else payload
            ctype = "text/plain"
        else:
            data = json.dumps(payload).encode()
            ctype = "application/json"
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def _route(self, api: FakeApiServer, method: str, path: str, query: dict, body):
        auth = self.headers.get("Authorization")
        if path == "/echo-authorization":
            # A misbehaving server (or proxy) that quotes the credentials back.
            return status(403, "Forbidden", f"request with Authorization {auth} is forbidden")
        if path == "/not-json":
            return 502, "<html>bad gateway</html>"
        if api.token is not None and auth != f"Bearer {api.token}":
            return status(401, "Unauthorized", "Unauthorized")
        dry = query.get("dryRun") == "All"
        if method in ("POST", "PUT", "DELETE") and api.before_write is not None:
            api.before_write(api, method, path)
        name = path.rpartition("/")[2]
        if method == "GET":
            if path in api.objects:
                return 200, api.objects[path]
            if name in COLLECTIONS:
                selector = dict(kv.split("=", 1) for kv in query["labelSelector"].split(",")) if query.get("labelSelector") else {}
                items = [o for p, o in sorted(api.objects.items()) if p.rpartition("/")[0] == path
                         and all((o["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())]
                return 200, {"kind": "List", "metadata": {"resourceVersion": str(api.resource_version)}, "items": items}
            return status(404, "NotFound", f'{name} "{name}" not found')
        if method == "POST":
            obj_path = f"{path}/{body['metadata']['name']}"
            if obj_path in api.objects:
                return status(409, "AlreadyExists", f'"{body["metadata"]["name"]}" already exists')
            if body.get("spec") == "invalid":
                return status(422, "Invalid", "spec: Invalid value", {"causes": [{"field": "spec", "message": "bad"}]})
            obj = json.loads(json.dumps(body))
            obj["metadata"]["resourceVersion"] = str(api.resource_version + 1)
            if not dry:
                obj = api.put_object(obj_path, body)
            return 201, obj
        if method == "PUT":
            if path not in api.objects:
                return status(404, "NotFound", f'"{name}" not found')
            live = api.objects[path]
            if (body.get("metadata") or {}).get("resourceVersion") != live["metadata"]["resourceVersion"]:
                return status(409, "Conflict", f'Operation cannot be fulfilled on "{name}": the object has been '
                              "modified; please apply your changes to the latest version and try again")
            obj = json.loads(json.dumps(body))
            obj["metadata"]["resourceVersion"] = str(api.resource_version + 1)
            if not dry:
                obj = api.put_object(path, body)
            return 200, obj
        if method == "DELETE":
            if path not in api.objects:
                return status(404, "NotFound", f'"{name}" not found')
            if not dry:
                del api.objects[path]
            return 200, {"kind": "Status", "status": "Success"}
        return status(405, "MethodNotAllowed", "no")


def client_for(server: FakeApiServer, **params) -> K8sClient:
    params.setdefault("host", server.url)
    params.setdefault("api_key", TOKEN)
    return client_from_params(params, environ={})


VS_PATH = istio_path(None, VIRTUAL_SERVICES, "prod", "reviews")


def virtual_service(weights: dict[str, int]) -> dict:
    return {
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "prod"},
        "spec": {"hosts": ["reviews"], "http": [{"route": [
            {"destination": {"host": "reviews", "subset": s}, "weight": w} for s, w in weights.items()]}]},
    }


def write_kubeconfig(path: Path, doc: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path


def two_contexts(server_a: str = "https://a.example:6443", server_b: str = "https://b.example:6443") -> dict:
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "a",
        "clusters": [{"name": "ca", "cluster": {"server": server_a}},
                     {"name": "cb", "cluster": {"server": server_b, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "ua", "user": {"token": TOKEN}},
                  {"name": "ub", "user": {"username": "bob", "password": PASSWORD}}],
        "contexts": [{"name": "a", "context": {"cluster": "ca", "user": "ua", "namespace": "prod"}},
                     {"name": "b", "context": {"cluster": "cb", "user": "ub"}}],
    }


@contextlib.contextmanager
def ansible_module(args: dict, monkeypatch):
    """An AnsibleModule with the connection options, built from ``args`` (no K8S_AUTH_* around)."""
    from ansible.module_utils import basic

    for var in list(os.environ):
        if var.startswith("K8S_AUTH_") or var in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST"):
            monkeypatch.delenv(var)
    args = dict(args, _ansible_remote_tmp="/tmp", _ansible_keep_remote_files=False)
    with module_args(args, monkeypatch):
        yield basic.AnsibleModule(argument_spec=auth_argument_spec(), supports_check_mode=True)


def module_output(call, capsys) -> dict:
    """The JSON a module prints when ``call`` ends it with exit_json or fail_json."""
    with pytest.raises(SystemExit):
        call()
    captured = capsys.readouterr()
    result = json.loads(captured.out[captured.out.index("{"):])
    result["_stderr"] = captured.err
    return result
