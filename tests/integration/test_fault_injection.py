"""canary.istio.fault_injection on the sandbox's real API server.

Reference case (design §2): `ratings`, a 7 s delay for requests with `end-user: jason`; bookinfo's
virtual-service-ratings-test-delay.yaml is the form Istio documents for it.
"""
from __future__ import annotations

import copy

import pytest

from _routing_fixtures import Requests, bookinfo_object, canonical, create, object_path, spec_of

pytestmark = pytest.mark.integration

JASON_DELAY = dict(name="ratings", rule="ratings-delay-jason", headers={"end-user": {"exact": "jason"}},
                   delay={"fixed_delay": "7s", "percentage": 100})


@pytest.fixture
def ratings(admin, namespace):
    """bookinfo's `ratings` VirtualService (all traffic to v1), with a label and a second route
    the fault rule must not disturb. Returns the object as stored."""
    vs = bookinfo_object("networking/virtual-service-all-v1.yaml", "VirtualService", "ratings")
    vs["metadata"]["labels"] = {"team": "bookinfo"}
    vs["spec"]["http"].insert(0, {
        "name": "canary-testers",
        "match": [{"headers": {"x-canary": {"exact": "yes"}}}],
        "route": [{"destination": {"host": "ratings", "subset": "v2"}}],
        "retries": {"attempts": 2, "perTryTimeout": "2s"},
    })
    return create(admin, namespace, vs)


def vs_object(admin, namespace):
    return admin.get(object_path("VirtualService", namespace, "ratings"))


def test_reference_delay_for_jason_matches_istios_own_example(admin, namespace, audit, ratings, module_runner):
    audit.mark()
    result = module_runner("fault_injection", namespace=namespace, **JASON_DELAY)
    requests = Requests(audit, namespace)
    assert result["changed"] is True, result

    spec = spec_of(admin, "VirtualService", namespace, "ratings")
    istio = bookinfo_object("networking/virtual-service-ratings-test-delay.yaml", "VirtualService", "ratings")["spec"]
    # Other route first, then the fault rule just before the catch-all, then the catch-all.
    assert [r.get("name") for r in spec["http"]] == ["canary-testers", "ratings-delay-jason", None]
    rule = dict(spec["http"][1])
    assert rule.pop("name") == "ratings-delay-jason"
    assert canonical(rule) == canonical(istio["http"][0])  # 7s, 100%, jason, to the catch-all's v1
    assert canonical(spec["http"][2]) == canonical(istio["http"][1])
    assert canonical(spec["http"][0]) == canonical(ratings["spec"]["http"][0])
    assert result["rule"] == spec["http"][1]
    assert requests.reads == [("get", "virtualservices")]
    assert requests.writes == [("update", "virtualservices")]


def test_second_run_is_unchanged_and_writes_nothing(admin, namespace, audit, ratings, module_runner):
    assert module_runner("fault_injection", namespace=namespace, **JASON_DELAY)["changed"] is True
    version = vs_object(admin, namespace)["metadata"]["resourceVersion"]
    audit.mark()
    # percentage given as text and without the default: the same fault.
    again = module_runner("fault_injection", namespace=namespace,
                          **dict(JASON_DELAY, delay={"fixed_delay": "7s"}))
    requests = Requests(audit, namespace)
    assert again["changed"] is False, again
    assert requests.reads == [("get", "virtualservices")] and requests.writes == [] and requests.dry_runs == []
    assert vs_object(admin, namespace)["metadata"]["resourceVersion"] == version


def test_update_changes_the_rule_in_place(admin, namespace, ratings, module_runner):
    module_runner("fault_injection", namespace=namespace, **JASON_DELAY)
    result = module_runner("fault_injection", namespace=namespace, **dict(
        JASON_DELAY, delay={"fixed_delay": "500ms", "percentage": 50}, abort={"http_status": 503, "percentage": 10}))
    assert result["changed"] is True, result
    spec = spec_of(admin, "VirtualService", namespace, "ratings")
    assert [r.get("name") for r in spec["http"]] == ["canary-testers", "ratings-delay-jason", None]
    assert spec["http"][1]["fault"] == {
        "delay": {"fixedDelay": "500ms", "percentage": {"value": 50}},
        "abort": {"httpStatus": 503, "percentage": {"value": 10}},
    }


def test_abort_with_uri_and_given_destinations(admin, namespace, ratings, module_runner):
    result = module_runner("fault_injection", namespace=namespace, name="ratings", rule="abort-testers",
                           headers={"x-team": {"prefix": "test"}, "x-env": "qa"}, uri={"prefix": "/ratings/"},
                           abort={"http_status": 500, "percentage": 25.5},
                           destinations=[{"subset": "v1", "weight": 50}, {"subset": "v2", "weight": 50, "port": 9080}])
    assert result["changed"] is True, result
    rule = spec_of(admin, "VirtualService", namespace, "ratings")["http"][1]
    assert rule == {
        "name": "abort-testers",
        "match": [{"headers": {"x-team": {"prefix": "test"}, "x-env": {"exact": "qa"}}, "uri": {"prefix": "/ratings/"}}],
        "fault": {"abort": {"httpStatus": 500, "percentage": {"value": 25.5}}},
        "route": [{"destination": {"host": "ratings", "subset": "v1"}, "weight": 50},
                  {"destination": {"host": "ratings", "subset": "v2", "port": {"number": 9080}}, "weight": 50}],
    }


def test_check_mode_previews_with_a_dry_run_and_stores_nothing(admin, namespace, audit, ratings, module_runner):
    before = vs_object(admin, namespace)
    audit.mark()
    result = module_runner("fault_injection", check=True, namespace=namespace, **JASON_DELAY)
    requests = Requests(audit, namespace)
    assert result["changed"] is True and result["rule"]["name"] == "ratings-delay-jason", result
    assert vs_object(admin, namespace) == before
    assert requests.writes == [] and requests.dry_runs == [("update", "virtualservices")]


def test_diff_shows_the_spec_before_and_after_only(admin, namespace, ratings, module_runner):
    result = module_runner("fault_injection", diff=True, namespace=namespace, **JASON_DELAY)
    diff = result["diff"]
    assert diff["after_header"] == "VirtualService %s/ratings (spec)" % namespace
    assert canonical(diff["before"]) == canonical(ratings["spec"])  # the spec alone, no metadata
    assert canonical(diff["after"]) == canonical(spec_of(admin, "VirtualService", namespace, "ratings"))
    assert len(diff["after"]["http"]) == len(diff["before"]["http"]) + 1


def test_absent_gives_back_the_virtual_service_as_it_was(admin, namespace, audit, ratings, module_runner):
    original = canonical(ratings["spec"])
    module_runner("fault_injection", namespace=namespace, **JASON_DELAY)
    module_runner("fault_injection", namespace=namespace, **dict(JASON_DELAY, rule="second", headers={"end-user": "bob"}))
    assert len(spec_of(admin, "VirtualService", namespace, "ratings")["http"]) == 4

    removed = [module_runner("fault_injection", namespace=namespace, name="ratings", rule=rule, state="absent")
               for rule in ("ratings-delay-jason", "second")]
    assert [r["changed"] for r in removed] == [True, True] and removed[-1]["rule"] is None
    assert canonical(spec_of(admin, "VirtualService", namespace, "ratings")) == original  # byte-equal spec
    assert vs_object(admin, namespace)["metadata"]["labels"] == {"team": "bookinfo"}

    audit.mark()
    again = module_runner("fault_injection", namespace=namespace, name="ratings", rule="second", state="absent")
    assert again["changed"] is False, again
    assert Requests(audit, namespace).writes == []


def test_absent_on_a_missing_virtual_service_is_unchanged(namespace, audit, module_runner):
    result = module_runner("fault_injection", namespace=namespace, name="ratings", rule="r", state="absent")
    assert result["changed"] is False and result["rule"] is None, result
    assert Requests(audit, namespace).writes == []


# ------------------------------------------------------------------------------------- refusals

REFUSALS = [
    # (id, params replacing JASON_DELAY's, option named, words, whether the VirtualService was read)
    ("delay-no-unit", dict(delay={"fixed_delay": "7"}), "delay.fixed_delay", "no unit", False),
    ("delay-under-1ms", dict(delay={"fixed_delay": "500us"}), "delay.fixed_delay", "minimum of 1ms", False),
    ("delay-sub-ms", dict(delay={"fixed_delay": "1.5ms"}), "delay.fixed_delay", "millisecond precision", False),
    ("percentage-over-100", dict(delay={"fixed_delay": "7s", "percentage": 150}), "delay.percentage", "between 0.0001 and 100", False),
    ("percentage-tiny", dict(delay={"fixed_delay": "7s", "percentage": 0.00001}), "delay.percentage", "between 0.0001 and 100", False),
    ("status-700", dict(delay=None, abort={"http_status": 700}), "abort.http_status", "outside 200-599", False),
    ("status-199", dict(delay=None, abort={"http_status": 199}), "abort.http_status", "outside 200-599", False),
    ("bad-match-kind", dict(headers={"end-user": {"like": "jason"}}), "headers.end-user", "unknown match kind", True),
    ("not-a-fault-rule", dict(rule="canary-testers"), "rule", "is not a fault rule", True),
    ("destinations-bad-weights", dict(destinations=[{"subset": "v1", "weight": 60}, {"subset": "v2", "weight": 60}]),
     "destinations", "sum to exactly 100", True),
]


@pytest.mark.parametrize("params,option,words,reads_vs", [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_refusal_leaves_the_virtual_service_unchanged(
        admin, namespace, audit, ratings, module_runner, params, option, words, reads_vs):
    before = vs_object(admin, namespace)
    audit.mark()
    result = module_runner("fault_injection", namespace=namespace, **dict(JASON_DELAY, **params))
    requests = Requests(audit, namespace)
    assert result.get("failed") is True, result
    assert result["msg"].startswith(option + ":") and words in result["msg"], result["msg"]
    assert result["option"] == option
    assert vs_object(admin, namespace) == before
    assert requests.writes == [] and requests.dry_runs == []
    # Istio's own checks on the fault run before anything is read.
    assert requests.reads == ([("get", "virtualservices")] if reads_vs else [])


def test_removing_a_route_that_is_not_a_fault_rule_is_refused(admin, namespace, ratings, module_runner):
    before = vs_object(admin, namespace)
    result = module_runner("fault_injection", namespace=namespace, name="ratings", rule="canary-testers", state="absent")
    assert result.get("failed") is True and result["option"] == "rule", result
    assert vs_object(admin, namespace) == before


@pytest.mark.parametrize("missing", ["headers", "delay"])
def test_present_needs_a_match_and_a_fault(namespace, audit, module_runner, missing):
    params = dict(JASON_DELAY)
    del params[missing]
    result = module_runner("fault_injection", namespace=namespace, **params)
    assert result.get("failed") is True and missing in result["msg"], result
    assert Requests(audit, namespace).events == []


def test_present_on_a_missing_virtual_service_fails(namespace, audit, module_runner):
    result = module_runner("fault_injection", namespace=namespace, **JASON_DELAY)
    assert result.get("failed") is True and result["option"] == "name", result
    assert "canary.istio.virtual_service" in result["msg"]
    assert Requests(audit, namespace).writes == []


# ----------------------------------------------------------------------------- concurrent writer

def test_concurrent_writer_between_our_read_and_our_write_keeps_both_changes(
        admin, namespace, audit, ratings, module_runner, monkeypatch):
    from ansible_collections.canary.istio.plugins.module_utils._k8s.transport import K8sClient

    vs_path = object_path("VirtualService", namespace, "ratings")
    original_get = K8sClient.get
    interfered = []

    def get_then_someone_writes(self, path):
        obj = original_get(self, path)
        if path == vs_path and not interfered:
            theirs = admin.get(vs_path)
            theirs["spec"]["http"][0]["timeout"] = "4s"  # another tool edits another route
            interfered.append(admin.request("PUT", vs_path, theirs))
        return obj

    monkeypatch.setattr(K8sClient, "get", get_then_someone_writes)
    audit.mark()
    result = module_runner("fault_injection", namespace=namespace, **JASON_DELAY)
    requests = Requests(audit, namespace)
    assert interfered and result["changed"] is True, result
    spec = spec_of(admin, "VirtualService", namespace, "ratings")
    assert spec["http"][0]["timeout"] == "4s"
    assert spec["http"][1]["name"] == "ratings-delay-jason"
    assert requests.codes("update") == [409, 200]


# ------------------------------------------------------------------------------------ release kubeconfig

def test_release_kubeconfig_adds_and_removes_the_rule(admin, namespace, audit, ratings, module_runner, release_kubeconfig):
    original = copy.deepcopy(ratings["spec"])
    audit.mark()
    added = module_runner("fault_injection", kubeconfig=release_kubeconfig, namespace=namespace, **JASON_DELAY)
    removed = module_runner("fault_injection", kubeconfig=release_kubeconfig, namespace=namespace,
                            name="ratings", rule=JASON_DELAY["rule"], state="absent")
    assert added["changed"] is True and removed["changed"] is True, (added, removed)
    requests = Requests(audit, namespace)
    assert requests.users == {"canary-release"}
    assert requests.writes == [("update", "virtualservices")] * 2
    assert canonical(spec_of(admin, "VirtualService", namespace, "ratings")) == canonical(original)
