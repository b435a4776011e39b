"""virtual_service on the real API server: create, update, idempotence, check mode, diff, absent,
refusals that write nothing, the server's own validation, a concurrent writer, the release identity,
and one run through ansible-playbook with module_defaults."""
from __future__ import annotations

import copy

import pytest

from ansible_collections.canary.istio.plugins.module_utils._k8s.transport import K8sClient
from sandbox.api import ApiError, collection_path
from sandbox.audit import WRITE_VERBS

from runners import run_playbook  # pylint: disable=import-error

RELEASE_USER = "canary-release"
RESOURCE = "virtualservices"


@pytest.fixture
def run(module_runner, release_kubeconfig):
    """Run virtual_service as the release identity (the least-privilege token)."""

    def run_(check: bool = False, diff: bool = False, **params) -> dict:
        params.setdefault("kubeconfig", release_kubeconfig)
        return module_runner("virtual_service", check=check, diff=diff, **params)

    return run_


def _path(namespace: str, name: str = "reviews") -> str:
    return f"{collection_path('VirtualService', namespace)}/{name}"


def _stored_writes(audit, namespace: str, user: str = RELEASE_USER) -> list[dict]:
    """Writes the API server accepted and stored: not dry runs, not refused."""
    return [e for e in audit.events(user)
            if e["verb"] in WRITE_VERBS and e.get("objectRef", {}).get("resource") == RESOURCE
            and e.get("objectRef", {}).get("namespace") == namespace
            and "dryRun=All" not in e["requestURI"] and e.get("responseStatus", {}).get("code", 0) < 400]


def _requests(audit, namespace: str, user: str = RELEASE_USER) -> list[dict]:
    return [e for e in audit.events(user) if e.get("objectRef", {}).get("namespace") == namespace]


# Typed routes as a playbook gives them, and the Istio routes they must become.
ROUTES = [
    {"name": "jason",
     "match": [{"headers": {"end-user": {"exact": "jason"}}},
               {"headers": {"x-canary": {"prefix": "yes"}}, "uri": {"regex": "^/reviews/[0-9]+$"}}],
     "destinations": [{"subset": "v2"}],
     "timeout": "3s",
     "headers": {"request": {"set": {"x-route": "jason"}, "remove": ["x-debug"]}}},
    {"name": "chaos",
     "match": [{"headers": {"x-chaos": {"exact": "yes"}}, "uri": {"prefix": "/reviews"}}],
     "destinations": [{"subset": "v1"}],
     "fault": {"delay": {"fixed_delay": "7s", "percentage": 50}, "abort": {"http_status": 503, "percentage": 10}}},
    {"name": "default",
     "destinations": [{"subset": "v1", "weight": 90, "port": 9080}, {"subset": "v2", "weight": 10, "port": 9080}],
     "retries": {"attempts": 3, "per_try_timeout": "2s", "retry_on": "5xx,reset"},
     "mirror": {"subset": "v3"}, "mirror_percentage": 12.5},
]
ISTIO_ROUTES = [
    {"name": "jason",
     "match": [{"headers": {"end-user": {"exact": "jason"}}},
               {"headers": {"x-canary": {"prefix": "yes"}}, "uri": {"regex": "^/reviews/[0-9]+$"}}],
     "route": [{"destination": {"host": "reviews", "subset": "v2"}}],
     "timeout": "3s",
     "headers": {"request": {"set": {"x-route": "jason"}, "remove": ["x-debug"]}}},
    {"name": "chaos",
     "match": [{"headers": {"x-chaos": {"exact": "yes"}}, "uri": {"prefix": "/reviews"}}],
     "route": [{"destination": {"host": "reviews", "subset": "v1"}}],
     "fault": {"delay": {"fixedDelay": "7s", "percentage": {"value": 50}},
               "abort": {"httpStatus": 503, "percentage": {"value": 10}}}},
    {"name": "default",
     "route": [{"destination": {"host": "reviews", "subset": "v1", "port": {"number": 9080}}, "weight": 90},
               {"destination": {"host": "reviews", "subset": "v2", "port": {"number": 9080}}, "weight": 10}],
     "retries": {"attempts": 3, "perTryTimeout": "2s", "retryOn": "5xx,reset"},
     "mirror": {"host": "reviews", "subset": "v3"}, "mirrorPercentage": {"value": 12.5}},
]
ALL_TO_V1 = [{"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}]


def test_default_subset_then_typed_routes_then_back(run, admin, namespace, audit):
    base = dict(name="reviews", namespace=namespace, hosts=["reviews"])
    created = run(default_subset="v1", labels={"app": "reviews"}, **base)
    assert created["changed"] is True
    live = admin.get(_path(namespace))
    assert live["spec"] == {"hosts": ["reviews"], "http": ALL_TO_V1}
    assert live["metadata"]["labels"] == {"app": "reviews"}
    assert created["result"]["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]
    assert "managedFields" not in created["result"]["metadata"]

    audit.mark()
    assert run(default_subset="v1", labels={"app": "reviews"}, **base)["changed"] is False
    assert _stored_writes(audit, namespace) == []

    routed = run(http=copy.deepcopy(ROUTES), gateways=["mesh"], **base)
    assert routed["changed"] is True
    live = admin.get(_path(namespace))
    assert live["spec"] == {"hosts": ["reviews"], "gateways": ["mesh"], "http": ISTIO_ROUTES}
    assert live["metadata"]["labels"] == {"app": "reviews"}  # labels not given: kept

    audit.mark()
    again = run(http=copy.deepcopy(ROUTES), gateways=["mesh"], **base)
    assert again["changed"] is False
    assert again["result"]["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]
    assert _stored_writes(audit, namespace) == []

    # default_subset moves only the catch-all; the header-matched routes and gateways stay.
    back = run(default_subset="v2", **base)
    assert back["changed"] is True
    live = admin.get(_path(namespace))
    assert live["spec"]["http"][:2] == ISTIO_ROUTES[:2]
    assert live["spec"]["http"][2]["route"] == [{"destination": {"host": "reviews", "subset": "v2", "port": {"number": 9080}}}]
    assert live["spec"]["http"][2]["retries"] == ISTIO_ROUTES[2]["retries"]
    assert live["spec"]["gateways"] == ["mesh"]


def test_fields_the_module_does_not_manage_survive_an_update(run, admin, namespace):
    admin.create(collection_path("VirtualService", namespace), {
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "reviews", "labels": {"team": "a"}, "annotations": {"note": "keep"}},
        "spec": {"hosts": ["reviews"], "exportTo": ["."], "gateways": ["mesh"],
                 "tcp": [{"match": [{"port": 9090}], "route": [{"destination": {"host": "reviews"}}]}],
                 "http": ALL_TO_V1}})
    run(name="reviews", namespace=namespace, hosts=["reviews", "reviews.other"], http=copy.deepcopy(ROUTES[2:]),
        annotations={"owner": "release"})
    live = admin.get(_path(namespace))
    assert live["spec"]["exportTo"] == ["."] and live["spec"]["gateways"] == ["mesh"]
    assert live["spec"]["tcp"] == [{"match": [{"port": 9090}], "route": [{"destination": {"host": "reviews"}}]}]
    assert live["spec"]["hosts"] == ["reviews", "reviews.other"]
    assert live["spec"]["http"] == ISTIO_ROUTES[2:]
    assert live["metadata"]["labels"] == {"team": "a"}
    assert live["metadata"]["annotations"] == {"note": "keep", "owner": "release"}


def test_check_mode_is_a_server_side_dry_run_that_stores_nothing(run, admin, namespace, audit):
    base = dict(name="reviews", namespace=namespace, hosts=["reviews"])
    preview = run(check=True, http=copy.deepcopy(ROUTES), **base)
    assert preview["changed"] is True and preview["result"]["spec"]["http"] == ISTIO_ROUTES
    with pytest.raises(ApiError) as missing:
        admin.get(_path(namespace))
    assert missing.value.status == 404
    dry = [e for e in _requests(audit, namespace) if e["verb"] in WRITE_VERBS]
    assert len(dry) == 1 and "dryRun=All" in dry[0]["requestURI"]
    assert _stored_writes(audit, namespace) == []

    run(default_subset="v1", **base)
    before = admin.get(_path(namespace))
    audit.mark()
    preview = run(check=True, http=copy.deepcopy(ROUTES), **base)
    assert preview["changed"] is True and preview["result"]["spec"]["http"] == ISTIO_ROUTES
    assert run(check=True, default_subset="v1", **base)["changed"] is False
    deleting = run(check=True, name="reviews", namespace=namespace, state="absent")
    assert deleting["changed"] is True and deleting["result"] == {}
    assert admin.get(_path(namespace)) == before
    assert _stored_writes(audit, namespace) == []


def test_diff_holds_the_spec_only(run, namespace):
    base = dict(name="reviews", namespace=namespace, hosts=["reviews"])
    created = run(diff=True, default_subset="v1", labels={"app": "reviews"}, **base)
    assert created["diff"]["before"] == {}
    assert created["diff"]["after"] == {"hosts": ["reviews"], "http": ALL_TO_V1}
    updated = run(diff=True, http=copy.deepcopy(ROUTES), **base)
    assert updated["diff"]["before"] == {"hosts": ["reviews"], "http": ALL_TO_V1}
    assert updated["diff"]["after"] == {"hosts": ["reviews"], "http": ISTIO_ROUTES}
    assert f"VirtualService {namespace}/reviews" in updated["diff"]["after_header"]
    same = run(diff=True, http=copy.deepcopy(ROUTES), **base)
    assert same["changed"] is False and same["diff"]["before"] == same["diff"]["after"]
    assert "diff" not in run(http=copy.deepcopy(ROUTES), **base)
    deleted = run(diff=True, name="reviews", namespace=namespace, state="absent")
    assert deleted["diff"]["before"] == updated["diff"]["after"] and deleted["diff"]["after"] == {}


def test_absent_deletes_once(run, admin, namespace, audit):
    run(name="reviews", namespace=namespace, hosts=["reviews"], default_subset="v1")
    audit.mark()
    assert run(name="reviews", namespace=namespace, state="absent")["changed"] is True
    with pytest.raises(ApiError) as missing:
        admin.get(_path(namespace))
    assert missing.value.status == 404
    assert run(name="reviews", namespace=namespace, state="absent")["changed"] is False
    assert [e["verb"] for e in _stored_writes(audit, namespace)] == ["delete"]


def _routes_with(index: int, **changes) -> list[dict]:
    routes = copy.deepcopy(ROUTES)
    routes[index].update(changes)
    return routes


def _weights(v1, v2) -> list[dict]:
    return [{"subset": "v1", "weight": v1}, {"subset": "v2", "weight": v2}]


@pytest.mark.parametrize("bad, words", [
    (dict(http=_routes_with(2, destinations=_weights(90, 5))),
     "http[2] (route 'default').destinations: weights must sum to exactly 100, these sum to 95 (v1=90, v2=5)"),
    (dict(http=[{"destinations": _weights(60, 60)}]), "http[0].destinations: weights must sum to exactly 100"),
    (dict(http=_routes_with(2, destinations=[{"subset": "v1", "weight": 90}, {"subset": "v2"}])),
     "http[2] (route 'default').destinations: v2 has no weight"),
    (dict(http=_routes_with(2, destinations=_weights(110, -10))), "weight of subset 'v2' is -10"),
    (dict(http=_routes_with(2, destinations=_weights(87.5, 12.5))), "'weight'"),
    (dict(http=_routes_with(2, destinations=_weights("ninety", 10))), "'weight'"),
    (dict(http=_routes_with(0, destinations=[{"subset": "v2", "weight": 50}])),
     "http[0] (route 'jason').destinations: a single destination receives all traffic"),
    (dict(http=_routes_with(1, timeout="0s")), "http[1] (route 'chaos').timeout: duration '0s' is shorter than Istio's minimum of 1ms"),
    (dict(http=_routes_with(1, fault={"abort": {"http_status": 700}})), "http[1] (route 'chaos').fault.abort.http_status"),
    (dict(http=_routes_with(1, name="default")), "route name 'default' is used more than once"),
    (dict(http=_routes_with(0, match=[{"uri": {"exact": "/a", "prefix": "/b"}}])), "mutually exclusive: exact|prefix|regex"),
    (dict(http=_routes_with(0, match=[{"headers": {"end-user": {"glob": "j*"}}}])), "http[0] (route 'jason').match.headers.end-user"),
    (dict(http=_routes_with(0, destinations=[])), "http[0] (route 'jason').destinations: a route needs at least one destination"),
    (dict(http=[]), "http: give at least one route"),
    (dict(http=ROUTES, default_subset="v1"), "mutually exclusive: http|default_subset"),
    (dict(http=None), "missing: http, default_subset"),
    (dict(hosts=None, default_subset="v1"), "missing: hosts"),
], ids=["sum-95", "sum-120-unnamed", "missing-weight", "negative", "fraction", "not-a-number", "lone-weight-50",
        "timeout-0s", "abort-700", "duplicate-name", "two-uri-kinds", "unknown-match-kind", "no-destinations",
        "no-routes", "http-and-default-subset", "neither", "no-hosts"])
def test_bad_options_are_refused_before_any_request(run, admin, namespace, audit, bad, words):
    base = dict(name="reviews", namespace=namespace, hosts=["reviews"])
    run(http=copy.deepcopy(ROUTES), **base)
    before = admin.get(_path(namespace))
    audit.mark()
    params = dict(base, **copy.deepcopy(bad))
    params = {k: v for k, v in params.items() if v is not None}
    refused = run(**params)
    assert refused["failed"] is True
    assert words in refused["msg"], refused["msg"]
    assert admin.get(_path(namespace)) == before
    assert _requests(audit, namespace) == []  # refused before the cluster was asked anything


def test_the_api_servers_validation_error_is_reported_and_nothing_changes(run, admin, namespace, audit):
    base = dict(name="reviews", namespace=namespace, hosts=["reviews"])
    run(default_subset="v1", **base)
    before = admin.get(_path(namespace))
    audit.mark()
    # The module checks durations as istiod does, but not Go's range of ~2562047h; the CRD's CEL
    # rule cannot read this one and refuses it with 422.
    refused = run(http=_routes_with(2, timeout="3000000h"), **base)
    assert refused["failed"] is True and refused["status"] == 422
    assert f"cannot create or update VirtualService {namespace}/reviews" in refused["msg"]
    assert "spec.http[2].timeout" in refused["msg"] and "must be a valid duration greater than 1ms" in refused["msg"]
    assert refused["causes"][0]["field"] == "spec.http[2].timeout"
    # A schema error (header values are strings) comes back the same way.
    refused = run(http=_routes_with(0, headers={"request": {"set": {"x-version": 2}}}), **base)
    assert refused["failed"] is True and refused["status"] == 422
    assert "spec.http[0].headers.request.set.x-version" in refused["msg"] and "must be of type string" in refused["msg"]
    assert admin.get(_path(namespace)) == before
    assert _stored_writes(audit, namespace) == []


def test_a_concurrent_writer_between_read_and_write_keeps_both_changes(run, admin, namespace, audit, monkeypatch):
    base = dict(name="reviews", namespace=namespace, hosts=["reviews"])
    run(default_subset="v1", **base)
    path = _path(namespace)
    real_get = K8sClient.get
    raced = []

    def get_then_someone_else_writes(self, api_path):
        obj = real_get(self, api_path)
        if api_path.endswith(path) and not raced:
            # Right after our read, another tool adds a TCP route and an annotation.
            other = admin.get(path)
            other["spec"]["tcp"] = [{"route": [{"destination": {"host": "reviews", "port": {"number": 9090}}}]}]
            other["metadata"].setdefault("annotations", {})["other-tool"] = "was-here"
            raced.append(admin.request("PUT", path, other)["metadata"]["resourceVersion"])
        return obj

    monkeypatch.setattr(K8sClient, "get", get_then_someone_else_writes)
    audit.mark()
    result = run(http=copy.deepcopy(ROUTES), **base)
    assert raced and result["changed"] is True
    live = admin.get(path)
    assert live["spec"]["http"] == ISTIO_ROUTES
    assert live["spec"]["tcp"] == [{"route": [{"destination": {"host": "reviews", "port": {"number": 9090}}}]}]
    assert live["metadata"]["annotations"]["other-tool"] == "was-here"
    ours = [e for e in _requests(audit, namespace) if e["verb"] == "update"]
    assert [e["responseStatus"]["code"] for e in ours] == [409, 200]


def test_older_api_version(run, namespace):
    base = dict(name="reviews", namespace=namespace, hosts=["reviews"], default_subset="v1")
    created = run(api_version="networking.istio.io/v1alpha3", **base)
    assert created["changed"] is True and created["result"]["apiVersion"] == "networking.istio.io/v1alpha3"
    assert run(**base)["changed"] is False


def test_playbook_with_module_defaults_group(admin, namespace, release_kubeconfig, tmp_path):
    """The AnsiballZ path: both modules through ansible-playbook, the cluster set once for the group."""
    playbook = tmp_path / "rules.yml"
    playbook.write_text(f"""
- name: Rules for reviews
  hosts: localhost
  connection: local
  gather_facts: false
  module_defaults:
    group/canary.istio.istio:
      kubeconfig: {release_kubeconfig}
      context: sandbox-1
      namespace: {namespace}
  tasks:
    - name: Subsets
      canary.istio.destination_rule:
        name: reviews
        service_host: reviews
        subsets:
          - {{name: v1, labels: {{version: v1}}}}
          - {{name: v2, labels: {{version: v2}}}}
    - name: All traffic to v1
      canary.istio.virtual_service:
        name: reviews
        hosts: [reviews]
        default_subset: v1
""")
    first = run_playbook(str(playbook))
    assert "changed=2" in first.stdout, first.stdout
    second = run_playbook(str(playbook), "--check", "--diff")
    assert "changed=0" in second.stdout and "failed=0" in second.stdout, second.stdout
    assert admin.get(_path(namespace))["spec"] == {"hosts": ["reviews"], "http": ALL_TO_V1}
