# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""update_with_retry(live=...): a caller that already read the object does not read it twice."""

from __future__ import annotations

import copy

from ansible_collections.canary.istio.plugins.module_utils._k8s.errors import K8sConflictError
from ansible_collections.canary.istio.plugins.module_utils._k8s import writes
from ansible_collections.canary.istio.plugins.module_utils._k8s.writes import update_with_retry

PATH = "/apis/networking.istio.io/v1/namespaces/prod/virtualservices/reviews"


class RecordingClient:
    """Stands in for K8sClient: one stored object, a log of calls, 409 when the version is stale."""

    def __init__(self, obj: dict) -> None:
        self.obj = copy.deepcopy(obj)
        self.calls: list[tuple[str, str]] = []

    def get(self, path: str) -> dict:
        self.calls.append(("GET", path))
        return copy.deepcopy(self.obj)

    def replace(self, path: str, body: dict, dry_run: bool = False) -> dict:
        self.calls.append(("PUT", path))
        if body["metadata"]["resourceVersion"] != self.obj["metadata"]["resourceVersion"]:
            raise K8sConflictError(409, "Conflict", "the object has been modified", "PUT", path)
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(int(body["metadata"]["resourceVersion"]) + 1)
        if not dry_run:
            self.obj = stored
        return copy.deepcopy(stored)


def _vs(version: str, weight: int) -> dict:
    return {"metadata": {"name": "reviews", "resourceVersion": version}, "spec": {"weight": weight}}


def _set_weight(weight):
    def change(live):
        live["spec"]["weight"] = weight
        return live
    return change


def test_first_attempt_uses_the_callers_read():
    client = RecordingClient(_vs("7", 100))
    result = update_with_retry(client, PATH, _set_weight(90), live=client.get(PATH))
    assert client.calls == [("GET", PATH), ("PUT", PATH)]  # the caller's GET only
    assert (result.changed, result.attempts, client.obj["spec"]["weight"]) == (True, 1, 90)


def test_a_stale_first_read_is_read_again_after_the_conflict(monkeypatch):
    monkeypatch.setattr(writes, "_backoff", lambda attempt: 0)
    client = RecordingClient(_vs("7", 100))
    stale = client.get(PATH)
    client.obj = _vs("8", 100)  # someone wrote after our read
    client.obj["metadata"]["labels"] = {"team": "other"}
    result = update_with_retry(client, PATH, _set_weight(90), live=stale)
    assert client.calls == [("GET", PATH), ("PUT", PATH), ("GET", PATH), ("PUT", PATH)]
    assert result.attempts == 2
    assert client.obj["metadata"]["labels"] == {"team": "other"} and client.obj["spec"]["weight"] == 90


def test_no_change_on_the_callers_read_makes_no_request():
    client = RecordingClient(_vs("7", 90))
    live = client.get(PATH)
    result = update_with_retry(client, PATH, _set_weight(90), live=live)
    assert client.calls == [("GET", PATH)] and not result.changed


def test_without_live_it_reads_first():
    client = RecordingClient(_vs("7", 100))
    update_with_retry(client, PATH, _set_weight(50))
    assert client.calls == [("GET", PATH), ("PUT", PATH)]


def test_dry_run_with_live_stores_nothing():
    client = RecordingClient(_vs("7", 100))
    result = update_with_retry(client, PATH, _set_weight(10), dry_run=True, live=client.get(PATH))
    assert result.after["spec"]["weight"] == 10 and client.obj["spec"]["weight"] == 100
