"""Guance's OpenAPI, DataKit's HTTP API and Prometheus `/metrics`, served on loopback over the recorded data.

Two listeners (stdlib `ThreadingHTTPServer`, each in a daemon thread):
- OpenAPI (`DF-API-KEY`): `POST /api/v1/df/query_data_v1`, `GET /api/v1/df/query_data[_v1]?queries_body=`,
  `POST /api/v1/events/create`, `GET /api/v1/events/{doc_id}/get`, `GET /api/v1/validate`,
  `GET /api/v1/const/check_ping`, the SLO and mute calls of `guard.py`; answers in Guance's envelope.
- DataKit (no auth): `GET /v1/ping`, `POST /v1/query/raw`, `POST /v1/write/{category}`, `GET /metrics`
  (the simulated sidecars' Istio metrics for Prometheus), and the simulator's own control API under
  `/__sim/` (profiles, traffic, faults, mesh) so tests and the demo change it while it runs;
  `/__sim/mesh` makes the mesh ignore one namespace's VirtualServices.
Wire shapes and error codes follow Guance's OpenAPI and DataKit answers (docs/simulator.md); `Faults` injects failures.
"""
from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from . import dql, metricsql
from . import guard as guard_api
from .lineproto import LineError, parse_lines
from .record import Clock, Point, Recorder
from .traffic import Simulator, TrafficSpec

DATAKIT_VERSION = "1.64.0-sim"
EVENT_STATUSES = ("critical", "error", "warning", "ok", "info", "nodata")
WRITE_CATEGORIES = {"metric": "M", "logging": "L", "keyevent": "E", "tracing": "T", "object": None,
                    "custom_object": None, "rum": None, "network": None, "security": None, "profiling": None}
# Guance publishes no error body for a bad query; the simulator answers 400 with this code.
QUERY_ERROR_CODE = "ft.QueryError"
PARAM_ERROR_CODE = "ft.ParamError"
DEFAULT_SLIMIT = 20


@dataclass
class Faults:
    """Switches for failure injection on the OpenAPI listener (DataKit's honours `delay_s` only)."""

    status: int | None = None  # answer every request with this status (500/503) in the envelope
    non_json: bool = False  # answer 502 with an HTML body
    delay_s: float = 0.0  # sleep before answering
    omit_series: bool = False  # leave `series` out of query answers (clients must treat it as empty)
    invalid_key_status: int = 401  # 401 as a live site answers; 403 as the docs say
    rate_limit: int = 20  # requests per minute per key
    workspace_rate_limit: int = 200  # requests per minute, all keys


@dataclass
class Simulation:
    """Everything the server reads and changes: data, clock, traffic, keys, faults."""

    recorder: Recorder = field(default_factory=Recorder)
    clock: Clock = field(default_factory=Clock)
    simulator: Simulator | None = None
    api_keys: set = field(default_factory=lambda: {"sim-api-key"})
    faults: Faults = field(default_factory=Faults)
    # The real Prometheus beside the simulator, for the prometheus provider; Guance's own PromQL is
    # answered here (metricsql), as a MetricsQL engine answers, not by Prometheus.
    prometheus_url: str | None = None
    requests_seen: list = field(default_factory=list)  # (path, body) of OpenAPI calls, for assertions
    events: dict = field(default_factory=dict)  # __docid -> event object
    guard: guard_api.Guard = field(default_factory=guard_api.Guard)  # SLOs and mutes
    lock: threading.Lock = field(default_factory=threading.Lock)
    _hits: dict = field(default_factory=dict)

    def hit(self, key: str, now: float) -> str | None:
        """Count one call of `key`; the rate-limit error code when a per-minute limit is exceeded."""
        with self.lock:
            for name, limit in ((key, self.faults.rate_limit), ("*", self.faults.workspace_rate_limit)):
                window = self._hits.setdefault(name, deque())
                while window and window[0] <= now - 60:
                    window.popleft()
            if len(self._hits[key]) >= self.faults.rate_limit:
                return "ft.TriggerApiAkCurrentLimiting"
            if len(self._hits["*"]) >= self.faults.workspace_rate_limit:
                return "ft.TriggerApiWorkspaceCurrentLimiting"
            self._hits[key].append(now)
            self._hits["*"].append(now)
            return None


def envelope(code: int, content=None, error_code: str = "", message: str = "") -> dict:
    return {"code": code, "content": content, "errorCode": error_code, "message": message,
            "success": not error_code, "traceId": str(secrets.randbelow(10**19))}


class _Fail(Exception):
    def __init__(self, status: int, error_code: str, message: str):
        super().__init__(message)
        self.status, self.error_code, self.message = status, error_code, message


def run_queries(sim: Simulation, queries, datakit: bool = False) -> list[dict]:
    """`content.data` (OpenAPI) or `content` (DataKit) for a list of queries; raises dql.DqlError."""
    if not isinstance(queries, list) or not queries:
        raise _Fail(400, PARAM_ERROR_CODE, "queries must be a non-empty list")
    out = []
    now = sim.clock.now_ms()
    for i, entry in enumerate(queries):
        if not isinstance(entry, dict):
            raise _Fail(400, PARAM_ERROR_CODE, f"queries[{i}] must be an object")
        if datakit:
            query, qtype = entry, "dql"
            text = entry.get("query")
            time_range = entry.get("time_range") or None
        else:
            query = entry.get("query") if isinstance(entry.get("query"), dict) else None
            if query is None:
                raise _Fail(400, PARAM_ERROR_CODE, f"queries[{i}].query must be an object")
            qtype = entry.get("qtype", "dql")
            text = query.get("q")
            time_range = query.get("timeRange") or query.get("time_range") or None
        if not isinstance(text, str) or not text.strip():
            raise _Fail(400, PARAM_ERROR_CODE, f"queries[{i}]: the query text is empty")
        started = time.perf_counter()
        if qtype == "promql":
            item = promql(sim, text, query, time_range, now)
        elif qtype == "dql":
            slimit = query.get("slimit") or None
            # Guance caps a DQL answer at 20 series on both APIs unless the request lifts it.
            default_slimit = None if query.get("disable_slimit") else DEFAULT_SLIMIT
            result = dql.evaluate(text, sim.recorder.rows_between, now, time_range=time_range,
                                  interval_s=None if datakit else query.get("interval"),
                                  limit=query.get("limit") or None, offset=query.get("offset") or None,
                                  slimit=slimit, soffset=query.get("soffset") or None,
                                  conditions=query.get("conditions") or None, default_slimit=default_slimit,
                                  align_time=bool(query.get("align_time") or query.get("alignTime")))
            item = _dql_item(result)
        else:
            raise _Fail(400, PARAM_ERROR_CODE, f"queries[{i}].qtype must be dql or promql, got {qtype!r}")
        item["cost"] = f"{(time.perf_counter() - started) * 1000:.3f}ms"
        out.append(item)
    return out


def _dql_item(result: dql.Result) -> dict:
    item = {"async_id": "", "column_names": result.column_names, "complete": False, "index_name": "",
            "index_names": "", "index_store_type": "", "interval": 0, "is_running": False, "max_point": 0,
            "next_cursor_time": -1, "points": None,
            "query_parse": {"fields": {c: c for c in result.column_names}, "funcs": {},
                            "namespace": result.namespace, "sources": {result.source: "exact"}},
            "query_type": "guancedb", "sample": 1, "scan_completed": True, "scan_index": "",
            "series": result.series, "window": 0}
    if result.namespace != "metric":
        item["total_hits"] = sum(len(s["values"]) for s in result.series)
    return item


def promql(sim: Simulation, text: str, query: dict, time_range, now: int) -> dict:
    """Guance's PromQL, MetricsQL-compatible (sandbox/sim/metricsql.py), over the recorded scrapes:
    an instant query at the range's end, else a range query every `interval` seconds (default:
    the range in at most `maxPointCount` points, 360)."""
    start, end = (list(time_range) + [now])[:2] if time_range else (now - dql.DEFAULT_RANGE_MS, now)
    if query.get("promqlType") == "instantQuery":
        times = [int(end)]
    else:
        step_ms = int(float(query.get("interval") or max(1, (end - start) // 1000 // int(query.get("maxPointCount") or 360))) * 1000)
        times = list(range(int(start), int(end) + 1, max(step_ms, 1000)))[-11_000:]
    try:
        series = metricsql.query(text, sim.recorder.rows_between, times)
    except metricsql.PromqlError as exc:
        raise _Fail(400, QUERY_ERROR_CODE, f"promql: {exc}") from exc
    return {"async_id": "", "column_names": ["value"], "is_running": False, "next_cursor_time": -1, "points": None,
            "query_type": "promql", "series": series}


def write_points(sim: Simulation, category: str, body: bytes, content_type: str, precision: str | None) -> None:
    """DataKit's write: line protocol or JSON; raises _Fail with DataKit's error codes."""
    if category not in WRITE_CATEGORIES:
        raise _Fail(400, "datakit.invalidCategory", f"invalid category {category!r}")
    if not body.strip():
        raise _Fail(400, "datakit.emptyBody", "")
    now = sim.clock.now_ms()
    if "application/json" in content_type:
        try:
            items = json.loads(body)
            if not isinstance(items, list):
                raise ValueError("body must be a JSON array of points")
            points = []
            for item in items:
                if not isinstance(item, dict) or not item.get("measurement") or not isinstance(item.get("fields"), dict) \
                        or not item["fields"]:
                    raise ValueError("each point needs measurement and fields")
                stamp = item.get("time")
                time_ms = now if not stamp else int(stamp) // 1_000_000 if int(stamp) > 10**17 else int(stamp)
                points.append((item["measurement"], dict(item.get("tags") or {}), dict(item["fields"]), time_ms))
        except ValueError as exc:
            raise _Fail(400, "datakit.invalidJsonPoint", str(exc)) from exc
    else:
        try:
            points = parse_lines(body.decode("utf-8"), precision, now)
        except (LineError, UnicodeDecodeError) as exc:
            raise _Fail(400, "datakit.invalidLinePoint", str(exc)) from exc
    if not points:
        raise _Fail(400, "datakit.noPoints", "no points in the body")
    namespace = WRITE_CATEGORIES[category]
    for measurement, tags, fields, time_ms in points:
        if namespace == "M":
            fields = {k: v for k, v in fields.items() if not isinstance(v, str)}  # metric fields cannot be strings
        if category == "logging":
            tags.setdefault("status", "unknown")
        if namespace:
            sim.recorder.add(namespace, Point(measurement, tags, fields, time_ms))


def create_event(sim: Simulation, body) -> str:
    """OpenAPI events/create: validate, store as a custom event, return its __docid."""
    if not isinstance(body, dict):
        raise _Fail(400, PARAM_ERROR_CODE, "body must be a JSON object")
    date = body.get("date")
    if not isinstance(date, int) or isinstance(date, bool) or date < 10**12:
        raise _Fail(400, PARAM_ERROR_CODE, "date must be an integer time in epoch milliseconds")
    if body.get("status") not in EVENT_STATUSES:
        raise _Fail(400, PARAM_ERROR_CODE, f"status must be one of {', '.join(EVENT_STATUSES)}")
    if not isinstance(body.get("title"), str) or not body["title"].strip():
        raise _Fail(400, PARAM_ERROR_CODE, "title must be a non-empty string")
    tags = body.get("customTags") or {}
    if not isinstance(tags, dict):
        raise _Fail(400, PARAM_ERROR_CODE, "customTags must be an object")
    doc_id = "E_" + secrets.token_hex(10)
    event = {"__docid": doc_id, "create_time": sim.clock.now_ms(), "time": date, "df_date_range": "0",
             "df_event_id": "event-" + secrets.token_hex(16), "df_source": "custom", "df_status": body["status"],
             "df_title": body["title"], "df_message": body.get("message") or "", "df_origin": body.get("origin") or ""}
    event.update({str(k): v for k, v in tags.items() if str(k) not in event})
    with sim.lock:
        sim.events[doc_id] = event
    point_tags = {"df_source": "custom", "df_status": body["status"]}
    point_tags.update({str(k): str(v) for k, v in tags.items()})
    sim.recorder.add("E", Point("custom", point_tags, {k: v for k, v in event.items() if k not in point_tags}, date))
    return doc_id


class _Handler(BaseHTTPRequestHandler):
    server_version = "guance-sim"
    protocol_version = "HTTP/1.1"
    sim: Simulation
    role: str  # "openapi" or "datakit"

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        """Quiet: the sandbox keeps its own logs; tests read requests_seen instead."""

    # -- plumbing ---------------------------------------------------------------------------------
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, payload, content_type: str = "application/json") -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        if self.role == "datakit":
            self.send_header("X-DataKit", DATAKIT_VERSION)
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up first (the timeout tests do so on purpose): nothing to answer, and
            # not an error of the server worth a traceback in the test output.
            self.close_connection = True

    def do_GET(self):  # noqa: N802 - http.server's naming
        self._dispatch("GET")

    def do_POST(self):  # noqa: N802
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        url = urlparse(self.path)
        body = self._body()
        if self.sim.faults.delay_s:
            time.sleep(self.sim.faults.delay_s)
        try:
            if self.role == "openapi":
                self._openapi(method, url, body)
            else:
                self._datakit(method, url, body)
        except _Fail as fail:
            if self.role == "openapi":
                self._send(fail.status, envelope(fail.status, None, fail.error_code, fail.message))
            else:
                payload = {"error_code": fail.error_code}
                if fail.message:
                    payload["message"] = fail.message
                self._send(fail.status, payload)

    # -- OpenAPI ----------------------------------------------------------------------------------
    def _openapi(self, method: str, url, body: bytes) -> None:
        sim = self.sim
        faults = sim.faults
        if faults.non_json:
            self._send(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
            return
        if faults.status:
            raise _Fail(faults.status, "InternalError", f"injected failure {faults.status}")
        key = self.headers.get("DF-API-KEY")
        if not key or key not in sim.api_keys:
            raise _Fail(faults.invalid_key_status, "ft.InvalidAPIKey", "invalid DF-API-KEY")
        limited = sim.hit(key, time.monotonic())
        if limited:
            raise _Fail(401, limited, "request rate limit exceeded, try again later")
        path = url.path.rstrip("/")
        with sim.lock:
            sim.requests_seen.append((method, path, body.decode("utf-8", "replace")))
        if path in ("/api/v1/df/query_data_v1", "/api/v1/df/query_data"):
            if method == "POST":
                payload = self._json(body)
            else:
                raw = parse_qs(url.query).get("queries_body", [""])[0]
                payload = self._json(raw.encode("utf-8"))
            if not isinstance(payload, dict):
                raise _Fail(400, PARAM_ERROR_CODE, "body must be a JSON object with queries")
            try:
                data = run_queries(sim, payload.get("queries"))
            except dql.DqlError as exc:
                raise _Fail(400, QUERY_ERROR_CODE, f"dql: {exc}") from exc
            if faults.omit_series:
                for item in data:
                    item.pop("series", None)
            self._send(200, envelope(200, {"data": data, "declaration": {"business": "", "organization": "sandbox"}}))
        elif path == "/api/v1/events/create" and method == "POST":
            create_event(sim, self._json(body))
            self._send(200, envelope(200, True))
        elif re.fullmatch(r"/api/v1/events/[^/]+/get", path) and method == "GET":
            doc_id = path.split("/")[4]
            with sim.lock:
                event = sim.events.get(doc_id)
            if event is None:
                raise _Fail(404, "ft.NotFound", f"event {doc_id} not found")
            self._send(200, envelope(200, dict(event)))
        elif path in ("/api/v1/validate", "/api/v1/const/check_ping") and method == "GET":
            self._send(200, envelope(200, True))
        elif path.startswith(("/api/v1/slo/", "/api/v1/monitor/mute/")):
            self._send(200, envelope(200, self._guard(method, path, url, body)))
        else:
            raise _Fail(400, "RouterNotFound", f"no route {method} {path}")

    def _guard(self, method: str, path: str, url, body: bytes):
        sim = self.sim
        query = parse_qs(url.query)
        parts = path.split("/")
        try:
            with sim.lock:
                if path == "/api/v1/slo/list" and method == "GET":
                    return guard_api.slo_list(sim.guard, query)
                if re.fullmatch(r"/api/v1/slo/[^/]+/get", path) and method == "GET":
                    return guard_api.slo_get(sim.guard, parts[4])
                if path == "/api/v1/monitor/mute/create" and method == "POST":
                    return guard_api.mute_create(sim.guard, self._json(body), sim.clock.now_ms())
                if re.fullmatch(r"/api/v1/monitor/mute/[^/]+/delete", path) and method == "POST":
                    return guard_api.mute_delete(sim.guard, parts[5])
                if path == "/api/v1/monitor/mute/list" and method == "GET":
                    return guard_api.mute_list(sim.guard, query)
        except guard_api.GuardError as exc:
            raise _Fail(400, PARAM_ERROR_CODE, str(exc)) from exc
        raise _Fail(400, "RouterNotFound", f"no route {method} {path}")

    @staticmethod
    def _json(body: bytes):
        try:
            return json.loads(body or b"null")
        except ValueError as exc:
            raise _Fail(400, PARAM_ERROR_CODE, f"body is not JSON: {exc}") from exc

    # -- DataKit, /metrics, control ---------------------------------------------------------------
    def _datakit(self, method: str, url, body: bytes) -> None:
        sim = self.sim
        path = url.path.rstrip("/") or "/"
        params = parse_qs(url.query)
        if path == "/v1/ping" and method == "GET":
            self._send(200, {"content": {"version": DATAKIT_VERSION, "uptime": f"{time.monotonic() - self.server.started:.6f}s"}})
        elif path == "/v1/query/raw" and method == "POST":
            try:
                payload = json.loads(body or b"null")
            except ValueError as exc:
                raise _Fail(400, "datakit.invalidJSON", str(exc)) from exc
            if not isinstance(payload, dict):
                raise _Fail(400, "datakit.invalidJSON", "body must be a JSON object")
            try:
                self._send(200, {"content": run_queries(sim, payload.get("queries"), datakit=True)})
            except (dql.DqlError, _Fail) as exc:
                # DataKit passes the upstream answer through with 200, errors included.
                code = exc.error_code if isinstance(exc, _Fail) else "datakit.queryError"
                self._send(200, {"error_code": code, "message": str(exc)})
        elif path.startswith("/v1/write/") and method == "POST":
            precision = params.get("precision", [None])[0]
            write_points(sim, path[len("/v1/write/"):], body, self.headers.get("Content-Type", ""), precision)
            self._send(200, b"", "text/plain")
        elif path == "/metrics" and method == "GET":
            self._send(200, sim.recorder.prometheus_text().encode("utf-8"), "text/plain; version=0.0.4; charset=utf-8")
        elif path.startswith("/__sim/"):
            self._control(method, path, body)
        else:
            raise _Fail(404, "datakit.routeNotFound", f"no route {method} {path}")

    def _control(self, method: str, path: str, body: bytes) -> None:
        sim = self.sim
        try:
            payload = json.loads(body or b"{}")
        except ValueError as exc:
            raise _Fail(400, "sim.badJSON", str(exc)) from exc
        try:
            if path == "/__sim/faults" and method == "POST":
                for key, value in payload.items():
                    if not hasattr(sim.faults, key):
                        raise ValueError(f"unknown fault switch {key!r}; known: {', '.join(asdict(Faults()))}")
                    setattr(sim.faults, key, value)
            elif path == "/__sim/profiles" and method == "POST" and sim.simulator is not None:
                settings = {k: v for k, v in payload.items() if k not in ("service", "version", "namespace")}
                sim.simulator.profiles.set(payload["service"], payload.get("version", "*"), payload.get("namespace", "*"),
                                           **settings)
            elif path == "/__sim/slos" and method == "POST":
                with sim.lock:
                    guard_api.add_slo(sim.guard, sim.recorder, sim.clock.now_ms(), payload)
            elif path == "/__sim/traffic" and method == "POST" and sim.simulator is not None:
                set_traffic(sim.simulator, payload)
            elif path == "/__sim/mesh" and method == "POST" and sim.simulator is not None:
                key = (payload["cluster"], payload["namespace"])
                if payload.get("ignore_virtual_services"):
                    sim.simulator.ignoring.add(key)
                else:
                    sim.simulator.ignoring.discard(key)
            elif not (path == "/__sim/state" and method == "GET"):
                raise ValueError(f"no control route {method} {path}")
        except (ValueError, TypeError, KeyError) as exc:
            raise _Fail(400, "sim.badRequest", str(exc)) from exc
        self._send(200, state_of(sim))


def set_traffic(simulator: Simulator, settings: dict) -> TrafficSpec:
    """Add or change the traffic of (cluster, namespace, service); rate 0 stops it."""
    spec = TrafficSpec(**{k: v for k, v in settings.items() if k not in ("next_ms", "changes") and not k.startswith("_")})
    if spec.rate < 0 or not 0 <= spec.jason_share <= 1 or spec.users < 0:
        raise ValueError("rate must be >= 0, jason_share within 0..1 and users >= 0")
    with simulator._lock:  # pylint: disable=protected-access
        simulator.specs = [s for s in simulator.specs
                           if (s.cluster, s.namespace, s.service) != (spec.cluster, spec.namespace, spec.service)]
        simulator.specs.append(spec)
    return spec


def state_of(sim: Simulation) -> dict:
    state = {"faults": asdict(sim.faults), "now_ms": sim.clock.now_ms(), "speed": sim.clock.speed,
             "slos": list(sim.guard.slos.values()), "mutes": list(sim.guard.mutes.values())}
    if sim.simulator is not None:
        state["profiles"] = sim.simulator.profiles.as_dict()
        state["traffic"] = [{k: v for k, v in asdict(s).items() if k != "next_ms" and not k.startswith("_")}
                            for s in sim.simulator.specs]
        state["ignoring_virtual_services"] = sorted("/".join(key) for key in sim.simulator.ignoring)
    return state


class GuanceServer:
    """The two loopback listeners over one `Simulation`; `start()` returns the base URLs."""

    def __init__(self, sim: Simulation, host: str = "127.0.0.1", openapi_port: int = 0, datakit_port: int = 0):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the simulator listens on loopback only")
        self.sim = sim
        self._servers = []
        for role, port in (("openapi", openapi_port), ("datakit", datakit_port)):
            handler = type(f"{role}Handler", (_Handler,), {"sim": sim, "role": role})
            server = ThreadingHTTPServer((host, port), handler)
            server.daemon_threads = True
            server.started = time.monotonic()
            self._servers.append(server)
        self._threads: list[threading.Thread] = []

    @property
    def urls(self) -> dict:
        openapi, datakit = (f"http://{s.server_address[0]}:{s.server_address[1]}" for s in self._servers)
        return {"guance_openapi": openapi, "datakit": datakit, "metrics": datakit + "/metrics"}

    def start(self) -> dict:
        for server in self._servers:
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="guance-sim", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self.urls

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
