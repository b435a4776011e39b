# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Guance HTTP client: DQL/PromQL queries and release events.

PRIVATE to this collection: may change at any time.

Two ways in, with the same calls:

- the Guance OpenAPI (``POST /api/v1/df/query_data_v1``, ``POST /api/v1/events/create``), header
  ``DF-API-KEY``; base URL from a documented ``site`` or a free ``url`` (private deployments);
- a DataKit (``POST /v1/query/raw``, ``POST /v1/write/keyevent``), no key (the DataKit adds its
  workspace token), DQL only.

All queries of a call go in ONE HTTP request: the OpenAPI allows 20 requests a minute per key,
and one request per analysis round keeps a release far below that.

Errors: every failure is a GuanceError with a plain message that never holds the key. Rate
limits (401 with ``ft.TriggerApi*CurrentLimiting``, DataKit 429), 5xx answers, timeouts and
refused connections are retried with backoff within a time budget; a refused key, other 4xx
answers, a DataKit error inside a 200 answer and a body that is not JSON are not.

``requests`` is imported when the first request is sent.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import time
import typing as t
import uuid
from dataclasses import dataclass, field

from ansible.module_utils.basic import env_fallback

from ansible_collections.canary.istio.plugins.module_utils._errors import CanaryError
from ansible_collections.canary.istio.plugins.module_utils._http.safety import (
    USER_AGENT, credential_problem, redirect_refusal, split_userinfo, transport_warnings)
from ansible_collections.canary.istio.plugins.module_utils._http.redact import redact
from ansible_collections.canary.istio.plugins.module_utils._http.retry import Retry, with_retries

# Source: docs.guance.com/open-api (the site -> OpenAPI endpoint table).
SITES: dict[str, str] = {
    "cn1": "https://openapi.guance.com",
    "cn2": "https://aws-openapi.guance.com",
    "cn4": "https://cn4-openapi.guance.com",
    "cn5": "https://cn5-openapi.guance.com",
    "cn6": "https://cn6-openapi.guance.one",
    "us1": "https://us1-openapi.guance.com",
    "eu1": "https://eu1-openapi.guance.one",
    "ap1": "https://ap1-openapi.guance.one",
    "za1": "https://za1-openapi.guance.com",
    "id1": "https://id1-openapi.guance.com",
    "me1": "https://me1-openapi.guance.com",
}
API_OPENAPI = "openapi"
API_DATAKIT = "datakit"
APIS: tuple[str, ...] = (API_OPENAPI, API_DATAKIT)
DEFAULT_DATAKIT_URL = "http://localhost:9529"

QUERY_PATH = "/api/v1/df/query_data_v1"
EVENT_PATH = "/api/v1/events/create"
DATAKIT_QUERY_PATH = "/v1/query/raw"
DATAKIT_EVENT_PATH = "/v1/write/keyevent"

EVENT_STATUSES: tuple[str, ...] = ("critical", "error", "warning", "ok", "info", "nodata")
DEFAULT_EVENT_SOURCE = "canary_release"
RATE_LIMIT_CODES: tuple[str, ...] = ("ft.TriggerApiAkCurrentLimiting", "ft.TriggerApiWorkspaceCurrentLimiting")
DATAKIT_RATE_LIMIT_CODE = "datakit.reachMaxAPILimit"


def _rate_limit_hint(code: str) -> str:
    """Which of the OpenAPI's limits was hit (guance-api.md): the key's or the whole workspace's."""
    if code == "ft.TriggerApiWorkspaceCurrentLimiting":
        return "the OpenAPI allows 200 requests a minute per workspace, all keys together"
    return "the OpenAPI allows 20 requests a minute per key"


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class GuanceError(CanaryError):
    """Base of every error raised here. Messages never contain the API key."""


class GuanceConfigError(GuanceError):
    """Unusable settings. ``option`` names the module option to fix."""


class GuanceConnectionError(GuanceError):
    """No answer: refused connection, DNS, TLS, or a timeout (after the retries)."""


class GuanceApiError(GuanceError):
    """Guance or the DataKit answered with an error. ``error_code`` is the answer's
    ``errorCode`` (OpenAPI) or ``error_code`` (DataKit), empty when it had none."""

    def __init__(self, message: str, status: int | None = None, error_code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code

    def result_fields(self) -> dict[str, t.Any]:
        return {"status": self.status, "error_code": self.error_code}


class GuanceAuthError(GuanceApiError):
    """The key was refused (401 or 403 that is not a rate limit)."""


class GuanceRateLimitError(GuanceApiError):
    """Still rate limited when the time budget ran out."""


class GuanceServerError(GuanceApiError):
    """5xx, still failing when the time budget ran out."""


class GuanceResponseError(GuanceApiError):
    """An answer this client cannot read: not JSON, or not the documented shape."""


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GuanceConfig:
    """Where and how to talk to Guance.

    ``retry_budget``: seconds the client may spend retrying rate limits, 5xx answers and
    timeouts, waits included (the first attempt is always made). ``backoff``: the first wait;
    each retry doubles it, up to ``max_backoff``.
    """

    url: str
    api: str = API_OPENAPI
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    retry_budget: float = 60.0
    backoff: float = 1.0
    max_backoff: float = 15.0
    validate_certs: bool = True

    def secrets(self) -> list[str]:
        return ([self.api_key] if self.api_key else []) + split_userinfo(self.url)[1]

    @property
    def display_url(self) -> str:
        """The URL as messages show it: without credentials written into it."""
        return split_userinfo(self.url)[0]

    def warnings(self) -> list[str]:
        return transport_warnings(self.url, "Guance", bool(self.secrets()), self.validate_certs)


def base_url(site: str | None = None, url: str | None = None, api: str = API_OPENAPI) -> str:
    """The base URL from ``url`` (wins), else ``site``, else the DataKit default for ``api=datakit``."""
    if api not in APIS:
        raise GuanceConfigError(f"api must be one of {', '.join(APIS)}, got {api!r}", "api")
    if url:
        url = url.strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise GuanceConfigError(f"url must start with http:// or https://, got {split_userinfo(url)[0]!r}", "url")
        return url
    if site:
        if api == API_DATAKIT:
            raise GuanceConfigError("site names an OpenAPI endpoint; for api=datakit set url (default "
                                    f"{DEFAULT_DATAKIT_URL})", "site")
        if site not in SITES:
            raise GuanceConfigError(f"unknown site {site!r}; use one of {', '.join(SITES)}, or url for a private deployment",
                                    "site")
        return SITES[site]
    if api == API_DATAKIT:
        return DEFAULT_DATAKIT_URL
    raise GuanceConfigError("set site (for example cn1 or us1) or url (also from the GUANCE_URL environment variable)", "url")


def make_config(
    site: str | None = None,
    url: str | None = None,
    api: str = API_OPENAPI,
    api_key: str | None = None,
    **kwargs: t.Any,
) -> GuanceConfig:
    """A checked GuanceConfig; the OpenAPI needs a key."""
    resolved = base_url(site, url, api)
    if api == API_OPENAPI and not api_key:
        raise GuanceConfigError("the Guance OpenAPI needs api_key (or the GUANCE_API_KEY environment variable): "
                                "the API Key ID from Management > API Key", "api_key")
    problem = credential_problem(api_key, "api_key (or GUANCE_API_KEY)")
    if problem:
        raise GuanceConfigError(problem, "api_key")
    for option in ("timeout", "retry_budget"):
        value = kwargs.get(option)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or
                                  (option == "timeout" and value == 0)):
            raise GuanceConfigError(f"{option} must be a positive number of seconds, got {value!r}", option)
    return GuanceConfig(url=resolved, api=api, api_key=api_key or None,
                        **{k: v for k, v in kwargs.items() if v is not None})


GUANCE_ENV_URL = "GUANCE_URL"
GUANCE_ENV_API_KEY = "GUANCE_API_KEY"

# The modules' connection options (documented in doc_fragments/guance.py).
GUANCE_ARG_SPEC: dict[str, dict[str, t.Any]] = {
    "api": {"type": "str", "choices": list(APIS), "default": API_OPENAPI},
    "site": {"type": "str", "choices": list(SITES)},
    # No env fallback here: GUANCE_URL is read in config_from_params, after an explicit site, which
    # a fallback would override (url wins over site).
    "url": {"type": "str"},
    "api_key": {"type": "str", "no_log": True, "fallback": (env_fallback, [GUANCE_ENV_API_KEY])},
    "validate_certs": {"type": "bool", "default": True},
    "timeout": {"type": "float", "default": 30.0},
    "retry_budget": {"type": "float", "default": 60.0},
}


def guance_argument_spec(own: t.Mapping[str, t.Any] | None = None) -> dict[str, t.Any]:
    """A module's argument_spec: a copy of the Guance options plus its own."""
    spec = {name: dict(option) for name, option in GUANCE_ARG_SPEC.items()}
    for name, option in (own or {}).items():
        if name in spec:
            raise ValueError(f"option {name!r} is already a Guance connection option")
        spec[name] = option
    return spec


def config_from_params(params: t.Mapping[str, t.Any], environ: t.Mapping[str, str] | None = None) -> GuanceConfig:
    """The GuanceConfig of a module's options (GuanceConfigError naming the option to fix).

    The url is the option, else E(GUANCE_URL) unless the task names a ``site``: an option the task
    sets wins over the environment (an AWX credential injects GUANCE_URL into every job)."""
    environ = os.environ if environ is None else environ
    url = params.get("url") or (None if params.get("site") else environ.get(GUANCE_ENV_URL) or None)
    return make_config(
        site=params.get("site"), url=url, api=params.get("api") or API_OPENAPI,
        api_key=params.get("api_key"), timeout=params.get("timeout"), retry_budget=params.get("retry_budget"),
        validate_certs=params.get("validate_certs", True),
    )


# ---------------------------------------------------------------------------------------------
# Queries and answers
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """One DQL or PromQL query. ``options``: extra documented fields of the query object (for the
    OpenAPI e.g. ``slimit``, ``limit``, ``interval``, ``promqlType``), sent as given.
    ``lookback_ms``: this query's time range starts that much before the request's start."""

    q: str
    qtype: str = "dql"
    options: t.Mapping[str, t.Any] = field(default_factory=dict)
    lookback_ms: int = 0


@dataclass(frozen=True)
class QueryResult:
    """``series``: per query (request order) a list of ``{name, tags, columns, rows}``.
    ``raw``: the decoded answer as received."""

    series: list[list[dict[str, t.Any]]]
    raw: t.Any
    attempts: int


def series_labels(one: t.Mapping[str, t.Any]) -> tuple[str, dict[str, t.Any]]:
    """(name, tags) of one answer series. Guance's own Grafana datasource reads a PromQL series'
    labels from ``tags``, from ``labels``, or from ``name`` given as a list of ``"k=v"`` strings:
    every one of those layouts is read here."""
    name = one.get("name")
    tags: dict[str, t.Any] = {}
    for layout in ("labels", "tags"):  # tags win where both say
        if isinstance(one.get(layout), dict):
            tags.update(one[layout])
    if isinstance(name, list):
        for pair in name:
            if isinstance(pair, str) and "=" in pair:
                key, value = pair.split("=", 1)
                tags.setdefault(key, value)
        name = ""
    return (name if isinstance(name, str) else ""), tags


def simple_series(item: t.Mapping[str, t.Any]) -> list[dict[str, t.Any]]:
    """The simple shape of one query's answer item: name, tags, columns, rows.

    ``series`` may be missing or null when there is no data.
    """
    out = []
    for one in item.get("series") or []:
        if not isinstance(one, dict):
            continue
        name, tags = series_labels(one)
        out.append({
            "name": name,
            "tags": tags,
            "columns": list(one.get("columns") or []),
            "rows": [list(row) for row in one.get("values") or [] if isinstance(row, (list, tuple))],
        })
    return out


def openapi_query_body(queries: t.Sequence[Query], start_ms: int, end_ms: int) -> dict[str, t.Any]:
    """The body of ``query_data_v1``: the window as ``timeRange``; multi-column mode and no
    sampling so aggregates are exact; PromQL as an instant query at the end of the window.

    DQL answers are capped at 20 series unless the request lifts the cap: a p99 grouped by version
    and ``le`` has ~40, and one version would silently go missing. ``disable_slimit`` lifts it as
    Guance's own clients do (pipeline-go); no request-level ``slimit`` is sent, because it would
    override a ``SLIMIT`` the statement itself sets.

    ``align_time`` as Guance's own examples send it with interval queries: buckets on multiples of
    the interval, each labelled at its start, which the analysis's window arithmetic relies on
    (``_analysis.window_increase``)."""
    body = []
    for query in queries:
        entry: dict[str, t.Any] = {
            "q": query.q,
            "timeRange": [int(start_ms) - query.lookback_ms, int(end_ms)],
            "disableMultipleField": False,
            "disable_sampling": True,
        }
        if query.qtype == "promql":
            entry["promqlType"] = "instantQuery"
        else:
            entry["disable_slimit"] = True
            entry["align_time"] = True
        entry.update(query.options)
        body.append({"qtype": query.qtype, "query": entry})
    return {"queries": body}


def datakit_query_body(queries: t.Sequence[Query], start_ms: int, end_ms: int) -> dict[str, t.Any]:
    """The body of DataKit's ``/v1/query/raw``. ``disable_slimit``: else the DataKit caps every
    answer at 20 series; ``align_time``: as ``openapi_query_body``."""
    body = []
    for query in queries:
        if query.qtype != "dql":
            raise GuanceConfigError("a DataKit answers DQL only; use api=openapi for PromQL", "qtype")
        entry: dict[str, t.Any] = {
            "query": query.q,
            "time_range": [int(start_ms) - query.lookback_ms, int(end_ms)],
            "disable_slimit": True,
            "align_time": True,
            "disable_multiple_field": False,
        }
        entry.update(query.options)
        body.append(entry)
    return {"queries": body}


def _validate_queries(queries: t.Sequence[Query], start_ms: int, end_ms: int) -> None:
    if not queries:
        raise GuanceConfigError("give at least one query", "queries")
    for index, query in enumerate(queries):
        if not isinstance(query.q, str) or not query.q.strip():
            raise GuanceConfigError(f"queries[{index}]: the query text is empty", "queries")
        if query.qtype not in ("dql", "promql"):
            raise GuanceConfigError(f"queries[{index}]: qtype must be dql or promql, got {query.qtype!r}", "queries")
    for name, value in (("start", start_ms), ("end", end_ms)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise GuanceConfigError(f"the {name} of the time range must be epoch milliseconds, got {value!r}", "time_range")
    if start_ms >= end_ms:
        raise GuanceConfigError(f"the time range starts ({start_ms}) at or after its end ({end_ms})", "time_range")


# ---------------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventRequest:
    """One event, ready to send: ``body`` goes on the wire to ``path``; ``event`` is the event
    itself (the OpenAPI body, or the DataKit's one point); ``event_id`` is the ``df_event_id``
    chosen here (DataKit only: the OpenAPI chooses its own and does not return it)."""

    api: str
    path: str
    body: t.Any
    event: dict[str, t.Any]
    event_id: str | None = None


def event_tags(tags: t.Mapping[str, t.Any] | None) -> dict[str, str]:
    """The tags as strings. Scalars only: a list or dict would land as its Python repr.

    Names starting with ``df_`` or ``__`` are Guance's own event fields: the OpenAPI would drop or
    confuse such a tag (``customTags`` sit beside ``df_status``, ``__docid``...).
    """
    out: dict[str, str] = {}
    for key, value in (tags or {}).items():
        name = str(key)
        if not name.strip():
            raise GuanceConfigError("tags: a tag name is empty", "tags")
        if name.startswith(("df_", "__")):
            raise GuanceConfigError(f"tags: {name!r} is a name Guance keeps for its own event fields (df_*, __*); "
                                    "rename the tag", "tags")
        if value is None or isinstance(value, (dict, list, tuple, set)):
            raise GuanceConfigError(f"tags: the value of {name!r} must be a string or number, got {value!r}", "tags")
        out[name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def event_request(
    api: str,
    title: str,
    status: str = "info",
    message: str | None = None,
    tags: t.Mapping[str, t.Any] | None = None,
    date_ms: int | None = None,
    source: str = DEFAULT_EVENT_SOURCE,
    event_id: str | None = None,
) -> EventRequest:
    """The event for ``api``; GuanceConfigError naming the field when a value cannot be sent.

    OpenAPI (``events/create``): ``{date, status, title, message?, customTags?}``; Guance stores it
    with ``df_source=custom``. DataKit (``/v1/write/keyevent``, JSON): one point in measurement
    ``source`` (the event's source) with the tags as tags and the ``df_*`` fields a keyevent
    needs; its time is in nanoseconds, the DataKit's default precision.
    """
    if api not in APIS:
        raise GuanceConfigError(f"api must be one of {', '.join(APIS)}, got {api!r}", "api")
    if not isinstance(title, str) or not title.strip():
        raise GuanceConfigError("title must be a non-empty string", "title")
    if status not in EVENT_STATUSES:
        raise GuanceConfigError(f"status must be one of {', '.join(EVENT_STATUSES)}, got {status!r}", "status")
    if message is not None and not isinstance(message, str):
        raise GuanceConfigError(f"the message must be a string, got {message!r}", "message")
    if date_ms is not None and (isinstance(date_ms, bool) or not isinstance(date_ms, int) or date_ms < 0):
        raise GuanceConfigError(f"date must be epoch milliseconds, got {date_ms!r}", "date")
    clean_tags = event_tags(tags)
    date_ms = int(time.time() * 1000) if date_ms is None else date_ms
    if api == API_DATAKIT:
        if not isinstance(source, str) or not source.strip():
            raise GuanceConfigError("source (the event's source, its measurement) must be a non-empty string", "source")
        event_id = event_id or "event-" + uuid.uuid4().hex
        fields: dict[str, t.Any] = {"df_source": "system", "df_status": status, "df_title": title,
                                    "df_event_id": event_id, "df_date_range": 0}
        if message:
            fields["df_message"] = message
        point = {"measurement": source, "tags": clean_tags, "fields": fields, "time": date_ms * 1_000_000}
        return EventRequest(api, DATAKIT_EVENT_PATH, [point], point, event_id)
    body: dict[str, t.Any] = {"date": date_ms, "status": status, "title": title}
    if message:
        body["message"] = message
    if clean_tags:
        body["customTags"] = clean_tags
    return EventRequest(api, EVENT_PATH, body, body, None)


def epoch_ms(value: t.Any, option: str) -> int:
    """Epoch milliseconds (a number, or a string of digits) or ISO 8601 (UTC when no zone) -> epoch ms.

    Numbers below 10^11 (before 1973 in milliseconds) are refused: they are almost always
    seconds, which would put the event in 1970.
    """
    if isinstance(value, bool) or value is None:
        raise GuanceConfigError(f"{option}: expected epoch milliseconds or ISO 8601, got {value!r}", option)
    if isinstance(value, (int, float)) or (isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*", value)):
        number = int(float(value))
        if number < 10**11:
            raise GuanceConfigError(f"{option}: {value!r} looks like seconds; give epoch milliseconds "
                                    f"(for example {number * 1000}) or ISO 8601", option)
        return number
    text = str(value).strip()
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise GuanceConfigError(f"{option}: expected epoch milliseconds or ISO 8601 like 2026-11-26T06:00:00Z, "
                                f"got {value!r}", option) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return int(moment.timestamp() * 1000)


# ---------------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------------


class GuanceClient:
    """Queries and events against the OpenAPI or a DataKit; GuanceError on failure."""

    def __init__(
        self,
        config: GuanceConfig,
        sleep: t.Callable[[float], None] = time.sleep,
        clock: t.Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.requests_made = 0
        self._sleep = sleep
        self._clock = clock
        self._session: t.Any = None

    # -- public calls ---------------------------------------------------------------------------

    def query(self, queries: t.Sequence[Query], start_ms: int, end_ms: int) -> QueryResult:
        """Run every query in one request over ``[start_ms, end_ms]`` (epoch ms)."""
        _validate_queries(queries, start_ms, end_ms)
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

    def create_event(
        self,
        title: str,
        status: str = "info",
        message: str | None = None,
        tags: t.Mapping[str, t.Any] | None = None,
        date_ms: int | None = None,
        source: str = DEFAULT_EVENT_SOURCE,
    ) -> dict[str, t.Any]:
        """Write one event (see ``event_request``). Returns what was sent (``body``), how many
        attempts it took, and what identifies the event: ``event_id`` (DataKit: the
        ``df_event_id`` this client chose) and ``trace_id`` (OpenAPI: the answer's ``traceId``)."""
        request = event_request(self.config.api, title, status, message, tags, date_ms, source)
        return self.send_event(request)

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

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

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

    def _session_for(self) -> t.Any:
        if self._session is None:
            import requests

            session = requests.Session()
            session.trust_env = False
            session.verify = self.config.validate_certs
            headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": USER_AGENT}
            if self.config.api == API_OPENAPI and self.config.api_key:
                headers["DF-API-KEY"] = self.config.api_key
            session.headers.update(headers)
            self._session = session
        return self._session

    def _call(self, method: str, path: str, body: t.Any, expect_json: bool = True) -> tuple[t.Any, int]:
        """Send with retries within the budget; returns (decoded answer, attempts)."""
        config = self.config
        return with_retries(lambda: self._once(method, path, body, expect_json), config.retry_budget, config.backoff,
                            config.max_backoff, self._clock, self._sleep)

    def _once(self, method: str, path: str, body: t.Any, expect_json: bool) -> t.Any:
        import requests

        secrets = self.config.secrets()
        where = f"{method} {self.config.display_url}{path}"
        self.requests_made += 1
        try:
            response = self._session_for().request(
                method, self.config.url + path, data=json.dumps(body).encode("utf-8"), timeout=self.config.timeout,
                allow_redirects=False)
        except requests.exceptions.Timeout:
            raise Retry(GuanceConnectionError(f"{where}: no answer within timeout={self.config.timeout:g}s")) from None
        except requests.exceptions.SSLError as exc:
            raise GuanceConnectionError(redact(
                f"{where}: TLS error: {exc}. Set validate_certs=false only for a test endpoint", secrets)) from None
        except requests.exceptions.RequestException as exc:
            raise Retry(GuanceConnectionError(redact(f"{where}: cannot connect: {exc}. Check url (or site) and the network", secrets))) from None
        status = response.status_code
        refusal = redirect_refusal(where, response, "url (or site)")
        if refusal:
            raise GuanceApiError(redact(refusal, secrets), status)
        payload, is_json = _decode(response)
        code = ""
        message = ""
        if isinstance(payload, dict):
            code = str(payload.get("errorCode") or payload.get("error_code") or "")
            message = redact(str(payload.get("message") or ""), secrets)
        detail = f"{code}: {message}".strip(": ") if (code or message) else _snippet(response, secrets)
        if status in (401, 403, 429) and (code in RATE_LIMIT_CODES or code == DATAKIT_RATE_LIMIT_CODE or status == 429):
            raise Retry(GuanceRateLimitError(
                f"{where}: rate limited ({status} {detail}); {_rate_limit_hint(code)}",
                status, code), wait=_retry_after(response))
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
                f"{response.headers.get('Content-Type') or 'none'}): {_snippet(response, secrets)}", status)
        return payload


def _decode(response: t.Any) -> tuple[t.Any, bool]:
    if not response.content:
        return None, False
    try:
        return response.json(), True
    except ValueError:
        return None, False


def _snippet(response: t.Any, secrets: list[str]) -> str:
    text = (response.text or response.reason or "").strip().replace("\n", " ")
    return redact(text[:200], secrets) or "empty body"


def _retry_after(response: t.Any) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
