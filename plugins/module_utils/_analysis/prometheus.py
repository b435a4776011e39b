# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Prometheus HTTP API client (instant queries), the second analysis provider.

PRIVATE to this collection: may change at any time.

``POST /api/v1/query`` (form-encoded ``query`` and ``time``), one request per query: Prometheus
has no batch endpoint. Answers are turned into the same simple series shape as the Guance
client's (``name``, ``tags``, ``columns`` ``["time", "value"]``, ``rows`` with epoch-ms times), so
the parsers of ``answers.py`` read both providers alike.

Errors follow the Guance client's: a PrometheusError with a plain message that never holds the token or
password; 429, 5xx (503 is also Prometheus' answer to a query timeout), timeouts and refused
connections are retried with backoff within a time budget; 400/422 (bad query) and 401/403 are not.
``requests`` is imported when the first request is sent.
"""

from __future__ import annotations

import math
import typing as t
from dataclasses import dataclass, field

from ansible_collections.canary.istio.plugins.module_utils._errors import CanaryError
from ansible_collections.canary.istio.plugins.module_utils._http.client import (
    Endpoint,
    JsonHttpClient,
    body_snippet,
    decoded_json,
    retry_after,
    timing_problems,
    url_problem,
)
from ansible_collections.canary.istio.plugins.module_utils._http.safety import credential_problem
from ansible_collections.canary.istio.plugins.module_utils._http.redact import basic_auth_token, redact
from ansible_collections.canary.istio.plugins.module_utils._http.retry import Retry

QUERY_PATH = "/api/v1/query"


class PrometheusError(CanaryError):
    """Base of every error raised here. Messages never contain credentials."""


class PrometheusConfigError(PrometheusError):
    """Unusable settings. ``option`` names the module option to fix."""


class PrometheusConnectionError(PrometheusError):
    """No answer: refused connection, DNS, TLS, or a timeout (after the retries)."""


class PrometheusApiError(PrometheusError):
    """Prometheus answered with an error. ``error_type`` is its ``errorType`` (``bad_data``,
    ``execution``, ``timeout``...), empty when the body had none."""

    def __init__(self, message: str, status: int | None = None, error_type: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type


class PrometheusAuthError(PrometheusApiError):
    """401 or 403 (usually from a proxy in front of Prometheus)."""


class PrometheusResponseError(PrometheusApiError):
    """An answer this client cannot read: not JSON, or not the documented shape."""


@dataclass(frozen=True)
class PrometheusConfig(Endpoint):
    """An ``Endpoint`` with ``token`` (sent as ``Authorization: Bearer``) or ``username`` and
    ``password`` (basic auth)."""

    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    service: t.ClassVar[str] = "Prometheus"

    def secrets(self) -> list[str]:
        values = [self.token, self.password] + super().secrets()
        if self.username and self.password:
            values.append(basic_auth_token(self.username, self.password))
        return [s for s in values if s]


def make_config(url: str | None, **kwargs: t.Any) -> PrometheusConfig:
    """A checked PrometheusConfig."""
    if not url:
        raise PrometheusConfigError("set prometheus_url, for example http://prometheus:9090", "prometheus_url")
    url = url.strip().rstrip("/")
    problem = url_problem(url, "prometheus_url")
    if problem:
        raise PrometheusConfigError(problem, "prometheus_url")
    if kwargs.get("token") and kwargs.get("password"):
        raise PrometheusConfigError("give a bearer token or a username and password, not both", "token")
    for option in ("token", "username", "password"):
        problem = credential_problem(kwargs.get(option), f"prometheus_{option}")
        if problem:
            raise PrometheusConfigError(problem, f"prometheus_{option}")
    for option, problem in timing_problems(kwargs):
        raise PrometheusConfigError(problem, option)
    return PrometheusConfig(url=url, **{k: v for k, v in kwargs.items() if v is not None})


def _sample(pair: t.Any) -> list[t.Any] | None:
    # [<unix seconds float>, "<value string>"] -> [ms, number]; NaN -> None, +-Inf kept as text
    # (JSON has no infinity, and Ansible results must be JSON).
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
        return None
    try:
        stamp = int(round(float(pair[0]) * 1000))
        value = float(pair[1])
    except (TypeError, ValueError):
        return None
    if math.isnan(value):
        return [stamp, None]
    if math.isinf(value):
        return [stamp, "+Inf" if value > 0 else "-Inf"]
    return [stamp, value]


def simple_series(data: t.Mapping[str, t.Any]) -> list[dict[str, t.Any]]:
    """The ``data`` of a query answer as ``{name, tags, columns, rows}`` series."""
    kind = data.get("resultType")
    result = data.get("result")
    if kind in ("scalar", "string"):
        row = _sample(result) if kind == "scalar" else None
        return [{"name": "", "tags": {}, "columns": ["time", "value"], "rows": [row] if row else []}]
    if kind not in ("vector", "matrix") or not isinstance(result, list):
        raise PrometheusResponseError(f"unexpected result type {kind!r} in the answer")
    out = []
    for item in result:
        if not isinstance(item, dict):
            continue
        labels = dict(item.get("metric") or {})
        name = str(labels.pop("__name__", ""))
        pairs = [item.get("value")] if kind == "vector" else list(item.get("values") or [])
        rows = [row for row in (_sample(pair) for pair in pairs) if row is not None]
        out.append({"name": name, "tags": labels, "columns": ["time", "value"], "rows": rows})
    return out


@dataclass(frozen=True)
class PrometheusResult:
    series: list[dict[str, t.Any]]
    raw: t.Any
    attempts: int
    warnings: list[str]


class PrometheusClient(JsonHttpClient):
    """Instant queries; PrometheusError on failure."""

    config: PrometheusConfig
    connection_error = PrometheusConnectionError
    refused_error = PrometheusApiError
    url_options = "prometheus_url"

    def query(self, promql: str, at_ms: int | None = None) -> PrometheusResult:
        """One instant query evaluated at ``at_ms`` (epoch ms; now when None)."""
        if not isinstance(promql, str) or not promql.strip():
            raise PrometheusConfigError("the PromQL query is empty", "queries")
        form = {"query": promql}
        if at_ms is not None:
            if isinstance(at_ms, bool) or not isinstance(at_ms, int) or at_ms < 0:
                raise PrometheusConfigError(f"the evaluation time must be epoch milliseconds, got {at_ms!r}", "time_range")
            form["time"] = f"{at_ms / 1000:.3f}"
        answer, attempt = self._retrying(lambda: self._once(form))
        data = answer.get("data")
        if not isinstance(data, dict):
            raise PrometheusResponseError("the answer has no data object")
        return PrometheusResult(simple_series(data), answer, attempt, [str(w) for w in answer.get("warnings") or []])

    def query_many(self, queries: t.Sequence[str], at_ms: int | None = None) -> list[PrometheusResult]:
        """Each query at the same evaluation time (one request each)."""
        return [self.query(q, at_ms) for q in queries]

    def prepare_session(self, session: t.Any) -> None:
        if self.config.token:
            session.headers["Authorization"] = "Bearer " + self.config.token
        elif self.config.username and self.config.password:
            session.auth = (self.config.username, self.config.password)

    def _once(self, form: dict[str, str]) -> dict[str, t.Any]:
        secrets = self.config.secrets()
        response, where = self._send("POST", QUERY_PATH, data=form)
        status = response.status_code
        payload = decoded_json(response)[0]
        error_type = ""
        detail = ""
        if isinstance(payload, dict):
            error_type = str(payload.get("errorType") or "")
            detail = redact(str(payload.get("error") or ""), secrets)
        if not detail:
            detail = body_snippet(response, secrets)
        if status in (401, 403):
            raise PrometheusAuthError(f"{where}: {status} {detail}. Check the token or username/password for "
                                      "Prometheus (or the proxy in front of it)", status, error_type)
        shown = f"{status} {error_type + ': ' if error_type else ''}{detail}"
        if status == 429 or status >= 500:
            raise Retry(PrometheusApiError(f"{where}: {shown}", status, error_type), retry_after(response))
        if status >= 400:
            raise PrometheusApiError(f"{where}: the query was refused: {shown}", status, error_type)
        if not isinstance(payload, dict):
            raise PrometheusResponseError(
                f"{where}: the answer is not JSON (status {status}, Content-Type "
                f"{response.headers.get('Content-Type') or 'none'}): {detail}", status)
        if payload.get("status") != "success":
            raise PrometheusApiError(f"{where}: {error_type or 'error'}: {detail}", status, error_type)
        return payload
