"""The simulator on the live sandbox: routing fidelity through real VirtualServices, answered over Guance's API."""
from __future__ import annotations

import json
import math
import time

import pytest
import requests

from sandbox.sim.live import LiveSimulator
from sandbox.sim.traffic import TrafficSpec

from _routing_fixtures import bookinfo_object, create, deploy_app, object_path  # pylint: disable=import-error

pytestmark = pytest.mark.integration
POLL_S = 0.5  # the simulator re-reads a namespace's routing objects at most this often
SCRAPE_MS = 10_000  # Recorder's default scrape interval (simulated ms)


@pytest.fixture(name="live")
def live_simulator(sandbox, admin):
    sim = LiveSimulator({sandbox[0].name: admin}, speed=1.0, seed=3, poll_s=POLL_S, tick_s=0.05)
    sim.start()
    yield sim
    sim.stop()


def wait_until(live, sim_ms: int) -> None:
    while live.clock.now_ms() < sim_ms:
        time.sleep(0.2)


def count_by_version(live, namespace: str, start_ms: int, end_ms: int, reporter: str = "destination",
                     extra: str = "") -> dict:
    q = ("M::`istio_prom`:(max(`istio_requests_total`) AS `c`) { `reporter` = '%s', `destination_service_name` = 'reviews', "
         "`destination_service_namespace` = '%s'%s } BY `destination_version`, `response_code`, `source_workload`"
         % (reporter, namespace, extra))
    body = {"queries": [{"qtype": "dql", "query": {"q": q, "timeRange": [start_ms, end_ms], "disableMultipleField": False}}]}
    resp = requests.post(live.endpoints()["guance_openapi"] + "/api/v1/df/query_data_v1", json=body,
                         headers={"DF-API-KEY": live.api_key}, timeout=10)
    assert resp.status_code == 200, resp.text
    out: dict = {}
    for series in resp.json()["content"]["data"][0]["series"]:
        key = (series["tags"]["destination_version"], series["tags"]["response_code"])
        out[key] = out.get(key, 0) + series["values"][0][1]
    return out


def test_split_no_pod_503_and_a_changed_virtual_service_on_the_sandbox(sandbox, admin, namespace, live):
    deploy_app(admin, namespace, "reviews", ready_versions=("v1", "v2"))
    create(admin, namespace, bookinfo_object("networking/destination-rule-all.yaml", "DestinationRule", "reviews"))
    vs = bookinfo_object("networking/virtual-service-reviews-90-10.yaml", "VirtualService", "reviews")
    create(admin, namespace, vs)
    cluster = sandbox[0].name
    live.add_traffic(TrafficSpec(cluster, namespace, "reviews", rate=400))
    start = live.clock.now_ms()
    # Counters are read at scrapes (every 10 s of simulated time): wait for two of them.
    wait_until(live, (start // SCRAPE_MS + 2) * SCRAPE_MS + 200)
    counts = count_by_version(live, namespace, start, live.clock.now_ms())
    total = sum(counts.values())
    assert total > 500, counts
    v2 = counts.get(("v2", "200"), 0)
    # 4 standard deviations of Binomial(total, 0.1)
    assert abs(v2 - 0.1 * total) <= 4 * math.sqrt(total * 0.1 * 0.9), counts

    # Route everything to v3, which has no pod: the client sidecars answer 503 (reporter=source only).
    vs_path = object_path("VirtualService", namespace, "reviews")
    current = admin.get(vs_path)
    current["spec"]["http"] = [{"route": [{"destination": {"host": "reviews", "subset": "v3"}}]}]
    admin.request("PUT", vs_path, current)
    changed = live.clock.now_ms()
    effect = changed + int((POLL_S + 0.5) * 1000)  # the stated take-effect time: one poll plus a margin
    first_scrape = -(-effect // SCRAPE_MS) * SCRAPE_MS
    wait_until(live, first_scrape + SCRAPE_MS + 200)
    now = live.clock.now_ms()
    no_pod = ("unknown", "503")
    assert count_by_version(live, namespace, start, changed, reporter="source").get(no_pod, 0) == 0
    assert count_by_version(live, namespace, first_scrape, now, reporter="source").get(no_pod, 0) > 1000
    # No request reached a reviews pod after the change took effect: destination counters stand still.
    assert count_by_version(live, namespace, start, first_scrape) == count_by_version(live, namespace, start, now)


def dql(live, text: str, time_range: list | None = None) -> list:
    query = {"q": text, "disableMultipleField": False}
    if time_range:
        query["timeRange"] = time_range
    body = {"queries": [{"qtype": "dql", "query": query}]}
    resp = requests.post(live.endpoints()["guance_openapi"] + "/api/v1/df/query_data_v1", json=body,
                         headers={"DF-API-KEY": live.api_key}, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()["content"]["data"][0]["series"]


def test_header_route_and_delay_for_jason_on_the_sandbox(sandbox, admin, namespace, live):
    deploy_app(admin, namespace, "reviews", ready_versions=("v1", "v2", "v3"))
    deploy_app(admin, namespace, "ratings", ready_versions=("v1",))
    for name in ("reviews", "ratings"):
        create(admin, namespace, bookinfo_object("networking/destination-rule-all.yaml", "DestinationRule", name))
    create(admin, namespace, bookinfo_object("networking/virtual-service-reviews-jason-v2-v3.yaml", "VirtualService", "reviews"))
    create(admin, namespace, bookinfo_object("networking/virtual-service-ratings-test-delay.yaml", "VirtualService", "ratings"))
    live.add_traffic(TrafficSpec(sandbox[0].name, namespace, "reviews", rate=200, jason_share=0.3))
    where = "{ `namespace` = '%s' }" % namespace

    def spans_by_version() -> dict:
        series = dql(live, "T::`reviews`:(count(`*`) AS `n`, min(`duration`) AS `lo`, max(`duration`) AS `hi`) %s [10m] "
                           "BY `version`" % where)
        return {s["tags"]["version"]: dict(zip(s["columns"], s["values"][0])) for s in series}

    # Until enough requests are recorded (judged on the count, not on a fixed sleep).
    admin.wait_for("300 recorded requests to reviews",
                   lambda: sum(v["n"] for v in spans_by_version().values()) > 300, 60, interval=0.5)
    got = spans_by_version()
    # jason's requests (and only they) go to v2, and each waits the 7 s delay on its call to ratings.
    assert set(got) == {"v2", "v3"}, got
    total = got["v2"]["n"] + got["v3"]["n"]
    assert total > 300
    assert abs(got["v2"]["n"] - 0.3 * total) <= 4 * math.sqrt(total * 0.3 * 0.7), got
    assert got["v2"]["lo"] >= 7_000_000 and got["v3"]["hi"] < 7_000_000  # µs
    # Both v2 and v3 call ratings once per request; jason's calls start 7 s later, so look ahead.
    now = live.clock.now_ms()
    ratings = dql(live, "T::`ratings`:(count(`*`) AS `n`) %s" % where, time_range=[now - 600_000, now + 60_000])
    assert ratings[0]["values"][0][1] >= total


def test_service_start_status_stop(sandbox, tmp_path, monkeypatch):
    """What `python -m sandbox up/status/down` run: simulator and Prometheus as detached processes."""
    from sandbox.sim import prometheus, service  # pylint: disable=import-outside-toplevel
    from sandbox import cluster, procs  # pylint: disable=import-outside-toplevel
    try:
        prometheus.find_binary()
    except procs.SandboxError as exc:
        pytest.skip(f"PROMETHEUS NOT AVAILABLE: {exc}")
    base = cluster.port_base() + 600  # away from the running sandbox's own simulator
    monkeypatch.setenv("CANARY_ISTIO_SANDBOX_PORT_BASE", str(base))
    endpoints = service.start(tmp_path, traffic=(f"{sandbox[0].name}/default/reviews=5",))
    try:
        assert service.status(tmp_path) == {"simulator": True, "prometheus": True}
        assert endpoints["guance_openapi"] == f"http://127.0.0.1:{base + 1}"
        assert endpoints["prometheus"] == f"http://127.0.0.1:{base + 3}"
        resp = requests.get(endpoints["guance_openapi"] + "/api/v1/validate", headers={"DF-API-KEY": endpoints["guance_api_key"]},
                            timeout=10)
        assert resp.json()["success"] is True
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            got = requests.get(endpoints["prometheus"] + "/api/v1/query", params={"query": "sum(istio_requests_total)"},
                               timeout=10).json()["data"]["result"]
            if got and float(got[0]["value"][1]) > 0:
                break
            time.sleep(1)
        else:
            pytest.fail("Prometheus never scraped the simulator's istio_requests_total")
    finally:
        service.stop(tmp_path)
    assert service.status(tmp_path) == {"simulator": False, "prometheus": False}


def test_sandbox_up_runs_the_simulator_and_prometheus(sandbox):
    """`python -m sandbox up` starts them with the clusters; endpoints.json is what tests and users read."""
    from sandbox import control, versions  # pylint: disable=import-outside-toplevel
    from sandbox.sim import service  # pylint: disable=import-outside-toplevel
    assert service.status(versions.STATE_DIR) == {"simulator": True, "prometheus": True}
    endpoints_file = versions.STATE_DIR / "endpoints.json"
    assert endpoints_file.stat().st_mode & 0o077 == 0  # it holds the API key
    endpoints = json.loads(endpoints_file.read_text())
    resp = requests.get(endpoints["guance_openapi"] + "/api/v1/validate", headers={"DF-API-KEY": endpoints["guance_api_key"]},
                        timeout=10)
    assert resp.json()["success"] is True
    assert requests.get(endpoints["prometheus"] + "/-/ready", timeout=10).status_code == 200
    assert control.status() == 0


def test_series_of_a_deleted_deployment_leave_metrics(sandbox, admin, namespace, live):
    deploy_app(admin, namespace, "reviews", ready_versions=("v1", "v2"))
    create(admin, namespace, bookinfo_object("networking/destination-rule-all.yaml", "DestinationRule", "reviews"))
    create(admin, namespace, bookinfo_object("networking/virtual-service-reviews-80-20.yaml", "VirtualService", "reviews"))
    live.add_traffic(TrafficSpec(sandbox[0].name, namespace, "reviews", rate=200))

    def exposed(workload: str) -> bool:
        text = requests.get(live.endpoints()["metrics"], timeout=10).text
        return f'destination_workload="{workload}",destination_workload_namespace="{namespace}"' in text

    admin.wait_for("reviews-v2 series in /metrics", lambda: exposed("reviews-v2"), 30)
    assert live.forget_gone_workloads() == 0  # every workload still has its Deployment
    admin.delete(object_path("Deployment", namespace, "reviews-v2"))
    admin.wait_for("reviews-v2 gone", lambda: admin.get(object_path("Deployment", namespace, "reviews-v2"),
                                                        ok_missing=True) == {}, 60)

    def v2_pods_seen() -> list:
        pods = live.watcher.mesh_of(sandbox[0].name, namespace).pods
        return [p for p in pods if (p.get("metadata", {}).get("labels") or {}).get("version") == "v2"]

    # Until the simulator no longer sees a v2 pod, requests could still reach one and record anew.
    admin.wait_for("no reviews-v2 pod in the simulator's view", lambda: not v2_pods_seen(), 60)
    assert live.forget_gone_workloads() > 0
    assert not exposed("reviews-v2") and exposed("reviews-v1")


def test_an_http_route_attached_to_the_service_routes_on_the_sandbox(sandbox, admin, namespace, live):
    """The sandbox serves the Gateway API's HTTPRoute (its standard CRDs, installed by the sandbox), and
    the simulator routes by one whose parent is the Service (GAMMA), as Istio does in a mesh."""
    deploy_app(admin, namespace, "reviews", ready_versions=("v1", "v2", "v3"))
    for version in ("v1", "v2"):
        create(admin, namespace, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"reviews-{version}"},
                                  "spec": {"selector": {"app": "reviews", "version": version},
                                           "ports": [{"name": "http", "port": 9080}]}})
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "reviews"},
             "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": "reviews", "port": 9080}],
                      "rules": [{"matches": [{"headers": [{"name": "end-user", "value": "jason"}]}],
                                 "backendRefs": [{"name": "reviews-v2", "port": 9080}]},
                                {"backendRefs": [{"name": "reviews-v1", "port": 9080}]}]}}
    stored = create(admin, namespace, route)
    assert stored["spec"]["rules"][1]["backendRefs"][0]["weight"] == 1  # the API server's default
    live.add_traffic(TrafficSpec(sandbox[0].name, namespace, "reviews", rate=200, jason_share=0.3))
    # Server spans only: v2 calls ratings, which is not deployed here, and that failed call is a
    # client span of reviews v2 too.
    where = "{ `namespace` = '%s', `span_type` = 'entry' }" % namespace

    def spans_by_version() -> dict:
        series = dql(live, "T::`reviews`:(count(`*`) AS `n`) %s [10m] BY `version`" % where)
        return {s["tags"]["version"]: s["values"][0][1] for s in series}

    admin.wait_for("300 recorded requests to reviews", lambda: sum(spans_by_version().values()) > 300, 60, interval=0.5)
    got = spans_by_version()
    # jason's requests to v2, everyone else's to v1, none to v3 (which the Service alone would reach).
    assert set(got) == {"v1", "v2"}, got
    total = got["v1"] + got["v2"]
    assert abs(got["v2"] - 0.3 * total) <= 4 * math.sqrt(total * 0.3 * 0.7), got
