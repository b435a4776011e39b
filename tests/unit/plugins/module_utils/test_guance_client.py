# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_guance/client.py against an HTTP server answering as the Guance OpenAPI and DataKit do."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.canary.istio.plugins.module_utils._guance import client as guance_client
from ansible_collections.canary.istio.plugins.module_utils._guance import errors as guance_errors
from ansible_collections.canary.istio.plugins.module_utils._guance import events as guance_events
from ansible_collections.canary.istio.plugins.module_utils._guance import queries as guance_queries
from ansible_collections.canary.istio.plugins.module_utils._guance import settings as guance_settings


KEY = "tkn_0f9e8d7c6b5a4321secretKEY"


class Reply:
    def __init__(self, status: int, body, content_type: str = "application/json", delay: float = 0.0, headers=None):
        self.status = status
        self.body = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.content_type = content_type
        self.delay = delay
        self.headers = headers or {}


class FakeGuance:
    """Answers each request with the next scripted Reply for its path; records every request."""

    def __init__(self) -> None:
        self.script: dict[str, list[Reply]] = {}
        self.seen: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                outer.seen.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(raw or b"null")})
                queue = outer.script.get(self.path) or []
                reply = queue.pop(0) if len(queue) > 1 else (queue[0] if queue else Reply(404, b"not found", "text/plain"))
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(reply.body)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def on(self, path: str, *replies: Reply) -> None:
        self.script[path] = list(replies)


@pytest.fixture()
def fake():
    server = FakeGuance()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def client(fake: FakeGuance, api: str = "openapi", **kwargs) -> guance_client.GuanceClient:
    options = {"retry_budget": 2.0, "backoff": 0.01, "timeout": 2.0}
    options.update(kwargs)
    return guance_client.GuanceClient(guance_settings.make_config(url=fake.url, api=api, api_key=KEY if api == "openapi" else None, **options))


def send_event(guance: guance_client.GuanceClient, *args, **kwargs) -> dict:
    """An event built for the client's API (``event_request``), sent."""
    return guance.send_event(guance_events.event_request(guance.config.api, *args, **kwargs))


QUERIES = [guance_queries.Query("M::`istio_prom`:(sum(`istio_requests_total`) AS `requests`) BY `destination_version`"),
           guance_queries.Query('sum(increase(istio_prom:istio_requests_total[60s]))', qtype="promql")]


DATE = 1_764_136_800_000  # 2025-11-26T06:00:00Z


class TestRefusedBeforeSending:
    def test_bad_queries_and_time_range_are_refused_before_sending(self, fake) -> None:
        c = client(fake)
        with pytest.raises(guance_errors.GuanceConfigError, match="at least one query"):
            c.query([], 1, 2)
        with pytest.raises(guance_errors.GuanceConfigError, match=r"queries\[0\]: qtype must be dql or promql"):
            c.query([guance_queries.Query("x", qtype="sql")], 1, 2)
        with pytest.raises(guance_errors.GuanceConfigError, match="starts .* at or after its end") as info:
            c.query(QUERIES, 5, 5)
        assert info.value.option == "time_range"
        assert fake.seen == []

    def test_send_event_refuses_an_event_built_for_the_other_api(self) -> None:
        client = guance_client.GuanceClient(guance_settings.make_config(api="datakit", url="http://127.0.0.1:9"))
        with pytest.raises(guance_errors.GuanceConfigError, match="built for api=openapi, the client talks to api=datakit"):
            client.send_event(guance_events.event_request("openapi", "t", date_ms=DATE))
        assert client.requests_made == 0


def envelope(content=None, code=200, error_code="", message="", success=True) -> dict:
    return {"code": code, "content": content, "errorCode": error_code, "message": message,
            "success": success, "traceId": "10888927517520616916"}


QUERY_OK = envelope({"data": [
    {"async_id": "", "column_names": ["requests"], "cost": "1ms", "is_running": False, "points": None,
     "series": [{"name": "istio_prom", "tags": {"destination_version": "v2"}, "columns": ["time", "requests"],
                 "values": [[1708912900000, 12], [1708912890000, 10]]}]},
    {"async_id": "", "cost": "1ms", "is_running": False, "series": []},
]})


class TestOpenApi:
    def test_all_queries_in_one_request_and_simple_series(self, fake) -> None:
        fake.on(guance_settings.QUERY_PATH, Reply(200, QUERY_OK))
        c = client(fake)
        result = c.query(QUERIES, 1_000, 61_000)
        assert len(fake.seen) == 1 and c.requests_made == 1
        sent = fake.seen[0]
        assert sent["headers"]["DF-API-KEY"] == KEY
        assert [q["qtype"] for q in sent["body"]["queries"]] == ["dql", "promql"]
        first = sent["body"]["queries"][0]["query"]
        assert first["timeRange"] == [1000, 61000] and first["disableMultipleField"] is False
        assert first["align_time"] is True and "align_time" not in sent["body"]["queries"][1]["query"]
        lookback = guance_queries.openapi_query_body([guance_queries.Query("M::x", lookback_ms=20_000)], 30_000, 61_000)
        assert lookback["queries"][0]["query"]["timeRange"] == [10_000, 61_000]
        assert sent["body"]["queries"][1]["query"]["promqlType"] == "instantQuery"
        assert result.series[0] == [{"name": "istio_prom", "tags": {"destination_version": "v2"},
                                     "columns": ["time", "requests"],
                                     "rows": [[1708912900000, 12], [1708912890000, 10]]}]
        assert result.series[1] == []
        assert result.raw == QUERY_OK
        assert result.attempts == 1

    @pytest.mark.parametrize("status", [401, 403])
    def test_refused_key_is_a_plain_error_without_the_key(self, fake, status) -> None:
        fake.on(guance_settings.QUERY_PATH, Reply(status, envelope(code=status, error_code="ft.InvalidAPIKey",
                                                                   message=f"invalid key {KEY}", success=False)))
        with pytest.raises(guance_errors.GuanceAuthError) as info:
            client(fake).query(QUERIES, 1, 2)
        text = str(info.value)
        assert f"the API key was refused ({status} ft.InvalidAPIKey" in text
        assert "GUANCE_API_KEY" in text
        assert KEY not in text
        assert len(fake.seen) == 1  # not retried

    def test_rate_limit_waits_and_retries(self, fake) -> None:
        limited = Reply(401, envelope(code=401, error_code="ft.TriggerApiAkCurrentLimiting", success=False))
        fake.on(guance_settings.QUERY_PATH, limited, Reply(401, envelope(code=401, error_code="ft.TriggerApiWorkspaceCurrentLimiting",
                                                           success=False)), Reply(200, QUERY_OK))
        result = client(fake).query(QUERIES, 1, 2)
        assert result.attempts == 3 and len(fake.seen) == 3

    def test_rate_limit_gives_up_when_the_budget_is_spent(self, fake) -> None:
        fake.on(guance_settings.QUERY_PATH, Reply(401, envelope(code=401, error_code="ft.TriggerApiAkCurrentLimiting", success=False),
                                                  headers={"Retry-After": "0.2"}))
        # A virtual clock that only the waits move, so the count does not depend on the machine's load.
        now = [0.0]
        waits: list[float] = []

        def sleep(seconds: float) -> None:
            waits.append(seconds)
            now[0] += seconds

        config = guance_settings.make_config(url=fake.url, api_key=KEY, retry_budget=0.5, backoff=0.01)
        with pytest.raises(guance_errors.GuanceRateLimitError, match="rate limited .*gave up after 3 attempts within retry_budget=0.5s"):
            guance_client.GuanceClient(config, sleep=sleep, clock=lambda: now[0]).query(QUERIES, 1, 2)
        assert waits == [0.2, 0.2]  # the server's Retry-After, longer than the backoff
        assert len(fake.seen) == 3

    def test_server_errors_are_retried_then_reported(self, fake) -> None:
        fake.on(guance_settings.QUERY_PATH, Reply(500, envelope(code=500, error_code="InternalError", success=False)),
                Reply(502, b"<html>bad gateway</html>", "text/html"), Reply(200, QUERY_OK))
        assert client(fake).query(QUERIES, 1, 2).attempts == 3
        fake.on(guance_settings.QUERY_PATH, Reply(503, envelope(code=503, error_code="InternalError", message="busy", success=False)))
        with pytest.raises(guance_errors.GuanceServerError, match=r"server error 503 \(InternalError: busy\).*gave up") as info:
            client(fake, retry_budget=0.2).query(QUERIES, 1, 2)
        assert info.value.status == 503

    def test_timeout_is_retried_then_reported(self, fake) -> None:
        fake.on(guance_settings.QUERY_PATH, Reply(200, QUERY_OK, delay=0.6))
        with pytest.raises(guance_errors.GuanceConnectionError, match="no answer within timeout=0.2s.*gave up"):
            client(fake, timeout=0.2, retry_budget=0.3, backoff=0.05).query(QUERIES, 1, 2)
        fake.on(guance_settings.QUERY_PATH, Reply(200, QUERY_OK, delay=1.5), Reply(200, QUERY_OK))
        assert client(fake, timeout=0.5, retry_budget=5).query(QUERIES, 1, 2).attempts == 2

    def test_refused_connection_is_a_connection_error(self) -> None:
        config = guance_settings.make_config(url="http://127.0.0.1:9", api_key=KEY, retry_budget=0.1, backoff=0.05)
        with pytest.raises(guance_errors.GuanceConnectionError, match="cannot connect") as info:
            guance_client.GuanceClient(config).query(QUERIES, 1, 2)
        assert KEY not in str(info.value)

    def test_non_json_200_is_a_plain_error(self, fake) -> None:
        fake.on(guance_settings.QUERY_PATH, Reply(200, b"<html>login</html>", "text/html"))
        with pytest.raises(guance_errors.GuanceResponseError, match=r"not JSON \(status 200, Content-Type text/html\): <html>login"):
            client(fake).query(QUERIES, 1, 2)

    def test_other_client_errors_are_not_retried(self, fake) -> None:
        fake.on(guance_settings.QUERY_PATH, Reply(400, envelope(code=400, error_code="RouterNotFound", message="no route", success=False)))
        with pytest.raises(guance_errors.GuanceApiError, match="400 RouterNotFound: no route") as info:
            client(fake).query(QUERIES, 1, 2)
        assert info.value.error_code == "RouterNotFound" and len(fake.seen) == 1

    def test_error_inside_a_200_envelope_and_wrong_result_count(self, fake) -> None:
        fake.on(guance_settings.QUERY_PATH, Reply(200, envelope(code=200, error_code="bad.dql", message="parse error", success=False)))
        with pytest.raises(guance_errors.GuanceApiError, match="bad.dql: parse error"):
            client(fake).query(QUERIES, 1, 2)
        fake.on(guance_settings.QUERY_PATH, Reply(200, envelope({"data": [{"series": []}]})))
        with pytest.raises(guance_errors.GuanceResponseError, match="sent 2 queries but the answer holds 1 results"):
            client(fake).query(QUERIES, 1, 2)

    def test_openapi_event(self, fake) -> None:
        fake.on(guance_settings.EVENT_PATH, Reply(200, envelope(True)))
        out = send_event(client(fake), "Canary reviews v2 at 10%", "info", "weight 10", {"service": "reviews", "step": 1},
                         date_ms=1730000000000)
        assert fake.seen[0]["body"] == {"date": 1730000000000, "status": "info", "title": "Canary reviews v2 at 10%",
                                        "message": "weight 10", "customTags": {"service": "reviews", "step": "1"}}
        assert out["attempts"] == 1
        with pytest.raises(guance_errors.GuanceConfigError, match="status must be one of") as info:
            send_event(client(fake), "t", "fine")
        assert info.value.option == "status"

    def test_rate_limit_message_names_the_limit_that_was_hit(self) -> None:
        # Guance's OpenAPI documents 20 requests a minute per key, 200 per workspace (all keys together).
        assert "20 requests a minute per key" in guance_client._rate_limit_hint("ft.TriggerApiAkCurrentLimiting")  # pylint: disable=protected-access
        assert "200 requests a minute per workspace" in guance_client._rate_limit_hint(
            "ft.TriggerApiWorkspaceCurrentLimiting")  # pylint: disable=protected-access


class TestDataKit:
    def test_datakit_query(self, fake) -> None:
        fake.on(guance_settings.DATAKIT_QUERY_PATH, Reply(200, {"content": [
            {"series": [{"name": "istio_prom", "columns": ["time", "requests"], "values": [[1, 5]]}], "cost": "1ms"},
            {"series": None}]}))
        queries = [QUERIES[0], guance_queries.Query("L::re(`.*`):(count(`*`) AS `errors`)", lookback_ms=500)]
        result = client(fake, api="datakit").query(queries, 1000, 2000)
        sent = fake.seen[0]
        assert "DF-API-KEY" not in sent["headers"]
        assert sent["body"]["queries"][0]["time_range"] == [1000, 2000]
        assert sent["body"]["queries"][1]["time_range"] == [500, 2000]  # its own earlier start
        assert sent["body"]["queries"][0]["disable_slimit"] is True
        assert sent["body"]["queries"][0]["align_time"] is True  # buckets on the interval's multiples, labelled at their start
        assert result.series == [[{"name": "istio_prom", "tags": {}, "columns": ["time", "requests"], "rows": [[1, 5]]}], []]

    def test_datakit_error_inside_200(self, fake) -> None:
        fake.on(guance_settings.DATAKIT_QUERY_PATH, Reply(200, {"error_code": "datakit.queryError", "message": "upstream: bad DQL"}))
        with pytest.raises(guance_errors.GuanceApiError, match="DataKit answered 200 with an error: datakit.queryError: upstream: bad DQL"):
            client(fake, api="datakit").query(QUERIES[:1], 1, 2)

    def test_datakit_refuses_promql_and_rate_limit_429(self, fake) -> None:
        with pytest.raises(guance_errors.GuanceConfigError, match="DQL only") as info:
            client(fake, api="datakit").query(QUERIES, 1, 2)
        assert info.value.option == "qtype"
        fake.on(guance_settings.DATAKIT_QUERY_PATH, Reply(429, {"error_code": "datakit.reachMaxAPILimit"}), Reply(200, {"content": [{}]}))
        assert client(fake, api="datakit").query(QUERIES[:1], 1, 2).attempts == 2

    def test_datakit_event(self, fake) -> None:
        fake.on(guance_settings.DATAKIT_EVENT_PATH, Reply(200, b"", "text/plain"))
        send_event(client(fake, api="datakit"), "promoted", "ok", "v2 took 100%", {"service": "reviews"}, date_ms=1000)
        point = fake.seen[0]["body"][0]
        assert point["measurement"] == "canary_release" and point["tags"] == {"service": "reviews"}
        assert point["time"] == 1000 * 1_000_000
        assert point["fields"]["df_status"] == "ok" and point["fields"]["df_title"] == "promoted"
        assert point["fields"]["df_event_id"].startswith("event-") and len(point["fields"]["df_event_id"]) == 38
        fake.on(guance_settings.DATAKIT_EVENT_PATH, Reply(400, {"error_code": "datakit.invalidJsonPoint", "message": "bad point"}))
        with pytest.raises(guance_errors.GuanceApiError, match="400 datakit.invalidJsonPoint: bad point"):
            send_event(client(fake, api="datakit"), "x")


DF_KEY = "df-key-8c1d2e3f4a5b6c7d"
PASSWORD = "pw-0a9b8c7d6e5f"


class TestRedirectsAndUrlCredentials:
    """The key goes to no other host, and credentials in the url never show."""

    def test_guance_does_not_follow_a_redirect_with_its_key(self, redirect_pair) -> None:
        redirector, target = redirect_pair
        client = guance_client.GuanceClient(guance_settings.make_config(url=redirector.url, api_key=DF_KEY, retry_budget=0.5, backoff=0.01))
        with pytest.raises(guance_errors.GuanceApiError) as info:
            client.query([guance_queries.Query("M::x:(count(`*`))")], 1, 2)
        assert "redirect to localhost" in str(info.value) and "url (or site)" in str(info.value)
        assert "loc-secret-123" not in str(info.value)
        assert len(redirector.seen) == 1 and redirector.seen[0]["headers"]["DF-API-KEY"] == DF_KEY
        assert target.seen == []  # the key went nowhere else

    def test_guance_url_credentials_stay_out_of_connection_errors(self) -> None:
        config = guance_settings.make_config(url=f"http://user:{PASSWORD}@127.0.0.1:9", api_key=DF_KEY, retry_budget=0.2, backoff=0.05)
        with pytest.raises(guance_errors.GuanceConnectionError) as info:
            guance_client.GuanceClient(config).query([guance_queries.Query("M::x:(count(`*`))")], 1, 2)
        assert PASSWORD not in str(info.value) and "http://127.0.0.1:9" in str(info.value)
        assert config.display_url == "http://127.0.0.1:9"
