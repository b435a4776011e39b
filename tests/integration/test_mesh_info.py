"""canary.istio.mesh_info on the sandbox's real API server: what it reports, each kind of problem,
and that it never writes."""
from __future__ import annotations

import pytest

from _routing_fixtures import Requests, bookinfo_object, create, deploy_app, object_path

pytestmark = pytest.mark.integration

DR_ALL = ("networking/destination-rule-all.yaml", "DestinationRule", "reviews")  # subsets v1, v2, v3
VS_90_10 = ("networking/virtual-service-reviews-90-10.yaml", "VirtualService", "reviews")

HEALTHY_SUBSETS = [
    {"name": "v1", "labels": {"version": "v1"}, "ready_pods": 1, "versions": ["v1"], "deployments": ["reviews-v1"],
     "receives_traffic": True},
    {"name": "v2", "labels": {"version": "v2"}, "ready_pods": 1, "versions": ["v2"], "deployments": ["reviews-v2"],
     "receives_traffic": True},
    {"name": "v3", "labels": {"version": "v3"}, "ready_pods": 0, "versions": [], "deployments": [], "receives_traffic": False},
]
SIX_READS = [("list", "virtualservices"), ("list", "destinationrules"), ("list", "httproutes"), ("get", "services"),
             ("list", "pods"), ("list", "deployments")]


@pytest.fixture
def reviews(admin, namespace):
    """Service reviews with Ready v1 and v2 pods (none of v3), bookinfo's DestinationRule and its
    90/10 VirtualService."""
    deploy_app(admin, namespace, "reviews", ("v1", "v2"))
    create(admin, namespace, bookinfo_object(*DR_ALL))
    create(admin, namespace, bookinfo_object(*VS_90_10))


def with_weights(weights: dict) -> dict:
    vs = bookinfo_object(*VS_90_10)
    vs["spec"]["http"][0]["route"] = [{"destination": {"host": "reviews", "subset": s}, "weight": w}
                                      for s, w in weights.items()]
    return vs


def test_healthy_host_has_no_problems_and_six_reads(admin, namespace, audit, reviews, module_runner):
    audit.mark()
    result = module_runner("mesh_info", service_host="reviews", namespace=namespace)
    requests = Requests(audit, namespace)

    assert result["changed"] is False
    assert result["problems"] == [], result
    assert result["virtual_services"] == ["reviews"]
    assert (result["destination_rule"], result["destination_rules"]) == ("reviews", ["reviews"])
    assert [(r["vs"], r["name"], r["match"], r["weights"], r["catch_all"], r["reachable"]) for r in result["routes"]] == [
        ("reviews", None, [], {"v1": 90, "v2": 10}, True, True)]
    assert result["catch_all"]["label"] == "VirtualService 'reviews' route #0"
    assert result["version_weights"] == {"v1": 90.0, "v2": 10.0}
    assert result["traffic"] == "traffic now: v1 90%, v2 10% (VirtualService 'reviews' route #0)"
    assert sorted(result["serving_deployments"]) == ["reviews-v1", "reviews-v2"]
    assert result["subsets"] == HEALTHY_SUBSETS
    assert result["faults"] == []
    assert requests.reads == SIX_READS
    assert requests.writes == [] and requests.dry_runs == []


def test_check_mode_gives_the_same_report_and_writes_nothing(admin, namespace, audit, reviews, module_runner):
    normal = module_runner("mesh_info", service_host="reviews", namespace=namespace)
    audit.mark()
    checked = module_runner("mesh_info", check=True, service_host="reviews", namespace=namespace)
    assert checked == normal
    requests = Requests(audit, namespace)
    assert requests.writes == [] and requests.dry_runs == [] and len(requests.reads) == 6


def test_full_host_name_reads_the_same(namespace, reviews, module_runner):
    result = module_runner("mesh_info", service_host="reviews.%s.svc.cluster.local" % namespace, namespace=namespace)
    assert result["problems"] == [] and result["subsets"] == HEALTHY_SUBSETS, result


def test_fault_rules_are_listed(admin, namespace, module_runner):
    deploy_app(admin, namespace, "ratings", ("v1",))
    create(admin, namespace, bookinfo_object("networking/destination-rule-all.yaml", "DestinationRule", "ratings"))
    create(admin, namespace, bookinfo_object("networking/virtual-service-ratings-test-delay.yaml", "VirtualService", "ratings"))
    result = module_runner("mesh_info", service_host="ratings", namespace=namespace)
    assert result["faults"] == [{
        "vs": "ratings", "name": None,
        "match": [{"headers": {"end-user": {"exact": "jason"}}}],
        "delay": {"fixed_delay": "7s", "percentage": 100}, "abort": None,
    }], result
    assert [r["match"] for r in result["routes"]] == [[{"headers": {"end-user": {"exact": "jason"}}}], []]
    assert result["problems"] == []


# ------------------------------------------------------------------------------ each kind of problem

def _route_to_missing_subset(admin, namespace):
    deploy_app(admin, namespace, "reviews", ("v1",))
    create(admin, namespace, bookinfo_object(*DR_ALL))
    create(admin, namespace, with_weights({"v1": 90, "v4": 10}))


def _subset_without_ready_pods(admin, namespace):
    deploy_app(admin, namespace, "reviews", ("v1",))
    create(admin, namespace, bookinfo_object(*DR_ALL))
    create(admin, namespace, with_weights({"v1": 90, "v3": 10}))


def _weights_not_100(admin, namespace):
    deploy_app(admin, namespace, "reviews", ("v1", "v2"))
    create(admin, namespace, bookinfo_object(*DR_ALL))
    create(admin, namespace, with_weights({"v1": 60, "v2": 30}))  # no webhook here to stop it


def _two_virtual_services(admin, namespace):
    deploy_app(admin, namespace, "reviews", ("v1",))
    create(admin, namespace, bookinfo_object(*DR_ALL))
    create(admin, namespace, with_weights({"v1": 100}))
    other = with_weights({"v1": 100})
    other["metadata"]["name"] = "reviews-copy"
    other["spec"]["hosts"] = ["reviews.%s.svc.cluster.local" % namespace]
    create(admin, namespace, other)


def _no_destination_rule(admin, namespace):
    deploy_app(admin, namespace, "reviews", ("v1",))
    create(admin, namespace, with_weights({"v1": 100}))


def _no_service(admin, namespace):
    create(admin, namespace, bookinfo_object(*DR_ALL))
    create(admin, namespace, with_weights({"v1": 100}))


PROBLEMS = [
    ("route-to-missing-subset", _route_to_missing_subset,
     ["VirtualService 'reviews' route #0 sends to subset 'v4', which DestinationRule 'reviews' does not define"]),
    ("subset-without-ready-pods", _subset_without_ready_pods,
     ["subset 'v3' has no Ready pods but receives traffic from VirtualService 'reviews' route #0"]),
    ("weights-not-100", _weights_not_100,
     ["VirtualService 'reviews' route #0 has weights summing to 90, not 100"]),
    ("two-virtual-services", _two_virtual_services,
     ["2 VirtualServices route host 'reviews' for the mesh ('reviews', 'reviews-copy'): Istio uses one whole, "
      "'reviews' (the oldest with a route for this port), and ignores the others; keep one"]),
    ("no-destination-rule", _no_destination_rule,
     ["VirtualService 'reviews' route #0 sends to subset 'v1', which has no DestinationRule for host 'reviews'"]),
]


@pytest.mark.parametrize("setup,expected", [p[1:] for p in PROBLEMS], ids=[p[0] for p in PROBLEMS])
def test_each_kind_of_problem_is_reported(admin, namespace, audit, module_runner, setup, expected):
    setup(admin, namespace)
    audit.mark()
    result = module_runner("mesh_info", service_host="reviews", namespace=namespace)
    assert result["problems"] == expected, result
    assert Requests(audit, namespace).writes == []


def test_missing_service_is_a_problem_and_its_subsets_have_no_pods(admin, namespace, module_runner):
    _no_service(admin, namespace)
    result = module_runner("mesh_info", service_host="reviews", namespace=namespace)
    assert result["problems"] == [
        "subset 'v1' has no Ready pods but receives traffic from VirtualService 'reviews' route #0",
        "there is no Service 'reviews' in namespace '%s', so no pod serves the host" % namespace,
    ], result
    assert [s["ready_pods"] for s in result["subsets"]] == [0, 0, 0]


def test_no_virtual_service_and_no_rule_is_an_empty_report_with_four_reads(namespace, audit, module_runner):
    audit.mark()
    result = module_runner("mesh_info", service_host="reviews", namespace=namespace)
    assert (result["virtual_services"], result["routes"], result["subsets"]) == ([], [], [])
    assert result["problems"] == ["there is no Service 'reviews' in namespace '%s', so no pod serves the host" % namespace]
    assert result["destination_rule"] is None and result["catch_all"] is None
    assert Requests(audit, namespace).reads == [("list", "virtualservices"), ("list", "destinationrules"), ("list", "httproutes"),
                                                ("get", "services")]


def test_two_destination_rules_for_the_host_are_merged_as_istio_does(admin, namespace, module_runner):
    _route_to_missing_subset(admin, namespace)
    extra = bookinfo_object(*DR_ALL)
    extra["metadata"]["name"] = "reviews-v4"
    extra["spec"]["subsets"] = [{"name": "v4", "labels": {"version": "v4"}}, {"name": "v1", "labels": {"version": "other"}}]
    create(admin, namespace, extra)
    result = module_runner("mesh_info", service_host="reviews", namespace=namespace)
    assert result["destination_rules"] == ["reviews", "reviews-v4"]
    assert [(s["name"], s["labels"]) for s in result["subsets"]] == [
        ("v1", {"version": "v1"}), ("v2", {"version": "v2"}), ("v3", {"version": "v3"}), ("v4", {"version": "v4"})]
    # v4 is defined now; it has no pod and gets 10%.
    assert result["problems"] == [
        "subset 'v4' has no Ready pods but receives traffic from VirtualService 'reviews' route #0"], result


def test_release_kubeconfig_can_read_everything(admin, namespace, audit, reviews, module_runner, release_kubeconfig):
    audit.mark()
    result = module_runner("mesh_info", kubeconfig=release_kubeconfig, service_host="reviews", namespace=namespace)
    assert result["problems"] == [] and result["subsets"] == HEALTHY_SUBSETS, result
    requests = Requests(audit, namespace)
    assert requests.users == {"canary-release"} and requests.writes == []
    assert admin.get(object_path("VirtualService", namespace, "reviews"))["metadata"]["generation"] == 1
