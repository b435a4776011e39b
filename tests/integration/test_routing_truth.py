"""Where traffic really goes, by Envoy's rules, on the sandbox's real API server: meshes shaped like
real ones (a shadowed catch-all, header routes, a name-only match, two VirtualServices for one host,
FQDN and short hosts, delegates, subsets named unlike their versions, fault rules an earlier route
would take, a version still served by a minor route) read with mesh_info and changed with
traffic_split and fault_injection, which refuse what would not move traffic."""
from __future__ import annotations

import time

import pytest

from _routing_fixtures import Requests, create, deploy_app, object_path

pytestmark = pytest.mark.integration

JASON = [{"headers": {"end-user": {"exact": "jason"}}}]


def _dest(subset, weight=None, host="reviews"):
    entry = {"destination": {"host": host, "subset": subset}}
    if weight is not None:
        entry["weight"] = weight
    return entry


def _vs(name, http, hosts=("reviews",)):
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": name},
            "spec": {"hosts": list(hosts), "http": http}}


def _dr(subsets):
    """subsets: name -> version label value."""
    return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": "reviews"},
            "spec": {"host": "reviews", "subsets": [{"name": n, "labels": {"version": v}} for n, v in subsets.items()]}}


@pytest.fixture
def reviews(admin, namespace):
    """Service reviews with Ready v1, v2 and v3 pods and a DestinationRule with a subset each."""
    deploy_app(admin, namespace, "reviews", ("v1", "v2", "v3"))
    create(admin, namespace, _dr({"v1": "v1", "v2": "v2", "v3": "v3"}))
    return namespace


def _spec(admin, namespace, name="reviews"):
    return admin.get(object_path("VirtualService", namespace, name))["spec"]


def test_a_shadowed_route_is_reported_refused_and_the_first_catch_all_is_changed(admin, reviews, audit, module_runner):
    ns = reviews
    create(admin, ns, _vs("reviews", [{"name": "all", "route": [_dest("v1")]},
                                      {"name": "split", "route": [_dest("v1", 50), _dest("v2", 50)]}]))
    mesh = module_runner("mesh_info", service_host="reviews", namespace=ns)
    assert mesh["catch_all"]["name"] == "all" and mesh["version_weights"] == {"v1": 100.0}
    assert [r["reachable"] for r in mesh["routes"]] == [True, False]
    assert "v2" not in mesh["serving"], "a route after the first catch-all sends nothing"

    audit.mark()
    refused = module_runner("traffic_split", name="reviews", namespace=ns, route="split", weights={"v1": 90, "v2": 10})
    assert refused["failed"] and refused["option"] == "route"
    assert "'split' is never reached: route 'all' before it matches every request" in refused["msg"]
    assert Requests(audit, ns).writes == []

    changed = module_runner("traffic_split", name="reviews", namespace=ns, stable="v1", canary="v2", canary_weight=10)
    assert changed["changed"] and changed["route"] == "all"
    assert _spec(admin, ns)["http"][0]["route"] == [_dest("v1", 90), _dest("v2", 10)]
    after = module_runner("mesh_info", service_host="reviews", namespace=ns)
    assert after["version_weights"] == {"v1": 90.0, "v2": 10.0}


def test_a_header_route_before_the_catch_all_counts_as_traffic_moved(admin, reviews, module_runner):
    ns = reviews
    create(admin, ns, _vs("reviews", [{"name": "jason", "match": JASON, "route": [_dest("v2")]},
                                      {"route": [_dest("v1")]}]))
    mesh = module_runner("mesh_info", service_host="reviews", namespace=ns,
                         release={"stable": "v1", "canary": "v2", "steps": [10, 100]})
    assert mesh["version_weights"] == {"v1": 100.0}
    assert mesh["release"]["live_weight"] == 0 and mesh["release"]["traffic_moved"] is True
    assert mesh["serving"]["v2"] == ["VirtualService 'reviews' route 'jason' to subset 'v2' (100%)"]
    assert mesh["serving_deployments"]["reviews-v2"] == mesh["serving"]["v2"]


def test_a_match_holding_only_a_name_is_the_catch_all(admin, reviews, module_runner):
    ns = reviews
    create(admin, ns, _vs("reviews", [{"name": "named", "match": [{"name": "everything"}], "route": [_dest("v1")]},
                                      {"name": "later", "route": [_dest("v1", 50), _dest("v2", 50)]}]))
    result = module_runner("traffic_split", name="reviews", namespace=ns, weights={"v1": 80, "v2": 20})
    assert result["changed"] and result["route"] == "named"
    http = _spec(admin, ns)["http"]
    assert http[0]["route"] == [_dest("v1", 80), _dest("v2", 20)] and http[1]["route"] == [_dest("v1", 50), _dest("v2", 50)]
    assert module_runner("mesh_info", service_host="reviews", namespace=ns)["default_weights"] == {"v1": 80, "v2": 20}


def test_two_virtual_services_for_one_host_oldest_wins_and_the_other_is_refused(admin, reviews, audit, module_runner):
    ns = reviews
    create(admin, ns, _vs("reviews-old", [{"route": [_dest("v1")]}], hosts=("reviews.%s.svc.cluster.local" % ns,)))
    time.sleep(1.1)  # creation times have whole seconds: make "oldest" not a tie on the name
    create(admin, ns, _vs("a-reviews", [{"route": [_dest("v1", 90), _dest("v2", 10)]}]))
    mesh = module_runner("mesh_info", service_host="reviews", namespace=ns)
    assert mesh["virtual_service"] == "reviews-old" and mesh["dropped_virtual_services"] == ["a-reviews"]
    assert mesh["version_weights"] == {"v1": 100.0}

    audit.mark()
    refused = module_runner("traffic_split", name="a-reviews", namespace=ns, weights={"v1": 50, "v2": 50})
    assert refused["failed"] and refused["option"] == "name"
    assert "Istio ignores VirtualService 'a-reviews'" in refused["msg"] and "'reviews-old'" in refused["msg"]
    assert Requests(audit, ns).writes == []
    # The one in use is a trap while the other exists (delete it and the other takes over): refused
    # unless forced, as the rollback does, so traffic can always go back.
    trap = module_runner("traffic_split", name="reviews-old", namespace=ns, weights={"v1": 50, "v2": 50})
    assert trap["failed"] and "VirtualServices 'reviews-old', 'a-reviews' all name host" in trap["msg"], trap
    assert Requests(audit, ns).writes == []
    forced = module_runner("traffic_split", name="reviews-old", namespace=ns, weights={"v1": 50, "v2": 50}, force=True)
    assert forced["changed"]


def test_fqdn_and_short_hosts_mixed(admin, reviews, module_runner):
    ns = reviews
    fqdn = "reviews.%s.svc.cluster.local" % ns
    create(admin, ns, _vs("reviews", [{"route": [_dest("v1", 70, host=fqdn), _dest("v2", 30)]}], hosts=(fqdn,)))
    for host in ("reviews", fqdn):
        mesh = module_runner("mesh_info", service_host=host, namespace=ns)
        assert mesh["virtual_service"] == "reviews" and mesh["version_weights"] == {"v1": 70.0, "v2": 30.0}, host
    # Istio takes a dotted name as written: reviews.<ns> is not the Service, and no rule names it.
    assert module_runner("mesh_info", service_host="reviews.%s" % ns, namespace=ns)["virtual_service"] is None
    assert module_runner("traffic_split", name="reviews", namespace=ns, weights={"v1": 60, "v2": 40})["changed"]


def test_a_delegate_is_reported_and_not_misread(admin, reviews, module_runner):
    ns = reviews
    create(admin, ns, _vs("reviews", [{"delegate": {"name": "reviews-team", "namespace": ns}}]))
    mesh = module_runner("mesh_info", service_host="reviews", namespace=ns)
    assert mesh["default_weights"] == {} and mesh["version_weights"] == {}
    assert any("delegates to VirtualService 'reviews-team'" in p for p in mesh["problems"])
    refused = module_runner("traffic_split", name="reviews", namespace=ns, weights={"v1": 50, "v2": 50})
    assert refused["failed"] and "delegates" in refused["msg"]


def test_subset_names_unlike_version_labels(admin, namespace, module_runner):
    ns = namespace
    deploy_app(admin, ns, "reviews", ("v1", "v2"))
    create(admin, ns, _dr({"stable": "v1", "canary": "v2"}))
    create(admin, ns, _vs("reviews", [{"route": [_dest("stable", 80), _dest("canary", 20)]}]))
    mesh = module_runner("mesh_info", service_host="reviews", namespace=ns,
                         release={"stable": "v1", "canary": "v2", "steps": [10, 20, 50, 100]})
    assert mesh["version_weights"] == {"v1": 80.0, "v2": 20.0}
    assert mesh["release"]["live_weight"] == 20 and mesh["release"]["steps_to_run"] == [20, 50, 100]
    assert [(s["name"], s["versions"], s["deployments"]) for s in mesh["subsets"]] == [
        ("stable", ["v1"], ["reviews-v1"]), ("canary", ["v2"], ["reviews-v2"])]


def test_a_fault_rule_an_earlier_route_would_take_goes_before_it(admin, reviews, module_runner):
    ns = reviews
    create(admin, ns, _vs("reviews", [{"name": "jason", "match": JASON, "route": [_dest("v2")]},
                                      {"route": [_dest("v1")]}]))
    result = module_runner("fault_injection", name="reviews", namespace=ns, rule="jason-delay",
                           headers={"end-user": {"exact": "jason"}}, delay={"fixed_delay": "7s"})
    assert result["changed"]
    http = _spec(admin, ns)["http"]
    assert [r.get("name") for r in http] == ["jason-delay", "jason", None]
    assert http[0]["route"] == [_dest("v2")], "jason's requests still go to v2, now delayed"
    again = module_runner("fault_injection", name="reviews", namespace=ns, rule="jason-delay",
                          headers={"end-user": {"exact": "jason"}}, delay={"fixed_delay": "7s"})
    assert again["changed"] is False


def test_a_version_still_served_by_a_fault_rule_or_a_minor_route_is_not_deleted(admin, reviews, module_runner, release_kubeconfig):
    from runners import run_playbook  # pylint: disable=import-error
    import json

    ns = reviews
    create(admin, ns, _vs("reviews", [
        {"name": "chaos", "match": [{"headers": {"x-chaos": {"exact": "1"}}}],
         "fault": {"abort": {"httpStatus": 503, "percentage": {"value": 10}}}, "route": [_dest("v3")]},
        {"route": [_dest("v1", 100), _dest("v2", 0)]}]))
    mesh = module_runner("mesh_info", service_host="reviews", namespace=ns)
    assert mesh["serving"]["v3"] == ["fault rule of VirtualService 'reviews' route 'chaos' to subset 'v3' (100%)"]
    extra = {"canary_app": "reviews", "canary_namespace": ns, "canary_stable_version": "v1", "canary_version": "v2",
             "canary_kubeconfig": release_kubeconfig, "canary_context": "sandbox-1"}
    proc = run_playbook("canary.istio.delete_old_versions", "-e", json.dumps(extra), check=False)
    assert proc.returncode != 0
    assert "v3 of reviews still receive traffic (v3: fault rule of VirtualService 'reviews' route 'chaos'" in proc.stdout
    assert admin.get(object_path("Deployment", ns, "reviews-v3"))["metadata"]["name"] == "reviews-v3"
