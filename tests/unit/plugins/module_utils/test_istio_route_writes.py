# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_istio/route_writes.py: route weights written, and route_back, against a local API server."""

from __future__ import annotations

from ansible_collections.canary.istio.plugins.module_utils._istio.route_writes import route_back, write_route_weights
from ansible_collections.canary.istio.tests.unit.plugins.module_utils.k8s_fakes import (
    TOKEN,
    VS_PATH,
    FakeApiServer,
    client_for,
    virtual_service,
)


def kubeconfig_for(api: FakeApiServer, token: str = TOKEN) -> dict:
    return {"apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "k", "cluster": {"server": api.url}}],
            "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
            "users": [{"name": "u", "user": {"token": token}}]}


def writes(api: FakeApiServer) -> list[dict]:
    return [r for r in api.requests if r["method"] in ("POST", "PUT", "DELETE")]


def test_write_route_weights_changes_the_weights_only_and_is_idempotent(api) -> None:
    stored = virtual_service({"v1": 90, "v2": 10})
    stored["spec"]["http"][0]["timeout"] = "3s"
    api.put_object(VS_PATH, stored)
    client = client_for(api)
    result = write_route_weights(client, VS_PATH, {"v1": 100, "v2": 0})
    assert result.changed
    route = api.objects[VS_PATH]["spec"]["http"][0]
    assert {d["destination"]["subset"]: d.get("weight", 0) for d in route["route"]} == {"v1": 100, "v2": 0}
    assert route["timeout"] == "3s"
    assert len(writes(api)) == 1
    again = write_route_weights(client, VS_PATH, {"v1": 100, "v2": 0})
    assert not again.changed and len(writes(api)) == 1


def test_write_route_weights_dry_run_stores_nothing(api) -> None:
    api.put_object(VS_PATH, virtual_service({"v1": 90, "v2": 10}))
    result = write_route_weights(client_for(api), VS_PATH, {"v1": 100, "v2": 0}, dry_run=True)
    assert result.changed and writes(api)[0]["query"].get("dryRun") == "All"
    route = api.objects[VS_PATH]["spec"]["http"][0]["route"]
    assert {d["destination"]["subset"]: d.get("weight") for d in route} == {"v1": 90, "v2": 10}


def test_route_back_sends_everything_to_stable_and_says_what_it_did(api) -> None:
    api.put_object(VS_PATH, virtual_service({"v1": 80, "v2": 20}))
    done = route_back({"to_version": "v1", "virtual_service": "reviews", "kubeconfig": kubeconfig_for(api)}, "prod", "v2")
    assert done.outcome["changed"] is True and "error" not in done.outcome
    assert done.outcome["previous_weights"] == {"v1": 80, "v2": 20} and done.outcome["weights"] == {"v1": 100, "v2": 0}
    assert done.outcome["virtual_service"] == "prod/reviews"
    assert TOKEN in done.secrets and done.warnings == []  # loopback http: nothing to warn about
    assert TOKEN not in str(done.outcome)


def test_route_back_never_raises_and_hides_the_token(api) -> None:
    done = route_back({"to_version": "v1", "virtual_service": "nosuch", "kubeconfig": kubeconfig_for(api)}, "prod", "v2")
    assert done.outcome["changed"] is False
    assert done.outcome["error"].startswith("VirtualService prod/nosuch not routed back to v1: ")
    refused = route_back({"to_version": "v1", "virtual_service": "reviews",
                          "kubeconfig": kubeconfig_for(api, token="wrong-token-" + TOKEN[:6])}, "prod", "v2")
    assert "401" in refused.outcome["error"] and "wrong-token-" not in refused.outcome["error"]
    assert writes(api) == []


def test_route_back_warns_when_tls_verification_is_off() -> None:
    kubeconfig = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
                  "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:9", "insecure-skip-tls-verify": True}}],
                  "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
                  "users": [{"name": "u", "user": {"token": TOKEN}}]}
    done = route_back({"to_version": "v1", "virtual_service": "reviews", "kubeconfig": kubeconfig}, "prod", "v2")
    assert "error" in done.outcome
    assert done.warnings and "TLS certificate verification is off for https://127.0.0.1:9" in done.warnings[0]


ROUTE_PATH = "/apis/gateway.networking.k8s.io/v1/namespaces/prod/httproutes/reviews"


def http_route(weights: dict) -> dict:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "reviews", "namespace": "prod", "resourceVersion": "1"},
            "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": "reviews"}],
                     "rules": [{"matches": [{"headers": [{"name": "end-user", "value": "jason"}]}],
                                "backendRefs": [{"name": "reviews-v2", "port": 9080}]},
                               {"backendRefs": [{"name": "reviews-%s" % v, "port": 9080, "weight": w} for v, w in weights.items()]}]}}


def test_route_back_on_an_http_route_weighs_its_catch_all_rule(api) -> None:
    api.put_object(ROUTE_PATH, http_route({"v1": 80, "v2": 20}))
    done = route_back({"to_version": "v1", "virtual_service": "reviews", "kind": "HTTPRoute", "kubeconfig": kubeconfig_for(api)},
                      "prod", "v2")
    assert done.outcome["changed"] is True and "error" not in done.outcome, done.outcome
    assert done.outcome["kind"] == "HTTPRoute"
    assert done.outcome["previous_weights"] == {"v1": 80, "v2": 20} and done.outcome["weights"] == {"v1": 100, "v2": 0}
    rules = api.objects[ROUTE_PATH]["spec"]["rules"]
    assert rules[0]["backendRefs"] == [{"name": "reviews-v2", "port": 9080}]  # jason's rule untouched
    assert [(b["name"], b["weight"]) for b in rules[1]["backendRefs"]] == [("reviews-v1", 100), ("reviews-v2", 0)]
    assert [r["method"] for r in writes(api)] == ["PUT"]
    again = route_back({"to_version": "v1", "virtual_service": "reviews", "kind": "HTTPRoute", "kubeconfig": kubeconfig_for(api)},
                       "prod", "v2")
    assert again.outcome["changed"] is False and len(writes(api)) == 1


def test_route_back_on_a_missing_http_route_says_so_without_raising(api) -> None:
    done = route_back({"to_version": "v1", "virtual_service": "reviews", "kind": "HTTPRoute", "kubeconfig": kubeconfig_for(api)},
                      "prod", "v2")
    assert done.outcome["changed"] is False
    assert done.outcome["error"].startswith("HTTPRoute prod/reviews not routed back to v1:"), done.outcome
