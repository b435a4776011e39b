"""The reliability suite (`make reliability`): faults, bad input and security on the sandbox.

Each test is one check. Its first docstring line says what is checked; ``record(**details)`` attaches
what was seen (a message, a count of writes, a time) to its row. At the end of the session the rows
go to ``tests/reliability/results.json`` and ``docs/reliability.md`` (with the machine and the date)
and a table is printed. Rows of files not run this time are kept from the last results, each with
its own date, so running one file or case does not erase the others' figures.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from sandbox_fixtures import admin, audit, kubeconfig, module_runner, namespace, release_kubeconfig, sandbox  # noqa: E402,F401  pylint: disable=import-error,unused-import,wrong-import-position

from sandbox import versions  # noqa: E402  pylint: disable=wrong-import-position

RESULTS = Path(__file__).resolve().parent / "results.json"
DOC = versions.REPO_ROOT / "docs" / "reliability.md"
_ITEMS: dict[str, dict] = {}  # nodeid -> suite, check, file
_ROWS: dict[str, dict] = {}  # nodeid -> row of this session


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0].strip() if (doc or "").strip() else ""


def pytest_collection_modifyitems(items):
    for item in items:
        module = item.module
        _ITEMS[item.nodeid] = {
            "suite": _first_line(module.__doc__) or Path(str(item.fspath)).stem,
            "file": Path(str(item.fspath)).name,
            "check": _first_line(getattr(item.function, "__doc__", None)) or item.originalname,
            "case": item.callspec.id if hasattr(item, "callspec") else "",
        }


@pytest.fixture
def record(request):
    """record(**details): JSON-serialisable facts for this check's row in the results."""
    row = _ROWS.setdefault(request.node.nodeid, {"details": {}})

    def add(**details) -> None:
        row["details"].update(details)

    return add


def pytest_runtest_logreport(report):
    item = _ITEMS.get(report.nodeid)
    if item is None:
        return
    row = _ROWS.setdefault(report.nodeid, {"details": {}})
    failed_setup = report.when == "setup" and not report.passed
    if report.when == "call" or failed_setup:
        row.update(item, outcome=report.outcome, seconds=round(report.duration, 1),
                   date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
        if not report.passed:
            crash = getattr(report.longrepr, "reprcrash", None)
            row["details"]["error"] = (crash.message if crash else str(report.longrepr)).splitlines()[0][:300]


def _merged() -> list[dict]:
    rows = {nodeid: row for nodeid, row in _ROWS.items() if "outcome" in row}
    if RESULTS.exists():
        here = RESULTS.parent
        for old in json.loads(RESULTS.read_text()).get("checks", []):
            # Kept when its test still exists and that check was not run this time (one case run
            # with -k keeps the file's other cases); a test moved or removed leaves with its row.
            function = old["id"].split("::")[-1].split("[")[0]
            path = here / old["file"]
            if old["id"] not in rows and path.exists() and f"def {function}(" in path.read_text(encoding="utf-8"):
                rows[old["id"]] = old
    return [{"id": nodeid, **row} for nodeid, row in sorted(rows.items())]


def _details_text(details: dict) -> str:
    text = "; ".join(f"{k}: {v}" for k, v in details.items())
    return (text[:240] + "...") if len(text) > 240 else text


# What the collection promises and where each promise is held to account; written at the top of
# the generated page, above the figures that show it held on the last run.
GUARANTEES = """## What is guaranteed

- **Bad input changes nothing.** A wrong value fails the run with a message that names the option or
  variable and, where there is one, the fix; the API server's audit log shows no write. This includes
  hostile input: a key, token or password with a line break or control character (refused by option
  name, never quoting the value), `insecure-skip-tls-verify` written as a string, and
  `insecure-skip-tls-verify` beside a certificate authority.
- **Secrets never show.** No Guance key or Kubernetes token, as written, as `repr()`, JSON or URLs
  quote it, or base64-encoded, appears in `-vvv` output, registered results, release reports or
  Guance events. Every module at `-vvv` is checked in `make test`
  (`tests/integration/test_secrets_vvv.py`), a whole release here.
- **No redirect is followed.** A 3xx from the API server, Guance or Prometheus is an error naming
  the host it pointed to, so credentials never travel to another host
  (`tests/unit/plugins/module_utils/test_http_safety.py`).
- **TLS is verified by default**, and a warning says so whenever it is off (the Kubernetes client,
  Guance, Prometheus, and `canary_analysis`'s rollback).
- **A failure after traffic moved rolls back**, through control plane and Guance faults; a
  release never promotes on an analysis that could not run.
- **One release of a service at a time**, and one run of a release: a second run of the same
  release is refused while the first holds the lock (`canary_resume=true` takes a killed run's place).
- **The release role is enough, and each rule is needed**; `docs/rbac.md` says what its deploy
  verbs allow beyond routing and offers a routing-only role.
"""


def _markdown(result: dict) -> str:
    lines = ["# Reliability: faults, bad input and security", "",
             "Generated by `make reliability` (tests/reliability; figures in `tests/reliability/results.json`).",
             f"Last run: {result['date']} on {result['machine']}.", "", GUARANTEES.rstrip(), "", "## Figures", ""]
    suites: dict[str, list[dict]] = {}
    for row in result["checks"]:
        suites.setdefault(row["suite"], []).append(row)
    lines += ["| Suite | Checks | Passed | Failed |", "|---|---|---|---|"]
    for suite, rows in suites.items():
        passed = sum(r["outcome"] == "passed" for r in rows)
        lines.append(f"| {suite} | {len(rows)} | {passed} | {len(rows) - passed - sum(r['outcome'] == 'skipped' for r in rows)} |")
    for suite, rows in suites.items():
        lines += ["", f"## {suite}", "", f"`tests/reliability/{rows[0]['file']}`", "",
                  "| Check | Case | Result | s | What was seen |", "|---|---|---|---|---|"]
        for r in rows:
            seen = _details_text(r["details"]).replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {r['check']} | {r['case']} | {r['outcome']} | {r['seconds']} | {seen} |")
    return "\n".join(lines) + "\n"


def pytest_sessionfinish(session):
    if not any("outcome" in row for row in _ROWS.values()):
        return
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "machine": f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}",
              "checks": _merged()}
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    DOC.write_text(_markdown(result))
    session.config.stash[_SUMMARY] = result


_SUMMARY = pytest.StashKey[dict]()


def pytest_terminal_summary(terminalreporter, config):
    result = config.stash.get(_SUMMARY, None)
    if not result:
        return
    write = terminalreporter.write_line
    write("")
    write(f"{'suite':<48}{'check':<60}{'result':>8}{'s':>7}")
    for r in result["checks"]:
        check = f"{r['check']} [{r['case']}]" if r["case"] else r["check"]
        write(f"{r['suite'][:47]:<48}{check[:59]:<60}{r['outcome']:>8}{r['seconds']:>7}")
    write(f"results: {RESULTS}; page: {DOC}")
