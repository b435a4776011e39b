# -*- coding: utf-8 -*-
# Copyright: contributors to the canary.istio collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What all three HTTP clients refuse alike: credentials that cannot be a header line, redirects
(which would carry a key to another host), credentials written into URLs. Each client is driven
against real local HTTP servers: one that redirects, and the target it points at, which must
never be reached."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.canary.istio.plugins.module_utils._guance import client as guance_client
from ansible_collections.canary.istio.plugins.module_utils._guance import errors as guance_errors
from ansible_collections.canary.istio.plugins.module_utils._guance import queries as guance_queries
from ansible_collections.canary.istio.plugins.module_utils._guance import settings as guance_settings
from ansible_collections.canary.istio.plugins.module_utils._k8s.errors import K8sConfigError, K8sConnectionError
from ansible_collections.canary.istio.plugins.module_utils._k8s.module import client_from_params
from ansible_collections.canary.istio.plugins.module_utils._analysis import prometheus as p
from ansible_collections.canary.istio.plugins.module_utils._http.safety import (
    header_problem,
    redirect_message,
    split_userinfo,
    transport_warnings,
)
from ansible_collections.canary.istio.plugins.module_utils._http.redact import (
    REDACTED,
    basic_auth_token,
    redact,
    secret_forms,
)

KEY = "df-key-8c1d2e3f4a5b6c7d"
PASSWORD = "pw-0a9b8c7d6e5f"


class Recorder:
    """A local HTTP server answering every request with ``status`` (and ``Location``), recording
    what it received."""

    def __init__(self, status: int = 200, location: str | None = None, body: bytes = b"{}") -> None:
        self.seen: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers), "body": raw})
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815 (http.server's names)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def redirect_pair():
    """(redirector, target): the redirector answers 307 to the target under another host name
    (``localhost`` rather than ``127.0.0.1``), with a token in the Location's query."""
    target = Recorder(200, body=b'{"status": "success", "data": {"resultType": "vector", "result": []}}')
    redirector = Recorder(307, location=f"http://localhost:{target.port}/steal?token=loc-secret-123")
    yield redirector, target
    redirector.close()
    target.close()


# ---------------------------------------------------------------------------------------------
# pure helpers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, problem", [
    ("plain-KEY_1.2", None), ("", None), (None, None),
    ("KEY\n", "a line break"), ("a\rb", "a line break"), ("tab\there", "a control character"),
    ("del\x7f", "a control character"), ("clé", "a non-ASCII character"),
])
def test_header_problem(value, problem) -> None:
    assert header_problem(value) == problem


def test_secret_forms_cover_repr_json_and_url_spellings() -> None:
    secret = 'k\ney"/é'
    text = f"header {secret!r} json {json.dumps(secret)} url k%0Aey%22%2F%C3%A9 plain {secret}"
    cleaned = redact(text, [secret])
    assert "k\\ney" not in cleaned and "k%0Aey" not in cleaned and secret not in cleaned
    assert cleaned.count(REDACTED) == 4
    assert secret_forms("abc") == []  # too short to hide without mangling words


def test_basic_auth_token_is_the_header_word() -> None:
    assert basic_auth_token("bob", PASSWORD) == base64.b64encode(f"bob:{PASSWORD}".encode()).decode()


def test_split_userinfo() -> None:
    assert split_userinfo(f"http://bob:{PASSWORD}@prom:9090/x") == ("http://prom:9090/x", [f"bob:{PASSWORD}", PASSWORD])
    assert split_userinfo("https://token@guance.example") == ("https://guance.example", ["token"])
    assert split_userinfo("https://guance.example/a@b") == ("https://guance.example/a@b", [])


def test_redirect_message_names_the_host_not_the_location() -> None:
    message = redirect_message("GET /x", 302, "https://evil.example/cb?key=abc123", "url")
    assert "evil.example" in message and "key=abc123" not in message and "Set url" in message
    assert "no Location" in redirect_message("GET /x", 301, None, "url")


def test_transport_warnings() -> None:
    assert transport_warnings("http://prom.example:9090", "Prometheus", True, True) == [
        "credentials are sent over plain http:// to http://prom.example:9090 (Prometheus): anyone on the path can read "
        "them. Use https://"]
    assert transport_warnings("http://prom.example:9090", "Prometheus", False, True) == []
    assert transport_warnings("http://127.0.0.1:9090", "Prometheus", True, True) == []  # loopback stays here
    assert transport_warnings("http://localhost:9529", "Guance", True, True) == []
    off = transport_warnings(f"https://u:{PASSWORD}@k.example", "the Kubernetes API server", True, False)
    assert len(off) == 1 and "TLS certificate verification is off for https://k.example" in off[0]
    assert PASSWORD not in off[0]


# ---------------------------------------------------------------------------------------------
# credentials that cannot be a header line
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [KEY + "\n", KEY[:5] + "\r\n" + KEY[5:], KEY + "\t"])
def test_guance_key_with_a_control_character_is_refused_by_name(bad) -> None:
    with pytest.raises(guance_errors.GuanceConfigError) as info:
        guance_settings.make_config(url="https://guance.example", api_key=bad)
    assert info.value.option == "api_key"
    assert "api_key (or GUANCE_API_KEY) holds" in str(info.value)
    assert KEY[:5] not in str(info.value) and KEY not in repr(info.value)


@pytest.mark.parametrize("option", ["token", "password", "username"])
def test_prometheus_credentials_with_a_line_break_are_refused_by_name(option) -> None:
    values = {"token": None, "username": "bob", "password": PASSWORD}
    if option == "token":
        values = {"token": KEY + "\n"}
    else:
        values[option] = values[option] + "\n"
    with pytest.raises(p.PrometheusConfigError) as info:
        p.make_config("https://prom.example", **values)
    assert info.value.option == f"prometheus_{option}"
    assert "a line break" in str(info.value) and KEY not in str(info.value) and PASSWORD not in str(info.value)


def test_kubernetes_token_with_a_line_break_is_refused_by_name() -> None:
    with pytest.raises(K8sConfigError) as info:
        client_from_params({"host": "https://k.example:6443", "api_key": KEY[:6] + "\n" + KEY[6:]}, environ={})
    assert info.value.option == "api_key" and "a line break" in str(info.value)
    assert KEY[:6] not in str(info.value)


# ---------------------------------------------------------------------------------------------
# redirects are not followed
# ---------------------------------------------------------------------------------------------


def test_guance_does_not_follow_a_redirect_with_its_key(redirect_pair) -> None:
    redirector, target = redirect_pair
    client = guance_client.GuanceClient(guance_settings.make_config(url=redirector.url, api_key=KEY, retry_budget=0.5, backoff=0.01))
    with pytest.raises(guance_errors.GuanceApiError) as info:
        client.query([guance_queries.Query("M::x:(count(`*`))")], 1, 2)
    assert "redirect to localhost" in str(info.value) and "url (or site)" in str(info.value)
    assert "loc-secret-123" not in str(info.value)
    assert len(redirector.seen) == 1 and redirector.seen[0]["headers"]["DF-API-KEY"] == KEY
    assert target.seen == []  # the key went nowhere else


def test_prometheus_does_not_follow_a_redirect(redirect_pair) -> None:
    redirector, target = redirect_pair
    client = p.PrometheusClient(p.make_config(redirector.url, token=KEY, retry_budget=0.5, backoff=0.01))
    with pytest.raises(p.PrometheusApiError) as info:
        client.query("up")
    assert "redirect to localhost" in str(info.value) and "prometheus_url" in str(info.value)
    assert target.seen == []


def test_kubernetes_does_not_resend_headers_or_body_on_a_307(redirect_pair) -> None:
    redirector, target = redirect_pair
    client = client_from_params({"host": redirector.url, "api_key": KEY, "impersonate_user": "alice"}, environ={})
    with pytest.raises(K8sConnectionError) as info:
        client.replace("/api/v1/namespaces/default/configmaps/x", {"kind": "ConfigMap", "data": {"secret": "s3cr3t"}})
    client.close()
    assert "307, a redirect to localhost" in str(info.value)
    assert redirector.seen[0]["method"] == "PUT" and target.seen == []


# ---------------------------------------------------------------------------------------------
# credentials written into URLs
# ---------------------------------------------------------------------------------------------


def test_prometheus_url_credentials_are_used_and_never_shown() -> None:
    server = Recorder(500, body=f'{{"error": "upstream said bob:{PASSWORD}"}}'.encode())
    try:
        url = f"http://bob:{PASSWORD}@127.0.0.1:{server.port}"
        config = p.make_config(url, retry_budget=0.2, backoff=0.05)
        with pytest.raises(p.PrometheusApiError) as info:
            p.PrometheusClient(config).query("up")
    finally:
        server.close()
    assert server.seen[0]["headers"]["Authorization"] == "Basic " + basic_auth_token("bob", PASSWORD)
    assert PASSWORD not in str(info.value) and f"POST http://127.0.0.1:{server.port}/api/v1/query" in str(info.value)
    assert PASSWORD in config.secrets()


def test_guance_url_credentials_stay_out_of_connection_errors() -> None:
    config = guance_settings.make_config(url=f"http://user:{PASSWORD}@127.0.0.1:9", api_key=KEY, retry_budget=0.2, backoff=0.05)
    with pytest.raises(guance_errors.GuanceConnectionError) as info:
        guance_client.GuanceClient(config).query([guance_queries.Query("M::x:(count(`*`))")], 1, 2)
    assert PASSWORD not in str(info.value) and "http://127.0.0.1:9" in str(info.value)
    assert config.display_url == "http://127.0.0.1:9"


def test_kubernetes_server_credentials_stay_out_of_messages_and_describe() -> None:
    client = client_from_params({"host": f"http://u:{PASSWORD}@127.0.0.1:9", "api_key": KEY}, environ={})
    with pytest.raises(K8sConnectionError) as info:
        client.get("/api")
    assert PASSWORD not in str(info.value)
    assert client.config.describe()["server"] == "http://127.0.0.1:9"
    assert PASSWORD in client.config.secrets()
    client.close()
