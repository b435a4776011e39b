"""canary.istio.traffic_split on the sandbox's real API server.

Every test reads the VirtualService back with the admin client and counts the module's own
requests in the audit log (by its User-Agent, in the test's namespace).
"""
from __future__ import annotations

import copy

import pytest

from _routing_fixtures import Requests, bookinfo_object, canonical, create, deploy_app, object_path, spec_of

pytestmark = pytest.mark.integration

# The reference VirtualService of step 6, dressed with what traffic_split must never touch: a
# header-matched route with retries and a timeout, a fault rule, a mirror, header rewrites,
# labels and annotations.
REVIEWS_VS = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {
        "name": "reviews",
        "labels": {"team": "bookinfo"},
        "annotations": {"example.com/owner": "team-a"},
    },
    "spec": {
        "hosts": ["reviews"],
        "http": [
            {
                "name": "jason",
                "match": [{"headers": {"end-user": {"exact": "jason"}}}],
                "route": [{"destination": {"host": "reviews", "subset": "v2"}}],
                "timeout": "3s",
                "retries": {"attempts": 3, "perTryTimeout": "1s", "retryOn": "5xx"},
            },
            {
                "name": "chaos",
                "match": [{"headers": {"x-chaos": {"exact": "abort"}}}],
                "fault": {"abort": {"httpStatus": 503, "percentage": {"value": 50}}},
                "route": [{"destination": {"host": "reviews", "subset": "v1"}}],
            },
            {
                "name": "default",
                "route": [{"destination": {"host": "reviews", "subset": "v1", "port": {"number": 9080}},
                           "headers": {"request": {"set": {"x-version": "v1"}}}}],
                "mirror": {"host": "reviews", "subset": "v3"},
                "mirrorPercentage": {"value": 5},
                "timeout": "10s",
            },
        ],
    },
}

CANARY_10 = dict(name="reviews", stable="v1", canary="v2", canary_weight=10)


@pytest.fixture
def reviews(admin, namespace):
    """Service reviews with Ready v1 and v2 pods, the bookinfo DestinationRule (v1, v2, v3; no v3
    pods) and REVIEWS_VS sending everything to v1. Returns the VirtualService as stored."""
    deploy_app(admin, namespace, "reviews", ("v1", "v2"))
    create(admin, namespace, bookinfo_object("networking/destination-rule-all.yaml", "DestinationRule", "reviews"))
    return create(admin, namespace, REVIEWS_VS)


def vs_object(admin, namespace):
    return admin.get(object_path("VirtualService", namespace, "reviews"))


def catch_all(spec):
    return spec["http"][2]


def test_canary_step_sets_only_the_weights_with_five_reads_and_one_write(admin, namespace, audit, reviews, module_runner):
    audit.mark()
    result = module_runner("traffic_split", namespace=namespace, **CANARY_10)
    requests = Requests(audit, namespace)

    assert result["changed"] is True, result
    assert result["route"] == "default"
    assert result["previous_weights"] == {"v1": 100}
    assert result["weights"] == {"v1": 90, "v2": 10}
    stored = vs_object(admin, namespace)
    expected = copy.deepcopy(REVIEWS_VS["spec"])
    expected["http"][2]["route"] = [
        {"destination": {"host": "reviews", "subset": "v1", "port": {"number": 9080}},
         "headers": {"request": {"set": {"x-version": "v1"}}}, "weight": 90},
        {"destination": {"host": "reviews", "subset": "v2", "port": {"number": 9080}}, "weight": 10},
    ]
    assert canonical(stored["spec"]) == canonical(expected)
    assert stored["metadata"]["labels"] == REVIEWS_VS["metadata"]["labels"]
    assert stored["metadata"]["annotations"] == REVIEWS_VS["metadata"]["annotations"]
    # The smallest correct set: the VirtualService, the host's DestinationRules, the Service's
    # selector, its pods (one list for all subsets); then one write.
    assert requests.reads == [("list", "virtualservices"), ("list", "destinationrules"), ("list", "httproutes"),
                              ("get", "services"), ("list", "pods")]
    assert requests.writes == [("update", "virtualservices")]
    assert requests.dry_runs == []


def test_second_run_is_unchanged_with_one_read_and_no_write(admin, namespace, audit, reviews, module_runner):
    first = module_runner("traffic_split", namespace=namespace, **CANARY_10)
    assert first["changed"] is True, first
    version = vs_object(admin, namespace)["metadata"]["resourceVersion"]

    audit.mark()
    second = module_runner("traffic_split", namespace=namespace, **CANARY_10)
    requests = Requests(audit, namespace)
    assert second["changed"] is False, second
    assert second["previous_weights"] == second["weights"] == {"v1": 90, "v2": 10}
    assert requests.reads == [("list", "virtualservices")]
    assert requests.writes == [] and requests.dry_runs == []
    assert vs_object(admin, namespace)["metadata"]["resourceVersion"] == version

    # The same split written as weights is the same split.
    third = module_runner("traffic_split", namespace=namespace, name="reviews", weights={"v2": "10", "v1": 90})
    assert third["changed"] is False, third


def test_update_to_a_later_step_and_back(admin, namespace, reviews, module_runner):
    module_runner("traffic_split", namespace=namespace, **CANARY_10)
    result = module_runner("traffic_split", namespace=namespace, name="reviews", weights={"v1": 0, "v2": 100})
    assert result["changed"] is True, result
    assert (result["previous_weights"], result["weights"]) == ({"v1": 90, "v2": 10}, {"v1": 0, "v2": 100})
    weights = {d["destination"]["subset"]: d["weight"] for d in catch_all(spec_of(admin, "VirtualService", namespace, "reviews"))["route"]}
    assert weights == {"v1": 0, "v2": 100}


def test_check_mode_previews_with_a_dry_run_and_stores_nothing(admin, namespace, audit, reviews, module_runner):
    before = vs_object(admin, namespace)
    audit.mark()
    result = module_runner("traffic_split", check=True, namespace=namespace, **CANARY_10)
    requests = Requests(audit, namespace)

    assert result["changed"] is True, result
    assert result["weights"] == {"v1": 90, "v2": 10}
    assert vs_object(admin, namespace) == before
    assert requests.writes == []
    assert requests.dry_runs == [("update", "virtualservices")]  # the server-side preview


def test_diff_shows_the_spec_before_and_after_only(admin, namespace, reviews, module_runner):
    result = module_runner("traffic_split", diff=True, namespace=namespace, **CANARY_10)
    diff = result["diff"]
    assert set(diff) == {"before", "after", "before_header", "after_header"}
    assert diff["before_header"] == diff["after_header"] == "VirtualService %s/reviews (spec)" % namespace
    assert canonical(diff["before"]) == canonical(REVIEWS_VS["spec"])
    assert canonical(diff["after"]) == canonical(spec_of(admin, "VirtualService", namespace, "reviews"))
    assert [d.get("weight") for d in catch_all(diff["after"])["route"]] == [90, 10]


def test_named_route_changes_only_that_route(admin, namespace, reviews, module_runner):
    result = module_runner("traffic_split", namespace=namespace, name="reviews", route="jason",
                           weights={"v2": 50, "v1": 50})
    assert result["changed"] is True and result["route"] == "jason", result
    spec = spec_of(admin, "VirtualService", namespace, "reviews")
    assert spec["http"][0]["route"] == [{"destination": {"host": "reviews", "subset": "v2"}, "weight": 50},
                                        {"destination": {"host": "reviews", "subset": "v1"}, "weight": 50}]
    assert spec["http"][0]["retries"] == REVIEWS_VS["spec"]["http"][0]["retries"]
    assert canonical(spec["http"][1:]) == canonical(REVIEWS_VS["spec"]["http"][1:])


# ------------------------------------------------------------------------------------- refusals

REFUSALS = [
    # (id, params, option named in the error, words of the error, reads the module made)
    ("negative", dict(weights={"v1": 110, "v2": -10}), "weights", "negative", []),
    ("fraction", dict(weights={"v1": 90.5, "v2": 9.5}), "weights", "integer", []),
    ("not-a-number", dict(weights={"v1": "ninety", "v2": 10}), "weights", "integer", []),
    ("sum-99", dict(weights={"v1": 90, "v2": 9}), "weights", "sum to exactly 100", []),
    ("sum-110", dict(weights={"v1": 100, "v2": 10}), "weights", "sum to exactly 100", []),
    ("stable-is-canary", dict(stable="v1", canary="v1", canary_weight=10), "canary", "both name subset", []),
    ("canary-weight-over-100", dict(stable="v1", canary="v2", canary_weight=101), "canary_weight", "0 to 100", []),
    ("route-missing", dict(route="nope", weights={"v1": 90, "v2": 10}), "route", "no HTTP route named 'nope'",
     [("list", "virtualservices")]),
    ("subset-not-in-dr", dict(weights={"v1": 90, "v4": 10}), "weights", "'v4' is not defined in DestinationRule",
     [("list", "virtualservices"), ("list", "destinationrules")]),
    ("canary-not-in-dr", dict(stable="v1", canary="v9", canary_weight=0), "canary", "'v9' is not defined",
     [("list", "virtualservices"), ("list", "destinationrules")]),
    ("no-ready-pod", dict(stable="v1", canary="v3", canary_weight=10), "canary", "'v3' has no Ready pod",
     [("list", "virtualservices"), ("list", "destinationrules"), ("list", "httproutes"), ("get", "services"), ("list", "pods")]),
]


@pytest.mark.parametrize("params,option,words,reads", [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_refusal_leaves_the_virtual_service_unchanged(
        admin, namespace, audit, reviews, module_runner, params, option, words, reads):
    before = vs_object(admin, namespace)
    audit.mark()
    result = module_runner("traffic_split", namespace=namespace, name="reviews", **params)
    requests = Requests(audit, namespace)

    assert result.get("failed") is True, result
    assert result["msg"].startswith(option + ":"), result["msg"]
    assert words in result["msg"]
    assert result["option"] == option
    assert vs_object(admin, namespace) == before  # same spec, same resourceVersion
    assert requests.writes == [] and requests.dry_runs == []
    assert requests.reads == reads


def test_refusal_when_the_virtual_service_does_not_exist(namespace, audit, module_runner):
    audit.mark()
    result = module_runner("traffic_split", namespace=namespace, **CANARY_10)
    assert result.get("failed") is True and result["option"] == "name", result
    assert "VirtualService %s/reviews not found" % namespace in result["msg"]
    assert "canary.istio.virtual_service" in result["msg"]
    requests = Requests(audit, namespace)
    assert requests.reads == [("list", "virtualservices")] and requests.writes == []


def test_refusal_when_no_destination_rule_defines_the_host(admin, namespace, audit, module_runner):
    deploy_app(admin, namespace, "reviews", ("v1",))
    create(admin, namespace, REVIEWS_VS)
    before = vs_object(admin, namespace)
    audit.mark()
    result = module_runner("traffic_split", namespace=namespace, **CANARY_10)
    assert result.get("failed") is True, result
    assert "no DestinationRule in namespace %s defines host 'reviews'" % namespace in result["msg"]
    assert vs_object(admin, namespace) == before
    assert Requests(audit, namespace).writes == []


def test_refusal_when_the_service_is_missing_unless_forced(admin, namespace, audit, module_runner):
    create(admin, namespace, bookinfo_object("networking/destination-rule-all.yaml", "DestinationRule", "reviews"))
    create(admin, namespace, REVIEWS_VS)
    before = vs_object(admin, namespace)
    audit.mark()
    result = module_runner("traffic_split", namespace=namespace, **CANARY_10)
    assert result.get("failed") is True and result["option"] == "force", result
    assert "no Service 'reviews'" in result["msg"]
    assert vs_object(admin, namespace) == before
    assert Requests(audit, namespace).writes == []


def test_no_ready_pod_is_refused_and_force_routes_anyway_with_two_reads(admin, namespace, audit, module_runner):
    deploy_app(admin, namespace, "reviews", ("v1",))  # no v2 pod at all
    create(admin, namespace, bookinfo_object("networking/destination-rule-all.yaml", "DestinationRule", "reviews"))
    create(admin, namespace, REVIEWS_VS)
    before = vs_object(admin, namespace)

    refused = module_runner("traffic_split", namespace=namespace, **CANARY_10)
    assert refused.get("failed") is True, refused
    assert refused["msg"].startswith("canary: subset 'v2' has no Ready pod")
    assert "force=true" in refused["msg"] and "version=v2" in refused["msg"]
    assert refused["ready_pods"] == {"v1": 1, "v2": 0}
    assert vs_object(admin, namespace) == before

    # Weight 0 sends nothing there: adding v2 at 0 needs no pod.
    zero = module_runner("traffic_split", namespace=namespace, name="reviews", weights={"v1": 100, "v2": 0})
    assert zero["changed"] is True, zero

    audit.mark()
    forced = module_runner("traffic_split", namespace=namespace, force=True, **CANARY_10)
    requests = Requests(audit, namespace)
    assert forced["changed"] is True and forced["weights"] == {"v1": 90, "v2": 10}, forced
    # With force the pods are not looked at: the VirtualService and the DestinationRules only.
    assert requests.reads == [("list", "virtualservices"), ("list", "destinationrules")]
    assert requests.writes == [("update", "virtualservices")]


def test_force_does_not_skip_the_destination_rule_check(admin, namespace, reviews, module_runner):
    before = vs_object(admin, namespace)
    result = module_runner("traffic_split", namespace=namespace, name="reviews", force=True, weights={"v1": 90, "v7": 10})
    assert result.get("failed") is True and "'v7' is not defined" in result["msg"], result
    assert vs_object(admin, namespace) == before


def test_pods_of_another_app_with_the_subset_labels_do_not_count(admin, namespace, reviews, module_runner):
    # ratings-v1 carries version=v1 too, but is not selected by the reviews Service.
    deploy_app(admin, namespace, "ratings", ("v1",))
    admin.delete(object_path("Deployment", namespace, "reviews-v2"))
    admin.wait_for("reviews-v2 pods gone", lambda: not admin.get(
        f"/api/v1/namespaces/{namespace}/pods", params={"labelSelector": "app=reviews,version=v2"})["items"], 60)
    result = module_runner("traffic_split", namespace=namespace, **CANARY_10)
    assert result.get("failed") is True and result["ready_pods"] == {"v1": 1, "v2": 0}, result


# ----------------------------------------------------------------------------- concurrent writer

def test_concurrent_writer_between_our_read_and_our_write_keeps_both_changes(
        admin, namespace, audit, reviews, module_runner, monkeypatch):
    from ansible_collections.canary.istio.plugins.module_utils._k8s.transport import K8sClient

    vs_path = object_path("VirtualService", namespace, "reviews")
    original_list = K8sClient.list
    interfered = []

    def list_then_someone_writes(self, path, **kwargs):
        obj = original_list(self, path, **kwargs)
        if path == vs_path.rsplit("/", 1)[0] and not interfered:
            # Right after our read, another tool changes another field of the same object.
            theirs = admin.get(vs_path)
            theirs["spec"]["http"][2]["timeout"] = "20s"
            theirs["metadata"]["labels"]["touched-by"] = "other-tool"
            interfered.append(admin.request("PUT", vs_path, theirs))
        return obj

    monkeypatch.setattr(K8sClient, "list", list_then_someone_writes)
    audit.mark()
    result = module_runner("traffic_split", namespace=namespace, **CANARY_10)
    requests = Requests(audit, namespace)

    assert interfered and result["changed"] is True, result
    stored = vs_object(admin, namespace)
    assert catch_all(stored["spec"])["timeout"] == "20s"  # their change survived
    assert stored["metadata"]["labels"]["touched-by"] == "other-tool"
    assert [d["weight"] for d in catch_all(stored["spec"])["route"]] == [90, 10]  # and ours
    # Our first PUT carried the stale resourceVersion (409), the retry re-read and re-applied.
    assert requests.codes("update") == [409, 200]
    assert requests.reads.count(("list", "virtualservices")) == 1 and requests.reads.count(("get", "virtualservices")) == 1


# ------------------------------------------------------------------------------------ release kubeconfig

def test_release_kubeconfig_can_shift_traffic(admin, namespace, audit, reviews, module_runner, release_kubeconfig):
    audit.mark()
    check = module_runner("traffic_split", check=True, kubeconfig=release_kubeconfig, namespace=namespace, **CANARY_10)
    assert check["changed"] is True, check
    result = module_runner("traffic_split", kubeconfig=release_kubeconfig, namespace=namespace, **CANARY_10)
    assert result["changed"] is True and result["weights"] == {"v1": 90, "v2": 10}, result
    again = module_runner("traffic_split", kubeconfig=release_kubeconfig, namespace=namespace, **CANARY_10)
    assert again["changed"] is False, again
    requests = Requests(audit, namespace)
    assert requests.users == {"canary-release"}
    assert requests.writes == [("update", "virtualservices")]
    assert [d["weight"] for d in catch_all(spec_of(admin, "VirtualService", namespace, "reviews"))["route"]] == [90, 10]


# ------------------------------------------------------------------------------------ ansible-playbook

def test_playbook_step_fault_and_report_with_module_defaults(admin, namespace, reviews, release_kubeconfig, tmp_path):
    """The AnsiballZ path for traffic_split, fault_injection and mesh_info, the cluster set once
    for the group, with the release identity; then a second run changes nothing."""
    from runners import run_playbook  # pylint: disable=import-error

    playbook = tmp_path / "step.yml"
    playbook.write_text(f"""
- name: A canary step of reviews
  hosts: localhost
  connection: local
  gather_facts: false
  module_defaults:
    group/canary.istio.istio:
      kubeconfig: {release_kubeconfig}
      context: sandbox-1
      namespace: {namespace}
  tasks:
    - name: 10% to v2
      canary.istio.traffic_split:
        name: reviews
        stable: v1
        canary: v2
        canary_weight: 10
    - name: Delay jason
      canary.istio.fault_injection:
        name: reviews
        rule: delay-jason
        headers: {{end-user: {{exact: jason}}}}
        delay: {{fixed_delay: 7s}}
    - name: Report
      canary.istio.mesh_info:
        service_host: reviews
      register: mesh
    - name: The report shows the step and the fault, and no problem
      ansible.builtin.assert:
        that:
          - mesh.problems == []
          - "(mesh.routes | last).weights == {{'v1': 90, 'v2': 10}}"
          - mesh.faults | map(attribute='name') | list == ['delay-jason', 'chaos']
""")
    first = run_playbook(str(playbook))
    assert "changed=2" in first.stdout and "failed=0" in first.stdout, first.stdout
    second = run_playbook(str(playbook), "--diff")
    assert "changed=0" in second.stdout and "failed=0" in second.stdout, second.stdout
    spec = spec_of(admin, "VirtualService", namespace, "reviews")
    # Before the jason route, which would take all of jason's requests first; routing like it.
    assert [r.get("name") for r in spec["http"]] == ["delay-jason", "jason", "chaos", "default"]
    assert spec["http"][0]["route"] == spec["http"][1]["route"]


AB_STEP = dict(name="reviews", stable="v1", canary="v2", canary_weight=0,
               canary_match={"headers": {"end-user": {"exact": "jason"}}})


def test_an_ab_step_is_previewed_written_kept_and_removed_by_the_next_step(admin, namespace, audit, reviews, module_runner):
    before = vs_object(admin, namespace)
    preview = module_runner("traffic_split", check=True, diff=True, namespace=namespace, **AB_STEP)
    assert preview["changed"] is True and preview["step_routes"] == {"match": "canary-match-v2", "mirror": None, "sticky": None}, preview
    assert [r.get("name") for r in preview["diff"]["after"]["http"]] == ["canary-match-v2", "jason", "chaos", "default"]
    assert vs_object(admin, namespace) == before

    written = module_runner("traffic_split", namespace=namespace, **AB_STEP)
    assert written["changed"] is True and written["weights"] == {"v1": 100, "v2": 0}, written
    spec = spec_of(admin, "VirtualService", namespace, "reviews")
    # Before the user's own route for jason, which took his requests until now: its settings
    # (timeout, retries) come along, so only the destination changes for him.
    ab = spec["http"][0]
    assert ab["match"] == [{"headers": {"end-user": {"exact": "jason"}}}] and ab["timeout"] == "3s"
    assert ab["retries"] == REVIEWS_VS["spec"]["http"][0]["retries"]
    assert ab["route"] == [{"destination": {"host": "reviews", "subset": "v2", "port": {"number": 9080}}}]
    assert "mirror" not in ab

    audit.mark()
    again = module_runner("traffic_split", namespace=namespace, **AB_STEP)
    assert again["changed"] is False and Requests(audit, namespace).writes == [], again

    moved_on = module_runner("traffic_split", namespace=namespace, **CANARY_10)
    assert moved_on["changed"] is True and moved_on["step_routes"] == {"match": None, "mirror": None, "sticky": None}, moved_on
    spec = spec_of(admin, "VirtualService", namespace, "reviews")
    expected = copy.deepcopy(REVIEWS_VS["spec"])
    expected["http"][2]["route"][0]["weight"] = 90
    expected["http"][2]["route"].append({"destination": {"host": "reviews", "subset": "v2", "port": {"number": 9080}}, "weight": 10})
    assert canonical(spec) == canonical(expected)


def test_a_shadow_step_is_refused_where_the_route_mirrors_elsewhere(admin, namespace, audit, reviews, module_runner):
    before = vs_object(admin, namespace)
    audit.mark()
    result = module_runner("traffic_split", namespace=namespace, name="reviews", stable="v1", canary="v2", canary_weight=0,
                           canary_mirror=100)
    assert result.get("failed") is True and result["option"] == "canary_mirror", result
    assert "already mirrors to subset 'v3'" in result["msg"]
    assert vs_object(admin, namespace) == before and Requests(audit, namespace).writes == []


def test_a_shadow_step_mirrors_and_the_rollback_takes_it_away(admin, namespace, module_runner):
    plain = copy.deepcopy(REVIEWS_VS)
    del plain["spec"]["http"][2]["mirror"], plain["spec"]["http"][2]["mirrorPercentage"]
    deploy_app(admin, namespace, "reviews", ("v1", "v2"))
    create(admin, namespace, bookinfo_object("networking/destination-rule-all.yaml", "DestinationRule", "reviews"))
    create(admin, namespace, plain)
    result = module_runner("traffic_split", namespace=namespace, name="reviews", stable="v1", canary="v2", canary_weight=0,
                           canary_mirror=50)
    assert result["changed"] is True and result["step_routes"] == {"match": None, "mirror": 50, "sticky": None}, result
    default = catch_all(spec_of(admin, "VirtualService", namespace, "reviews"))
    assert default["mirror"] == {"host": "reviews", "subset": "v2", "port": {"number": 9080}}
    assert default["mirrorPercentage"] == {"value": 50}
    back = module_runner("traffic_split", namespace=namespace, name="reviews", stable="v1", canary="v2", canary_weight=0, force=True)
    assert back["changed"] is True, back
    default = catch_all(spec_of(admin, "VirtualService", namespace, "reviews"))
    assert "mirror" not in default and "mirrorPercentage" not in default


def test_an_ab_step_needs_a_ready_canary_even_at_weight_0(admin, namespace, module_runner):
    deploy_app(admin, namespace, "reviews", ("v1",))  # no v2 pod at all
    create(admin, namespace, bookinfo_object("networking/destination-rule-all.yaml", "DestinationRule", "reviews"))
    create(admin, namespace, REVIEWS_VS)
    before = vs_object(admin, namespace)
    refused = module_runner("traffic_split", namespace=namespace, **AB_STEP)
    assert refused.get("failed") is True, refused
    assert refused["msg"].startswith("canary: subset 'v2' has no Ready pod"), refused["msg"]
    assert "v2 would get 0% and the A/B or mirrored requests" in refused["msg"]
    assert vs_object(admin, namespace) == before


def test_a_step_without_the_canary_subset_named_is_refused_by_the_options(namespace, module_runner):
    result = module_runner("traffic_split", namespace=namespace, name="reviews", weights={"v1": 100},
                           canary_mirror=10)
    assert result.get("failed") is True and "canary_mirror" in result["msg"] and "canary" in result["msg"], result
