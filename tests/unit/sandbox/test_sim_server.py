"""Contract tests: every example request of guance-api.md against the simulator over HTTP on loopback."""
from __future__ import annotations

import json
import time
from urllib.parse import quote

import pytest
import requests

from sandbox.sim import bookinfo
from sandbox.sim.record import ManualClock, Recorder
from sandbox.sim.routing import Mesh
from sandbox.sim.server import GuanceServer, Simulation
from sandbox.sim.traffic import Simulator, TrafficSpec

KEY = "test-key"
T0 = 1_708_911_106_000
ENVELOPE_KEYS = {"code", "content", "errorCode", "message", "success", "traceId"}
DOC_QUERY = {"queries": [{"qtype": "dql", "query": {
    "q": "M::`cpu`:(avg(`usage_idle`))", "_funcList": [], "funcList": [], "maxPointCount": 720, "interval": 10,
    "align_time": True, "sorder_by": [{"column": "`#1`", "order": "DESC"}], "slimit": 20, "disable_sampling": False,
    "timeRange": [1708911106000, 1708912906999], "tz": "Asia/Shanghai"}}]}
CANARY_DQL = [
    "M::`istio_prom`:(sum(`istio_requests_total`) AS `rps`) { `reporter` = 'destination', `destination_workload` = re(`reviews-.*`) } "
    "[10m::1m:rate] BY `destination_version`",
    "M::`istio_prom`:(sum(`istio_requests_total`) AS `rps`) { `reporter` = 'destination', `destination_workload` = re(`reviews-.*`), "
    "`response_code` = re(`5..`) } [10m::1m:rate] BY `destination_version`",
    "M::`istio_prom`:(max(`istio_request_duration_milliseconds_bucket`) AS `c`) { `reporter` = 'destination', "
    "`destination_workload` = re(`reviews-.*`) } [10m] BY `destination_version`, `le`",
    "T::`reviews`:(count(`*`) AS `errors`) { `status` = 'error' } [10m] BY `service`, `version`",
    "T::`reviews`:(count(`*`) AS `spans`) [10m] BY `service`, `version`",
    "T::`reviews`:(percentile(`duration`, 99) AS `p99_us`) [10m] BY `version`",
    "L::re(`.*`):(count(`*`) AS `errors`) { `service` = 'reviews', `status` = 'error' } [10m] BY `service`",
    "E::re(`.*`):(`df_title`, `df_status`, `df_source`) { `df_source` = 'custom' } [1h] LIMIT 20",
]
VERBATIM_DQL = [
    "M::cpu:(usage_idle) [10m:5m:1m]",
    'M:: cpu:(time_active, time_guest_nice) { host = "host-name", cpu = "cpu0" } [5m] BY host,cpu',
    "L::`datakit`:(COUNT(`*`)) { `index` = 'default' } BY `host`",
    "T::`mysqli`:(COUNT(`resource`)) { `status` = 'ok' } BY `status`",
    "T::RE(`.*`):(COUNT_DISTINCT(`trace_id`)) {`http_status_code` >= '500'} BY `service`",
    "T::re(`.*`):(count(`trace_id`)){ `service` = 'front-api' } [::auto] by `status`",
    "E::`monitor`:(COUNT(`create_time`)) { `create_time` = 1688708829409 } BY `df_event_id`",
]


@pytest.fixture(name="sim")
def running_simulation():
    mesh = Mesh("bookinfo", virtual_services=[{"kind": "VirtualService", "metadata": {"name": "reviews"}, "spec": {
        "hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews", "subset": "v1"}, "weight": 90},
                                                  {"destination": {"host": "reviews", "subset": "v3"}, "weight": 10}]}]}}],
                destination_rules=[{"kind": "DestinationRule", "metadata": {"name": "reviews"}, "spec": {
                    "host": "reviews", "subsets": [{"name": v, "labels": {"version": v}} for v in ("v1", "v3")]}}],
                services=bookinfo.all_services(), pods=bookinfo.all_pods())
    clock = ManualClock(T0)
    recorder = Recorder()
    simulator = Simulator(lambda c, ns: mesh, recorder, seed=1)
    simulator.profiles.set("reviews", "v3", error_rate=0.2)
    simulator.specs.append(TrafficSpec("c1", "bookinfo", rate=5))
    simulator.specs[0].next_ms = T0 - 600_000
    assert simulator.run_until(T0 - 1) == 3000  # ten minutes at 5/s before T0
    sim = Simulation(recorder=recorder, clock=clock, simulator=simulator, api_keys={KEY})
    server = GuanceServer(sim)
    urls = server.start()
    sim.urls = urls
    yield sim
    server.stop()


def openapi(sim, method, path, key=KEY, **kw):
    headers = {"DF-API-KEY": key} if key else {}
    return requests.request(method, sim.urls["guance_openapi"] + path, headers=headers, timeout=10, **kw)


def query(sim, *texts, **extra):
    settings = {"disableMultipleField": False, "disable_sampling": True, "slimit": 50}
    body = {"queries": [{"qtype": "dql", "query": dict(settings, q=t, **extra)} for t in texts]}
    resp = openapi(sim, "POST", "/api/v1/df/query_data_v1", json=body)
    assert resp.headers["Content-Type"].startswith("application/json")
    return resp


def test_doc_example_query_gets_the_documented_shape(sim):
    datakit = sim.urls["datakit"]
    lines = "\n".join(f"cpu,host=h1 usage_idle={70 + i} {(1708911106 + 60 * i) * 10**9}" for i in range(5))
    assert requests.post(f"{datakit}/v1/write/metric", data=lines, timeout=10).status_code == 200
    resp = openapi(sim, "POST", "/api/v1/df/query_data_v1", json=DOC_QUERY)
    body = resp.json()
    assert resp.status_code == 200 and set(body) >= ENVELOPE_KEYS and body["success"] and body["errorCode"] == ""
    assert isinstance(body["traceId"], str)
    (item,) = body["content"]["data"]
    for key in ("async_id", "column_names", "cost", "is_running", "next_cursor_time", "points", "query_parse", "series"):
        assert key in item
    (series,) = item["series"]
    assert series["name"] == "cpu" and series["columns"] == ["time", "avg(usage_idle)"]
    # interval 10 s: one bucket per written point, newest first
    assert series["values"] == [[(1708911106 + 60 * i) // 10 * 10000, 70 + i] for i in reversed(range(5))]


def test_pipeline_go_body_and_get_variant(sim):
    body = {"queries": [{"qtype": "dql", "query": {"q": CANARY_DQL[4], "disable_sampling": True, "limit": 10, "offset": 0,
                                                   "alignTime": True, "disableMultipleField": False,
                                                   "timeRange": [T0 - 600_000, T0]}}]}
    post = openapi(sim, "POST", "/api/v1/df/query_data_v1", json=body).json()
    get = openapi(sim, "GET", "/api/v1/df/query_data?queries_body=" + quote(json.dumps(body))).json()
    assert post["content"]["data"][0]["series"] == get["content"]["data"][0]["series"]
    counts = {s["tags"]["version"]: s["values"][0][1] for s in post["content"]["data"][0]["series"]}
    assert set(counts) == {"v1", "v3"} and sum(counts.values()) == 5 * 600


def test_canary_queries_answer_in_request_order(sim):
    resp = query(sim, *CANARY_DQL, timeRange=[T0 - 600_000, T0])
    data = resp.json()["content"]["data"]
    assert len(data) == len(CANARY_DQL)
    assert [d["column_names"] for d in data][:3] == [["rps"], ["rps"], ["c"]]
    errors = {s["tags"]["destination_version"] for s in data[1]["series"]}
    assert errors == {"v3"}  # only v3 has a 20 % error profile
    assert all(s["values"] for d in data[:7] for s in d["series"])


def test_verbatim_doc_queries_are_answered(sim):
    for text in VERBATIM_DQL:
        resp = query(sim, text)
        assert resp.status_code == 200, (text, resp.text)
        assert isinstance(resp.json()["content"]["data"][0]["series"], list)


@pytest.mark.parametrize("text", ["L::`*`:(count_filter(service,['browser', 'df_rum_ios']) as c1 ) by status",
                                  "M::cpu:(usage_idle) { exists(host) }"])
def test_unsupported_dql_is_an_error_envelope(sim, text):
    resp = query(sim, text)
    body = resp.json()
    assert resp.status_code == 400 and body["code"] == 400 and body["success"] is False
    assert body["errorCode"] == "ft.QueryError" and body["message"].startswith("dql:")


@pytest.mark.parametrize("text", ["topk(3, node:network_receive_bytes_total)", "rate(node:bytes_total[5m:1m])",
                                  "a:b * on(x) group_left c:d", "sum(rate(node:bytes_total[5m])"])
def test_unsupported_promql_is_an_error_envelope(sim, text):
    body = {"queries": [{"qtype": "promql", "query": {"q": text}}]}
    resp = openapi(sim, "POST", "/api/v1/df/query_data_v1", json=body)
    assert resp.status_code == 400 and resp.json()["errorCode"] == "ft.QueryError"
    assert resp.json()["message"].startswith("promql:")


def test_event_create_and_get(sim):
    event = {"date": 1668141576000, "status": "info", "title": "测试自定义事件01", "message": "测试自定义事件-message",
             "customTags": {"server": "自定义服务"}}
    resp = openapi(sim, "POST", "/api/v1/events/create", json=event)
    assert resp.status_code == 200 and resp.json()["content"] is True and resp.json()["success"] is True
    doc_id = next(iter(sim.events))
    got = openapi(sim, "GET", f"/api/v1/events/{doc_id}/get").json()["content"]
    assert got["__docid"] == doc_id and got["df_source"] == "custom" and got["df_title"] == event["title"]
    assert got["df_event_id"].startswith("event-") and got["time"] == event["date"]
    found = query(sim, "E::re(`.*`):(`df_title`, `df_status`, `df_source`) { `df_source` = 'custom' } LIMIT 20",
                  timeRange=[1668141576000, 1668141577000]).json()["content"]["data"][0]["series"][0]["values"]
    assert found == [[1668141576000, event["title"], "info", "custom"]]
    bad = openapi(sim, "POST", "/api/v1/events/create", json=dict(event, status="fine"))
    assert bad.status_code == 400 and bad.json()["success"] is False
    assert openapi(sim, "GET", "/api/v1/events/E_nope/get").status_code == 404


def test_invalid_key_rate_limit_and_fault_switches(sim):
    assert openapi(sim, "POST", "/api/v1/df/query_data_v1", key="wrong", json=DOC_QUERY).json()["errorCode"] == "ft.InvalidAPIKey"
    assert openapi(sim, "POST", "/api/v1/df/query_data_v1", key=None, json=DOC_QUERY).status_code == 401
    sim.faults.invalid_key_status = 403
    assert openapi(sim, "GET", "/api/v1/validate", key="wrong").status_code == 403
    sim.faults.rate_limit = 3
    codes = [openapi(sim, "GET", "/api/v1/validate").status_code for _i in range(4)]
    assert codes == [200, 200, 200, 401]
    assert openapi(sim, "GET", "/api/v1/validate").json()["errorCode"] == "ft.TriggerApiAkCurrentLimiting"
    sim.faults.rate_limit = 1000
    sim.faults.status = 503
    resp = openapi(sim, "GET", "/api/v1/validate")
    assert resp.status_code == 503 and resp.json()["code"] == 503 and resp.json()["success"] is False
    sim.faults.status = None
    sim.faults.non_json = True
    resp = openapi(sim, "GET", "/api/v1/validate")
    assert resp.status_code == 502 and resp.headers["Content-Type"].startswith("text/html")
    sim.faults.non_json = False
    sim.faults.omit_series = True
    assert "series" not in query(sim, CANARY_DQL[4]).json()["content"]["data"][0]
    sim.faults.omit_series = False
    sim.faults.delay_s = 0.3
    started = time.monotonic()
    assert openapi(sim, "GET", "/api/v1/validate").status_code == 200
    assert time.monotonic() - started >= 0.3
    sim.faults.delay_s = 0


def test_datakit_ping_query_raw_and_write(sim):
    dk = sim.urls["datakit"]
    ping = requests.get(f"{dk}/v1/ping", timeout=10)
    assert ping.status_code == 200 and "X-DataKit" in ping.headers and set(ping.json()["content"]) == {"version", "uptime"}
    requests.post(f"{dk}/v1/write/metric", data=f"cpu,host=h1 usage_idle=42 {T0 * 10**6}", timeout=10)
    doc = {"queries": [{"query": "cpu:(usage_idle) LIMIT 1", "conditions": "", "max_duration": "1d", "max_point": 0,
                        "time_range": [], "orderby": [], "disable_slimit": True, "disable_multiple_field": True}],
           "echo_explain": True}
    body = requests.post(f"{dk}/v1/query/raw", json=doc, timeout=10).json()
    assert isinstance(body["content"], list) and body["content"][0]["series"][0]["values"] == [[T0, 42]]
    # upstream errors come back inside a 200
    bad = requests.post(f"{dk}/v1/query/raw", json={"queries": [{"query": "M::cpu:(nope(x))"}]}, timeout=10)
    assert bad.status_code == 200 and bad.json()["error_code"] and "nope" in bad.json()["message"]
    assert requests.post(f"{dk}/v1/query/raw", data="{", timeout=10).json()["error_code"] == "datakit.invalidJSON"
    # slimit 20 unless disabled
    many = "\n".join(f"cpu,host=h{i} usage_idle=1 {T0 * 10**6}" for i in range(25))
    requests.post(f"{dk}/v1/write/metric", data=many, timeout=10)
    capped = {"queries": [{"query": "M::cpu:(max(usage_idle) AS m) BY host", "time_range": [T0, T0]}]}
    assert len(requests.post(f"{dk}/v1/query/raw", json=capped, timeout=10).json()["content"][0]["series"]) == 20
    capped["queries"][0]["disable_slimit"] = True
    assert len(requests.post(f"{dk}/v1/query/raw", json=capped, timeout=10).json()["content"][0]["series"]) == 25  # h0..h24


def test_datakit_write_events_and_error_codes(sim):
    dk = sim.urls["datakit"]
    line = ('user create_time=1656383652424,df_date_range="10",df_event_id="event-21946fc19eaf4c5cb1a698f659bf74cd",'
            'df_message="...",df_status="info",df_title="...",df_user_id="acnt_a5d6130c19524a6b9fe91d421eaf8603",'
            'user_email="xxx@xx.com",user_name="xxx" 1658040035652416000')
    assert requests.post(f"{dk}/v1/write/keyevent", data=line, timeout=10).status_code == 200
    release = ('release,service=reviews,version=v2 df_source="system",df_status="info",df_event_id="event-0123",'
               f'df_title="Canary reviews v2 promoted",df_message="...",df_date_range=600i {T0 * 10**6}')
    assert requests.post(f"{dk}/v1/write/keyevent", data=release, timeout=10).status_code == 200
    as_json = [{"measurement": "release", "tags": {"service": "reviews"}, "fields": {
        "df_source": "system", "df_status": "info", "df_event_id": "event-1", "df_title": "json one", "df_date_range": 600},
        "time": (T0 + 1) * 10**6}]
    assert requests.post(f"{dk}/v1/write/keyevent", json=as_json, timeout=10).status_code == 200
    titles = query(sim, "E::`release`:(`df_title`) LIMIT 5", timeRange=[T0, T0 + 1]).json()["content"]["data"][0]["series"]
    assert [v[1] for v in titles[0]["values"]] == ["json one", "Canary reviews v2 promoted"]
    user = query(sim, "E::`user`:(`df_title`, `user_name`)", timeRange=[1658040035652, 1658040035653]).json()
    assert user["content"]["data"][0]["series"][0]["values"] == [[1658040035652, "...", "xxx"]]
    for path, data, code in (("/v1/write/bogus", "a b=1", "datakit.invalidCategory"),
                             ("/v1/write/metric", "", "datakit.emptyBody"),
                             ("/v1/write/metric", "cpu,host usage=1", "datakit.invalidLinePoint")):
        resp = requests.post(dk + path, data=data, timeout=10)
        assert resp.status_code == 400 and resp.json()["error_code"] == code, (path, resp.text)
    bad_json = requests.post(f"{dk}/v1/write/logging", json=[{"tags": {}}], timeout=10)
    assert bad_json.status_code == 400 and bad_json.json()["error_code"] == "datakit.invalidJsonPoint"


def test_metrics_and_control_api(sim):
    dk = sim.urls["datakit"]
    metrics = requests.get(f"{dk}/metrics", timeout=10)
    assert metrics.headers["Content-Type"].startswith("text/plain")
    assert 'istio_request_duration_milliseconds_bucket{' in metrics.text and 'le="+Inf"' in metrics.text
    state = requests.post(f"{dk}/__sim/profiles", json={"service": "reviews", "version": "v1", "error_rate": 0.5},
                          timeout=10).json()
    assert state["profiles"]["reviews/v1"]["error_rate"] == 0.5
    state = requests.post(f"{dk}/__sim/traffic", json={"cluster": "c1", "namespace": "bookinfo", "rate": 0}, timeout=10).json()
    assert state["traffic"][0]["rate"] == 0
    assert requests.post(f"{dk}/__sim/faults", json={"nope": 1}, timeout=10).status_code == 400
    assert requests.post(f"{dk}/__sim/faults", json={"invalid_key_status": 401}, timeout=10).json()["faults"]["invalid_key_status"] == 401
