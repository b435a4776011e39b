# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""guance_query and guance_event run as modules against the simulator's real HTTP server.

An in-process `sandbox.sim.server.GuanceServer` (OpenAPI and DataKit listeners on loopback, no
cluster) answers with Guance's wire shapes; its fault switches give the failures: a refused key
(401, 403), rate limits, 5xx, slow answers (timeouts), an HTML 502, and DataKit errors inside a
200 answer. Each module runs its `main()` in this process, as Ansible would run it, minus the
AnsiballZ wrapping.

Here rather than in tests/unit/plugins: `ansible-test units` runs tests/unit/plugins in a copied
tree where the `sandbox` package is not importable.
"""
from __future__ import annotations

import json
import time

import pytest
import requests

from sandbox.sim.record import Point
from sandbox.sim.server import GuanceServer, Simulation

from ansible_collections.canary.istio.tests.unit.plugins.modules.module_main import run_main

KEY = "sim-key-7f3a9c1e5b2d4f60"
WRONG_KEY = "wrong-key-0a1b2c3d4e5f"
SPANS = {("v1", "ok"): 12, ("v2", "ok"): 7, ("v2", "error"): 3}  # (version, status) -> spans seeded
SPANS_BY_VERSION = "T::`reviews`:(count(`*`) AS `spans`) BY `version`"
ERRORS_BY_VERSION = "T::`reviews`:(count(`*`) AS `errors`) { `status` = 'error' } BY `version`"
NO_DATA = "T::`details`:(count(`*`) AS `spans`) BY `version`"


# ---------------------------------------------------------------------------------------------
# The server and the module runner
# ---------------------------------------------------------------------------------------------


@pytest.fixture(name="sim")
def running_simulator():
    """A simulator on the wall clock (the modules compute "the last 5 minutes" from it) with
    reviews spans of one minute ago; `sim.urls` holds the two listeners' base URLs."""
    sim = Simulation(api_keys={KEY})
    now = sim.clock.now_ms()
    for (version, status), count in SPANS.items():
        for i in range(count):
            tags = {"service": "reviews", "version": version, "status": status}
            sim.recorder.add("T", Point("reviews", tags, {"duration": 1000 + i}, now - 60_000 + i))
    server = GuanceServer(sim)
    sim.urls = server.start()
    yield sim
    server.stop()


def run(module: str, args: dict, monkeypatch, capsys, env: dict | None = None, check: bool = False) -> dict:
    """Run canary.istio.<module>'s main() in this process and return its JSON result."""
    from importlib import import_module

    mod = import_module(f"ansible_collections.canary.istio.plugins.modules.{module}")
    result, _err = run_main(mod.main, args, monkeypatch, capsys, clear_env=("GUANCE_",), env=env, check_mode=check)
    for key in (KEY, WRONG_KEY):
        assert key not in json.dumps(result), f"{module} returned the API key"
    return result


def openapi(sim: Simulation, **args) -> dict:
    return dict(args, url=sim.urls["guance_openapi"], api_key=args.get("api_key", KEY))


def datakit(sim: Simulation, **args) -> dict:
    return dict(args, api="datakit", url=sim.urls["datakit"])


QUERY = {"last": "5m", "queries": [{"name": "spans", "query": SPANS_BY_VERSION}, {"name": "errors", "query": ERRORS_BY_VERSION},
                                   {"name": "none", "query": NO_DATA}]}
EVENT = {"title": "Canary reviews v2 at 10%", "status": "info", "text": "step 1 of 3: 90% v1, 10% v2",
         "tags": {"service": "reviews", "version": "v2", "step": 1, "weight": 10}}
MODULE_ARGS = {"guance_query": QUERY, "guance_event": EVENT}


def counts(series: list[dict], column: str) -> dict[str, int]:
    """version -> the one value of `column` in each series of a BY `version` count."""
    return {s["tags"]["version"]: s["rows"][0][s["columns"].index(column)] for s in series}


def expected_counts(status: str | None = None) -> dict[str, int]:
    out: dict[str, int] = {}
    for (version, span_status), count in SPANS.items():
        if status in (None, span_status):
            out[version] = out.get(version, 0) + count
    return out


def stored_events(sim: Simulation) -> list[Point]:
    return sim.recorder.rows("E")


def openapi_calls(sim: Simulation, path: str) -> int:
    """Calls of `path` the OpenAPI listener accepted (passed the key and rate-limit checks)."""
    return sum(1 for _method, seen, _body in sim.requests_seen if seen == path)


# ---------------------------------------------------------------------------------------------
# Success
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("check", [False, True], ids=["run", "check_mode"])
def test_query_openapi_answers_every_query_in_one_request(sim, monkeypatch, capsys, check) -> None:
    result = run("guance_query", openapi(sim, **QUERY), monkeypatch, capsys, check=check)
    assert result.get("failed") is not True, result
    assert result["changed"] is False and result["requests"] == 1
    assert openapi_calls(sim, "/api/v1/df/query_data_v1") == 1  # read-only: the same in check mode
    spans, errors, none = result["results"]
    assert [r["name"] for r in result["results"]] == ["spans", "errors", "none"]
    assert spans["query"] == SPANS_BY_VERSION and spans["qtype"] == "dql"
    assert counts(spans["series"], "spans") == expected_counts()
    assert counts(errors["series"], "errors") == expected_counts("error")
    assert none["series"] == []
    for series in spans["series"]:
        assert set(series) == {"name", "tags", "columns", "rows"} and series["columns"][0] == "time"
    sent = json.loads(sim.requests_seen[0][2])["queries"][0]["query"]
    assert sent["timeRange"] == [result["time_range"]["start"], result["time_range"]["end"]]
    assert result["time_range"]["end"] - result["time_range"]["start"] == 5 * 60_000
    assert len(result["raw"]["content"]["data"]) == 3


def test_query_datakit_gives_the_same_series_as_the_openapi(sim, monkeypatch, capsys) -> None:
    through_datakit = run("guance_query", datakit(sim, **QUERY), monkeypatch, capsys)
    through_openapi = run("guance_query", openapi(sim, **QUERY), monkeypatch, capsys)
    assert through_datakit.get("failed") is not True, through_datakit
    assert [r["series"] for r in through_datakit["results"]] == [r["series"] for r in through_openapi["results"]]
    assert isinstance(through_datakit["raw"]["content"], list)  # the DataKit's shape: content is the list


def test_key_and_url_from_the_environment(sim, monkeypatch, capsys) -> None:
    env = {"GUANCE_URL": sim.urls["guance_openapi"], "GUANCE_API_KEY": KEY}
    result = run("guance_query", QUERY, monkeypatch, capsys, env=env)
    assert result.get("failed") is not True, result
    assert counts(result["results"][0]["series"], "spans") == expected_counts()
    event = run("guance_event", EVENT, monkeypatch, capsys, env=env)  # run() also checks the key is not returned
    assert event["changed"] is True and len(sim.events) == 1


def test_event_through_the_openapi_reads_back_by_query_and_by_id(sim, monkeypatch, capsys) -> None:
    result = run("guance_event", openapi(sim, **EVENT, date="2026-01-02T03:04:05Z"), monkeypatch, capsys)
    assert result.get("failed") is not True, result
    assert result["changed"] is True and result["requests"] == 1
    date = 1_767_323_045_000
    assert result["event"] == {"date": date, "status": "info", "title": EVENT["title"], "message": EVENT["text"],
                               "customTags": {"service": "reviews", "version": "v2", "step": "1", "weight": "10"}}
    assert result["event_id"] is None and result["trace_id"]
    assert result["endpoint"] == sim.urls["guance_openapi"] + "/api/v1/events/create"
    # Guance returns no id: find the event with a DQL E:: query on its tags, then get it by __docid.
    found = run("guance_query", openapi(sim, start=date - 1000, end=date + 1000, queries=[{
        "query": "E::`custom`:(`__docid`, `df_title`, `df_status`) { `service` = 'reviews', `step` = '1' }"}]),
        monkeypatch, capsys)
    (series,) = found["results"][0]["series"]
    (row,) = series["rows"]
    doc_id = row[series["columns"].index("__docid")]
    assert row[series["columns"].index("df_title")] == EVENT["title"]
    got = requests.get(f"{sim.urls['guance_openapi']}/api/v1/events/{doc_id}/get", headers={"DF-API-KEY": KEY},
                       timeout=10).json()["content"]
    assert got["df_title"] == EVENT["title"] and got["df_status"] == "info" and got["df_message"] == EVENT["text"]
    assert got["df_source"] == "custom" and got["time"] == date
    assert got["version"] == "v2" and got["weight"] == "10"


def test_event_through_a_datakit_reads_back_by_its_event_id(sim, monkeypatch, capsys) -> None:
    args = {**EVENT, "status": "error", "source": "release"}
    result = run("guance_event", datakit(sim, **args), monkeypatch, capsys)
    assert result.get("failed") is not True, result
    assert result["changed"] is True and result["requests"] == 1 and result["trace_id"] is None
    event_id = result["event_id"]
    assert event_id.startswith("event-") and result["event"]["fields"]["df_event_id"] == event_id
    assert result["endpoint"] == sim.urls["datakit"] + "/v1/write/keyevent"
    found = run("guance_query", datakit(sim, last="5m", queries=[{
        "query": f"E::`release`:(`df_title`, `df_status`, `df_message`, `step`) {{ `df_event_id` = '{event_id}' }}"}]),
        monkeypatch, capsys)
    (series,) = found["results"][0]["series"]
    assert [row[1:] for row in series["rows"]] == [[EVENT["title"], "error", EVENT["text"], "1"]]


@pytest.mark.parametrize("where", [openapi, datakit])
def test_event_check_mode_sends_nothing_and_shows_the_event(sim, monkeypatch, capsys, where) -> None:
    result = run("guance_event", where(sim, **EVENT), monkeypatch, capsys, check=True)
    assert result.get("failed") is not True, result
    assert result["changed"] is True and result["requests"] == 0 and result["trace_id"] is None
    assert sim.requests_seen == [] and sim.events == {} and stored_events(sim) == []
    shown = result["event"]
    title = shown["title"] if where is openapi else shown["fields"]["df_title"]
    assert title == EVENT["title"]


def test_each_event_run_writes_one_more_event(sim, monkeypatch, capsys) -> None:
    for _run in range(2):
        assert run("guance_event", openapi(sim, **EVENT), monkeypatch, capsys)["changed"] is True
    assert len(sim.events) == 2  # not idempotent, as documented


# ---------------------------------------------------------------------------------------------
# Failures
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["guance_query", "guance_event"])
@pytest.mark.parametrize("status", [401, 403])
def test_refused_key_fails_at_once_with_a_plain_message(sim, monkeypatch, capsys, module, status) -> None:
    sim.faults.invalid_key_status = status
    result = run(module, openapi(sim, **MODULE_ARGS[module], api_key=WRONG_KEY), monkeypatch, capsys)
    assert result["failed"] is True
    assert f"the API key was refused ({status} ft.InvalidAPIKey" in result["msg"]
    assert "GUANCE_API_KEY" in result["msg"]
    assert result["status"] == status and result["error_code"] == "ft.InvalidAPIKey"
    assert result["requests"] == 1  # a refused key is not retried
    assert sim.events == {}


@pytest.mark.parametrize("module", ["guance_query", "guance_event"])
@pytest.mark.parametrize("switch, code", [("rate_limit", "ft.TriggerApiAkCurrentLimiting"),
                                          ("workspace_rate_limit", "ft.TriggerApiWorkspaceCurrentLimiting")])
def test_rate_limit_is_retried_within_the_budget_then_reported(sim, monkeypatch, capsys, module, switch, code) -> None:
    setattr(sim.faults, switch, 0)  # every request is over the limit
    started = time.monotonic()
    result = run(module, openapi(sim, **MODULE_ARGS[module], retry_budget=2.5), monkeypatch, capsys)
    assert result["failed"] is True
    assert f"rate limited (401 {code}" in result["msg"]
    assert "gave up after" in result["msg"] and "retry_budget=2.5s" in result["msg"]
    assert result["requests"] >= 2 and result["error_code"] == code and result["status"] == 401
    assert time.monotonic() - started < 2.5 + 2  # the budget holds (plus the module's own run time)
    assert sim.events == {}


def lift_rate_limit_after_first_refusal(sim: Simulation) -> list[str]:
    """Spy on the simulator's own limiter: after its first refusal, raise the limit again, as a
    new minute would. Returns the refusals seen."""
    limiter = sim.hit
    refusals: list[str] = []

    def hit(key: str, now: float) -> str | None:
        code = limiter(key, now)
        if code:
            refusals.append(code)
            sim.faults.rate_limit = 20
        return code

    sim.hit = hit
    return refusals


@pytest.mark.parametrize("module", ["guance_query", "guance_event"])
def test_rate_limit_waited_out_then_the_call_succeeds(sim, monkeypatch, capsys, module) -> None:
    sim.faults.rate_limit = 0
    refusals = lift_rate_limit_after_first_refusal(sim)
    result = run(module, openapi(sim, **MODULE_ARGS[module], retry_budget=10), monkeypatch, capsys)
    assert result.get("failed") is not True, result
    assert refusals == ["ft.TriggerApiAkCurrentLimiting"] and result["requests"] == 2
    if module == "guance_event":
        assert len(sim.events) == 1  # the refused attempt stored nothing: exactly one event


@pytest.mark.parametrize("module", ["guance_query", "guance_event"])
@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried_then_reported(sim, monkeypatch, capsys, module, status) -> None:
    sim.faults.status = status
    result = run(module, openapi(sim, **MODULE_ARGS[module], retry_budget=1.5), monkeypatch, capsys)
    assert result["failed"] is True
    assert f"server error {status} (InternalError: injected failure {status})" in result["msg"]
    assert "gave up after" in result["msg"]
    assert result["requests"] >= 2 and result["status"] == status
    assert sim.events == {}


@pytest.mark.parametrize("module", ["guance_query", "guance_event"])
def test_html_502_from_a_gateway_is_a_plain_server_error(sim, monkeypatch, capsys, module) -> None:
    sim.faults.non_json = True
    result = run(module, openapi(sim, **MODULE_ARGS[module], retry_budget=0), monkeypatch, capsys)
    assert result["failed"] is True
    assert "server error 502 (<html><body><h1>502 Bad Gateway</h1></body></html>)" in result["msg"]
    assert result["requests"] == 1 and result["status"] == 502


@pytest.mark.parametrize("where", [openapi, datakit])
def test_query_timeout_is_retried_then_reported(sim, monkeypatch, capsys, where) -> None:
    sim.faults.delay_s = 1.0
    result = run("guance_query", where(sim, **QUERY, timeout=0.3, retry_budget=2.5), monkeypatch, capsys)
    assert result["failed"] is True
    assert "no answer within timeout=0.3s" in result["msg"] and "gave up after" in result["msg"]
    assert result["requests"] >= 2


def test_event_timeout_is_reported_and_the_write_may_still_land(sim, monkeypatch, capsys) -> None:
    """What the module's notes warn about: the DataKit stored an event the client gave up on."""
    sim.faults.delay_s = 1.0
    result = run("guance_event", datakit(sim, **EVENT, timeout=0.3, retry_budget=0), monkeypatch, capsys)
    assert result["failed"] is True and result["requests"] == 1
    assert f"POST {sim.urls['datakit']}/v1/write/keyevent: no answer within timeout=0.3s" in result["msg"]
    assert result["event"]["fields"]["df_title"] == EVENT["title"]  # what was being written, for the record
    deadline = time.monotonic() + 5
    while not stored_events(sim) and time.monotonic() < deadline:
        time.sleep(0.05)
    (stored,) = stored_events(sim)
    assert stored.fields["df_event_id"] == result["event"]["fields"]["df_event_id"]


def test_datakit_error_inside_a_200_answer(sim, monkeypatch, capsys) -> None:
    result = run("guance_query", datakit(sim, last="5m", queries=[{"query": "M::cpu:(nope(x))"}]), monkeypatch, capsys)
    assert result["failed"] is True
    assert "the DataKit answered 200 with an error: datakit.queryError:" in result["msg"] and "nope" in result["msg"]
    assert result["status"] == 200 and result["error_code"] == "datakit.queryError"
    assert result["requests"] == 1  # a query error is not retried


def test_openapi_query_error_is_not_retried(sim, monkeypatch, capsys) -> None:
    result = run("guance_query", openapi(sim, last="5m", queries=[{"query": "M::cpu:(nope(x))"}]), monkeypatch, capsys)
    assert result["failed"] is True
    assert ": 400 ft.QueryError: dql:" in result["msg"]
    assert result["status"] == 400 and result["error_code"] == "ft.QueryError" and result["requests"] == 1


def test_event_sent_to_a_datakit_as_if_it_were_the_openapi(sim, monkeypatch, capsys) -> None:
    """A wrong url: the DataKit's own error code comes back, plainly, without a retry."""
    result = run("guance_event", dict(openapi(sim, **EVENT), url=sim.urls["datakit"]), monkeypatch, capsys)
    assert result["failed"] is True
    assert "404 datakit.routeNotFound: no route POST /api/v1/events/create" in result["msg"]
    assert result["error_code"] == "datakit.routeNotFound" and result["requests"] == 1


@pytest.mark.parametrize("args, option, text", [
    ({"status": "fine"}, "status", "value of status must be one of"),
    ({"tags": {"df_status": "ok"}}, "tags", "'df_status' is a name Guance keeps"),
    ({"date": 1_767_323_045}, "date", "looks like seconds"),
    ({"api_key": None}, "api_key", "needs api_key"),
])
def test_bad_event_options_fail_before_sending(sim, monkeypatch, capsys, args, option, text) -> None:
    result = run("guance_event", dict(openapi(sim, **EVENT), **args), monkeypatch, capsys)
    assert result["failed"] is True and text in result["msg"], result["msg"]
    if "option" in result:  # Ansible's own choices check names the option in its message instead
        assert result["option"] == option
    assert sim.requests_seen == [] and sim.events == {}


# ---------------------------------------------------------------------------------------------
# Guard rails: an SLO's error budget, and a mute for the release
# ---------------------------------------------------------------------------------------------


def _slo(sim: Simulation, name: str, lost: float, goal: float = 95.0) -> dict:
    from sandbox.sim import guard  # pylint: disable=import-outside-toplevel

    return guard.add_slo(sim.guard, sim.recorder, sim.clock.now_ms(), {"name": name, "goal": goal, "lost_minutes": lost})


def test_slo_info_reads_the_budget_left_by_name_or_id(sim, monkeypatch, capsys):
    healthy = _slo(sim, "reviews availability", 126)
    _slo(sim, "reviews availability (old)", 600)
    by_name = run("guance_slo_info", openapi(sim, slo="reviews availability"), monkeypatch, capsys)
    assert by_name["changed"] is False and by_name["requests"] == 2, by_name
    slo = by_name["slo"]
    assert (slo["uuid"], slo["budget_minutes"], slo["lost_minutes"], slo["left_percent"], slo["spent"]) == \
        (healthy["uuid"], 504.0, 126.0, 75.0, False)
    by_id = run("guance_slo_info", openapi(sim, slo_id=healthy["uuid"], min_budget_left=80), monkeypatch, capsys)
    assert by_id["slo"]["spent"] is True and by_id["slo"]["lost_minutes"] == 126.0


def test_slo_info_says_spent_and_names_a_missing_slo(sim, monkeypatch, capsys):
    _slo(sim, "ratings availability", 600)
    spent = run("guance_slo_info", openapi(sim, slo="ratings availability"), monkeypatch, capsys)
    assert spent["slo"]["spent"] is True and spent["slo"]["left_minutes"] == -96.0
    missing = run("guance_slo_info", openapi(sim, slo="ratings"), monkeypatch, capsys)
    assert missing["failed"] is True and missing["msg"].startswith("slo: no SLO of the workspace is named 'ratings'")
    assert "ratings availability" in missing["msg"]
    datakit_only = run("guance_slo_info", datakit(sim, slo="x"), monkeypatch, capsys)
    assert datakit_only["failed"] is True and datakit_only["msg"].startswith("api: SLOs are read through the OpenAPI")


def test_an_slos_record_outlives_the_simulators_pruning_of_old_rows(sim, monkeypatch, capsys):
    # The cost events spread over the SLO's 7 days, far beyond the recorder's hours of retention:
    # a prune (every minute in the live simulator) must not make a spent budget look healthy.
    _slo(sim, "details availability", 600)
    sim.recorder.prune(sim.clock.now_ms())
    after = run("guance_slo_info", openapi(sim, slo="details availability"), monkeypatch, capsys)
    assert after["slo"]["lost_minutes"] == 600.0 and after["slo"]["spent"] is True, after["slo"]


def test_mute_is_made_kept_and_ended_idempotently(sim, monkeypatch, capsys):
    args = openapi(sim, service="reviews", duration="30m")
    preview = run("guance_mute", args, monkeypatch, capsys, check=True)
    assert preview["changed"] is True and preview["mute"]["uuid"] is None and sim.guard.mutes == {}
    made = run("guance_mute", args, monkeypatch, capsys)
    assert made["changed"] is True and made["mute"]["uuid"] in sim.guard.mutes, made
    stored = sim.guard.mutes[made["mute"]["uuid"]]
    assert stored["filterString"] == "service:reviews" and stored["end"] - stored["start"] == 1800
    again = run("guance_mute", args, monkeypatch, capsys)
    assert again["changed"] is False and len(sim.guard.mutes) == 1
    ended = run("guance_mute", dict(args, state="absent"), monkeypatch, capsys)
    assert ended["changed"] is True and ended["ended"] == [made["mute"]["uuid"]] and sim.guard.mutes == {}
    nothing = run("guance_mute", dict(args, state="absent"), monkeypatch, capsys)
    assert nothing["changed"] is False and nothing["ended"] == []


def test_mute_refuses_bad_input_before_any_request(sim, monkeypatch, capsys):
    for bad, option in (({"duration": "soon"}, "duration"), ({"service": "reviews OR host:x"}, "service"),
                        ({"duration": 10}, "duration")):
        result = run("guance_mute", openapi(sim, **dict({"service": "reviews"}, **bad)), monkeypatch, capsys)
        assert result["failed"] is True and result["option"] == option and result["msg"].startswith(option), result
    assert sim.requests_seen == []
