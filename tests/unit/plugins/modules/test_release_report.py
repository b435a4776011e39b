# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/modules/release_report.py: whole runs of the module on realistic records, and bad input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.canary.istio.plugins.modules import release_report as module
from ansible_collections.canary.istio.tests.unit.plugins.module_utils.report_samples import (
    header,
    promoted_release,
    rolled_back_release,
)
from ansible_collections.canary.istio.tests.unit.plugins.modules.module_main import assert_spec_documented, run_main


HAVE_MATPLOTLIB = module.missing_library() is None
needs_matplotlib = pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="matplotlib is not installed: the charts cannot be drawn "
                                                                  "(pip install -r requirements.txt)")


def run_module(args: dict, monkeypatch, capsys, check_mode: bool = False, diff: bool = False) -> dict:
    """Run release_report's main() in this process, as Ansible would, and return its JSON result."""
    result, err = run_main(module.main, args, monkeypatch, capsys, check_mode=check_mode, diff=diff)
    # ansible-core 2.19 writes a module's warnings to stderr when it runs outside a task.
    result["_warnings_seen"] = [str(w) for w in result.get("warnings", [])] + err.splitlines()
    return result


def args_for(tmp_path: Path, records: list, **overrides) -> dict:
    out = header()
    out.update(dir=str(tmp_path / "reports"), records=records)
    out.update(overrides)
    return out


def files(result: dict) -> dict[str, str]:
    return {key: Path(result["paths"][key]).read_text(encoding="utf-8") for key in ("records", "html", "markdown")}


def svgs(page: str) -> dict[str, str]:
    """chart id -> the inline <svg> of its <figure>."""
    return dict(re.findall(r'<figure id="([^"]+)"[^>]*>(<svg.*?</svg>)', page, flags=re.S))


def svg_texts(svg: str) -> list[str]:
    return re.findall(r"<text[^>]*>([^<]*)</text>", svg)


@needs_matplotlib
def test_promoted_release_writes_html_with_charts_and_markdown(tmp_path, monkeypatch, capsys) -> None:
    result = run_module(args_for(tmp_path, promoted_release()), monkeypatch, capsys)
    assert result.get("failed") is not True, result
    assert result["changed"] is True
    directory = tmp_path / "reports" / "reviews-v2" / "sandbox-1"
    assert result["paths"] == {"dir": str(directory), "records": str(directory / "records.json"),
                               "html": str(directory / "report.html"), "markdown": str(directory / "report.md")}
    assert result["outcome"] == {"status": "promoted", "reason": "v2 serves all traffic; v1 scaled down"}
    assert result["record_count"] == result["records_added"] == 8
    assert result["files_changed"] == ["records.json", "report.md", "report.html"]
    written = files(result)

    stored = json.loads(written["records"])
    assert stored["schema"] == 1 and stored["app"] == "reviews" and len(stored["records"]) == 8
    assert stored["outcome"]["status"] == "promoted"

    page = written["html"]
    # Self-contained: nothing to run, nothing to fetch.
    assert not re.search(r"<script|<link|<img|src=|href=\"http|url\(http|@import", page)
    charts = svgs(page)
    assert list(charts) == result["charts"] == [
        "traffic", "metric-request-success-rate", "metric-request-duration-p99", "metric-request-error-rate"]
    traffic = charts["traffic"]
    # Both versions' areas, named in the legend, each step's canary weight, and the promotion.
    assert 'id="series-traffic-v1"' in traffic and 'id="series-traffic-v2"' in traffic
    texts = svg_texts(traffic)
    assert {"v1 (stable)", "v2 (canary)", "v2 10%", "v2 25%", "v2 50%", "promoted 06:05:05"} <= set(texts)
    assert 'id="marker-traffic-promoted"' in traffic

    success = charts["metric-request-success-rate"]
    assert 'id="series-metric-request-success-rate-v1"' in success
    assert 'id="series-metric-request-success-rate-v2"' in success
    assert 'id="bound-metric-request-success-rate-min-99"' in success and "bound: min 99" in svg_texts(success)
    assert 'id="verdict-metric-request-success-rate-pass"' in success and "check passed" in svg_texts(success)
    assert "verdict-metric-request-success-rate-fail" not in success
    assert 'id="marker-metric-request-success-rate-promoted"' in success
    p99 = charts["metric-request-duration-p99"]
    assert {"bound: max 500", "bound: baseline \u00d7 1.5"} <= set(svg_texts(p99))
    # Nine rounds: nine pass markers on the canary's p99 values.
    pass_group = re.search(r'<g id="verdict-metric-request-duration-p99-pass">(.*?)</g>', p99, flags=re.S).group(1)
    assert len(re.findall(r"<use ", pass_group)) == 9

    markdown = written["markdown"]
    assert markdown.startswith("# Canary release of reviews v1 \u2192 v2 on sandbox-1: promoted\n")
    assert "| 2026-11-26 06:00:20 | step | step 1 (10%) | v1 90% \u00b7 v2 10% |  |  |  |" in markdown
    assert re.search(r"\| 2026-11-26 06:01:50 \| analysis \| step 1 \(10%\) \|  \| pass \| 3 \| 3 rounds, the last passed",
                     markdown)
    assert "| 2026-11-26 06:05:05 | promoted |  | v1 0% \u00b7 v2 100% |  |  | v2 serves all traffic; v1 scaled down |" \
        in markdown
    check_rows = [line for line in markdown.splitlines() if re.match(r"\| 2026-\S+ \S+ \| step \d", line)]
    assert len(check_rows) == 3 * 3 * 3  # steps x rounds x checks
    assert "| 2026-11-26 06:00:50 | step 1 (10%) | 1 | request_success_rate (%) | 99.7 | 99.7 | min 99 | pass |" \
        in markdown


@needs_matplotlib
def test_rolled_back_release_marks_the_failing_check_and_the_rollback(tmp_path, monkeypatch, capsys) -> None:
    records = rolled_back_release()
    result = run_module(args_for(tmp_path, records, cluster="sandbox-2"), monkeypatch, capsys)
    assert result["outcome"]["status"] == "rolled_back"
    assert result["outcome"]["reason"].startswith("analysis of reviews v2 failed in round 2: request_success_rate 79.8")
    written = files(result)
    page = written["html"]
    assert '<div class="outcome bad" id="outcome"><strong>Outcome: rolled back.</strong> analysis of reviews v2 failed' \
        in page
    charts = svgs(page)
    success = charts["metric-request-success-rate"]
    assert 'id="verdict-metric-request-success-rate-fail"' in success and "check failed" in svg_texts(success)
    assert 'id="marker-metric-request-success-rate-rolled_back"' in success
    assert "rolled back 06:02:24" in svg_texts(success)
    # The round without p99 data: its marker along the bottom edge, named in the legend.
    p99 = charts["metric-request-duration-p99"]
    assert 'id="verdict-metric-request-duration-p99-no_data-nodata"' in p99 and "check without data" in svg_texts(p99)
    assert 'id="marker-traffic-rolled_back"' in charts["traffic"]

    markdown = written["markdown"]
    assert "**Outcome: rolled back.** analysis of reviews v2 failed in round 2" in markdown
    assert "| 2026-11-26 06:02:20 | step 2 (25%) | 2 | request_success_rate (%) | 79.8 | 99.5 | min 99 | **FAIL** |" \
        in markdown
    assert "| 2026-11-26 06:00:45 | step 1 (10%) | 1 | request_duration_p99 (ms) | no data | 160 | max 500, " \
           "baseline \u00d7 1.5 | no data | no data for the canary |" in markdown
    assert "| traffic now | v1 100% \u00b7 v2 0% |" in markdown


@needs_matplotlib
def test_second_run_is_unchanged_and_writes_nothing(tmp_path, monkeypatch, capsys) -> None:
    args = args_for(tmp_path, promoted_release())
    first = run_module(args, monkeypatch, capsys)
    before = {key: os.stat(path).st_mtime_ns for key, path in first["paths"].items() if key != "dir"}
    contents = files(first)
    second = run_module(args, monkeypatch, capsys)
    assert second["changed"] is False and second["files_changed"] == []
    assert second["records_added"] == 0 and second["record_count"] == 8
    assert {key: os.stat(path).st_mtime_ns for key, path in second["paths"].items() if key != "dir"} == before
    assert files(second) == contents
    # No records at all: the report is rendered again from the stored ones, the same.
    third = run_module(dict(args, records=[]), monkeypatch, capsys)
    assert third["changed"] is False and third["record_count"] == 8


def test_check_mode_writes_nothing_and_returns_the_paths(tmp_path, monkeypatch, capsys) -> None:
    result = run_module(args_for(tmp_path, promoted_release()), monkeypatch, capsys, check_mode=True)
    assert result["changed"] is True
    assert result["paths"]["html"] == str(tmp_path / "reports" / "reviews-v2" / "sandbox-1" / "report.html")
    assert result["files_changed"] == ["records.json", "report.md", "report.html"]
    assert not (tmp_path / "reports").exists()


def test_a_resumed_release_adds_to_the_stored_records(tmp_path, monkeypatch, capsys) -> None:
    records = rolled_back_release()
    first = run_module(args_for(tmp_path, records[:3]), monkeypatch, capsys)
    assert first["outcome"]["status"] == "running" and first["record_count"] == 3
    # The resumed run knows only its own records (and, in any order, one it had already sent).
    second = run_module(args_for(tmp_path, records[3:] + records[2:3]), monkeypatch, capsys)
    assert second["changed"] is True and second["records_added"] == 3 and second["record_count"] == 6
    stored = json.loads(Path(second["paths"]["records"]).read_text(encoding="utf-8"))
    assert [r["event"] for r in stored["records"]] == [r["event"] for r in records]
    assert second["outcome"]["status"] == "rolled_back"


def test_release_and_cluster_become_safe_directory_names(tmp_path, monkeypatch, capsys) -> None:
    result = run_module(args_for(tmp_path, promoted_release()[:2], release="reviews/v2 by ops@ctl",
                                 cluster="../../etc"), monkeypatch, capsys, check_mode=True)
    assert result["release"] == "reviews_v2_by_ops_ctl" and result["cluster"] == "etc"
    assert result["paths"]["dir"] == str(tmp_path / "reports" / "reviews_v2_by_ops_ctl" / "etc")


def test_without_matplotlib_the_report_has_tables_and_a_warning(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails, as when not installed
    result = run_module(args_for(tmp_path, rolled_back_release()), monkeypatch, capsys)
    assert result["changed"] is True and result["charts"] == []
    assert any("matplotlib is not installed" in w and "pip install matplotlib" in w for w in result["_warnings_seen"])
    written = files(result)
    assert "<svg" not in written["html"]
    assert 'id="charts-missing"' in written["html"] and "<code>matplotlib</code>" in written["html"]
    assert "| 2026-11-26 06:02:20 | step 2 (25%) | 2 | request_success_rate (%) | 79.8 |" in written["markdown"]
    assert "request_success_rate 79.8 &lt; min 99" in written["html"]


def test_module_utils_import_without_matplotlib() -> None:
    """The module and its utils load on a control node without matplotlib (ansible-doc, sanity)."""
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "from ansible_collections.canary.istio.plugins.modules import release_report as m\n"
            "assert m.missing_library() == 'matplotlib'\n"
            "print('ok')\n")
    collections = Path(module.__file__).resolve().parents[4]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(collections)] + sys.path))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert done.stdout.strip() == "ok", done.stderr


def test_diff_shows_the_markdown_before_and_after(tmp_path, monkeypatch, capsys) -> None:
    records = promoted_release()
    run_module(args_for(tmp_path, records[:2]), monkeypatch, capsys)
    result = run_module(args_for(tmp_path, records[2:3]), monkeypatch, capsys, diff=True)
    assert "| 2026-11-26 06:01:50 | analysis |" not in result["diff"]["before"]
    assert "| 2026-11-26 06:01:50 | analysis |" in result["diff"]["after"]
    assert "| 2026-11-26 06:00:20 | step |" in result["diff"]["before"]
    assert result["diff"]["after_header"].endswith("report.md")


@pytest.mark.parametrize("records, field, text", [
    ([{"time": "2026-11-26T06:00:00Z", "event": "step", "weights": {"v1": 90, "v2": 20}}],
     "records[0].weights", "weights must add up to 100, got 110"),
    ([{"time": "yesterday", "event": "start"}], "records[0].time", "expected an ISO 8601 time"),
    ([{"time": "2026-11-26T06:00:00Z", "event": "started"}], "records[0].event", "expected one of start, step"),
    ([{"time": "2026-11-26T06:00:00Z", "event": "start", "wieghts": {"v1": 100}}], "records[0].wieghts",
     "unknown field"),
    ([{"time": "2026-11-26T06:00:00Z", "event": "step", "weight": 20, "weights": {"v1": 90, "v2": 10}}],
     "records[0].weight", "is not the canary v2's weight"),
])
def test_bad_records_fail_naming_the_field(tmp_path, monkeypatch, capsys, records, field, text) -> None:
    result = run_module(args_for(tmp_path, records), monkeypatch, capsys)
    assert result["failed"] is True and result["option"] == "records"
    assert result["msg"].startswith(field + ": ") and text in result["msg"], result["msg"]
    assert not (tmp_path / "reports").exists()


def test_records_of_another_release_in_the_directory_are_refused(tmp_path, monkeypatch, capsys) -> None:
    run_module(args_for(tmp_path, promoted_release()[:1]), monkeypatch, capsys)
    result = run_module(args_for(tmp_path, [], canary_version="v3"), monkeypatch, capsys)
    assert result["failed"] is True and result["option"] == "release"
    assert "holds the records of another release (canary_version 'v2', not 'v3')" in result["msg"]


def test_two_clusters_whose_names_sanitise_alike_are_refused(tmp_path, monkeypatch, capsys) -> None:
    first = run_module(args_for(tmp_path, promoted_release()[:1], cluster="eu/1"), monkeypatch, capsys)
    stored = Path(first["paths"]["records"]).read_text(encoding="utf-8")
    result = run_module(args_for(tmp_path, promoted_release()[:2], cluster="eu_1"), monkeypatch, capsys)
    assert result["failed"] is True and result["option"] == "cluster"
    assert "holds the records of cluster 'eu/1', not 'eu_1': both names make the same directory name" in result["msg"]
    assert Path(first["paths"]["records"]).read_text(encoding="utf-8") == stored


def test_report_files_are_readable_by_their_owner_only(tmp_path, monkeypatch, capsys) -> None:
    result = run_module(args_for(tmp_path, promoted_release()[:1]), monkeypatch, capsys)
    for key in ("records", "html", "markdown"):
        assert oct(os.stat(result["paths"][key]).st_mode & 0o777) == "0o600", key
    assert oct(os.stat(result["paths"]["dir"]).st_mode & 0o777) == "0o700"
    # A file left world-readable by an older version is tightened on the next write.
    os.chmod(result["paths"]["markdown"], 0o644)
    again = run_module(args_for(tmp_path, promoted_release()[:2]), monkeypatch, capsys)
    assert oct(os.stat(again["paths"]["markdown"]).st_mode & 0o777) == "0o600"


def test_a_broken_records_file_is_reported_not_overwritten(tmp_path, monkeypatch, capsys) -> None:
    directory = tmp_path / "reports" / "reviews-v2" / "sandbox-1"
    directory.mkdir(parents=True)
    (directory / "records.json").write_text("{not json", encoding="utf-8")
    result = run_module(args_for(tmp_path, promoted_release()[:1]), monkeypatch, capsys)
    assert result["failed"] is True and result["option"] == "dir"
    assert "cannot read" in result["msg"] and "move it away" in result["msg"]
    assert (directory / "records.json").read_text(encoding="utf-8") == "{not json"


def test_documentation_matches_the_argument_spec() -> None:
    import yaml

    documented = yaml.safe_load(module.DOCUMENTATION)["options"]
    assert_spec_documented(documented, module.ARGUMENT_SPEC, "")


def test_an_explicit_outcome_wins_over_the_records(tmp_path, monkeypatch, capsys) -> None:
    records = promoted_release()[:4]
    result = run_module(args_for(tmp_path, records, outcome={"status": "failed", "reason": "the play was interrupted"}),
                        monkeypatch, capsys)
    assert result["outcome"] == {"status": "failed", "reason": "the play was interrupted"}
    written = files(result)
    assert json.loads(written["records"])["outcome"] == {"status": "failed", "reason": "the play was interrupted"}
    assert "**Outcome: failed.** the play was interrupted" in written["markdown"]
    # Only the status given: the reason comes from the last record of that event, here none.
    result = run_module(args_for(tmp_path, [], outcome={"status": "running"}), monkeypatch, capsys)
    assert result["outcome"] == {"status": "running", "reason": None} and result["changed"] is True
