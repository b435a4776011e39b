# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/modules/canary_analysis.py: its documentation, and whole runs against canned Guance and Prometheus answers."""
# The simulator's real data paths: tests/integration/test_canary_analysis_module.py.

from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest
import yaml

from ansible_collections.canary.istio.plugins.module_utils._guance import settings as guance_settings
from ansible_collections.canary.istio.plugins.modules import canary_analysis as ca
from ansible_collections.canary.istio.tests.unit.plugins.module_utils.http_fakes import Recorder
from ansible_collections.canary.istio.tests.unit.plugins.modules.module_main import assert_spec_documented, run_main


KEY = "key_9f8e7d6c5b4a39281706"


class TestDocumentation:
    def test_documentation_matches_the_argument_spec(self) -> None:
        documented = yaml.safe_load(ca.DOCUMENTATION)["options"]
        assert_spec_documented(documented, ca.OWN_OPTIONS, "")
        assert not set(documented) & set(guance_settings.GUANCE_ARG_SPEC)  # those come from the doc fragment
        for secret in ("prometheus_token", "prometheus_password"):
            assert ca.OWN_OPTIONS[secret]["no_log"] is True

    def test_examples_and_return_parse(self) -> None:
        examples = yaml.safe_load(ca.EXAMPLES)
        assert all("canary.istio.canary_analysis" in task or "ansible.builtin.debug" in task for task in examples)
        returned = yaml.safe_load(ca.RETURN)
        assert set(returned) == {"verdict", "reason", "rounds", "checks", "queries", "http_requests", "provider", "service",
                                 "canary_version", "baseline_version", "window_s", "interval_s", "rollback", "sample_plan"}


TOKEN = "prom_token_5d4c3b2a1908"


@pytest.fixture(name="server")
def local_server():
    servers = []

    def start(answer):
        servers.append(Recorder(answer=answer))
        return servers[-1]

    yield start
    for one in servers:
        one.close()


def run_module(args: dict, monkeypatch, capsys, check_mode: bool = False) -> dict:
    result, _err = run_main(ca.main, args, monkeypatch, capsys, clear_env=("GUANCE_", "PROMETHEUS_"), check_mode=check_mode)
    return result


def series(tags: dict, value: float) -> dict:
    return {"name": "", "tags": tags, "columns": ["time", "value"], "values": [[1_764_136_800_000, value]]}


def guance_answer(errors: float) -> dict:
    """content.data for the default checks' two PromQL queries: 100 canary requests, ``errors`` of them 5xx."""
    requests = [series({"destination_version": "v2", "response_code": "200"}, 100 - errors)]
    if errors:
        requests.append(series({"destination_version": "v2", "response_code": "503"}, errors))
    latency = [series({"destination_version": "v2"}, 87.5)]
    return {"code": 200, "success": True, "errorCode": "", "message": "", "traceId": "1",
            "content": {"data": [{"series": requests}, {"series": latency}]}}


BASE = {"service": "reviews", "namespace": "prod", "canary_version": "v2"}


class TestWholeRuns:
    """Whole runs against a local HTTP server."""

    def test_a_failing_canary_fails_the_task_after_one_request(self, server, monkeypatch, capsys) -> None:
        guance = server(lambda path, body: (200, guance_answer(errors=20)))
        result = run_module(dict(BASE, url=guance.url, api_key=KEY, iterations=3), monkeypatch, capsys)
        assert result["failed"] is True and result["changed"] is False
        assert result["msg"] == "analysis of reviews v2 failed in round 1: request_success_rate 80 < min 99"
        assert result["verdict"] == "fail" and len(result["rounds"]) == 1
        assert result["http_requests"] == 1 and len(guance.seen) == 1 and result["rounds"][0]["http_requests"] == 1
        sent = json.loads(guance.seen[0]["body"])["queries"]
        assert [q["qtype"] for q in sent] == ["promql", "promql"]
        assert [q["query"]["q"] for q in sent] == [q["query"] for q in result["queries"]]
        assert guance.seen[0]["headers"]["DF-API-KEY"] == KEY
        assert KEY not in json.dumps(result)

    def test_check_mode_previews_one_round_without_failing(self, server, monkeypatch, capsys) -> None:
        guance = server(lambda path, body: (200, guance_answer(errors=20)))
        result = run_module(dict(BASE, url=guance.url, api_key=KEY, interval=600, iterations=3), monkeypatch, capsys,
                            check_mode=True)
        assert result.get("failed") is not True
        assert result["verdict"] == "fail" and len(result["rounds"]) == 1 and len(guance.seen) == 1
        assert result["reason"].startswith("analysis of reviews v2: check mode, one round without waiting: fail:")
        assert result["interval_s"] == 600 and result["window_s"] == 600

    def test_a_passing_canary(self, server, monkeypatch, capsys) -> None:
        guance = server(lambda path, body: (200, guance_answer(errors=0)))
        result = run_module(dict(BASE, url=guance.url, api_key=KEY, min_requests=50, window="45s"), monkeypatch, capsys)
        assert result.get("failed") is not True, result
        assert result["verdict"] == "pass" and result["checks"][0]["canary"] == 100
        assert result["checks"][1] == dict(result["checks"][1], metric="request_duration_p99", result="pass", canary=87.5)
        assert result["rounds"][0]["numbers"]["v2"]["request_count"] == 100
        sent = json.loads(guance.seen[0]["body"])["queries"][0]["query"]
        assert sent["timeRange"][1] - sent["timeRange"][0] == 45_000
        assert result["provider"] == "guance" and result["baseline_version"] is None

    def test_a_preview_with_a_regression_to_detect_warns_about_short_steps(self, server, monkeypatch, capsys) -> None:
        # The service before a release: v1 answers 50 requests/s with 0.5% errors, no canary yet.
        def answer(path, body):
            requests = [series({"destination_version": "v1", "response_code": "200"}, 2985),
                        series({"destination_version": "v1", "response_code": "503"}, 15)]
            return 200, {"code": 200, "success": True, "errorCode": "", "message": "", "traceId": "1",
                         "content": {"data": [{"series": requests}]}}

        guance = server(answer)
        checks = [{"metric": "request_success_rate", "min": 95}, {"metric": "request_error_rate", "max_over_baseline": 1}]
        result = run_module(dict(BASE, url=guance.url, api_key=KEY, baseline_version="v1", checks=checks, confidence=0.95,
                                 interval=60, iterations=3, detect_error_points=2, plan_weights=[10, 50, 100]),
                            monkeypatch, capsys, check_mode=True)
        assert result.get("failed") is not True, result
        plan = result["sample_plan"]
        assert plan["service_requests_per_s"] == 50.0 and plan["baseline_error_rate"] == 0.5
        ten, fifty = plan["steps"]
        assert (ten["weight"], ten["canary_requests_per_s"], ten["pooled_seconds"]) == (10, 5.0, 180)
        assert ten["long_enough"] is False and fifty["long_enough"] is True
        warned = json.dumps(result.get("warnings"))  # plain strings or warning events, by ansible-core version
        assert "at 10% a step pools about 900 canary requests (5/s over 180s of windows); showing +2 points" in warned
        assert "make the step's rounds cover 315s" in warned and "at 50%" not in warned

    def test_a_refused_key_fails_plainly(self, server, monkeypatch, capsys) -> None:
        guance = server(lambda path, body: (403, {"code": 403, "success": False, "errorCode": "ft.InvalidAPIKey",
                                                  "message": f"invalid key {KEY}"}))
        result = run_module(dict(BASE, url=guance.url, api_key=KEY), monkeypatch, capsys)
        assert result["failed"] is True and result["status"] == 403 and result["error_code"] == "ft.InvalidAPIKey"
        assert result["msg"].startswith("analysis of reviews v2, round 1: querying Guance: POST ")
        assert "the API key was refused (403 ft.InvalidAPIKey" in result["msg"]
        assert "verdict" not in result and result["rounds"] == [] and result["http_requests"] == 1
        assert KEY not in json.dumps(result)

    def test_prometheus_provider_one_request_per_query(self, server, monkeypatch, capsys) -> None:
        def answer(path, body):
            query = parse_qs(body)["query"][0]
            if query.startswith("sum by (destination_version, response_code)"):
                result = [{"metric": {"destination_version": "v2", "response_code": "200"}, "value": [1764136800, "500"]}]
            else:
                result = [{"metric": {"destination_version": "v2"}, "value": [1764136800, "612.5"]}]
            return 200, {"status": "success", "data": {"resultType": "vector", "result": result}}

        prom = server(answer)
        result = run_module(dict(BASE, provider="prometheus", prometheus_url=prom.url, prometheus_token=TOKEN),
                            monkeypatch, capsys)
        assert result["failed"] is True
        assert result["msg"] == "analysis of reviews v2 failed in round 1: request_duration_p99 612.5 > max 500"
        assert result["http_requests"] == 2 and len(prom.seen) == 2
        assert all(seen["path"] == "/api/v1/query" and seen["headers"]["Authorization"] == f"Bearer {TOKEN}"
                   for seen in prom.seen)
        assert TOKEN not in json.dumps(result)

    @pytest.mark.parametrize("options, option, text", [
        ({"checks": [{"metric": "request_succes_rate", "min": 99}]}, "checks", "unknown metric 'request_succes_rate'"),
        ({"checks": [{"metric": "request_duration_p99", "max_ratio_to_baseline": 1.5}]}, "baseline_version",
         "set baseline_version"),
        ({"window": "half a minute"}, "window", "window must be a duration like 90s"),
        ({"url": None}, "url", "set site"),
        ({"api_key": None}, "api_key", "GUANCE_API_KEY"),
        ({"provider": "prometheus"}, "prometheus_url", "set prometheus_url"),
    ])
    def test_bad_options_fail_before_any_request(self, server, monkeypatch, capsys, options, option, text) -> None:
        guance = server(lambda path, body: (200, guance_answer(errors=0)))
        args = dict(BASE, url=guance.url, api_key=KEY)
        args.update(options)
        result = run_module({k: v for k, v in args.items() if v is not None}, monkeypatch, capsys)
        assert result["failed"] is True and result["option"] == option
        assert text in result["msg"] and result["msg"].startswith(option)
        assert guance.seen == []

    def test_the_rollback_kubeconfig_never_shows(self, server, monkeypatch, capsys) -> None:
        token = "rollback-kubeconfig-token-7f3e"
        kubeconfig = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
                      "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:1"}}],
                      "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
                      "users": [{"name": "u", "user": {"token": token}}]}
        guance = server(lambda path, body: (200, guance_answer(errors=0)))
        result = run_module(dict(BASE, url=guance.url, api_key=KEY, rollback={"to_version": "v1", "kubeconfig": kubeconfig}),
                            monkeypatch, capsys)
        assert result.get("failed") is not True, result.get("msg")
        assert "invocation" in result and token not in json.dumps(result)

    @pytest.mark.parametrize("check_mode", [True, False])
    def test_a_provider_error_with_rollback_writes_only_outside_check_mode(self, server, monkeypatch, capsys, check_mode) -> None:
        from ansible_collections.canary.istio.tests.unit.plugins.module_utils.k8s_fakes import (
            TOKEN,
            VS_PATH,
            FakeApiServer,
            virtual_service,
        )

        guance = server(lambda path, body: (500, {"code": 500, "success": False, "errorCode": "ft.Internal", "message": "down"}))
        with FakeApiServer(token=TOKEN) as api:
            api.put_object(VS_PATH, virtual_service({"v1": 80, "v2": 20}))
            kubeconfig = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
                          "clusters": [{"name": "k", "cluster": {"server": api.url}}],
                          "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
                          "users": [{"name": "u", "user": {"token": TOKEN}}]}
            result = run_module(dict(BASE, url=guance.url, api_key=KEY, retry_budget=0, interval=0,
                                     rollback={"to_version": "v1", "kubeconfig": kubeconfig}),
                                monkeypatch, capsys, check_mode=check_mode)
            written = [r for r in api.requests if r["method"] in ("POST", "PUT", "DELETE")]
            weights = {d["destination"]["subset"]: d.get("weight") for d in api.objects[VS_PATH]["spec"]["http"][0]["route"]}
        assert result["failed"] is True and "server error 500" in result["msg"]
        if check_mode:
            # Nothing written, not even a dry run: check mode never routes back.
            assert written == [] and weights == {"v1": 80, "v2": 20} and "rollback" not in result
        else:
            assert len(written) == 1 and weights == {"v1": 100, "v2": 0}
            assert result["rollback"]["weights"] == {"v1": 100, "v2": 0} and result["changed"] is True
        assert TOKEN not in json.dumps(result)


class TestRoundSource:
    @pytest.mark.parametrize("budget, interval, expected", [(60.0, 30, 30.0), (10.0, 30, 10.0), (60.0, 0, 60.0), (None, 30, None)])
    def test_a_rounds_retries_fit_inside_its_interval(self, budget, interval, expected) -> None:
        assert ca.round_retry_budget(budget, interval) == expected
        source = ca.round_source({"url": "https://guance.example", "api_key": KEY, "retry_budget": budget}, "guance", interval)
        assert source.client.config.retry_budget == (60.0 if expected is None else expected)  # the client's own default
        prom = ca.round_source({"prometheus_url": "http://prom.example:9090", "retry_budget": budget}, "prometheus", interval)
        assert prom.client.config.retry_budget == (60.0 if expected is None else expected)
