# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_k8s/writes.py: read-modify-write of one object, safe against other writers."""

from __future__ import annotations

import copy
import json

import pytest

from ansible_collections.canary.istio.plugins.module_utils._istio.api import VIRTUAL_SERVICES, istio_path
from ansible_collections.canary.istio.plugins.module_utils._k8s import writes
from ansible_collections.canary.istio.plugins.module_utils._k8s.errors import K8sConflictError, K8sNotFoundError
from ansible_collections.canary.istio.plugins.module_utils._k8s.writes import ensure, ensure_absent, update_with_retry
from ansible_collections.canary.istio.tests.unit.plugins.module_utils.k8s_fakes import (
    VS_PATH,
    client_for,
    virtual_service,
)


def set_weights(weights: dict[str, int]):
    """A pure change function: the weights of the catch-all route, everything else untouched."""
    def change(live: dict) -> dict:
        for route in live["spec"]["http"][-1]["route"]:
            route["weight"] = weights[route["destination"]["subset"]]
        return live
    return change


class TestUpdateWithRetry:
    def test_update_reapplies_the_change_after_a_conflict(self, api):
        api.put_object(VS_PATH, virtual_service({"v1": 100, "v2": 0}))
        seen = []

        def concurrent_writer(server, method, path):
            # Between our GET and our first PUT, someone else adds a label (a new resourceVersion).
            if method == "PUT" and not seen:
                seen.append(path)
                obj = json.loads(json.dumps(server.objects[path]))
                obj["metadata"]["labels"] = {"team": "other"}
                server.put_object(path, obj)

        api.before_write = concurrent_writer
        result = update_with_retry(client_for(api), VS_PATH, set_weights({"v1": 90, "v2": 10}))
        assert (result.changed, result.attempts) == (True, 2)
        stored = api.objects[VS_PATH]
        assert stored["metadata"]["labels"] == {"team": "other"}  # their change survived
        assert [r["weight"] for r in stored["spec"]["http"][0]["route"]] == [90, 10]  # and ours
        puts = [r for r in api.requests if r["method"] == "PUT"]
        assert len(puts) == 2
        assert puts[1]["body"]["metadata"]["resourceVersion"] == result.before["metadata"]["resourceVersion"]
        assert result.before["metadata"]["labels"] == {"team": "other"}
        assert result.after == stored
        before, after, changed, attempts = result  # also unpacks as a tuple
        assert (changed, attempts) == (True, 2)

    def test_update_sends_the_version_it_read(self, api):
        api.put_object(VS_PATH, virtual_service({"v1": 100}))

        def rebuild(live):  # builds a new object instead of editing the read one
            return virtual_service({"v1": 50, "v2": 50})

        result = update_with_retry(client_for(api), VS_PATH, rebuild)
        put = api.writes()[0]
        assert put["body"]["metadata"]["resourceVersion"] == result.before["metadata"]["resourceVersion"]
        assert result.changed and result.attempts == 1

    def test_update_without_change_writes_nothing(self, api):
        api.put_object(VS_PATH, virtual_service({"v1": 90, "v2": 10}))
        result = update_with_retry(client_for(api), VS_PATH, set_weights({"v1": 90, "v2": 10}))
        assert (result.changed, result.attempts, result.before, result.after) == (False, 1, api.objects[VS_PATH], api.objects[VS_PATH])
        assert api.writes() == []

    def test_update_dry_run_stores_nothing(self, api):
        stored = api.put_object(VS_PATH, virtual_service({"v1": 100, "v2": 0}))
        result = update_with_retry(client_for(api), VS_PATH, set_weights({"v1": 50, "v2": 50}), dry_run=True)
        assert result.changed and [r["weight"] for r in result.after["spec"]["http"][0]["route"]] == [50, 50]
        assert api.objects[VS_PATH] == stored
        assert api.writes()[0]["query"] == {"dryRun": "All"}

    def test_update_gives_up_after_the_retries(self, api):
        api.put_object(VS_PATH, virtual_service({"v1": 100, "v2": 0}))

        def always_first(server, method, path):
            server.put_object(path, server.objects[path])  # a new resourceVersion every time

        api.before_write = always_first
        with pytest.raises(K8sConflictError, match="the object has been modified"):
            update_with_retry(client_for(api), VS_PATH, set_weights({"v1": 0, "v2": 100}), retries=3)
        assert len(api.writes()) == 3

    def test_update_refusal_writes_nothing(self, api):
        api.put_object(VS_PATH, virtual_service({"v1": 100}))

        def refuse(live):
            raise ValueError("subset v3 is not in the DestinationRule")

        with pytest.raises(ValueError, match="subset v3"):
            update_with_retry(client_for(api), VS_PATH, refuse)
        assert api.writes() == []
        with pytest.raises(K8sNotFoundError):
            update_with_retry(client_for(api), istio_path(None, VIRTUAL_SERVICES, "prod", "ratings"), refuse)


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


class TestTheCallersRead:
    """update_with_retry(live=...): a caller that already read the object does not read it twice."""

    def test_first_attempt_uses_the_callers_read(self):
        client = RecordingClient(_vs("7", 100))
        result = update_with_retry(client, PATH, _set_weight(90), live=client.get(PATH))
        assert client.calls == [("GET", PATH), ("PUT", PATH)]  # the caller's GET only
        assert (result.changed, result.attempts, client.obj["spec"]["weight"]) == (True, 1, 90)

    def test_a_stale_first_read_is_read_again_after_the_conflict(self, monkeypatch):
        monkeypatch.setattr(writes, "_backoff", lambda attempt: 0)
        client = RecordingClient(_vs("7", 100))
        stale = client.get(PATH)
        client.obj = _vs("8", 100)  # someone wrote after our read
        client.obj["metadata"]["labels"] = {"team": "other"}
        result = update_with_retry(client, PATH, _set_weight(90), live=stale)
        assert client.calls == [("GET", PATH), ("PUT", PATH), ("GET", PATH), ("PUT", PATH)]
        assert result.attempts == 2
        assert client.obj["metadata"]["labels"] == {"team": "other"} and client.obj["spec"]["weight"] == 90

    def test_no_change_on_the_callers_read_makes_no_request(self):
        client = RecordingClient(_vs("7", 90))
        live = client.get(PATH)
        result = update_with_retry(client, PATH, _set_weight(90), live=live)
        assert client.calls == [("GET", PATH)] and not result.changed

    def test_without_live_it_reads_first(self):
        client = RecordingClient(_vs("7", 100))
        update_with_retry(client, PATH, _set_weight(50))
        assert client.calls == [("GET", PATH), ("PUT", PATH)]

    def test_dry_run_with_live_stores_nothing(self):
        client = RecordingClient(_vs("7", 100))
        result = update_with_retry(client, PATH, _set_weight(10), dry_run=True, live=client.get(PATH))
        assert result.after["spec"]["weight"] == 10 and client.obj["spec"]["weight"] == 100


def build_vs(weights):
    def build(live):
        wanted = virtual_service(weights)
        if live is None:
            return wanted
        live["spec"] = wanted["spec"]
        return live
    return build


class TestEnsure:
    def test_ensure_creates_then_updates_then_leaves_alone(self, api):
        client = client_for(api)
        collection = istio_path(None, VIRTUAL_SERVICES, "prod")
        created = ensure(client, collection, "reviews", build_vs({"v1": 100}))
        assert created.changed and created.before is None and api.writes()[-1]["method"] == "POST"
        updated = ensure(client, collection, "reviews", build_vs({"v1": 80, "v2": 20}))
        assert updated.changed and api.writes()[-1]["method"] == "PUT"
        writes = len(api.writes())
        again = ensure(client, collection, "reviews", build_vs({"v1": 80, "v2": 20}))
        assert not again.changed and len(api.writes()) == writes
        nothing = ensure(client, collection, "ratings", lambda live: None)
        assert (nothing.before, nothing.changed) == (None, False)

    def test_ensure_create_race_becomes_an_update(self, api):
        collection = istio_path(None, VIRTUAL_SERVICES, "prod")

        def someone_creates_first(server, method, path):
            if method == "POST" and VS_PATH not in server.objects:
                obj = virtual_service({"v1": 100})
                obj["metadata"]["annotations"] = {"owner": "them"}
                server.put_object(VS_PATH, obj)

        api.before_write = someone_creates_first
        result = ensure(client_for(api), collection, "reviews", build_vs({"v1": 70, "v2": 30}))
        assert (result.changed, result.attempts) == (True, 2)
        assert [r["method"] for r in api.writes()] == ["POST", "PUT"]
        assert api.objects[VS_PATH]["metadata"]["annotations"] == {"owner": "them"}
        assert [r["weight"] for r in api.objects[VS_PATH]["spec"]["http"][0]["route"]] == [70, 30]

    def test_ensure_create_dry_run(self, api):
        result = ensure(client_for(api), istio_path(None, VIRTUAL_SERVICES, "prod"), "reviews",
                        build_vs({"v1": 100}), dry_run=True)
        assert result.changed and result.after["metadata"]["name"] == "reviews"
        assert api.objects == {} and api.writes()[0]["query"] == {"dryRun": "All"}

    def test_ensure_absent(self, api):
        api.put_object(VS_PATH, virtual_service({"v1": 100}))
        client = client_for(api)
        assert ensure_absent(client, VS_PATH, dry_run=True).changed
        assert VS_PATH in api.objects
        result = ensure_absent(client, VS_PATH)
        assert result.changed and result.before["metadata"]["name"] == "reviews" and VS_PATH not in api.objects
        assert not ensure_absent(client, VS_PATH).changed
