# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Guance HTTP client: queries and events against the OpenAPI or a DataKit, one request per
call. Rate limits (401 with ``ft.TriggerApi*CurrentLimiting``, DataKit 429), 5xx answers,
timeouts and refused connections are retried with backoff within a time budget; a refused key,
other 4xx answers, a DataKit error inside a 200 answer and a body that is not JSON are not.
``requests`` is imported when the first request is sent.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import json

import typing as t

from ansible_collections.canary.istio.plugins.module_utils._http.client import (
    JsonHttpClient,
    body_snippet,
    decoded_json,
    retry_after,
)
from ansible_collections.canary.istio.plugins.module_utils._http.redact import redact
from ansible_collections.canary.istio.plugins.module_utils._http.retry import Retry
from ansible_collections.canary.istio.plugins.module_utils._guance.errors import (
    GuanceApiError,
    GuanceAuthError,
    GuanceConfigError,
    GuanceConnectionError,
    GuanceRateLimitError,
    GuanceResponseError,
    GuanceServerError,
)
from ansible_collections.canary.istio.plugins.module_utils._guance.events import EventRequest
from ansible_collections.canary.istio.plugins.module_utils._guance.queries import (
    Query,
    QueryResult,
    datakit_query_body,
    openapi_query_body,
    simple_series,
    validate_queries,
)
from ansible_collections.canary.istio.plugins.module_utils._guance.settings import (
    API_DATAKIT,
    API_OPENAPI,
    DATAKIT_QUERY_PATH,
    DATAKIT_RATE_LIMIT_CODE,
    GuanceConfig,
    QUERY_PATH,
    RATE_LIMIT_CODES,
)


def _rate_limit_hint(code: str) -> str:
    """Which of the OpenAPI's documented limits was hit: the key's or the whole workspace's."""
    if code == "ft.TriggerApiWorkspaceCurrentLimiting":
        return "the OpenAPI allows 200 requests a minute per workspace, all keys together"
    return "the OpenAPI allows 20 requests a minute per key"


class GuanceClient(JsonHttpClient):
    """Queries and events against the OpenAPI or a DataKit; GuanceError on failure."""

    config: GuanceConfig
    connection_error = GuanceConnectionError
    refused_error = GuanceApiError
    url_options = "url (or site)"

    # -- public calls ---------------------------------------------------------------------------

    def query(self, queries: t.Sequence[Query], start_ms: int, end_ms: int) -> QueryResult:
        """Run every query in one request over ``[start_ms, end_ms]`` (epoch ms)."""
        validate_queries(queries, start_ms, end_ms)
        if self.config.api == API_DATAKIT:
            body = datakit_query_body(queries, start_ms, end_ms)
            answer, attempts = self._call("POST", DATAKIT_QUERY_PATH, body)
            items = self._datakit_items(answer)
        else:
            body = openapi_query_body(queries, start_ms, end_ms)
            answer, attempts = self._call("POST", QUERY_PATH, body)
            items = self._openapi_items(answer)
        if len(items) != len(queries):
            raise GuanceResponseError(
                f"sent {len(queries)} queries but the answer holds {len(items)} results", error_code="")
        for index, item in enumerate(items):
            code = str(item.get("error_code") or item.get("errorCode") or "")
            if code:
                message = redact(str(item.get("message") or item.get("error") or ""), self.config.secrets())
                raise GuanceApiError(f"query {index + 1} failed: {code}: {message}".rstrip(": "), 200, code)
        return QueryResult([simple_series(item) for item in items], answer, attempts)

    def send_event(self, request: EventRequest) -> dict[str, t.Any]:
        """Send an ``event_request``: one POST, retried like a query. GuanceError on failure."""
        if request.api != self.config.api:
            raise GuanceConfigError(f"the event was built for api={request.api}, the client talks to api={self.config.api}",
                                    "api")
        trace_id = None
        if request.api == API_DATAKIT:
            # Success is 200 with an empty body; errors are DataKit's {error_code, message}.
            _answer, attempts = self._call("POST", request.path, request.body, expect_json=False)
        else:
            answer, attempts = self._call("POST", request.path, request.body)
            content = self._openapi_content(answer)
            if content is False:
                raise GuanceResponseError("Guance answered success but did not confirm the event (content false)", 200)
            trace_id = str(answer.get("traceId")) if answer.get("traceId") not in (None, "") else None
        return {"body": request.body, "event": request.event, "event_id": request.event_id, "trace_id": trace_id,
                "attempts": attempts}

    def openapi(self, method: str, path: str, body: t.Any = None, params: t.Mapping[str, t.Any] | None = None) -> t.Any:
        """One OpenAPI call (retried like a query); its ``content``. GuanceError on failure."""
        if self.config.api != API_OPENAPI:
            raise GuanceConfigError(f"{path} is an OpenAPI call; the client talks to api={self.config.api}", "api")
        answer, _attempts = self._call(method, path, body, params=params)
        return self._openapi_content(answer)

    # -- answers --------------------------------------------------------------------------------

    def _openapi_content(self, answer: t.Any) -> t.Any:
        if not isinstance(answer, dict):
            raise GuanceResponseError("the OpenAPI answer is not a JSON object")
        code = str(answer.get("errorCode") or "")
        if code or answer.get("success") is False:
            message = redact(str(answer.get("message") or ""), self.config.secrets())
            raise GuanceApiError(f"Guance refused the request: {code or 'error'}: {message}".rstrip(": "),
                                 answer.get("code"), code)
        return answer.get("content")

    def _openapi_items(self, answer: t.Any) -> list[dict[str, t.Any]]:
        content = self._openapi_content(answer)
        data = content.get("data") if isinstance(content, dict) else None
        if not isinstance(data, list):
            raise GuanceResponseError("the OpenAPI answer has no content.data list")
        return [item if isinstance(item, dict) else {} for item in data]

    def _datakit_items(self, answer: t.Any) -> list[dict[str, t.Any]]:
        if not isinstance(answer, dict):
            raise GuanceResponseError("the DataKit answer is not a JSON object")
        # The DataKit passes the upstream answer through with HTTP 200, errors included.
        code = str(answer.get("error_code") or answer.get("errorCode") or "")
        if code:
            message = redact(str(answer.get("message") or ""), self.config.secrets())
            raise GuanceApiError(f"the DataKit answered 200 with an error: {code}: {message}".rstrip(": "), 200, code)
        content = answer.get("content")
        if not isinstance(content, list):
            raise GuanceResponseError("the DataKit answer has no content list")
        return [item if isinstance(item, dict) else {} for item in content]

    # -- transport ------------------------------------------------------------------------------

    def prepare_session(self, session: t.Any) -> None:
        session.headers["Content-Type"] = "application/json"
        if self.config.api == API_OPENAPI and self.config.api_key:
            session.headers["DF-API-KEY"] = self.config.api_key

    def _call(self, method: str, path: str, body: t.Any, expect_json: bool = True,
              params: t.Mapping[str, t.Any] | None = None) -> tuple[t.Any, int]:
        """Send with retries within the budget; returns (decoded answer, attempts)."""
        return self._retrying(lambda: self._once(method, path, body, expect_json, params))

    def _once(self, method: str, path: str, body: t.Any, expect_json: bool, params: t.Mapping[str, t.Any] | None = None) -> t.Any:
        secrets = self.config.secrets()
        # A GET carries its arguments in the query string, and a body-less POST (a delete) none.
        payload_kwargs: dict[str, t.Any] = {"params": dict(params)} if params else {}
        if body is not None or method != "GET":
            payload_kwargs["data"] = json.dumps(body).encode("utf-8")
        response, where = self._send(method, path, **payload_kwargs)
        status = response.status_code
        payload, is_json = decoded_json(response)
        code = ""
        message = ""
        if isinstance(payload, dict):
            code = str(payload.get("errorCode") or payload.get("error_code") or "")
            message = redact(str(payload.get("message") or ""), secrets)
        detail = f"{code}: {message}".strip(": ") if (code or message) else body_snippet(response, secrets)
        if status in (401, 403, 429) and (code in RATE_LIMIT_CODES or code == DATAKIT_RATE_LIMIT_CODE or status == 429):
            raise Retry(GuanceRateLimitError(
                f"{where}: rate limited ({status} {detail}); {_rate_limit_hint(code)}",
                status, code), wait=retry_after(response))
        if status in (401, 403):
            raise GuanceAuthError(
                f"{where}: the API key was refused ({status} {detail}). Check api_key (or GUANCE_API_KEY): "
                "DF-API-KEY takes the API Key ID of the workspace, and the key must not be disabled", status, code)
        if status >= 500:
            raise Retry(GuanceServerError(f"{where}: server error {status} ({detail})", status, code))
        if status >= 400:
            raise GuanceApiError(f"{where}: {status} {detail}", status, code)
        if not expect_json:
            return payload
        if not is_json:
            raise GuanceResponseError(
                f"{where}: the answer is not JSON (status {status}, Content-Type "
                f"{response.headers.get('Content-Type') or 'none'}): {body_snippet(response, secrets)}", status)
        return payload
