# -*- coding: utf-8 -*-
# Copyright: contributors to the canary.istio collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Tests of plugins/module_utils/_k8s/: option resolution, kubeconfig reading, REST paths, and the
HTTP layer against a small Kubernetes-like API server running in a thread (real HTTP and TLS)."""

from __future__ import annotations

import base64
import contextlib
import datetime
import importlib.util
import ipaddress
import json
import os
import ssl
import stat
import sys
import textwrap
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from ansible_collections.canary.istio.plugins.module_utils._errors import fail_from_error
from ansible_collections.canary.istio.plugins.module_utils._istio.api import (
    DESTINATION_RULES,
    ISTIO_API_ARG_SPEC,
    VIRTUAL_SERVICES,
    istio_path,
)
from ansible_collections.canary.istio.plugins.module_utils._k8s.config import ClientConfig
from ansible_collections.canary.istio.plugins.module_utils._k8s.connection import in_cluster_config, load_client_config
from ansible_collections.canary.istio.plugins.module_utils._k8s.errors import (
    K8sApiError,
    K8sConfigError,
    K8sConflictError,
    K8sConnectionError,
    K8sForbiddenError,
    K8sInvalidError,
    K8sNotFoundError,
    K8sUnauthorizedError,
)
from ansible_collections.canary.istio.plugins.module_utils._k8s.module import client_from_module, client_from_params
from ansible_collections.canary.istio.plugins.module_utils._k8s.options import (
    AUTH_ARG_SPEC,
    AUTH_ENV_VARS,
    auth_argument_spec,
    resolve_auth_params,
)
from ansible_collections.canary.istio.plugins.module_utils._k8s.paths import deployments_path, pods_path, services_path
from ansible_collections.canary.istio.plugins.module_utils._k8s.transport import K8sClient, format_label_selector
from ansible_collections.canary.istio.plugins.module_utils._k8s.writes import ensure, ensure_absent, update_with_retry
from ansible_collections.canary.istio.tests.unit.plugins.modules.module_main import module_args

REPO = Path(__file__).resolve().parents[4]
TOKEN = "s3cr3t-token-9f8e7d6c5b4a"
PASSWORD = "hunter2-password-Zq"


# ---------------------------------------------------------------------------------------------
# A Kubernetes-like API server: objects by path, resourceVersion checks on PUT, dryRun=All
# ---------------------------------------------------------------------------------------------

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


def set_weights(weights: dict[str, int]):
    """A pure change function: the weights of the catch-all route, everything else untouched."""
    def change(live: dict) -> dict:
        for route in live["spec"]["http"][-1]["route"]:
            route["weight"] = weights[route["destination"]["subset"]]
        return live
    return change


# ---------------------------------------------------------------------------------------------
# Options and environment
# ---------------------------------------------------------------------------------------------


def _kubernetes_core_args_common():
    """kubernetes.core's own args_common.py, as shipped in the `ansible` package."""
    import ansible

    path = Path(ansible.__file__).resolve().parents[1] / "ansible_collections/kubernetes/core/plugins/module_utils/args_common.py"
    if not path.is_file():
        pytest.skip("kubernetes.core is not installed next to ansible-core")
    spec = importlib.util.spec_from_file_location("kubernetes_core_args_common", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _normalized(spec: dict) -> dict:
    out = {}
    for name, option in spec.items():
        out[name] = {
            "type": option.get("type", "str"),
            "aliases": sorted(option.get("aliases", [])),
            "no_log": bool(option.get("no_log")),
            "elements": option.get("elements"),
            "options": _normalized(option["options"]) if option.get("options") else None,
        }
    return out


def test_auth_arg_spec_is_kubernetes_core_s():
    theirs = _kubernetes_core_args_common().AUTH_ARG_SPEC
    assert _normalized(AUTH_ARG_SPEC) == _normalized(theirs)


def test_env_var_names_are_kubernetes_core_s():
    # kubernetes.core reads K8S_AUTH_<option> then K8S_AUTH_<client attribute> (AUTH_ARG_MAP).
    arg_map = _kubernetes_core_args_common().AUTH_ARG_MAP
    for attribute, option in arg_map.items():
        if option == "proxy_headers":
            continue
        expected = [f"K8S_AUTH_{option.upper()}"]
        if attribute != option:
            expected.append(f"K8S_AUTH_{attribute.upper()}")
        assert list(AUTH_ENV_VARS[option]) == expected


def _fragment_options(name: str) -> dict:
    path = REPO / "plugins" / "doc_fragments" / f"{name}.py"
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102 - our own file
    return yaml.safe_load(namespace["ModuleDocFragment"].DOCUMENTATION)["options"]


def _doc_normalized(options: dict) -> dict:
    return {
        name: {
            "type": doc.get("type", "str"),
            "aliases": sorted(doc.get("aliases", [])),
            "elements": doc.get("elements"),
            "default": doc.get("default"),
            "choices": doc.get("choices"),
            "options": _doc_normalized(doc["suboptions"]) if doc.get("suboptions") else None,
        }
        for name, doc in options.items()
    }


def _spec_for_doc(spec: dict) -> dict:
    return {
        name: {
            "type": option.get("type", "str"),
            "aliases": sorted(option.get("aliases", [])),
            "elements": option.get("elements"),
            "default": option.get("default"),
            "choices": option.get("choices"),
            "options": _spec_for_doc(option["options"]) if option.get("options") else None,
        }
        for name, option in spec.items()
    }


def test_k8s_auth_fragment_documents_the_arg_spec():
    options = _fragment_options("k8s_auth")
    assert _doc_normalized(options) == _spec_for_doc(AUTH_ARG_SPEC)
    for name, env_vars in AUTH_ENV_VARS.items():
        text = " ".join(options[name]["description"])
        for var in env_vars:
            assert f"E({var})" in text, f"{name} does not document {var}"


def test_istio_api_fragment_documents_the_arg_spec():
    assert _doc_normalized(_fragment_options("istio_api")) == _spec_for_doc(ISTIO_API_ARG_SPEC)


def test_auth_argument_spec_copies_and_merges():
    spec = auth_argument_spec({"name": {"type": "str", "required": True}})
    assert spec["name"] == {"type": "str", "required": True}
    assert set(spec) == set(AUTH_ARG_SPEC) | {"name"}
    spec["validate_certs"]["aliases"].append("oops")
    assert AUTH_ARG_SPEC["validate_certs"]["aliases"] == ["verify_ssl"]
    with pytest.raises(ValueError, match="'context' is already"):
        auth_argument_spec({"context": {"type": "str"}})


def test_params_win_over_environment():
    env = {"K8S_AUTH_HOST": "https://env:6443", "K8S_AUTH_VERIFY_SSL": "true", "K8S_AUTH_CONTEXT": "env"}
    auth = resolve_auth_params({"host": "https://param:6443", "validate_certs": False}, env)
    assert auth["host"] == "https://param:6443"
    assert auth["validate_certs"] is False  # an explicit false is not "unset"
    assert auth["context"] == "env"


def test_environment_names_are_read_in_kubernetes_core_order():
    env = {
        "K8S_AUTH_VALIDATE_CERTS": "no", "K8S_AUTH_VERIFY_SSL": "yes",
        "K8S_AUTH_CA_CERT": "/first/ca.pem", "K8S_AUTH_SSL_CA_CERT": "/second/ca.pem",
        "K8S_AUTH_CERT_FILE": "/c.pem", "K8S_AUTH_KEY_FILE": "/k.pem",
    }
    auth = resolve_auth_params({}, env)
    assert auth["validate_certs"] is False
    assert auth["ca_cert"] == "/first/ca.pem"
    assert (auth["client_cert"], auth["client_key"]) == ("/c.pem", "/k.pem")
    env.pop("K8S_AUTH_VALIDATE_CERTS")
    env.pop("K8S_AUTH_CA_CERT")
    auth = resolve_auth_params({}, env)
    assert auth["validate_certs"] is True
    assert auth["ca_cert"] == "/second/ca.pem"


@pytest.mark.parametrize("raw, expected", [
    ("0", False), ("false", False), ("FALSE", False), ("No", False),
    ("1", True), ("true", True), ("yes", True), ("anything", True),
])
def test_boolean_environment_values(raw, expected):
    assert resolve_auth_params({}, {"K8S_AUTH_PERSIST_CONFIG": raw})["persist_config"] is expected


def test_list_and_dict_options_from_environment():
    env = {
        "K8S_AUTH_IMPERSONATE_GROUPS": "ops, ,release,",
        "K8S_AUTH_PROXY_HEADERS_PROXY_BASIC_AUTH": "u:p",
        "K8S_AUTH_PROXY_HEADERS_USER_AGENT": "ua/1",
    }
    auth = resolve_auth_params({}, env)
    assert auth["impersonate_groups"] == ["ops", "release"]
    assert auth["proxy_headers"] == {"proxy_basic_auth": "u:p", "user_agent": "ua/1"}
    assert resolve_auth_params({}, {})["proxy_headers"] is None


# ---------------------------------------------------------------------------------------------
# Kubeconfig
# ---------------------------------------------------------------------------------------------


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


def config_for(params: dict, environ: dict | None = None) -> ClientConfig:
    env = {} if environ is None else environ
    return load_client_config(resolve_auth_params(params, env), env)


def test_current_context_with_token(tmp_path):
    kc = write_kubeconfig(tmp_path / "kc", two_contexts())
    config = config_for({"kubeconfig": str(kc)})
    assert (config.server, config.token, config.context, config.namespace) == ("https://a.example:6443", TOKEN, "a", "prod")
    assert config.verify_ssl is True
    assert TOKEN not in repr(config) and TOKEN not in json.dumps(config.describe())
    assert config.describe()["auth"] == "token"


def test_context_option_selects_another_context(tmp_path):
    kc = write_kubeconfig(tmp_path / "kc", two_contexts())
    config = config_for({"kubeconfig": str(kc), "context": "b"})
    assert (config.server, config.username, config.password, config.token) == ("https://b.example:6443", "bob", PASSWORD, None)
    assert config.verify_ssl is False  # insecure-skip-tls-verify
    assert config_for({"kubeconfig": str(kc), "context": "b", "validate_certs": True}).verify_ssl is True


def test_missing_context_names_the_option_and_the_choices(tmp_path):
    kc = write_kubeconfig(tmp_path / "kc", two_contexts())
    with pytest.raises(K8sConfigError) as err:
        config_for({"kubeconfig": str(kc), "context": "prod-eu"})
    assert err.value.option == "context"
    assert "'prod-eu' not found" in str(err.value) and "one of: a, b" in str(err.value)
    assert TOKEN not in str(err.value) and PASSWORD not in str(err.value)


def test_no_current_context_asks_for_the_context_option(tmp_path):
    doc = two_contexts()
    del doc["current-context"]
    kc = write_kubeconfig(tmp_path / "kc", doc)
    with pytest.raises(K8sConfigError, match="no current-context") as err:
        config_for({"kubeconfig": str(kc)})
    assert err.value.option == "context"


def test_missing_kubeconfig_names_option_and_path(tmp_path):
    missing = tmp_path / "nowhere" / "kubeconfig-x"
    with pytest.raises(K8sConfigError) as err:
        config_for({"kubeconfig": str(missing)})
    assert err.value.option == "kubeconfig"
    assert "'kubeconfig-x'" in str(err.value) and str(missing.parent) in str(err.value)
    assert "option 'kubeconfig'" in str(err.value)


def test_token_file_and_relative_paths_start_at_the_kubeconfig_folder(tmp_path):
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "token").write_text(TOKEN + "\n")
    (folder / "ca.pem").write_text("CA")
    doc = two_contexts()
    doc["users"][0]["user"] = {"tokenFile": "token"}
    doc["clusters"][0]["cluster"]["certificate-authority"] = "ca.pem"
    kc = write_kubeconfig(folder / "kc", doc)
    config = config_for({"kubeconfig": str(kc)})
    assert config.token == TOKEN
    assert config.ca_file == str(folder / "ca.pem")


def test_missing_file_named_in_kubeconfig_is_reported(tmp_path):
    doc = two_contexts()
    doc["clusters"][0]["cluster"]["certificate-authority"] = "gone.pem"
    kc = write_kubeconfig(tmp_path / "kc", doc)
    with pytest.raises(K8sConfigError, match="certificate-authority of cluster 'ca' file .*gone.pem") as err:
        config_for({"kubeconfig": str(kc)})
    assert err.value.option == "kubeconfig"


def test_data_fields_become_private_temp_files_removed_on_cleanup(tmp_path):
    doc = two_contexts()
    doc["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(b"CA-BYTES").decode()
    doc["users"][0]["user"].update({
        "client-certificate-data": base64.b64encode(b"CERT-BYTES").decode(),
        "client-key-data": base64.b64encode(b"KEY-BYTES").decode(),
    })
    config = config_for({"kubeconfig": doc})
    files = {"ca": config.ca_file, "cert": config.client_cert_file, "key": config.client_key_file}
    assert {k: Path(v).read_bytes() for k, v in files.items()} == {"ca": b"CA-BYTES", "cert": b"CERT-BYTES", "key": b"KEY-BYTES"}
    for path in files.values():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert config.describe()["auth"] == "token+client-certificate"
    config.cleanup()
    assert not any(os.path.exists(p) for p in files.values())


def test_bad_base64_names_the_field_not_the_data():
    doc = two_contexts()
    doc["users"][0]["user"]["client-key-data"] = "not*base64!"
    with pytest.raises(K8sConfigError, match="client-key-data of user 'ua' is not valid base64") as err:
        config_for({"kubeconfig": doc})
    assert "not*base64!" not in str(err.value)


def test_unreadable_yaml_does_not_quote_the_file(tmp_path):
    kc = tmp_path / "kc"
    kc.write_text(f"users:\n- name: u\n  user: {{token: {TOKEN}\n")  # unbalanced brace
    with pytest.raises(K8sConfigError) as err:
        config_for({"kubeconfig": str(kc)})
    assert "cannot be read" in str(err.value) and TOKEN not in str(err.value)


def test_several_files_merge_first_wins(tmp_path):
    first = write_kubeconfig(tmp_path / "one", {
        "clusters": [{"name": "ca", "cluster": {"server": "https://first:6443"}}],
        "users": [], "contexts": [{"name": "only-in-first", "context": {"cluster": "ca"}}],
    })
    second = write_kubeconfig(tmp_path / "two", two_contexts())
    config = config_for({"kubeconfig": f"{first}{os.pathsep}{second}"})
    # current-context from the second file; cluster "ca" from the first.
    assert (config.context, config.server, config.token) == ("a", "https://first:6443", TOKEN)
    config = config_for({"kubeconfig": f"{first}{os.pathsep}{second}", "context": "only-in-first"})
    assert (config.server, config.token) == ("https://first:6443", None)


def test_default_kubeconfig_locations(tmp_path):
    home = tmp_path / "home"
    write_kubeconfig(home / ".kube" / "config", two_contexts("https://home:6443"))
    listed = write_kubeconfig(tmp_path / "listed", two_contexts("https://listed:6443"))
    chosen = write_kubeconfig(tmp_path / "chosen", two_contexts("https://chosen:6443"))
    assert config_for({}, {"HOME": str(home)}).server == "https://home:6443"
    assert config_for({}, {"HOME": str(home), "KUBECONFIG": str(listed)}).server == "https://listed:6443"
    # context alone reads the default kubeconfig, as the Kubernetes client does
    assert config_for({"context": "b"}, {"HOME": str(home), "KUBECONFIG": str(listed)}).server == "https://b.example:6443"
    env = {"HOME": str(home), "KUBECONFIG": str(listed), "K8S_AUTH_KUBECONFIG": str(chosen)}
    assert config_for({}, env).server == "https://chosen:6443"
    assert config_for({"kubeconfig": str(listed)}, env).server == "https://listed:6443"


def test_nothing_configured_says_what_to_set(tmp_path):
    with pytest.raises(K8sConfigError, match="no Kubernetes cluster configured") as err:
        config_for({}, {"HOME": str(tmp_path)})
    assert err.value.option == "kubeconfig"


def test_host_and_api_key_skip_the_kubeconfig(tmp_path):
    config = config_for({"host": "https://direct:6443/", "api_key": TOKEN, "kubeconfig": str(tmp_path / "missing")})
    assert (config.server, config.token, config.source) == ("https://direct:6443", TOKEN, "parameters")


def test_options_override_the_kubeconfig(tmp_path):
    kc = write_kubeconfig(tmp_path / "kc", two_contexts())
    ca = tmp_path / "ca.pem"
    ca.write_text("CA")
    config = config_for({"kubeconfig": str(kc), "host": "https://other:6443", "ca_cert": str(ca),
                         "impersonate_user": "alice", "impersonate_groups": ["g1", "g2"]})
    assert (config.server, config.token, config.ca_file) == ("https://other:6443", TOKEN, str(ca))
    assert (config.impersonate_user, config.impersonate_groups) == ("alice", ["g1", "g2"])
    env_config = config_for({"kubeconfig": str(kc)}, {"K8S_AUTH_API_KEY": "from-env-token"})
    assert env_config.token == "from-env-token"


def test_kubeconfig_impersonation_fields(tmp_path):
    doc = two_contexts()
    doc["users"][0]["user"].update({"as": "deployer", "as-groups": ["release"]})
    config = config_for({"kubeconfig": doc})
    assert (config.impersonate_user, config.impersonate_groups) == ("deployer", ["release"])


@pytest.mark.parametrize("params, option, text", [
    ({"host": "127.0.0.1:6443", "api_key": "x"}, "host", "must be a URL"),
    ({"host": "https://h:1", "api_key": "x", "ca_cert": "/no/such/ca.pem"}, "ca_cert", "ca_cert: file /no/such/ca.pem not found"),
    ({"host": "https://h:1", "client_cert": "/no/cert.pem", "client_key": "/no/key.pem"}, "client_cert", "client_cert: file /no/cert.pem"),
])
def test_bad_options_name_the_option(params, option, text):
    with pytest.raises(K8sConfigError) as err:
        config_for(params)
    assert err.value.option == option and text in str(err.value)


def test_client_cert_needs_client_key(tmp_path):
    cert = tmp_path / "c.pem"
    cert.write_text("C")
    with pytest.raises(K8sConfigError, match="client_cert and client_key must be given together"):
        config_for({"host": "https://h:1", "api_key": "x", "client_cert": str(cert)})


def test_in_cluster_service_account(tmp_path):
    (tmp_path / "token").write_text(TOKEN)
    (tmp_path / "ca.crt").write_text("CA")
    (tmp_path / "namespace").write_text("awx\n")
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    config = in_cluster_config(env, sa_dir=str(tmp_path))
    assert (config.server, config.token, config.ca_file, config.namespace) == (
        "https://10.96.0.1:443", TOKEN, str(tmp_path / "ca.crt"), "awx")
    assert in_cluster_config({}, sa_dir=str(tmp_path)) is None


# ---------------------------------------------------------------------------------------------
# REST paths
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("api_version, expected", [
    (None, "networking.istio.io/v1"),
    ("networking.istio.io/v1", "networking.istio.io/v1"),
    ("v1beta1", "networking.istio.io/v1beta1"),
    ("networking.istio.io/v1alpha3", "networking.istio.io/v1alpha3"),
])
def test_istio_path(api_version, expected):
    assert istio_path(api_version, VIRTUAL_SERVICES, "prod", "reviews") == f"/apis/{expected}/namespaces/prod/virtualservices/reviews"
    assert istio_path(api_version, DESTINATION_RULES, "prod") == f"/apis/{expected}/namespaces/prod/destinationrules"


def test_unknown_istio_version_names_the_option():
    with pytest.raises(ValueError, match="api_version must be one of"):
        istio_path("networking.istio.io/v2", VIRTUAL_SERVICES, "prod")


def test_core_and_apps_paths():
    assert deployments_path("prod") == "/apis/apps/v1/namespaces/prod/deployments"
    assert deployments_path("prod", "reviews-v2") == "/apis/apps/v1/namespaces/prod/deployments/reviews-v2"
    assert pods_path("prod") == "/api/v1/namespaces/prod/pods"
    assert services_path("prod", "reviews") == "/api/v1/namespaces/prod/services/reviews"
    assert services_path("prod") == "/api/v1/namespaces/prod/services"


@pytest.mark.parametrize("bad", ["", "a/b", "..", "."])
def test_names_cannot_escape_their_path(bad):
    with pytest.raises(ValueError, match="name"):
        services_path("prod", bad)
    with pytest.raises(ValueError, match="namespace"):
        pods_path(bad)


def test_label_selector_format():
    assert format_label_selector({"version": "v2", "app": "reviews"}) == "app=reviews,version=v2"
    assert format_label_selector("app=reviews") == "app=reviews"
    assert format_label_selector(None) is None


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def api():
    with FakeApiServer(token=TOKEN) as server:
        yield server


def test_requests_carry_token_json_and_dry_run(api):
    client = client_for(api)
    created = client.create(istio_path(None, VIRTUAL_SERVICES, "prod"), virtual_service({"v1": 100}))
    assert created["metadata"]["resourceVersion"]
    assert client.get(VS_PATH)["spec"]["hosts"] == ["reviews"]
    client.replace(VS_PATH, client.get(VS_PATH), dry_run=True)
    client.delete(VS_PATH, dry_run=True)
    assert VS_PATH in api.objects  # dry runs stored nothing
    post, get, put, delete = (api.requests[i] for i in (0, 1, 3, 4))
    assert post["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert post["headers"]["content-type"] == "application/json" and post["query"] == {}
    assert post["body"]["spec"]["http"][0]["route"][0]["weight"] == 100
    assert get["headers"]["accept"] == "application/json" and "content-type" not in get["headers"]
    assert put["query"] == {"dryRun": "All"} and delete["query"] == {"dryRun": "All"}
    client.delete(VS_PATH)
    assert VS_PATH not in api.objects
    assert client.requests_made == 6


def test_list_with_label_selector(api):
    pods = pods_path("prod")
    for name, version in (("r1", "v1"), ("r2", "v2"), ("r3", "v2")):
        api.put_object(f"{pods}/{name}", {"metadata": {"name": name, "labels": {"app": "reviews", "version": version}}})
    client = client_for(api)
    listed = client.list(pods, label_selector={"app": "reviews", "version": "v2"})
    assert [p["metadata"]["name"] for p in listed["items"]] == ["r2", "r3"]
    assert api.requests[-1]["query"] == {"labelSelector": "app=reviews,version=v2"}
    assert len(client.list(pods)["items"]) == 3


def test_api_errors_carry_the_status_message(api):
    client = client_for(api)
    with pytest.raises(K8sNotFoundError) as err:
        client.get(VS_PATH)
    assert (err.value.status, err.value.reason, err.value.message) == (404, "NotFound", 'reviews "reviews" not found')
    assert str(err.value) == f'GET {VS_PATH}: 404 NotFound: reviews "reviews" not found'
    body = virtual_service({"v1": 100})
    body["spec"] = "invalid"
    with pytest.raises(K8sInvalidError) as err:
        client.create(istio_path(None, VIRTUAL_SERVICES, "prod"), body)
    assert err.value.details["causes"] == [{"field": "spec", "message": "bad"}]
    with pytest.raises(K8sApiError) as err:
        client.get("/not-json")
    assert err.value.status == 502 and "bad gateway" in err.value.message


def test_wrong_token_is_401_without_the_token(api):
    client = client_for(api, api_key="wrong-token-abcdef")
    with pytest.raises(K8sUnauthorizedError) as err:
        client.get(VS_PATH)
    assert "wrong-token-abcdef" not in str(err.value)


def test_secrets_quoted_back_by_the_server_are_redacted(api):
    with pytest.raises(K8sForbiddenError) as err:
        client_for(api).get("/echo-authorization")
    assert TOKEN not in str(err.value) and TOKEN not in err.value.message
    assert "********" in err.value.message
    basic = client_from_params({"host": api.url, "username": "bob", "password": PASSWORD}, environ={})
    with pytest.raises(K8sForbiddenError) as err:
        basic.get("/echo-authorization")
    encoded = base64.b64encode(f"bob:{PASSWORD}".encode()).decode()
    # The server saw the encoded pair, quoted it back, and the message hides that spelling too.
    assert api.requests[-1]["headers"]["authorization"] == f"Basic {encoded}"
    assert err.value.message == "request with Authorization Basic ******** is forbidden"
    assert encoded not in str(err.value)


def test_connection_errors_do_not_show_proxy_credentials():
    client = client_from_params(
        {"host": "http://127.0.0.1:9", "api_key": TOKEN, "proxy": f"http://user:{PASSWORD}@127.0.0.1:9"}, environ={})
    with pytest.raises(K8sConnectionError) as err:
        client.get("/api")
    assert PASSWORD not in str(err.value) and TOKEN not in str(err.value)


def test_no_proxy_bypasses_the_proxy(api):
    # The proxy address refuses connections; the request only works when it is bypassed.
    client = client_for(api, proxy="http://127.0.0.1:9", no_proxy="localhost,127.0.0.0/8")
    api.put_object(VS_PATH, virtual_service({"v1": 100}))
    assert client.get(VS_PATH)["kind"] == "VirtualService"


def test_proxy_and_proxy_headers(api):
    # For an http:// API server, requests go to the proxy with the full URL; the fake server
    # answers as the proxy would have forwarded it. The API host itself does not resolve.
    client = client_for(api, host="http://kube.invalid:6443", proxy=api.url,
                        proxy_headers={"proxy_basic_auth": f"proxyuser:{PASSWORD}", "user_agent": "canary-test/1"})
    api.put_object(VS_PATH, virtual_service({"v1": 100}))
    assert client.get(VS_PATH)["kind"] == "VirtualService"
    seen = api.requests[-1]["headers"]
    assert seen["proxy-authorization"] == "Basic " + base64.b64encode(f"proxyuser:{PASSWORD}".encode()).decode()
    assert seen["user-agent"] == "canary-test/1"


def test_impersonation_headers(api):
    client = client_for(api, impersonate_user="alice", impersonate_groups=["release", "ops"])
    with pytest.raises(K8sNotFoundError):
        client.get(VS_PATH)
    request = api.requests[-1]
    assert request["headers"]["impersonate-user"] == "alice"
    assert request["groups"] == ["release", "ops"]  # one header line per group


# ---------------------------------------------------------------------------------------------
# TLS
# ---------------------------------------------------------------------------------------------


def _pki(tmp_path: Path) -> dict:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def pem_key(key):
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("test-ca")).issuer_name(name("test-ca"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))

    def leaf(cn, usage, san=None):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(ca.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), pem_key(key)

    server_cert, server_key = leaf("apiserver", ExtendedKeyUsageOID.SERVER_AUTH,
                                   [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    client_cert, client_key = leaf("alice", ExtendedKeyUsageOID.CLIENT_AUTH)
    files = {"ca": ca.public_bytes(serialization.Encoding.PEM), "server_cert": server_cert,
             "server_key": server_key, "client_cert": client_cert, "client_key": client_key}
    out = {}
    for key, data in files.items():
        (tmp_path / f"{key}.pem").write_bytes(data)
        out[key] = data
        out[key + "_file"] = str(tmp_path / f"{key}.pem")
    return out


def _tls_server(pki: dict, require_client_cert: bool) -> FakeApiServer:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki["server_cert_file"], pki["server_key_file"])
    if require_client_cert:
        context.load_verify_locations(pki["ca_file"])
        context.verify_mode = ssl.CERT_REQUIRED
    return FakeApiServer(tls_context=context)


def test_tls_with_ca_and_client_certificate_data(tmp_path):
    pki = _pki(tmp_path)
    with _tls_server(pki, require_client_cert=True) as server:
        def b64(data: bytes) -> str:
            return base64.b64encode(data).decode()

        alice = {"client-certificate-data": b64(pki["client_cert"]), "client-key-data": b64(pki["client_key"])}
        kubeconfig = {
            "current-context": "c",
            "clusters": [{"name": "k", "cluster": {"server": server.url, "certificate-authority-data": b64(pki["ca"])}}],
            "users": [{"name": "alice", "user": alice}],
            "contexts": [{"name": "c", "context": {"cluster": "k", "user": "alice"}}],
        }
        client = client_from_params({"kubeconfig": kubeconfig}, environ={})
        temp_files = list(client.config.temp_files)
        with client:
            with pytest.raises(K8sNotFoundError):
                client.get(VS_PATH)
        assert server.requests[-1]["client_cn"] == "alice"
        assert not any(os.path.exists(p) for p in temp_files)  # close() removed them


def test_tls_ca_file_option_and_unknown_ca(tmp_path):
    pki = _pki(tmp_path)
    with _tls_server(pki, require_client_cert=False) as server:
        with pytest.raises(K8sNotFoundError):
            client_from_params({"host": server.url, "api_key": TOKEN, "ca_cert": pki["ca_file"]}, environ={}).get(VS_PATH)
        with pytest.raises(K8sConnectionError) as err:
            client_from_params({"host": server.url, "api_key": TOKEN}, environ={}).get(VS_PATH)
        assert "ca_cert" in str(err.value) and TOKEN not in str(err.value)
        insecure = client_from_params({"host": server.url, "api_key": TOKEN, "validate_certs": False}, environ={})
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the InsecureRequestWarning stays inside the client
            with pytest.raises(K8sNotFoundError):
                insecure.get(VS_PATH)


# ---------------------------------------------------------------------------------------------
# exec credential plugin (through the kubernetes package's loader)
# ---------------------------------------------------------------------------------------------


def test_exec_plugin_token_reaches_the_server(tmp_path, api):
    pytest.importorskip("kubernetes")
    plugin = tmp_path / "bin" / "get-token"
    plugin.parent.mkdir()
    plugin.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import json
        print(json.dumps({{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                          "status": {{"token": "{TOKEN}"}}}}))
        """))
    plugin.chmod(0o755)
    kc = write_kubeconfig(tmp_path / "kc", {
        "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": api.url}}],
        "users": [{"name": "u", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1", "command": "bin/get-token", "interactiveMode": "Never"}}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    })
    client = client_from_params({"kubeconfig": str(kc)}, environ={})
    api.put_object(VS_PATH, virtual_service({"v1": 100}))
    assert client.get(VS_PATH)["metadata"]["name"] == "reviews"
    assert api.requests[-1]["headers"]["authorization"] == f"Bearer {TOKEN}"


def test_failing_exec_plugin_is_a_config_error(tmp_path):
    pytest.importorskip("kubernetes")
    doc = two_contexts()
    doc["users"][0]["user"] = {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                        "command": str(tmp_path / "missing-plugin"), "interactiveMode": "Never"}}
    with pytest.raises(K8sConfigError, match="exec plugin or auth-provider did not return credentials") as err:
        config_for({"kubeconfig": doc})
    assert err.value.option == "kubeconfig"


def test_failing_exec_plugin_output_is_shown_without_secrets(tmp_path):
    pytest.importorskip("kubernetes")
    plugin = tmp_path / "get-token"
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz"
    plugin.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import os, sys
        sys.stderr.write("refresh failed for " + os.environ["PLUGIN_SECRET"] + " with {jwt}\\n")
        sys.exit(3)
        """))
    plugin.chmod(0o755)
    doc = two_contexts()
    doc["users"][0]["user"] = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin),
                                        "interactiveMode": "Never", "env": [{"name": "PLUGIN_SECRET", "value": "env-pass-42"}]}}
    with pytest.raises(K8sConfigError) as err:
        config_for({"kubeconfig": doc})
    message = str(err.value)
    assert "refresh failed for ******** with ********" in message  # the plugin's own words stay
    assert "env-pass-42" not in message and jwt not in message


@pytest.mark.parametrize("value", ["false", "true", "no", 1])
def test_insecure_skip_tls_verify_must_be_a_real_boolean(value):
    doc = two_contexts()
    doc["clusters"][0]["cluster"]["insecure-skip-tls-verify"] = value
    with pytest.raises(K8sConfigError, match="insecure-skip-tls-verify of cluster 'ca' in .* must be true or false "
                                             "without quotes") as err:
        config_for({"kubeconfig": doc})
    assert err.value.option == "kubeconfig"


def test_insecure_skip_tls_verify_with_a_ca_is_refused():
    doc = two_contexts()
    doc["clusters"][0]["cluster"].update({"insecure-skip-tls-verify": True,
                                          "certificate-authority-data": base64.b64encode(b"CA").decode()})
    with pytest.raises(K8sConfigError, match="sets both insecure-skip-tls-verify and a certificate authority"):
        config_for({"kubeconfig": doc})
    doc["clusters"][0]["cluster"]["insecure-skip-tls-verify"] = False
    assert config_for({"kubeconfig": doc}).verify_ssl is True


def test_kubeconfig_temp_files_go_to_the_given_directory(tmp_path):
    doc = two_contexts()
    doc["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(b"CA").decode()
    own = tmp_path / "module-tmp"
    own.mkdir()
    config = load_client_config(resolve_auth_params({"kubeconfig": doc}, {}), {}, temp_dir=str(own))
    assert config.ca_file and config.ca_file.startswith(str(own) + "/")
    config.cleanup()
    assert list(own.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# Read-modify-write
# ---------------------------------------------------------------------------------------------


def test_update_reapplies_the_change_after_a_conflict(api):
    api.put_object(VS_PATH, virtual_service({"v1": 100, "v2": 0}))
    seen = []

    def concurrent_writer(server, method, path):
        # Between our GET and our first PUT, someone else adds a label (a new resourceVersion).
        if method == "PUT" and not seen:
            seen.append(path)
            obj = json.loads(json.dumps(server.objects[path]))
            obj["metadata"]["labels"] = {"team": "other"}
            server.put_object(path, obj)

    api.before_write = concurrent_writer
    result = update_with_retry(client_for(api), VS_PATH, set_weights({"v1": 90, "v2": 10}))
    assert (result.changed, result.attempts) == (True, 2)
    stored = api.objects[VS_PATH]
    assert stored["metadata"]["labels"] == {"team": "other"}  # their change survived
    assert [r["weight"] for r in stored["spec"]["http"][0]["route"]] == [90, 10]  # and ours
    puts = [r for r in api.requests if r["method"] == "PUT"]
    assert len(puts) == 2
    assert puts[1]["body"]["metadata"]["resourceVersion"] == result.before["metadata"]["resourceVersion"]
    assert result.before["metadata"]["labels"] == {"team": "other"}
    assert result.after == stored
    before, after, changed, attempts = result  # also unpacks as a tuple
    assert (changed, attempts) == (True, 2)


def test_update_sends_the_version_it_read(api):
    api.put_object(VS_PATH, virtual_service({"v1": 100}))

    def rebuild(live):  # builds a new object instead of editing the read one
        return virtual_service({"v1": 50, "v2": 50})

    result = update_with_retry(client_for(api), VS_PATH, rebuild)
    put = api.writes()[0]
    assert put["body"]["metadata"]["resourceVersion"] == result.before["metadata"]["resourceVersion"]
    assert result.changed and result.attempts == 1


def test_update_without_change_writes_nothing(api):
    api.put_object(VS_PATH, virtual_service({"v1": 90, "v2": 10}))
    result = update_with_retry(client_for(api), VS_PATH, set_weights({"v1": 90, "v2": 10}))
    assert (result.changed, result.attempts, result.before, result.after) == (False, 1, api.objects[VS_PATH], api.objects[VS_PATH])
    assert api.writes() == []


def test_update_dry_run_stores_nothing(api):
    stored = api.put_object(VS_PATH, virtual_service({"v1": 100, "v2": 0}))
    result = update_with_retry(client_for(api), VS_PATH, set_weights({"v1": 50, "v2": 50}), dry_run=True)
    assert result.changed and [r["weight"] for r in result.after["spec"]["http"][0]["route"]] == [50, 50]
    assert api.objects[VS_PATH] == stored
    assert api.writes()[0]["query"] == {"dryRun": "All"}


def test_update_gives_up_after_the_retries(api):
    api.put_object(VS_PATH, virtual_service({"v1": 100, "v2": 0}))

    def always_first(server, method, path):
        server.put_object(path, server.objects[path])  # a new resourceVersion every time

    api.before_write = always_first
    with pytest.raises(K8sConflictError, match="the object has been modified"):
        update_with_retry(client_for(api), VS_PATH, set_weights({"v1": 0, "v2": 100}), retries=3)
    assert len(api.writes()) == 3


def test_update_refusal_writes_nothing(api):
    api.put_object(VS_PATH, virtual_service({"v1": 100}))

    def refuse(live):
        raise ValueError("subset v3 is not in the DestinationRule")

    with pytest.raises(ValueError, match="subset v3"):
        update_with_retry(client_for(api), VS_PATH, refuse)
    assert api.writes() == []
    with pytest.raises(K8sNotFoundError):
        update_with_retry(client_for(api), istio_path(None, VIRTUAL_SERVICES, "prod", "ratings"), refuse)


def build_vs(weights):
    def build(live):
        wanted = virtual_service(weights)
        if live is None:
            return wanted
        live["spec"] = wanted["spec"]
        return live
    return build


def test_ensure_creates_then_updates_then_leaves_alone(api):
    client = client_for(api)
    collection = istio_path(None, VIRTUAL_SERVICES, "prod")
    created = ensure(client, collection, "reviews", build_vs({"v1": 100}))
    assert created.changed and created.before is None and api.writes()[-1]["method"] == "POST"
    updated = ensure(client, collection, "reviews", build_vs({"v1": 80, "v2": 20}))
    assert updated.changed and api.writes()[-1]["method"] == "PUT"
    writes = len(api.writes())
    again = ensure(client, collection, "reviews", build_vs({"v1": 80, "v2": 20}))
    assert not again.changed and len(api.writes()) == writes
    nothing = ensure(client, collection, "ratings", lambda live: None)
    assert (nothing.before, nothing.changed) == (None, False)


def test_ensure_create_race_becomes_an_update(api):
    collection = istio_path(None, VIRTUAL_SERVICES, "prod")

    def someone_creates_first(server, method, path):
        if method == "POST" and VS_PATH not in server.objects:
            obj = virtual_service({"v1": 100})
            obj["metadata"]["annotations"] = {"owner": "them"}
            server.put_object(VS_PATH, obj)

    api.before_write = someone_creates_first
    result = ensure(client_for(api), collection, "reviews", build_vs({"v1": 70, "v2": 30}))
    assert (result.changed, result.attempts) == (True, 2)
    assert [r["method"] for r in api.writes()] == ["POST", "PUT"]
    assert api.objects[VS_PATH]["metadata"]["annotations"] == {"owner": "them"}
    assert [r["weight"] for r in api.objects[VS_PATH]["spec"]["http"][0]["route"]] == [70, 30]


def test_ensure_create_dry_run(api):
    result = ensure(client_for(api), istio_path(None, VIRTUAL_SERVICES, "prod"), "reviews",
                    build_vs({"v1": 100}), dry_run=True)
    assert result.changed and result.after["metadata"]["name"] == "reviews"
    assert api.objects == {} and api.writes()[0]["query"] == {"dryRun": "All"}


def test_ensure_absent(api):
    api.put_object(VS_PATH, virtual_service({"v1": 100}))
    client = client_for(api)
    assert ensure_absent(client, VS_PATH, dry_run=True).changed
    assert VS_PATH in api.objects
    result = ensure_absent(client, VS_PATH)
    assert result.changed and result.before["metadata"]["name"] == "reviews" and VS_PATH not in api.objects
    assert not ensure_absent(client, VS_PATH).changed


# ---------------------------------------------------------------------------------------------
# AnsibleModule glue
# ---------------------------------------------------------------------------------------------


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


def test_client_from_module_fails_with_the_option_and_no_secret(tmp_path, capsys, monkeypatch):
    with ansible_module({"kubeconfig": two_contexts(), "context": "nope"}, monkeypatch) as module:
        result = module_output(lambda: client_from_module(module), capsys)
    assert result["failed"] and result["option"] == "context"
    assert "context 'nope' not found" in result["msg"]
    assert TOKEN not in json.dumps(result) and PASSWORD not in json.dumps(result)
    missing = tmp_path / "dir" / "kc-missing"
    with ansible_module({"kubeconfig": str(missing)}, monkeypatch) as module:
        result = module_output(lambda: client_from_module(module), capsys)
    assert result["option"] == "kubeconfig"
    assert "'kc-missing'" in result["msg"] and str(missing.parent) in result["msg"]  # readable despite no_log


def test_client_from_module_masks_secrets_read_from_files(tmp_path, capsys, monkeypatch):
    kc = write_kubeconfig(tmp_path / "kc", two_contexts())
    with ansible_module({"kubeconfig": str(kc), "context": "b"}, monkeypatch) as module:
        client = client_from_module(module)
        assert client.server == "https://b.example:6443"
        # The password came from a file, not from a no_log option: it is masked all the same.
        warned = capsys.readouterr().err  # in a controller process (pytest) warnings are displayed at once
        result = module_output(lambda: module.exit_json(changed=False, echoed=f"password is {PASSWORD}"), capsys)
    client.close()
    assert PASSWORD not in json.dumps(result) and result["echoed"] == "password is ********"
    # insecure-skip-tls-verify in context b: said as a warning
    warnings_seen = warned + json.dumps(result.get("warnings", []))
    assert "TLS certificate verification is off for https://b.example:6443" in warnings_seen


def test_fail_from_k8s_error_reports_status_and_causes(capsys, monkeypatch, api):
    body = virtual_service({"v1": 100})
    body["spec"] = "invalid"
    with pytest.raises(K8sInvalidError) as err:
        client_for(api).create(istio_path(None, VIRTUAL_SERVICES, "prod"), body)
    with ansible_module({"host": api.url, "api_key": TOKEN}, monkeypatch) as module:
        result = module_output(lambda: fail_from_error(module, err.value, "create VirtualService prod/reviews"), capsys)
    assert result["msg"].startswith("create VirtualService prod/reviews: POST /apis/networking.istio.io/v1/")
    assert (result["status"], result["reason"]) == (422, "Invalid")
    assert result["causes"] == [{"field": "spec", "message": "bad"}]


# --- malformed kubeconfigs: a clear error naming the field, never the credential ------------------

def _broken(change) -> dict:
    doc = two_contexts()
    change(doc)
    return doc


@pytest.mark.parametrize("change, option, words", [
    (lambda d: d["users"][0]["user"].update(token="s3cr3t-\u79d8-token"), "kubeconfig", "the token from kubeconfig"),
    (lambda d: d["users"][0]["user"].update(token="s3cr3t-to\nken-second-line"), "kubeconfig", "holds a line break"),
    (lambda d: d["users"][0]["user"].update(token="s3cr3t-to\tken"), "kubeconfig", "holds a control character"),
    (lambda d: d["users"].__setitem__(0, "ua"), "kubeconfig", "users[0] must be a mapping with name and user, got a str"),
    (lambda d: d["clusters"].__setitem__(0, "https://a.example"), "kubeconfig", "clusters[0] must be a mapping"),
    (lambda d: d["contexts"][0].__setitem__("context", "ca/ua"), "kubeconfig", "the context of context 'a' must be a mapping"),
    (lambda d: d["users"][0].__setitem__("user", "s3cr3t-token-as-text"), "kubeconfig", "the user of user 'ua' must be a mapping"),
    (lambda d: d.__setitem__("users", {"ua": {}}), "kubeconfig", "users must be a list of entries"),
], ids=["non-ascii-token", "token-over-two-lines", "tab-in-token", "user-a-string", "cluster-a-string",
        "context-body-a-string", "user-body-a-string", "users-a-mapping"])
def test_malformed_kubeconfig_is_a_clear_error_without_the_secret(tmp_path, change, option, words):
    doc = _broken(change)
    for given in (doc, str(write_kubeconfig(tmp_path / "kc", doc))):
        with pytest.raises(K8sConfigError) as err:
            config_for({"kubeconfig": given})
        message = str(err.value)
        assert words in message and err.value.option == option
        for secret in ("s3cr3t", "\u79d8", "ca/ua"):
            assert secret not in message and secret not in repr(err.value)


def test_an_api_key_with_a_line_break_names_the_option_not_the_value():
    with pytest.raises(K8sConfigError) as err:
        config_for({"host": "https://a.example:6443", "api_key": "s3cr3t\n"})
    assert err.value.option == "api_key" and "s3cr3t" not in str(err.value)
