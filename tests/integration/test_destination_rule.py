"""destination_rule on the real API server: create, update, idempotence, check mode, diff, absent,
refusals that write nothing, a concurrent writer, the least-privilege release identity."""
from __future__ import annotations

import pytest

from ansible_collections.canary.istio.plugins.module_utils._k8s.transport import K8sClient
from sandbox.api import ApiError, collection_path
from sandbox.audit import WRITE_VERBS

RELEASE_USER = "canary-release"
RESOURCE = "destinationrules"


@pytest.fixture
def run(module_runner, release_kubeconfig):
    """Run destination_rule as the release identity (the least-privilege token)."""

    def run_(check: bool = False, diff: bool = False, **params) -> dict:
        params.setdefault("kubeconfig", release_kubeconfig)
        return module_runner("destination_rule", check=check, diff=diff, **params)

    return run_


def _path(namespace: str, name: str = "reviews") -> str:
    return f"{collection_path('DestinationRule', namespace)}/{name}"


def _stored_writes(audit, namespace: str, user: str = RELEASE_USER) -> list[dict]:
    """Writes the API server accepted and stored: not dry runs, not refused."""
    return [e for e in audit.events(user)
            if e["verb"] in WRITE_VERBS and e.get("objectRef", {}).get("resource") == RESOURCE
            and e.get("objectRef", {}).get("namespace") == namespace
            and "dryRun=All" not in e["requestURI"] and e.get("responseStatus", {}).get("code", 0) < 400]


def _requests(audit, namespace: str, user: str = RELEASE_USER) -> list[dict]:
    return [e for e in audit.events(user) if e.get("objectRef", {}).get("namespace") == namespace]


def _subsets(obj: dict) -> dict:
    return {s["name"]: s for s in obj["spec"].get("subsets", [])}


V1 = {"name": "v1", "labels": {"version": "v1"}}
V2 = {"name": "v2", "labels": {"version": "v2"}}


def test_create_then_second_run_writes_nothing(run, admin, namespace, audit):
    params = dict(name="reviews", namespace=namespace, service_host="reviews", subsets=[V1, V2],
                  traffic_policy={"loadBalancer": {"simple": "RANDOM"}}, labels={"app": "reviews", "rank": 2})
    created = run(**params)
    assert created["changed"] is True
    live = admin.get(_path(namespace))
    assert live["spec"] == {"host": "reviews", "trafficPolicy": {"loadBalancer": {"simple": "RANDOM"}},
                            "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                                        {"name": "v2", "labels": {"version": "v2"}}]}
    assert live["metadata"]["labels"] == {"app": "reviews", "rank": "2"}  # YAML number -> label text
    assert created["result"]["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]
    assert "managedFields" not in created["result"]["metadata"]
    assert len(_stored_writes(audit, namespace)) == 1

    audit.mark()
    again = run(**params)
    assert again["changed"] is False
    assert again["result"]["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]
    assert _stored_writes(audit, namespace) == []
    assert admin.get(_path(namespace))["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]


def test_update_keeps_what_it_was_not_told_about(run, admin, namespace, audit):
    admin.create(collection_path("DestinationRule", namespace), {
        "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "reviews", "labels": {"team": "a"}, "annotations": {"note": "keep"}},
        "spec": {"host": "reviews", "exportTo": ["."],
                 "trafficPolicy": {"loadBalancer": {"simple": "RANDOM"}},
                 "subsets": [{"name": "v1", "labels": {"version": "v1"},
                              "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": 7}}}},
                             {"name": "v3", "labels": {"version": "v3"}}]}})
    audit.mark()
    # v1's labels change, v2 is new; v3, exportTo, the rule's and v1's traffic policies stay.
    result = run(name="reviews", namespace=namespace, service_host="reviews",
                 subsets=[{"name": "v1", "labels": {"version": "v1", "track": "stable"}}, V2],
                 labels={"app": "reviews"}, annotations={"owner": "release"})
    assert result["changed"] is True
    live = admin.get(_path(namespace))
    assert live["spec"]["exportTo"] == ["."]
    assert live["spec"]["trafficPolicy"] == {"loadBalancer": {"simple": "RANDOM"}}
    assert [s["name"] for s in live["spec"]["subsets"]] == ["v1", "v3", "v2"]
    assert _subsets(live)["v1"] == {"name": "v1", "labels": {"version": "v1", "track": "stable"},
                                    "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": 7}}}}
    assert live["metadata"]["labels"] == {"team": "a", "app": "reviews"}
    assert live["metadata"]["annotations"] == {"note": "keep", "owner": "release"}
    assert len(_stored_writes(audit, namespace)) == 1

    # A traffic policy for v2 and a new one for the rule: replaced as given.
    run(name="reviews", namespace=namespace, service_host="reviews", traffic_policy={"loadBalancer": {"simple": "LEAST_REQUEST"}},
        subsets=[dict(V2, traffic_policy={"connectionPool": {"http": {"http1MaxPendingRequests": 10}}})])
    live = admin.get(_path(namespace))
    assert live["spec"]["trafficPolicy"] == {"loadBalancer": {"simple": "LEAST_REQUEST"}}
    assert _subsets(live)["v2"]["trafficPolicy"] == {"connectionPool": {"http": {"http1MaxPendingRequests": 10}}}

    # purge_subsets without subsets changes nothing; with subsets it keeps only those listed.
    assert run(name="reviews", namespace=namespace, service_host="reviews", purge_subsets=True)["changed"] is False
    purged = run(name="reviews", namespace=namespace, service_host="reviews", subsets=[V2], purge_subsets=True)
    assert purged["changed"] is True
    assert [s["name"] for s in admin.get(_path(namespace))["spec"]["subsets"]] == ["v2"]
    assert [s["name"] for s in purged["result"]["spec"]["subsets"]] == ["v2"]


def test_check_mode_is_a_server_side_dry_run_that_stores_nothing(run, admin, namespace, audit):
    params = dict(name="reviews", namespace=namespace, service_host="reviews", subsets=[V1])
    preview = run(check=True, diff=True, **params)
    assert preview["changed"] is True
    assert preview["result"]["spec"]["subsets"] == [{"name": "v1", "labels": {"version": "v1"}}]
    with pytest.raises(ApiError) as missing:
        admin.get(_path(namespace))
    assert missing.value.status == 404
    dry = [e for e in _requests(audit, namespace) if e["verb"] in WRITE_VERBS]
    assert len(dry) == 1 and "dryRun=All" in dry[0]["requestURI"]  # validated by the server
    assert _stored_writes(audit, namespace) == []

    run(**params)
    before = admin.get(_path(namespace))
    audit.mark()
    preview = run(check=True, **dict(params, subsets=[V1, V2]))
    assert preview["changed"] is True and [s["name"] for s in preview["result"]["spec"]["subsets"]] == ["v1", "v2"]
    deleting = run(check=True, name="reviews", namespace=namespace, state="absent")
    assert deleting["changed"] is True and deleting["result"] == {}
    assert admin.get(_path(namespace)) == before
    assert _stored_writes(audit, namespace) == []


def test_diff_holds_the_spec_only(run, admin, namespace):
    created = run(diff=True, name="reviews", namespace=namespace, service_host="reviews", subsets=[V1],
                  labels={"app": "reviews"}, annotations={"owner": "release"})
    assert created["diff"]["before"] == {}
    assert created["diff"]["after"] == {"host": "reviews", "subsets": [{"name": "v1", "labels": {"version": "v1"}}]}
    updated = run(diff=True, name="reviews", namespace=namespace, service_host="reviews", subsets=[V2])
    assert updated["diff"]["before"] == created["diff"]["after"]
    assert updated["diff"]["after"] == {"host": "reviews", "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                                                                       {"name": "v2", "labels": {"version": "v2"}}]}
    assert namespace in updated["diff"]["before_header"] and "DestinationRule" in updated["diff"]["before_header"]
    no_diff = run(name="reviews", namespace=namespace, service_host="reviews", subsets=[V2])
    assert "diff" not in no_diff
    deleted = run(diff=True, name="reviews", namespace=namespace, state="absent")
    assert deleted["diff"]["before"] == updated["diff"]["after"] and deleted["diff"]["after"] == {}


def test_absent_deletes_once(run, admin, namespace, audit):
    run(name="reviews", namespace=namespace, service_host="reviews", subsets=[V1])
    audit.mark()
    deleted = run(name="reviews", namespace=namespace, state="absent")
    assert deleted["changed"] is True and deleted["result"] == {}
    with pytest.raises(ApiError) as missing:
        admin.get(_path(namespace))
    assert missing.value.status == 404
    assert run(name="reviews", namespace=namespace, state="absent")["changed"] is False
    assert [e["verb"] for e in _stored_writes(audit, namespace)] == ["delete"]


@pytest.mark.parametrize("bad, option, words", [
    (dict(subsets=[V1, dict(V1)]), "subsets", "'v1' is listed more than once"),
    (dict(subsets=[{"name": "v1", "labels": {"version": ["v1"]}}]), "subsets", "must be a string"),
    (dict(service_host=" "), "service_host", "service_host: reviews"),
    (dict(labels={"app": {"nested": 1}}), "labels", "must be a string"),
    (dict(subsets=[{"labels": {"version": "v9"}}]), "name", "missing required arguments: name"),
    (dict(service_host=None), "service_host", "state is present but all of the following are missing: service_host"),
], ids=["duplicate-subset", "label-not-a-string", "empty-host", "metadata-label-not-a-string",
        "subset-without-name", "no-host"])
def test_bad_options_are_refused_before_any_request(run, admin, namespace, audit, bad, option, words):
    run(name="reviews", namespace=namespace, service_host="reviews", subsets=[V1])
    before = admin.get(_path(namespace))
    audit.mark()
    params = dict(name="reviews", namespace=namespace, service_host="reviews", subsets=[V2])
    params.update(bad)
    if params["service_host"] is None:
        del params["service_host"]
    refused = run(**params)
    assert refused["failed"] is True
    assert option in refused["msg"] and words in refused["msg"], refused["msg"]
    assert admin.get(_path(namespace)) == before
    assert _requests(audit, namespace) == []  # refused before the cluster was asked anything


def test_the_api_servers_validation_error_is_reported_and_nothing_changes(run, admin, namespace, audit):
    run(name="reviews", namespace=namespace, service_host="reviews", subsets=[V1])
    before = admin.get(_path(namespace))
    audit.mark()
    # The Istio CRD's CEL rule refuses a connect timeout below 1ms; the module passes traffic
    # policies through, so this is the server's own 422.
    refused = run(name="reviews", namespace=namespace, service_host="reviews", subsets=[V1, V2],
                  traffic_policy={"connectionPool": {"tcp": {"connectTimeout": "0s"}}})
    assert refused["failed"] is True and refused["status"] == 422
    assert f"DestinationRule {namespace}/reviews" in refused["msg"]
    assert "spec.trafficPolicy.connectionPool.tcp.connectTimeout" in refused["msg"]
    assert "must be a valid duration greater than 1ms" in refused["msg"]
    assert refused["causes"][0]["field"] == "spec.trafficPolicy.connectionPool.tcp.connectTimeout"
    assert admin.get(_path(namespace)) == before
    assert _stored_writes(audit, namespace) == []


def test_a_concurrent_writer_between_read_and_write_keeps_both_changes(run, admin, namespace, audit, monkeypatch):
    run(name="reviews", namespace=namespace, service_host="reviews", subsets=[V1])
    path = _path(namespace)
    real_get = K8sClient.get
    raced = []

    def get_then_someone_else_writes(self, api_path):
        obj = real_get(self, api_path)
        if api_path.endswith(path) and not raced:
            # Right after our read, another tool adds subset v3 and an annotation.
            other = admin.get(path)
            other["spec"]["subsets"].append({"name": "v3", "labels": {"version": "v3"}})
            other["metadata"].setdefault("annotations", {})["other-tool"] = "was-here"
            raced.append(admin.request("PUT", path, other)["metadata"]["resourceVersion"])
        return obj

    monkeypatch.setattr(K8sClient, "get", get_then_someone_else_writes)
    audit.mark()
    result = run(name="reviews", namespace=namespace, service_host="reviews", subsets=[V2], labels={"app": "reviews"})
    assert raced and result["changed"] is True
    live = admin.get(path)
    assert [s["name"] for s in live["spec"]["subsets"]] == ["v1", "v3", "v2"]
    assert live["metadata"]["annotations"]["other-tool"] == "was-here"
    assert live["metadata"]["labels"] == {"app": "reviews"}
    ours = [e for e in _requests(audit, namespace) if e["verb"] == "update"]
    # The first PUT carried the stale resourceVersion and got 409; the second one was stored.
    assert [e["responseStatus"]["code"] for e in ours] == [409, 200]


def test_older_api_version_and_a_missing_namespace(run, module_runner, namespace):
    created = run(name="reviews", namespace=namespace, service_host="reviews", subsets=[V1],
                  api_version="networking.istio.io/v1beta1")
    assert created["changed"] is True and created["result"]["apiVersion"] == "networking.istio.io/v1beta1"
    # The same object read through v1 already has everything.
    assert run(name="reviews", namespace=namespace, service_host="reviews", subsets=[V1])["changed"] is False

    # As admin: the release identity may not even look outside its namespaces.
    failed = module_runner("destination_rule", name="reviews", namespace=f"{namespace}-missing",
                           service_host="reviews", subsets=[V1])
    assert failed["failed"] is True and failed["status"] == 404
    assert f"DestinationRule {namespace}-missing/reviews" in failed["msg"]
