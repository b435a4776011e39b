# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/modules/guance_query.py: option parsing, and whole runs of the module against a local HTTP server."""

from __future__ import annotations

import json
import typing as t

import pytest

from ansible_collections.canary.istio.plugins.module_utils._errors import CanaryError
from ansible_collections.canary.istio.plugins.module_utils._guance import queries as guance_queries
from ansible_collections.canary.istio.plugins.modules import guance_query as gq
from ansible_collections.canary.istio.tests.unit.plugins.module_utils.http_fakes import Recorder
from ansible_collections.canary.istio.tests.unit.plugins.modules.module_main import run_main


NOW = 1_764_136_800_000  # 2025-11-26T06:00:00Z


def Server(status: int, body: t.Any) -> Recorder:  # noqa: N802 (named like the class it stands for)
    """A scripted Guance answering every request with ``status`` and the JSON ``body``."""
    return Recorder(status, body=json.dumps(body).encode())


class TestOptions:
    @pytest.mark.parametrize("text, seconds", [("90s", 90), ("10m", 600), ("1.5m", 90), ("1h", 3600), ("2d", 172800),
                                               ("500ms", 0.5), ("45", 45)])
    def test_last_is_a_duration(self, text, seconds) -> None:
        start, end = gq.resolve_time_range({"last": text}, NOW)
        assert (end, start) == (NOW, NOW - int(seconds * 1000))

    @pytest.mark.parametrize("text, problem", [(" ", "must be a duration"), ("10 minutes", "must be a duration"),
                                               ("-5m", "must be a duration"), ("m", "must be a duration"),
                                               ("0s", "must be at least 0.001 seconds")])
    def test_bad_last_names_it(self, text, problem) -> None:
        with pytest.raises(CanaryError, match=problem) as info:
            gq.resolve_time_range({"last": text}, NOW)
        assert info.value.option == "last"

    def test_parse_instant(self) -> None:
        assert gq.parse_instant(NOW, "start") == NOW
        assert gq.parse_instant(str(NOW), "start") == NOW
        assert gq.parse_instant("2025-11-26T06:00:00Z", "start") == NOW
        assert gq.parse_instant("2025-11-26T06:00:00", "start") == NOW  # no zone: UTC
        assert gq.parse_instant("2025-11-26T14:00:00+08:00", "start") == NOW
        with pytest.raises(CanaryError, match="end: expected epoch milliseconds or ISO 8601"):
            gq.parse_instant("yesterday", "end")
        with pytest.raises(CanaryError):
            gq.parse_instant(True, "end")
        # Seconds would put the range in 1970: refused with the value in milliseconds as the fix.
        with pytest.raises(CanaryError, match=r"^start: 1764136800 looks like seconds; give epoch milliseconds \(for example 1764136800000\)"):
            gq.parse_instant(1764136800, "start")

    def test_time_range(self) -> None:
        base = {"last": None, "start": None, "end": None}
        assert gq.resolve_time_range(base, NOW) == (NOW - 15 * 60 * 1000, NOW)
        assert gq.resolve_time_range(dict(base, last="10m"), NOW) == (NOW - 600_000, NOW)
        assert gq.resolve_time_range(dict(base, last="10m", end=NOW - 1000), NOW) == (NOW - 601_000, NOW - 1000)
        assert gq.resolve_time_range(dict(base, start=NOW - 5000, end=NOW), 0) == (NOW - 5000, NOW)
        with pytest.raises(CanaryError, match="must start before it ends") as info:
            gq.resolve_time_range(dict(base, start=NOW, end=NOW - 1), 0)
        assert info.value.option == "start"

    def test_queries_from_params(self) -> None:
        queries, names = gq.queries_from_params([{"query": "L::x", "qtype": "dql", "name": None, "options": None},
                                                 {"query": "up", "qtype": "promql", "name": "up", "options": {"slimit": 5}}])
        assert names == ["0", "up"]
        assert queries[1] == guance_queries.Query("up", "promql", {"slimit": 5})
        with pytest.raises(CanaryError, match="two queries are named 'a'"):
            gq.queries_from_params([{"query": "x", "name": "a"}, {"query": "y", "name": "a"}])
        with pytest.raises(CanaryError, match=r"queries\[0\].query is empty"):
            gq.queries_from_params([{"query": "  "}])


KEY = "key_1a2b3c4d5e6f7a8b9c0d"


def run_module(args: dict, monkeypatch, capsys, env: dict | None = None) -> dict:
    """Run guance_query's main() in this process, as Ansible would, and return its JSON result."""
    return run_main(gq.main, args, monkeypatch, capsys, clear_env=("GUANCE_",), env=env)[0]


ANSWER = {"code": 200, "success": True, "errorCode": "", "message": "", "traceId": "1", "content": {"data": [
    {"series": [{"name": "reviews", "tags": {"version": "v2"}, "columns": ["time", "spans"], "values": [[None, 3]]}]},
    {"series": []},
]}}


class TestWholeRuns:
    """Whole runs against a real HTTP server."""

    def test_module_run_with_env_fallbacks_in_check_mode(self, monkeypatch, capsys) -> None:
        server = Server(200, ANSWER)
        try:
            result = run_module({"queries": [{"query": "T::`reviews`:(count(`*`) AS `spans`) BY `version`", "name": "spans"},
                                             {"query": "up", "qtype": "promql"}],
                                 "start": "2025-11-26T05:50:00Z", "end": NOW, "_ansible_check_mode": True},
                                monkeypatch, capsys, env={"GUANCE_URL": server.url, "GUANCE_API_KEY": KEY})
        finally:
            server.close()
        assert result.get("failed") is not True, result
        assert result["changed"] is False
        assert len(server.seen) == 1 and server.seen[0]["headers"]["DF-API-KEY"] == KEY
        assert json.loads(server.seen[0]["body"])["queries"][0]["query"]["timeRange"] == [NOW - 600_000, NOW]
        assert result["results"][0] == {"name": "spans", "qtype": "dql", "query": "T::`reviews`:(count(`*`) AS `spans`) BY `version`",
                                        "series": [{"name": "reviews", "tags": {"version": "v2"}, "columns": ["time", "spans"],
                                                    "rows": [[None, 3]]}]}
        assert result["results"][1]["name"] == "1" and result["results"][1]["series"] == []
        assert result["time_range"] == {"start": NOW - 600_000, "end": NOW}
        assert result["requests"] == 1
        assert KEY not in json.dumps(result)

    def test_module_refused_key_fails_plainly_without_the_key(self, monkeypatch, capsys) -> None:
        server = Server(403, {"code": 403, "success": False, "errorCode": "ft.InvalidAPIKey", "message": f"bad {KEY}"})
        try:
            result = run_module({"url": server.url, "api_key": KEY, "queries": [{"query": "L::x"}], "last": "5m"}, monkeypatch, capsys)
        finally:
            server.close()
        assert result["failed"] is True
        assert "the API key was refused (403 ft.InvalidAPIKey" in result["msg"]
        assert result["error_code"] == "ft.InvalidAPIKey" and result["status"] == 403
        assert KEY not in json.dumps(result)

    def test_module_missing_key_names_the_option(self, monkeypatch, capsys) -> None:
        result = run_module({"site": "cn1", "queries": [{"query": "L::x"}]}, monkeypatch, capsys)
        assert result["failed"] is True and result["option"] == "api_key"
        assert "GUANCE_API_KEY" in result["msg"]
