#!/usr/bin/python
# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: release_report
short_description: Write the report of a canary release on one cluster, with charts
version_added: 0.1.0
description:
  - Keeps the records of one release on one cluster in C(<dir>/<release>/<cluster>/records.json),
    adds the new O(records) to them, and writes from all of them C(report.html) (a self-contained
    page with charts) and C(report.md) (a Markdown summary) in the same directory.
  - "The HTML report shows the traffic share per version over time, and for each checked metric
    its value per version in each analysis round against the check's bounds, with each check's
    result (passed, failed, no data) and the promotion or rollback marked. Tables list every record
    and every check. The record schema is in the collection's C(docs/report.md)."
  - Records already stored are not added twice, so a playbook can pass its whole list of records
    on every call, and a resumed release adds to the records of the run that was interrupted.
  - The charts need the Python package C(matplotlib) on the host the module runs on. Without it
    the module still writes the records, the Markdown and an HTML page without charts, and warns.
  - The files are written with mode C(0600) and new directories with C(0700), readable by their
    owner only (a report holds the release's error messages); change the mode to share them.
  - Every value in C(report.md) is escaped, so nothing a cluster or server says becomes Markdown
    or HTML.
options:
  dir:
    description:
      - The report directory, the playbooks' C(canary_report_dir). Created when missing.
    type: path
    required: true
  release:
    description:
      - The release's id or name, for example the playbooks' C(canary_release_id). Used as a
        directory name, with every run of characters other than letters, digits, C(.), C(_) and
        C(-) replaced by C(_) (C(reviews/v2 by ops@ctl) becomes C(reviews_v2_by_ops_ctl)).
    type: str
    required: true
  cluster:
    description:
      - The cluster, normally C({{ inventory_hostname }}). A directory name under the release's,
        sanitised like O(release). Two names that sanitise alike (C(eu/1) and C(eu_1)) would share
        a directory; the second is refused rather than mixing their records.
    type: str
    required: true
  app:
    description: The service released (C(canary_app)).
    type: str
    required: true
  namespace:
    description: Its namespace (C(canary_namespace)).
    type: str
    required: true
  stable_version:
    description: The version serving before the release (C(canary_stable_version)).
    type: str
    required: true
  canary_version:
    description: The new version (C(canary_version)).
    type: str
    required: true
  records:
    description:
      - New records to add to the stored ones, each a dict with C(time) (ISO 8601, UTC when
        without a zone), C(event) (V(start), V(step), V(analysis), V(promoted), V(rolled_back) or
        V(failed)) and optionally C(step), C(weight), C(weights), C(analysis) (a registered
        M(canary.istio.canary_analysis) result) and C(message). See C(docs/report.md).
      - A record equal to a stored one is skipped. Records are kept in time order.
      - An empty list re-renders the report from the stored records.
    type: list
    elements: dict
    default: []
  outcome:
    description:
      - How the release ended, or V(running). Stored with the records.
      - When left out, the last V(promoted), V(rolled_back) or V(failed) record gives it, with that
        record's message as the reason; without one it is V(running).
    type: dict
    suboptions:
      status:
        description: The outcome. When left out, taken from the records as above.
        type: str
        choices: [running, promoted, rolled_back, failed]
      reason:
        description:
          - One line for the reader, for example the failing checks. Default the message of the last
            record whose event is the outcome.
          - Not C(message), a name Ansible keeps for itself.
        type: str
attributes:
  check_mode:
    description: Can run in check mode and return the changed status without changing the target.
    support: full
    details:
      - Renders everything, compares it with the files on disk and writes nothing.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: full
    details:
      - The diff is C(report.md) before and after, the readable summary of the records.
  idempotent:
    description:
      - When run twice in a row with the same arguments, the second run reports no change and writes nothing.
    support: full
    details:
      - C(changed) compares the content of the three files; the output does not depend on the
        time the module runs.
notes:
  - The module writes files on the host it runs on, which must be the control node. Inventory hosts
    that stand for clusters use C(ansible_connection=local), so it runs there; for a host with any
    other connection add C(delegate_to=localhost) to the task.
  - The HTML page has no script and fetches nothing; the charts are inline SVG, so the file can be
    attached to a ticket or opened offline.
requirements:
  - matplotlib (for the charts; optional)
seealso:
  - module: canary.istio.canary_analysis
author:
  - canary.istio maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Record the traffic step
  ansible.builtin.set_fact:
    canary_report_records: "{{ canary_report_records | default([]) + [record] }}"
  vars:
    record:
      time: "{{ now(utc=true).isoformat() }}"
      event: step
      step: 1
      weight: 10
      weights: {v1: 90, v2: 10}

- name: Record the analysis of the step (the registered canary_analysis result)
  ansible.builtin.set_fact:
    canary_report_records: "{{ canary_report_records + [record] }}"
  vars:
    record:
      time: "{{ now(utc=true).isoformat() }}"
      event: analysis
      step: 1
      weight: 10
      analysis: "{{ canary_analysis_result }}"

- name: Write the release report of this cluster
  canary.istio.release_report:
    dir: "{{ canary_report_dir }}"
    release: "{{ canary_release_id }}"
    cluster: "{{ inventory_hostname }}"
    app: "{{ canary_app }}"
    namespace: "{{ canary_namespace }}"
    stable_version: "{{ canary_stable_version }}"
    canary_version: "{{ canary_version }}"
    records: "{{ canary_report_records }}"
  delegate_to: localhost
  register: canary_report

- name: Where the report is
  ansible.builtin.debug:
    msg: "Release report: {{ canary_report.paths.html }}"

- name: After a rollback, the outcome and its reason told explicitly
  canary.istio.release_report:
    dir: ./reports
    release: reviews-v2
    cluster: "{{ inventory_hostname }}"
    app: reviews
    namespace: prod
    stable_version: v1
    canary_version: v2
    records:
      - time: "{{ now(utc=true).isoformat() }}"
        event: rolled_back
        weights: {v1: 100, v2: 0}
    outcome:
      status: rolled_back
      reason: "{{ ansible_failed_result.msg | default('rolled back') }}"
"""

RETURN = r"""
paths:
  description: The files, written or (in check mode) to be written.
  returned: always
  type: dict
  contains:
    dir:
      description: The directory of this release on this cluster.
      type: str
      sample: ./reports/reviews-v2/sandbox-1
    records:
      description: The stored records.
      type: str
      sample: ./reports/reviews-v2/sandbox-1/records.json
    html:
      description: The HTML report.
      type: str
      sample: ./reports/reviews-v2/sandbox-1/report.html
    markdown:
      description: The Markdown summary.
      type: str
      sample: ./reports/reviews-v2/sandbox-1/report.md
release:
  description: O(release) as the directory is named.
  returned: always
  type: str
  sample: reviews_v2_by_ops_ctl
cluster:
  description: O(cluster) as the directory is named.
  returned: always
  type: str
  sample: sandbox-1
outcome:
  description: The outcome the report shows.
  returned: always
  type: dict
  contains:
    status:
      description: V(running), V(promoted), V(rolled_back) or V(failed).
      type: str
    reason:
      description: Its reason, or null.
      type: str
  sample: {"status": "promoted", "reason": "v2 serves all traffic"}
record_count:
  description: Records stored after this run.
  returned: always
  type: int
  sample: 8
records_added:
  description: Records of O(records) that were new.
  returned: always
  type: int
  sample: 2
charts:
  description: The ids of the charts in the HTML report (V(traffic), V(metric-<metric>)); empty without matplotlib.
  returned: always
  type: list
  elements: str
  sample: [traffic, metric-request-success-rate, metric-request-duration-p99]
files_changed:
  description: The files whose content changed (or would change in check mode).
  returned: always
  type: list
  elements: str
  sample: [records.json, report.md, report.html]
"""

import json
import os
import tempfile
import typing as t

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native
from ansible_collections.canary.istio.plugins.module_utils._errors import CanaryError
from ansible_collections.canary.istio.plugins.module_utils._report.content import build_report
from ansible_collections.canary.istio.plugins.module_utils._report.charts import (
    chart_captions,
    missing_library,
    render_svgs,
)
from ansible_collections.canary.istio.plugins.module_utils._report.html_page import render_html
from ansible_collections.canary.istio.plugins.module_utils._report.markdown_page import render_markdown
from ansible_collections.canary.istio.plugins.module_utils._report.records import (
    OUTCOMES,
    RecordError,
    check_canary_weight,
    document,
    merge_records,
    normalise_records,
    outcome_from_records,
    read_document,
    safe_name,
)
from ansible_collections.canary.istio.plugins.module_utils._main import run_module

RECORDS_FILE = "records.json"
HTML_FILE = "report.html"
MARKDOWN_FILE = "report.md"
# Fields a stored release must share with this call: anything else means another release.
SAME_RELEASE_KEYS = ("app", "namespace", "stable_version", "canary_version")

ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = dict(
    dir=dict(type="path", required=True),
    release=dict(type="str", required=True),
    cluster=dict(type="str", required=True),
    app=dict(type="str", required=True),
    namespace=dict(type="str", required=True),
    stable_version=dict(type="str", required=True),
    canary_version=dict(type="str", required=True),
    records=dict(type="list", elements="dict", default=[]),
    outcome=dict(type="dict", options=dict(
        status=dict(type="str", choices=list(OUTCOMES)),
        reason=dict(type="str"),
    )),
)


def read_stored(path: str) -> dict[str, t.Any] | None:
    """The stored records document, or None when there is none yet."""
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as stream:
            data = json.load(stream)
    except (OSError, ValueError) as exc:
        raise CanaryError(f"cannot read {path}: {to_native(exc)}; move it away to start the records anew", "dir") from None
    try:
        return read_document(data, path)
    except RecordError as exc:
        raise CanaryError(str(exc), "dir") from None


def check_same_release(stored: t.Mapping[str, t.Any], header: t.Mapping[str, t.Any], path: str) -> None:
    # Names are sanitised into directory names, so two different names can meet in one directory.
    for key in ("release", "cluster"):
        if stored.get(key) is not None and stored.get(key) != header[key]:
            raise CanaryError(
                f"{path} holds the records of {key} {stored.get(key)!r}, not {header[key]!r}: both names make the same "
                f"directory name. Give this {key} a name that differs in letters or digits, or move that directory away",
                key)
    for key in SAME_RELEASE_KEYS:
        if stored.get(key) is not None and stored.get(key) != header[key]:
            raise CanaryError(
                f"{path} holds the records of another release ({key} {stored.get(key)!r}, not {header[key]!r}); "
                "give this release its own name or move that directory away", "release")


def decide_outcome(params: t.Mapping[str, t.Any], records: t.Sequence[t.Mapping[str, t.Any]]) -> dict[str, t.Any]:
    given = params.get("outcome") or {}
    status = given.get("status") or outcome_from_records(records)
    reason = given.get("reason")
    if reason is None and status != "running":
        final = [r for r in records if r["event"] == status]
        reason = final[-1].get("message") if final else None
    return {"status": status, "reason": reason}


def render_charts(module: AnsibleModule, report: t.Any) -> tuple[list[tuple[str, str, str]], str | None]:
    """The SVG charts, or none with a warning: a report without charts beats no report."""
    missing = missing_library()
    if missing:
        module.warn(f"the Python package {missing} is not installed on the host this runs on: report.html has no "
                    f"charts (install it with pip install {missing}); records.json and report.md are complete")
        return [], missing
    try:
        return render_svgs(report), None
    except Exception as exc:  # pylint: disable=broad-exception-caught
        module.warn(f"drawing the charts failed, report.html has none: {type(exc).__name__}: {to_native(exc)}")
        return [], "matplotlib (it failed: see the warning)"


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as stream:
            return stream.read()
    except (OSError, UnicodeDecodeError):
        return None


# A report holds a release's error messages and the cluster's names: readable by its owner only,
# like a kubeconfig. Whoever should read it more widely changes the mode on purpose.
FILE_MODE = 0o600
DIR_MODE = 0o700


def write_text(module: AnsibleModule, path: str, text: str) -> None:
    """Through a temporary file in the same directory: a reader never sees half a file."""
    handle, temporary = tempfile.mkstemp(prefix=".release_report.", dir=os.path.dirname(path))
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        module.atomic_move(temporary, path)
        # atomic_move keeps an existing file's mode, or gives a new one the umask's (0644 by default).
        os.chmod(path, FILE_MODE)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def run(module: AnsibleModule) -> dict[str, t.Any]:
    """The report's files after this task; CanaryError naming the option for whatever stops it."""
    params = module.params
    release = safe_name(params["release"], "release")
    cluster = safe_name(params["cluster"], "cluster")
    new = normalise_records(params["records"] or [])
    check_canary_weight(new, params["canary_version"])
    for option in ("app", "namespace", "stable_version", "canary_version"):
        if not params[option].strip():
            raise CanaryError(f"{option}: must not be empty", option)
    if params["stable_version"] == params["canary_version"]:
        raise CanaryError("canary_version: must differ from stable_version", "canary_version")

    directory = os.path.join(params["dir"], release, cluster)
    paths = {"dir": directory, "records": os.path.join(directory, RECORDS_FILE),
             "html": os.path.join(directory, HTML_FILE), "markdown": os.path.join(directory, MARKDOWN_FILE)}
    header = dict(release=params["release"], cluster=params["cluster"], app=params["app"],
                  namespace=params["namespace"], stable_version=params["stable_version"],
                  canary_version=params["canary_version"])
    stored_doc = read_stored(paths["records"])
    stored = stored_doc["records"] if stored_doc else []
    if stored_doc:
        check_same_release(stored_doc, header, paths["records"])
    records = merge_records(stored, new)
    outcome = decide_outcome(params, records)

    report = build_report(header, records, outcome["status"], outcome["reason"])
    charts, missing = render_charts(module, report)
    captions = chart_captions(report)
    texts = {
        "records": json.dumps(document(header, outcome, records), indent=2, ensure_ascii=False) + "\n",
        "markdown": render_markdown(report, HTML_FILE),
        "html": render_html(report, charts, captions, missing),
    }
    before_markdown = read_text(paths["markdown"])
    changed_keys = [key for key, text in texts.items() if read_text(paths[key]) != text]
    if changed_keys and not module.check_mode:
        try:
            os.makedirs(directory, mode=DIR_MODE, exist_ok=True)
            for key in ("records", "markdown", "html"):  # the records first: they are what matters
                if key in changed_keys:
                    write_text(module, paths[key], texts[key])
        except OSError as exc:
            raise CanaryError(f"cannot write the report in {directory}: {to_native(exc)}", "dir") from None

    result: dict[str, t.Any] = dict(
        changed=bool(changed_keys), paths=paths, release=release, cluster=cluster, outcome=outcome,
        record_count=len(records), records_added=len(records) - len(stored),
        charts=[chart[0] for chart in charts],
        files_changed=[os.path.basename(paths[key]) for key in ("records", "markdown", "html") if key in changed_keys],
    )
    if module._diff:
        result["diff"] = {"before": before_markdown or "", "after": texts["markdown"],
                          "before_header": paths["markdown"], "after_header": paths["markdown"]}
    return result


def main() -> None:
    run_module(run, ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
