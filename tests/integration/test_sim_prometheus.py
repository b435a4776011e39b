"""Guance's PromQL (a MetricsQL engine in the simulator), DQL and a real Prometheus scraping the
simulator agree on the same traffic: the first two exactly (the same scrapes, neither
extrapolates), Prometheus within its extrapolation of increase() to the window's edges."""
from __future__ import annotations

import socket
import time

import pytest
import requests

from sandbox import procs
from sandbox.sim import prometheus
from sandbox.sim.live import LiveSimulator
from sandbox.sim.traffic import TrafficSpec

from _routing_fixtures import bookinfo_object, create, deploy_app  # pylint: disable=import-error

pytestmark = pytest.mark.integration
WINDOW_S = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(name="live_with_prometheus")
def live_and_prometheus(sandbox, admin, tmp_path):
    try:
        prometheus.find_binary()
    except procs.SandboxError as exc:
        pytest.skip(f"PROMETHEUS NOT AVAILABLE: {exc}")
    prom_port = free_port()
    live = LiveSimulator({sandbox[0].name: admin}, seed=5, poll_s=0.5, tick_s=0.05, scrape_interval_ms=1000,
                         prometheus_url=f"http://127.0.0.1:{prom_port}")
    live.start()
    pid = prometheus.start(tmp_path / "prometheus", live.endpoints()["metrics"], prom_port, scrape_interval_s=1)
    yield live
    prometheus.stop(pid)
    live.stop()


def ask(live, qtype: str, text: str, time_range: list, **extra) -> list:
    query = dict({"q": text, "timeRange": time_range, "disableMultipleField": False}, **extra)
    resp = requests.post(live.endpoints()["guance_openapi"] + "/api/v1/df/query_data_v1",
                         json={"queries": [{"qtype": qtype, "query": query}]}, headers={"DF-API-KEY": live.api_key}, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()["content"]["data"][0]["series"]


def quantile_from_buckets(q: float, buckets: dict) -> float:
    """Prometheus' histogram_quantile over {le: count} (cumulative), linear inside the bucket."""
    bounds = sorted(buckets, key=lambda le: float("inf") if le == "+Inf" else float(le))
    rank = q * buckets["+Inf"]
    lower, below = 0.0, 0.0
    for le in bounds:
        if buckets[le] >= rank:
            upper = float(le)
            return lower + (upper - lower) * (rank - below) / (buckets[le] - below)
        lower, below = float(le), buckets[le]
    return lower


def prometheus_instant(live, text: str, at_ms: int) -> dict[str, float]:
    resp = requests.get(live.sim.prometheus_url + "/api/v1/query", params={"query": text, "time": at_ms / 1000}, timeout=30)
    assert resp.status_code == 200, resp.text
    return {r["metric"]["destination_version"]: float(r["value"][1]) for r in resp.json()["data"]["result"]}


def test_promql_and_dql_agree(sandbox, admin, namespace, live_with_prometheus):
    live = live_with_prometheus
    deploy_app(admin, namespace, "reviews", ready_versions=("v1", "v2"))
    create(admin, namespace, bookinfo_object("networking/destination-rule-all.yaml", "DestinationRule", "reviews"))
    create(admin, namespace, bookinfo_object("networking/virtual-service-reviews-80-20.yaml", "VirtualService", "reviews"))
    live.simulator.profiles.set("reviews", "v1", latency_ms=40.0, latency_sigma=0.0)
    live.simulator.profiles.set("reviews", "v2", latency_ms=300.0, latency_sigma=0.0)
    live.add_traffic(TrafficSpec(sandbox[0].name, namespace, "reviews", rate=100))
    time.sleep(WINDOW_S + 12)  # the window starts well after the series appear (Prometheus extrapolates less there)
    # Both sides have scraped up to here; half a second off the 1 s scrapes, so no scrape sits on
    # the window's edge (Guance's PromQL counts a scrape there before the window, DQL's bucket in it).
    end = (live.clock.now_ms() - 1500) // 1000 * 1000 + 500
    window = [end - WINDOW_S * 1000, end]
    labels = f'reporter="destination",destination_service_namespace="{namespace}"'
    counter = f"sum by (destination_version) (increase(istio_prom:istio_requests_total{{{labels}}}[{WINDOW_S}s]))"
    prom = ask(live, "promql", counter, window, promqlType="instantQuery")
    guance_counts = {s["tags"]["destination_version"]: s["values"][0][1] for s in prom}
    where = f"{{ `reporter` = 'destination', `destination_service_namespace` = '{namespace}' }}"
    dql = ask(live, "dql", f"M::`istio_prom`:(sum(`istio_requests_total`) AS `n`) {where} [:::increase] BY `destination_version`",
              window)
    dql_counts = {s["tags"]["destination_version"]: sum(v[1] or 0 for v in s["values"]) for s in dql}
    assert set(guance_counts) == set(dql_counts) == {"v1", "v2"}
    assert guance_counts == dql_counts  # whole requests: growth between the same two scrapes
    prometheus_counts = prometheus_instant(live, counter.replace("istio_prom:", ""), end)
    for version, count in dql_counts.items():
        # Prometheus extrapolates increase() to the window's edges; Guance's engine does not.
        assert abs(prometheus_counts[version] - count) <= 0.15 * count + 10, (prometheus_counts, dql_counts)

    p99 = ("histogram_quantile(0.99, sum by (le, destination_version) "
           f"(rate(istio_prom:istio_request_duration_milliseconds_bucket{{{labels}}}[{WINDOW_S}s])))")
    guance_p99 = {s["tags"]["destination_version"]: s["values"][0][1]
                  for s in ask(live, "promql", p99, window, promqlType="instantQuery")}
    buckets = ask(live, "dql", f"M::`istio_prom`:(sum(`istio_request_duration_milliseconds_bucket`) AS `c`) {where} "
                  f"[:::increase] BY `destination_version`, `le`", window)
    per_version: dict = {}
    for s in buckets:
        per_version.setdefault(s["tags"]["destination_version"], {})[s["tags"]["le"]] = sum(v[1] or 0 for v in s["values"])
    dql_p99 = {v: quantile_from_buckets(0.99, b) for v, b in per_version.items()}
    prometheus_p99 = prometheus_instant(live, p99.replace("istio_prom:", ""), end)
    # v1 answers in 40 ms (bucket 25..50), v2 in 300 ms (bucket 250..500)
    assert 25 < guance_p99["v1"] <= 50 and 250 < guance_p99["v2"] <= 500, guance_p99
    for version, value in dql_p99.items():
        assert value == pytest.approx(guance_p99[version], rel=1e-9), (guance_p99, dql_p99)
        assert value == pytest.approx(prometheus_p99[version], rel=0.05), (prometheus_p99, dql_p99)
