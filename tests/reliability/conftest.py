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
  (`test_guance_client.py`, `test_analysis_prometheus.py`, `test_k8s_transport.py` in `tests/unit/plugins/module_utils/`).
- **TLS is verified by default**, and a warning says so whenever it is off (the Kubernetes client,
  Guance, Prometheus, and `canary_analysis`'s rollback).
- **A failure after traffic moved rolls back**, through Guance faults (and a failed step:
  `tests/integration/test_release_playbooks.py`); a release never promotes on an analysis that could
  not run. The exception is the API server itself down: nothing can be written then, the rollback
  included, so the play says `ROLLBACK FAILED` and traffic stays at a step the release really had.
  An etcd restart only delays the next write.
- **One release of a service at a time**, and one run of a release: a second run of the same
  release is refused while the first holds the lock (`canary_resume=true` takes a killed run's place).
- **The release role is enough, and each rule is needed**; `docs/rbac.md` says what its deploy
  verbs allow beyond routing and offers a routing-only role.
"""


INTRO = """What a release does when something fails under it, and what you do then: the table first,
then what is guaranteed, then every check of `make reliability` (tests/reliability, run on the
sandbox) with what it saw. Generated by `make reliability` (tests/reliability; figures in
`tests/reliability/results.json`)."""

# Written by hand: what can fail during a release, what the collection does, what the user does;
# each row links to the checks that hold it (or names the test). Written at the top of the page.
IN_A_HURRY = [  # (what fails, what the collection does, what you do)
    ("The API server, while a step holds",
     "The play fails naming it (`cannot reach the API server <url>`); traffic stays at the step it held. The "
     "rollback cannot reach it either: the message ends `ROLLBACK FAILED too (...): traffic may still reach "
     "<version>`",
     "When it answers again: check with `canary.istio.mesh_info`, then run the release again (it resumes at the "
     "live weight; `-e canary_resume=true` if another run of it holds the lock) or the `canary.istio.rollback` "
     "playbook ([playbooks.md](playbooks.md#resume); "
     "[checks](#control-plane-faults-during-a-release-kube-apiserver-killed-etcd-restarted))"),
    ("The API server, with a step's VirtualService write inside it",
     "The write is lost whole: the weights stay the previous step's; the play fails as above",
     "As above"),
    ("etcd, restarted during a release",
     "The next step's write waits in the API server, then the release goes on and promotes (or fails clearly, at "
     "a state the release really had, and a re-run resumes)",
     "Nothing; after a failure, run the release again "
     "([checks](#control-plane-faults-during-a-release-kube-apiserver-killed-etcd-restarted))"),
    ("Other writers on the VirtualService (controllers, people: routes, annotations, labels)",
     "Every write carries the `resourceVersion` it was computed from; a `409 Conflict` is read again and retried:"
     " no one else's field is lost, every step is stored in order",
     "Nothing. `409 Conflict` again and again: stop the other writer (a GitOps controller), run again "
     "([troubleshooting.md](troubleshooting.md#kubernetes-api-answers); "
     "[checks](#concurrency-other-writers-on-the-virtualservice-during-a-release-and-two-releases-at-once))"),
    ("A second release of the same service",
     "The release lock (an annotation on the VirtualService) lets exactly one through; the other fails before any"
     " traffic change: `another release holds the lock: ...`",
     "Wait; if the holder is gone, free the lock: `release_lock` with `state=absent force=true` "
     "([playbooks.md](playbooks.md#the-lock); "
     "[checks](#concurrency-other-writers-on-the-virtualservice-during-a-release-and-two-releases-at-once))"),
    ("The control node, mid-release (a killed job, a lost connection)",
     "Traffic stays at the live weight; the run's lock stays until it expires (`canary_lock_ttl`, 7200 s), "
     "refusing other runs",
     "Run the same release again, as the same owner, with `-e canary_resume=true`: it resumes at the live weight "
     "([playbooks.md](playbooks.md#resume); `tests/integration/test_release_playbooks.py`, in `make test`)"),
    ("Guance during a step's analysis: a 5xx, a non-JSON 502 page, no answer within `timeout`",
     "Retried for `retry_budget` seconds; then no verdict, so the step does not pass and the release rolls back "
     "to 100% stable. Never a promotion",
     "Fix what the message names; for a flaky link raise `retry_budget` or `timeout` "
     "([troubleshooting.md](troubleshooting.md#guance-answers); "
     "[checks](#guance-faults-during-a-releases-analysis-never-a-promotion-always-a-rollback))"),
    ("Guance's rate limit: 20 requests a minute per key, 200 per workspace",
     "Retried within `retry_budget`, asked again at the next round; no pass by the step's end: rollback to 100% "
     "stable",
     "A key per pipeline, a longer `interval`, fewer events; raise `retry_budget` "
     "([troubleshooting.md](troubleshooting.md#guance-answers); "
     "[checks](#guance-faults-during-a-releases-analysis-never-a-promotion-always-a-rollback))"),
    ("Guance refuses the key (401, 403)",
     "No verdict: rollback to 100% stable",
     "The API Key ID (not the secret) of the right workspace and site, not disabled "
     "([checks](#guance-faults-during-a-releases-analysis-never-a-promotion-always-a-rollback))"),
    ("No data for the canary: no traffic, no series",
     "The round is inconclusive (`too few canary requests: 0 < min_requests <n>`): the step fails, rollback to "
     "100% stable",
     "Traffic to the canary, the mesh's metrics in Guance; for a thin first window a longer `interval`/`window`, "
     "a lower `min_requests` or `inconclusive: wait` "
     "([troubleshooting.md](troubleshooting.md#the-verdict-the-step-did-not-pass))"),
    ("Guance, already when the release starts",
     "The analysis is tried once before any change: the release stops there, nothing written",
     "Fix Guance or the key, run again "
     "([checks](#guance-faults-during-a-releases-analysis-never-a-promotion-always-a-rollback))"),
    ("A wrong value (a type, a range, an unknown object, weights, a duration, DQL, a URL, a key, a kubeconfig or "
     "context)",
     "The run fails before any write, naming the option or variable and, where there is one, the fix; the audit "
     "log shows no write",
     "Fix what it names ([troubleshooting.md](troubleshooting.md); "
     "[checks](#bad-input-every-case-fails-naming-the-field-and-nothing-is-written))"),
    ("A permission the release identity lacks",
     "The release fails with the API server's 403 naming the resource and verb",
     "Bind the documented role: [rbac.md](rbac.md), `playbooks/files/release-rbac.yaml` "
     "([checks](#least-privilege-the-documented-release-role-suffices-and-each-of-its-rules-is-needed))"),
    ("An untrusted certificate (the API server, Guance over HTTPS)",
     "The request fails naming certificate verification; nothing reaches the server. `validate_certs=false` goes "
     "through, with a warning that the connection can be intercepted",
     "The right CA; `validate_certs: false` only for a test endpoint "
     "([checks](#secrets-no-key-or-token-in--vvv-output-or-results-and-tls-verified-by-default))"),
    ("A redirect (3xx) from the API server, Guance or Prometheus",
     "An error naming the host it pointed to; credentials never travel there",
     "Point `url` (or `host`) at the endpoint itself"),
    ("Secrets in `-vvv` output, registered results, release reports, Guance events",
     "Neither the Guance key nor the Kubernetes token appears, in any spelling or base64-encoded",
     "Nothing ([checks](#secrets-no-key-or-token-in--vvv-output-or-results-and-tls-verified-by-default))"),
]


def _in_a_hurry() -> list[str]:
    return ["## In a hurry: what fails, what the collection does, what you do", "",
            "| What fails | What the collection does | What you do |", "|---|---|---|",
            *(f"| {what} | {does} | {you_do} |" for what, does, you_do in IN_A_HURRY)]


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _days(rows: list[dict]) -> str:
    days = sorted({r.get("date", "?")[:10] for r in rows})
    return days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}"


def _by_check(rows: list[dict]) -> list[list[dict]]:
    """The rows of one suite grouped by check, in the order the checks first come."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["check"], []).append(row)
    return list(groups.values())


def _shared(rows: list[dict]) -> dict:
    """The details every case of a check saw alike (said once, above its cases)."""
    first = rows[0]["details"]
    return {k: v for k, v in first.items() if k != "error" and all(k in r["details"] and r["details"][k] == v for r in rows[1:])}


def _suite_lines(rows: list[dict]) -> list[str]:
    """A check with several cases: its words once, what all its cases saw alike, a row per case.
    Checks of one case each: a row per check."""
    lines: list[str] = []
    single: list[dict] = []

    def flush() -> None:
        if single:
            lines.extend(["", "| Check | Result | s | What was seen |", "|---|---|---|---|"])
            for r in single:
                check = f"{r['check']} [{r['case']}]" if r["case"] else r["check"]
                lines.append(f"| {_cell(check)} | {r['outcome']} | {r['seconds']} | {_cell(_details_text(r['details']))} |")
            single.clear()

    for group in _by_check(rows):
        if len(group) == 1:
            single.append(group[0])
            continue
        flush()
        shared = _shared(group)
        outcomes = {r["outcome"] for r in group}
        seconds = {r["seconds"] for r in group}
        said = [f"{len(group)} cases" + (f", all {outcomes.pop()}" if len(outcomes) == 1 else ""),
                *([f"{seconds.pop()} s each"] if len(seconds) == 1 else []), *([_details_text(shared)] if shared else [])]
        columns = ["Case", *(["Result"] if len(outcomes) > 1 else []), *(["s"] if len(seconds) > 1 else []), "What was seen"]
        lines.extend(["", f"{group[0]['check']}: {'; '.join(said)}.", "",
                      "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)])
        for r in group:
            seen = {k: v for k, v in r["details"].items() if k not in shared}
            cells = [r["case"], *([r["outcome"]] if len(outcomes) > 1 else []), *([r["seconds"]] if len(seconds) > 1 else []),
                     _details_text(seen)]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    flush()
    return lines


def _markdown(result: dict) -> str:
    checks = result["checks"]
    passed = sum(r["outcome"] == "passed" for r in checks)
    skipped = sum(r["outcome"] == "skipped" for r in checks)
    tally = f"{len(checks)} checks: {passed} passed, {len(checks) - passed - skipped} failed" + (f", {skipped} skipped" if skipped else "")
    lines = ["# Reliability: faults, bad input and security", "", INTRO,
             f"Last run: {result['date']} on {result['machine']}; {tally}.", "",
             *_in_a_hurry(), "", GUARANTEES.rstrip(), "", "## Figures", ""]
    suites: dict[str, list[dict]] = {}
    for row in checks:
        suites.setdefault(row["suite"], []).append(row)
    lines += ["| Suite | Checks | Passed | Failed |", "|---|---|---|---|"]
    for suite, rows in suites.items():
        passed = sum(r["outcome"] == "passed" for r in rows)
        lines.append(f"| {suite} | {len(rows)} | {passed} | {len(rows) - passed - sum(r['outcome'] == 'skipped' for r in rows)} |")
    for suite, rows in suites.items():
        lines += ["", f"## {suite}", "", f"`tests/reliability/{rows[0]['file']}`, run {_days(rows)}."]
        lines += _suite_lines(rows)
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
