# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_analysis/prometheus.py against an HTTP server answering as Prometheus' /api/v1/query."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from ansible_collections.canary.istio.plugins.module_utils._analysis import answers
from ansible_collections.canary.istio.plugins.module_utils._analysis import prometheus as p
from ansible_collections.canary.istio.plugins.module_utils._http.redact import basic_auth_token
from ansible_collections.canary.istio.tests.unit.plugins.module_utils.http_fakes import Recorder


TOKEN = "prom-token-7a6b5c4d3e2f1"


class FakePrometheus:
    """Answers POST /api/v1/query with the next scripted (status, body, content type, delay)."""

    def __init__(self) -> None:
        self.script: list[tuple] = []
        self.seen: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                outer.seen.append({"path": self.path, "headers": dict(self.headers), "form": parse_qs(raw)})
                status, body, ctype, delay = outer.script.pop(0) if len(outer.script) > 1 else outer.script[0]
                if delay:
                    time.sleep(delay)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def on(self, *replies) -> None:
        # (status, body[, content type[, delay]])
        self.script = [(r[0], r[1], r[2] if len(r) > 2 and r[2] else "application/json", r[3] if len(r) > 3 else 0)
                       for r in replies]


@pytest.fixture()
def prom():
    server = FakePrometheus()
    thread = threading.Thread(target=server.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def client(prom: FakePrometheus, **kwargs) -> p.PrometheusClient:
    options = {"retry_budget": 2.0, "backoff": 0.01, "timeout": 2.0, "token": TOKEN}
    options.update(kwargs)
    return p.PrometheusClient(p.make_config(prom.url, **options))


VECTOR = {"status": "success", "data": {"resultType": "vector", "result": [
    {"metric": {"destination_version": "v2", "response_code": "200"}, "value": [1730000000.5, "95"]},
    {"metric": {"destination_version": "v2", "response_code": "503"}, "value": [1730000000.5, "5"]},
    {"metric": {"__name__": "up", "destination_version": "v1"}, "value": [1730000000.5, "NaN"]},
]}}


KEY = "df-key-8c1d2e3f4a5b6c7d"
PASSWORD = "pw-0a9b8c7d6e5f"


class TestQueries:
    def test_vector_answer_to_simple_series(self, prom) -> None:
        prom.on((200, VECTOR))
        result = client(prom).query('sum(increase(istio_requests_total[60s]))', at_ms=1730000000500)
        sent = prom.seen[0]
        assert sent["path"] == "/api/v1/query"
        assert sent["form"] == {"query": ["sum(increase(istio_requests_total[60s]))"], "time": ["1730000000.500"]}
        assert sent["headers"]["Authorization"] == "Bearer " + TOKEN
        assert result.series[0] == {"name": "", "tags": {"destination_version": "v2", "response_code": "200"},
                                    "columns": ["time", "value"], "rows": [[1730000000500, 95.0]]}
        assert result.series[2]["name"] == "up" and result.series[2]["rows"] == [[1730000000500, None]]
        # the analysis parsers read it like a Guance answer
        out = answers.parse_requests(result.series, ["v2", "v1"], counter=False)
        assert out["v2"]["request_error_rate"] == 5.0

    def test_matrix_scalar_and_infinity(self) -> None:
        matrix = {"resultType": "matrix", "result": [{"metric": {"le": "+Inf"}, "values": [[1, "1"], [2, "+Inf"]]}]}
        assert p.simple_series(matrix)[0]["rows"] == [[1000, 1.0], [2000, "+Inf"]]
        assert p.simple_series({"resultType": "scalar", "result": [3, "7"]})[0]["rows"] == [[3000, 7.0]]
        with pytest.raises(p.PrometheusResponseError, match="unexpected result type 'table'"):
            p.simple_series({"resultType": "table", "result": []})


class TestErrors:
    def test_bad_query_is_not_retried(self, prom) -> None:
        prom.on((400, {"status": "error", "errorType": "bad_data", "error": "parse error at char 5"}))
        with pytest.raises(p.PrometheusApiError, match="the query was refused: 400 bad_data: parse error at char 5") as info:
            client(prom).query("sum(")
        assert info.value.error_type == "bad_data" and len(prom.seen) == 1

    def test_auth_error_without_secret(self, prom) -> None:
        prom.on((401, f"bad token {TOKEN}".encode(), "text/plain"))
        with pytest.raises(p.PrometheusAuthError) as info:
            client(prom).query("up")
        assert TOKEN not in str(info.value) and "401" in str(info.value)

    def test_server_errors_retried_then_reported(self, prom) -> None:
        prom.on((503, {"status": "error", "errorType": "timeout", "error": "query timed out"}),
                (502, b"<html>bad gateway</html>", "text/html"), (200, VECTOR))
        assert client(prom).query("up").attempts == 3
        prom.on((503, {"status": "error", "errorType": "timeout", "error": "query timed out"}))
        with pytest.raises(p.PrometheusApiError, match="503 timeout: query timed out.*gave up after"):
            client(prom, retry_budget=0.2).query("up")

    def test_timeout_and_non_json(self, prom) -> None:
        prom.on((200, VECTOR, None, 1.5), (200, VECTOR))
        assert client(prom, timeout=0.5, retry_budget=5).query("up").attempts == 2
        prom.on((200, b"<html>login</html>", "text/html"))
        with pytest.raises(p.PrometheusResponseError, match=r"not JSON \(status 200, Content-Type text/html\)"):
            client(prom).query("up")


class TestConfig:
    def test_config_errors_name_the_option(self) -> None:
        with pytest.raises(p.PrometheusConfigError) as info:
            p.make_config(None)
        assert info.value.option == "prometheus_url"
        with pytest.raises(p.PrometheusConfigError, match="not both"):
            p.make_config("http://x", token="a", password="b")
        assert TOKEN not in repr(p.make_config("http://x", token=TOKEN))

    @pytest.mark.parametrize("option", ["token", "password", "username"])
    def test_prometheus_credentials_with_a_line_break_are_refused_by_name(self, option) -> None:
        values = {"token": None, "username": "bob", "password": PASSWORD}
        if option == "token":
            values = {"token": KEY + "\n"}
        else:
            values[option] = values[option] + "\n"
        with pytest.raises(p.PrometheusConfigError) as info:
            p.make_config("https://prom.example", **values)
        assert info.value.option == f"prometheus_{option}"
        assert "a line break" in str(info.value) and KEY not in str(info.value) and PASSWORD not in str(info.value)


class TestRedirectsAndUrlCredentials:
    """No redirect is followed, and credentials in the url never show."""

    def test_prometheus_does_not_follow_a_redirect(self, redirect_pair) -> None:
        redirector, target = redirect_pair
        client = p.PrometheusClient(p.make_config(redirector.url, token=KEY, retry_budget=0.5, backoff=0.01))
        with pytest.raises(p.PrometheusApiError) as info:
            client.query("up")
        assert "redirect to localhost" in str(info.value) and "prometheus_url" in str(info.value)
        assert target.seen == []

    def test_prometheus_url_credentials_are_used_and_never_shown(self) -> None:
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
