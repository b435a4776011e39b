"""A contract with Guance as its own clients see it, run against this collection's client and the
simulator alike.

Guance's own clients (its Grafana datasource, pipeline-go, DataKit and its DQL CLI, dql-go,
dataflux-func; docs/simulator.md lists what they show) send and parse the OpenAPI in ways the
documentation alone does not say. The bodies and answers here are constructed by this project from
those facts, not copied:

- requests: the key id in ``DF-API-KEY``; ``timeRange`` in epoch ms; ``disableMultipleField: false``,
  ``disable_sampling: true``, ``disable_slimit: true``, ``align_time: true`` for DQL (interval
  buckets on the interval's multiples, labelled at their start); PromQL without ``promqlType`` (a
  range query, as Grafana sends it); ``content.data[i]`` answers ``queries[i]``;
- answers: rows newest-first or oldest-first; ``time`` not always the first column; extra fields
  (``column_names``, ``group_by``, ``query_status``, ``tags.name``); series labels under ``tags``,
  ``labels`` or a ``name`` list of ``k=v``; an instant query answered as a range; an error is a
  non-empty ``errorCode`` or ``success: false``; a bad key 401 ``ft.InvalidAPIKey``.

The same answers go through the client (a scripted local server, the one guance_query's tests use) and the analysis's parsers; the same
requests go to the simulator, which must accept them and answer in the shapes the client reads.
"""
from __future__ import annotations

import json

import pytest
import requests

from ansible_collections.canary.istio.plugins.module_utils._analysis import answers
from ansible_collections.canary.istio.plugins.module_utils._analysis import terms
from ansible_collections.canary.istio.plugins.module_utils._guance import client as guance_client
from ansible_collections.canary.istio.plugins.module_utils._guance import errors as guance_errors
from ansible_collections.canary.istio.plugins.module_utils._guance import queries as guance_queries
from ansible_collections.canary.istio.plugins.module_utils._guance import settings as guance_settings
from ansible_collections.canary.istio.tests.unit.plugins.modules.test_guance_query import Server
from sandbox.sim.record import Point
from sandbox.sim.server import GuanceServer, Simulation

KEY = "contract-key-5e1f0a9b"
QUERY_PATH = "/api/v1/df/query_data_v1"


# ---------------------------------------------------------------------------------------------
# Answers as Guance gives them, read by the client and the analysis
# ---------------------------------------------------------------------------------------------

def _answer(*items: dict) -> dict:
    return {"code": 200, "content": {"data": list(items)}, "errorCode": "", "message": "", "success": True,
            "traceId": "TRACE-0A1B2C"}


REQUESTS_RANGE_NEWEST_FIRST = {  # a PromQL instant query answered as a range, newest row first
    "column_names": ["value", "time"], "group_by": ["destination_version", "response_code"], "query_status": "done",
    "series": [
        {"name": "istio_requests_total", "columns": ["value", "time"], "values": [[120, 1700000060000], [80, 1700000000000]],
         "tags": {"name": "istio_prom", "destination_version": "v2", "response_code": "200"}},
        {"columns": ["value", "time"], "values": [[6, 1700000060000], [1, 1700000000000]],
         "labels": {"destination_version": "v2", "response_code": "503"}},
        {"name": ["destination_version=v1", "response_code=200"], "columns": ["time", "value"],
         "values": [[1700000000000, 900], [1700000060000, 1000]]},
    ]}


def test_the_client_reads_every_answer_layout_into_the_right_numbers() -> None:
    server = Server(200, _answer(REQUESTS_RANGE_NEWEST_FIRST))
    try:
        client = guance_client.GuanceClient(guance_settings.make_config(url=server.url, api_key=KEY, retry_budget=0))
        result = client.query([guance_queries.Query("sum(increase(istio_prom:istio_requests_total[60s]))", qtype="promql")], 1, 2)
    finally:
        server.close()
    numbers = answers.parse_requests(result.series[0], ["v2", "v1"], counter=False)
    # The newest point of each series, whatever the row order or the place of the time column.
    assert numbers["v2"][terms.REQUEST_COUNT] == 126 and numbers["v1"][terms.REQUEST_COUNT] == 1000
    assert round(numbers["v2"][terms.REQUEST_ERROR_RATE], 3) == round(100 * 6 / 126, 3)
    # What was sent, as Guance's clients send it.
    sent = server.seen[0]
    assert sent["headers"]["DF-API-KEY"] == KEY
    query = json.loads(sent["body"])["queries"][0]["query"]
    assert query["timeRange"] == [1, 2] and query["disableMultipleField"] is False and query["disable_sampling"] is True


@pytest.mark.parametrize("status, answer, kind", [
    (401, {"code": 401, "errorCode": "ft.InvalidAPIKey", "message": "invalid key", "success": False}, guance_errors.GuanceAuthError),
    (200, {"code": 200, "errorCode": "ft.QueryError", "message": "bad dql", "success": True, "content": None}, guance_errors.GuanceApiError),
    (200, {"code": 200, "errorCode": "", "message": "", "success": False, "content": None}, guance_errors.GuanceApiError),
])
def test_an_error_is_an_error_code_or_success_false(status, answer, kind) -> None:
    server = Server(status, answer)
    try:
        client = guance_client.GuanceClient(guance_settings.make_config(url=server.url, api_key=KEY, retry_budget=0))
        with pytest.raises(kind):
            client.query([guance_queries.Query("M::x:(count(`*`))")], 1, 2)
    finally:
        server.close()


# ---------------------------------------------------------------------------------------------
# Requests as Guance's clients send them, answered by the simulator
# ---------------------------------------------------------------------------------------------

@pytest.fixture(name="sim")
def simulator_with_spans():
    sim = Simulation(api_keys={KEY})
    now = sim.clock.now_ms()
    for version, count in (("v1", 30), ("v2", 25)):
        for i in range(count):
            sim.recorder.add("T", Point("reviews", {"service": "reviews", "version": version, "status": "ok"},
                                        {"duration": 1000 + i}, now - 30_000 + i))
    server = GuanceServer(sim)
    sim.urls = server.start()
    yield sim
    server.stop()


def _post(sim: Simulation, body: dict, key: str | None = KEY) -> requests.Response:
    headers = {"DF-API-KEY": key} if key else {}
    return requests.post(sim.urls["guance_openapi"] + QUERY_PATH, json=body, headers=headers, timeout=10)


def test_the_simulator_answers_each_query_in_order(sim) -> None:
    now = sim.clock.now_ms()
    by_version = "T::`reviews`:(count(`*`) AS `spans`) BY `version`"
    body = {"queries": [  # a pipeline-go style DQL query, then a Grafana style one without extra fields
        {"qtype": "dql", "query": {"q": by_version, "timeRange": [now - 60_000, now], "disableMultipleField": False,
                                   "disable_sampling": True, "disable_slimit": True}},
        {"qtype": "dql", "query": {"q": "T::`details`:(count(`*`) AS `spans`)", "timeRange": [now - 60_000, now]}},
    ]}
    answer = _post(sim, body).json()
    assert answer["success"] is True and answer["errorCode"] == ""
    data = answer["content"]["data"]
    assert len(data) == 2
    first = guance_queries.simple_series(data[0])
    counts = {s["tags"]["version"]: answers.latest_value(s, "spans") for s in first}
    assert counts == {"v1": 30, "v2": 25}
    assert guance_queries.simple_series(data[1]) == []  # no data is an empty answer, not an error


def test_the_simulator_refuses_a_bad_key_as_a_live_site_does(sim) -> None:
    resp = _post(sim, {"queries": [{"qtype": "dql", "query": {"q": "T::`reviews`:(count(`*`))"}}]}, key="not-the-key")
    assert resp.status_code == 401
    assert resp.json()["errorCode"] == "ft.InvalidAPIKey" and resp.json()["success"] is False


def test_the_simulator_accepts_the_clients_own_bodies(sim) -> None:
    # The collection's own client, end to end: the body it builds is one the simulator answers.
    client = guance_client.GuanceClient(guance_settings.make_config(url=sim.urls["guance_openapi"], api_key=KEY, retry_budget=0))
    now = sim.clock.now_ms()
    result = client.query([guance_queries.Query("T::`reviews`:(count(`*`) AS `spans`) BY `version`")], now - 60_000, now)
    assert {s["tags"]["version"] for s in result.series[0]} == {"v1", "v2"}


def test_interval_buckets_come_back_on_the_interval_grid(sim) -> None:
    # The client asks every DQL query with align_time, as Guance's own examples do: buckets on
    # multiples of the interval, labelled at their start (what the analysis's counters read).
    client = guance_client.GuanceClient(guance_settings.make_config(url=sim.urls["guance_openapi"], api_key=KEY, retry_budget=0))
    now = sim.clock.now_ms()
    start = now - 60_000 - now % 10_000 + 3_000  # not on the 10 s grid
    text = "T::`reviews`:(count(`*`) AS `spans`) [::10s] BY `version`"
    stamps = {row[0] for one in client.query([guance_queries.Query(text)], start, now).series[0] for row in one["rows"]}
    assert stamps and all(stamp % 10_000 == 0 for stamp in stamps)
    plain = _post(sim, {"queries": [{"qtype": "dql", "query": {"q": text, "timeRange": [start, now]}}]}).json()
    unaligned = {row[0] for one in plain["content"]["data"][0]["series"] for row in one["values"]}
    assert unaligned and all((stamp - start) % 10_000 == 0 for stamp in unaligned)
