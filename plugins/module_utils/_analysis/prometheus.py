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
import time
import typing as t
from dataclasses import dataclass, field

from ansible_collections.canary.istio.plugins.module_utils._errors import CanaryError
from ansible_collections.canary.istio.plugins.module_utils._http.safety import (
    USER_AGENT, credential_problem, redirect_refusal, split_userinfo, transport_warnings)
from ansible_collections.canary.istio.plugins.module_utils._http.redact import basic_auth_token, redact
from ansible_collections.canary.istio.plugins.module_utils._http.retry import Retry, with_retries

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
class PrometheusConfig:
    """``token``: sent as ``Authorization: Bearer``; or ``username``/``password`` for basic auth."""

    url: str
    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    retry_budget: float = 60.0
    backoff: float = 1.0
    max_backoff: float = 15.0
    validate_certs: bool = True

    def secrets(self) -> list[str]:
        values = [self.token, self.password] + split_userinfo(self.url)[1]
        if self.username and self.password:
            values.append(basic_auth_token(self.username, self.password))
        return [s for s in values if s]

    @property
    def display_url(self) -> str:
        """The URL as messages show it: without credentials written into it."""
        return split_userinfo(self.url)[0]

    def warnings(self) -> list[str]:
        return transport_warnings(self.url, "Prometheus", bool(self.secrets()), self.validate_certs)


def make_config(url: str | None, **kwargs: t.Any) -> PrometheusConfig:
    """A checked PrometheusConfig."""
    if not url:
        raise PrometheusConfigError("set prometheus_url, for example http://prometheus:9090", "prometheus_url")
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise PrometheusConfigError(f"prometheus_url must start with http:// or https://, got {split_userinfo(url)[0]!r}",
                                    "prometheus_url")
    if kwargs.get("token") and kwargs.get("password"):
        raise PrometheusConfigError("give a bearer token or a username and password, not both", "token")
    for option in ("token", "username", "password"):
        problem = credential_problem(kwargs.get(option), f"prometheus_{option}")
        if problem:
            raise PrometheusConfigError(problem, f"prometheus_{option}")
    for option in ("timeout", "retry_budget"):
        value = kwargs.get(option)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or
                                  (option == "timeout" and value == 0)):
            raise PrometheusConfigError(f"{option} must be a positive number of seconds, got {value!r}", option)
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


class PrometheusClient:
    """Instant queries; PrometheusError on failure."""

    def __init__(
        self,
        config: PrometheusConfig,
        sleep: t.Callable[[float], None] = time.sleep,
        clock: t.Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.requests_made = 0
        self._sleep = sleep
        self._clock = clock
        self._session: t.Any = None

    def query(self, promql: str, at_ms: int | None = None) -> PrometheusResult:
        """One instant query evaluated at ``at_ms`` (epoch ms; now when None)."""
        if not isinstance(promql, str) or not promql.strip():
            raise PrometheusConfigError("the PromQL query is empty", "queries")
        form = {"query": promql}
        if at_ms is not None:
            if isinstance(at_ms, bool) or not isinstance(at_ms, int) or at_ms < 0:
                raise PrometheusConfigError(f"the evaluation time must be epoch milliseconds, got {at_ms!r}", "time_range")
            form["time"] = f"{at_ms / 1000:.3f}"
        config = self.config
        answer, attempt = with_retries(lambda: self._once(form), config.retry_budget, config.backoff, config.max_backoff,
                                       self._clock, self._sleep)
        data = answer.get("data")
        if not isinstance(data, dict):
            raise PrometheusResponseError("the answer has no data object")
        return PrometheusResult(simple_series(data), answer, attempt, [str(w) for w in answer.get("warnings") or []])

    def query_many(self, queries: t.Sequence[str], at_ms: int | None = None) -> list[PrometheusResult]:
        """Each query at the same evaluation time (one request each)."""
        return [self.query(q, at_ms) for q in queries]

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def _session_for(self) -> t.Any:
        if self._session is None:
            import requests

            session = requests.Session()
            session.trust_env = False
            session.verify = self.config.validate_certs
            session.headers.update({"Accept": "application/json", "User-Agent": USER_AGENT})
            if self.config.token:
                session.headers["Authorization"] = "Bearer " + self.config.token
            elif self.config.username and self.config.password:
                session.auth = (self.config.username, self.config.password)
            self._session = session
        return self._session

    def _once(self, form: dict[str, str]) -> dict[str, t.Any]:
        import requests

        secrets = self.config.secrets()
        where = f"POST {self.config.display_url}{QUERY_PATH}"
        self.requests_made += 1
        try:
            response = self._session_for().post(self.config.url + QUERY_PATH, data=form, timeout=self.config.timeout,
                                                allow_redirects=False)
        except requests.exceptions.Timeout:
            raise Retry(PrometheusConnectionError(f"{where}: no answer within timeout={self.config.timeout:g}s")) from None
        except requests.exceptions.SSLError as exc:
            raise PrometheusConnectionError(redact(
                f"{where}: TLS error: {exc}. Set validate_certs=false only for a test endpoint", secrets)) from None
        except requests.exceptions.RequestException as exc:
            raise Retry(PrometheusConnectionError(redact(f"{where}: cannot connect: {exc}. Check prometheus_url and the network", secrets))) from None
        status = response.status_code
        refusal = redirect_refusal(where, response, "prometheus_url")
        if refusal:
            raise PrometheusApiError(redact(refusal, secrets), status)
        try:
            payload = response.json() if response.content else None
        except ValueError:
            payload = None
        error_type = ""
        detail = ""
        if isinstance(payload, dict):
            error_type = str(payload.get("errorType") or "")
            detail = redact(str(payload.get("error") or ""), secrets)
        if not detail:
            detail = redact((response.text or response.reason or "").strip().replace("\n", " ")[:200], secrets) or "empty body"
        if status in (401, 403):
            raise PrometheusAuthError(f"{where}: {status} {detail}. Check the token or username/password for "
                                      "Prometheus (or the proxy in front of it)", status, error_type)
        if status == 429 or status >= 500:
            wait = None
            retry_after = response.headers.get("Retry-After")
            if retry_after:
                try:
                    wait = max(0.0, float(retry_after))
                except ValueError:
                    wait = None
            raise Retry(PrometheusApiError(f"{where}: {status} {error_type + ': ' if error_type else ''}{detail}",
                                           status, error_type), wait)
        if status >= 400:
            raise PrometheusApiError(f"{where}: the query was refused: {status} {error_type + ': ' if error_type else ''}{detail}",
                                     status, error_type)
        if not isinstance(payload, dict):
            raise PrometheusResponseError(
                f"{where}: the answer is not JSON (status {status}, Content-Type "
                f"{response.headers.get('Content-Type') or 'none'}): {detail}", status)
        if payload.get("status") != "success":
            raise PrometheusApiError(f"{where}: {error_type or 'error'}: {detail}", status, error_type)
        return payload
