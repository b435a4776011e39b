"""Traffic driver, behaviour profiles and the Istio-shaped recorder (metrics, spans, logs, exposition)."""
from __future__ import annotations

import math
import time
from collections import Counter

import pytest

from sandbox.sim import bookinfo
from sandbox.sim.record import ISTIO_BUCKETS, LE_TAGS, Clock, ManualClock, Recorder, go_float, parse_prometheus_text
from sandbox.sim.routing import Mesh
from sandbox.sim.traffic import Profile, Profiles, Simulator, TrafficSpec

T0 = 1_700_000_000_000


def weighted_vs(v1: int, v2: int) -> dict:
    return {"kind": "VirtualService", "metadata": {"name": "reviews"},
            "spec": {"hosts": ["reviews"], "http": [{"route": [
                {"destination": {"host": "reviews", "subset": "v1"}, "weight": v1},
                {"destination": {"host": "reviews", "subset": "v2"}, "weight": v2}]}]}}


DR = {"kind": "DestinationRule", "metadata": {"name": "reviews"},
      "spec": {"host": "reviews", "subsets": [{"name": v, "labels": {"version": v}} for v in ("v1", "v2", "v3")]}}
RATINGS_DELAY = {"kind": "VirtualService", "metadata": {"name": "ratings"},
                 "spec": {"hosts": ["ratings"], "http": [
                     {"match": [{"headers": {"end-user": {"exact": "jason"}}}],
                      "fault": {"delay": {"fixedDelay": "7s", "percentage": {"value": 100}}},
                      "route": [{"destination": {"host": "ratings"}}]},
                     {"route": [{"destination": {"host": "ratings"}}]}]}}


def make_sim(vs_list, seed=1, not_ready=()):
    mesh = Mesh("bookinfo", virtual_services=list(vs_list), destination_rules=[DR],
                services=bookinfo.all_services(), pods=bookinfo.all_pods(not_ready=not_ready))
    rec = Recorder(scrape_interval_ms=10_000)
    return Simulator(lambda cluster, ns: mesh, rec, seed=seed), rec


def totals_by(rec: Recorder, *names: str, **where) -> Counter:
    from sandbox.sim.record import LABELS  # pylint: disable=import-outside-toplevel
    out = Counter()
    for key, series in rec.totals().items():
        labels = dict(zip(LABELS, key))
        if all(labels[k] == v for k, v in where.items()):
            out[tuple(labels[n] for n in names)] += series.count
    return out


def test_go_float_matches_datakit_le_tags():
    assert [go_float(b) for b in (0.5, 1, 600000, 1800000, 3600000)] == ["0.5", "1", "600000", "1.8e+06", "3.6e+06"]
    assert go_float(float("inf")) == "+Inf"
    assert len(LE_TAGS) == len(ISTIO_BUCKETS) + 1


def test_rate_and_split_recorded_per_reporter():
    sim, rec = make_sim([weighted_vs(90, 10)])
    sim.specs.append(TrafficSpec("c1", "bookinfo", rate=20))
    sim.specs[0].next_ms = T0
    sent = sim.run_until(T0 + 99_999)
    assert sent == 2000  # 20/s for 100 simulated seconds
    dest = totals_by(rec, "destination_version", reporter="destination", destination_service_name="reviews")
    assert dest[("v1",)] + dest[("v2",)] == 2000
    assert abs(dest[("v2",)] - 200) <= 4 * math.sqrt(2000 * 0.1 * 0.9)
    src = totals_by(rec, "destination_version", reporter="source", destination_service_name="reviews")
    assert src == dest
    # reviews v2 calls ratings once per request it serves; v1 never does.
    ratings = totals_by(rec, "source_workload", reporter="destination", destination_service_name="ratings")
    assert ratings == Counter({("reviews-v2",): dest[("v2",)]})


def test_profile_error_rate_changes_while_running():
    sim, rec = make_sim([weighted_vs(50, 50)], seed=3)
    sim.profiles.set("reviews", "v2", error_rate=0.2)
    for i in range(2000):
        sim.send("c1", "bookinfo", "reviews", T0 + i * 10)
    codes = totals_by(rec, "destination_version", "response_code", reporter="destination", destination_service_name="reviews")
    v2 = codes[("v2", "200")] + codes[("v2", "500")]
    assert codes[("v1", "500")] == 0
    assert abs(codes[("v2", "500")] - 0.2 * v2) <= 4 * math.sqrt(v2 * 0.2 * 0.8)
    sim.profiles.set("reviews", "v2", error_rate=0.0)
    before = codes[("v2", "500")]
    for i in range(500):
        sim.send("c1", "bookinfo", "reviews", T0 + 30_000 + i * 10)
    after = totals_by(rec, "destination_version", "response_code", reporter="destination", destination_service_name="reviews")
    assert after[("v2", "500")] == before


def test_latency_profile_and_histogram_buckets():
    sim, rec = make_sim([weighted_vs(100, 0)], seed=4)
    sim.profiles.set("reviews", "v1", latency_ms=40.0, latency_sigma=0.0)
    for i in range(100):
        sim.send("c1", "bookinfo", "reviews", T0 + i)
    (key, series), = [(k, s) for k, s in rec.totals().items() if k[0] == "destination" and k[6] == "reviews"]
    assert series.count == 100
    assert series.total_ms == pytest.approx(4000.0)
    by_le = dict(zip(LE_TAGS, series.buckets))
    assert by_le["25"] == 0 and by_le["50"] == 100 and by_le["+Inf"] == 100
    assert key[3] == "reviews-v1"


def test_delay_only_for_jason_and_subset_without_pod_is_503_from_source():
    sim, rec = make_sim([weighted_vs(0, 100), RATINGS_DELAY], seed=5)
    jason = [sim.send("c1", "bookinfo", "reviews", T0 + i, headers={"end-user": "jason"}) for i in range(20)]
    others = [sim.send("c1", "bookinfo", "reviews", T0 + 100 + i) for i in range(20)]
    assert all(h.duration_ms >= 7000 and h.status == 200 for h in jason)
    assert all(h.duration_ms < 7000 for h in others)
    sim2, rec2 = make_sim([weighted_vs(0, 100)], not_ready=("reviews-v2",))
    hop = sim2.send("c1", "bookinfo", "reviews", T0)
    assert hop.status == 503
    assert totals_by(rec2, "reporter", "response_code", "destination_version") == Counter({("source", "503", "unknown"): 1})
    assert [p.tags["status"] for p in rec2.rows("T") if p.tags["span_type"] == "exit"] == ["error"]


def test_spans_link_parents_across_the_call_chain():
    sim, rec = make_sim([weighted_vs(0, 100)], seed=6)
    sim.send("c1", "bookinfo", "reviews", T0, uri="/reviews/0")
    spans = {p.measurement: p for p in rec.rows("T")}
    assert set(spans) == {"productpage", "reviews", "ratings"}
    assert len({p.fields["trace_id"] for p in spans.values()}) == 1
    assert spans["productpage"].fields["parent_id"] == "0"
    assert spans["reviews"].fields["parent_id"] == spans["productpage"].fields["span_id"]
    assert spans["ratings"].fields["parent_id"] == spans["reviews"].fields["span_id"]
    assert spans["reviews"].tags["version"] == "v2"
    assert spans["reviews"].fields["duration"] > spans["ratings"].fields["duration"] > 0  # microseconds
    assert {p.tags["service"] for p in rec.rows("L")} == {"reviews", "ratings"}


def test_seed_makes_runs_identical():
    def run(seed):
        sim, rec = make_sim([weighted_vs(50, 50)], seed=seed)
        for i in range(200):
            sim.send("c1", "bookinfo", "reviews", T0 + i)
        return rec.prometheus_text()
    assert run(9) == run(9)
    assert run(9) != run(10)


def test_metric_points_are_cumulative_scrapes():
    sim, rec = make_sim([weighted_vs(100, 0)], seed=7)
    for i in range(30):
        sim.send("c1", "bookinfo", "reviews", T0 + i * 1000)  # one per second; the call leaves productpage 1 ms later
    points = [p for p in rec.metric_points(T0, T0 + 30_000)
              if "istio_requests_total" in p.fields and p.tags["reporter"] == "destination"
              and p.tags["destination_service_name"] == "reviews"]
    assert [(p.time, p.fields["istio_requests_total"]) for p in points] == [
        (T0 + 10_000, 10), (T0 + 20_000, 20), (T0 + 30_000, 30)]  # no series before its first request


def test_prometheus_exposition_round_trips():
    sim, rec = make_sim([weighted_vs(100, 0)], seed=8)
    for i in range(10):
        sim.send("c1", "bookinfo", "reviews", T0 + i)
    samples = list(parse_prometheus_text(rec.prometheus_text()))
    count = [v for n, lab, v in samples if n == "istio_requests_total" and lab["reporter"] == "destination"
             and lab["destination_workload"] == "reviews-v1"]
    inf = [v for n, lab, v in samples if n == "istio_request_duration_milliseconds_bucket" and lab["le"] == "+Inf"
           and lab["reporter"] == "destination" and lab["destination_workload"] == "reviews-v1"]
    assert count == [10.0] and inf == [10.0]


def test_fast_clock_and_manual_clock():
    fast = Clock(speed=600.0, start_ms=T0)
    time.sleep(0.05)
    assert fast.now_ms() - T0 >= 600 * 50 * 0.9
    manual = ManualClock(T0)
    manual.advance(1500)
    assert manual.now_ms() == T0 + 1500
    with pytest.raises(ValueError):
        Clock(speed=0)


def test_profiles_validate_and_fall_back():
    profiles = Profiles(Profile(latency_ms=5))
    assert profiles.get("reviews", "v9").latency_ms == 5
    profiles.set("reviews", error_rate=0.5)
    assert profiles.get("reviews", "v1").error_rate == 0.5
    with pytest.raises(ValueError, match="error_rate"):
        profiles.set("reviews", "v3", error_rate=1.5)


def test_a_namespaces_own_profile_wins_and_others_keep_the_global_one():
    profiles = Profiles()
    profiles.set("reviews", "v2", error_rate=0.5)
    profiles.set("reviews", "v2", "team-a", error_rate=0.0, latency_ms=5.0)
    assert profiles.get("reviews", "v2", "team-a") == Profile(error_rate=0.0, latency_ms=5.0)
    assert profiles.get("reviews", "v2", "team-b").error_rate == 0.5
    assert profiles.get("reviews", "v2").error_rate == 0.5
    assert set(profiles.as_dict()) == {"*/*", "reviews/v2", "team-a/reviews/v2"}
    # The driver asks with the request's namespace.
    sim, rec = make_sim([weighted_vs(0, 100)], seed=4)
    sim.profiles.set("reviews", "v2", "other", error_rate=1.0)
    sim.specs.append(TrafficSpec("c1", "bookinfo", rate=20))
    sim.specs[0].next_ms = T0
    sim.run_until(T0 + 9_999)
    codes = totals_by(rec, "response_code", reporter="destination", destination_service_name="reviews")
    assert codes == Counter({("200",): 200})


def test_series_of_gone_workloads_leave_the_exposition():
    sim, rec = make_sim([weighted_vs(50, 50)], seed=5)
    sim.specs.append(TrafficSpec("c1", "bookinfo", rate=20))
    sim.specs[0].next_ms = T0
    sim.run_until(T0 + 9_999)
    places = rec.series_places()
    assert ("c1", "bookinfo", "reviews-v2") in places and ("c1", "bookinfo", "reviews-v1") in places
    before = rec.prometheus_text()
    assert 'destination_workload="reviews-v2"' in before
    # reviews-v2's Deployment is deleted: its series go, the others stay.
    dropped = rec.forget_series(lambda cluster, ns, workload: workload == "reviews-v2")
    assert dropped > 0
    after = rec.prometheus_text()
    assert 'destination_workload="reviews-v2"' not in after and 'destination_workload="reviews-v1"' in after
    # The namespace is deleted: everything of it goes.
    rec.forget_series(lambda cluster, ns, workload: ns == "bookinfo")
    assert "destination_workload=" not in rec.prometheus_text()


def _sticky_vs(v2: int, sticky: bool) -> dict:
    from ansible_collections.canary.istio.plugins.module_utils._istio.step_routes import set_release_routes

    spec = set_release_routes(weighted_vs(100 - v2, v2)["spec"], {"v1": 100 - v2, "v2": v2}, None, canary="v2",
                              sticky=3600 if sticky else None)
    return {"kind": "VirtualService", "metadata": {"name": "reviews"}, "spec": spec}


def test_sticky_sessions_keep_a_user_on_the_canary_once_reached():
    # 200 users at 50/50, each sending ~10 requests: without stickiness they flip back and forth;
    # with it, a user who reached v2 stays there (v2->v1 never happens), and the weights decide
    # only for users who have not reached it yet.
    for sticky in (False, True):
        sim, rec = make_sim([_sticky_vs(50, sticky)], seed=5)
        sim.specs.append(TrafficSpec("c1", "bookinfo", rate=20, users=200))
        sim.specs[0].next_ms = T0
        sim.run_until(T0 + 99_999)
        changes = sim.specs[0].changes
        if sticky:
            assert changes.get("v2->v1", 0) == 0, changes
            assert 0 < changes.get("v1->v2", 0) <= 200, changes
            dest = totals_by(rec, "destination_version", reporter="destination", destination_service_name="reviews")
            assert dest[("v2",)] > dest[("v1",)] * 2  # the users who reached v2 stay; the others still split
        else:
            assert changes.get("v2->v1", 0) > 300 and changes.get("v1->v2", 0) > 300, changes


def test_without_users_no_cookie_is_kept_and_no_change_counted():
    sim, _rec = make_sim([_sticky_vs(50, True)], seed=5)
    sim.specs.append(TrafficSpec("c1", "bookinfo", rate=20))
    sim.specs[0].next_ms = T0
    sim.run_until(T0 + 9_999)
    assert sim.specs[0].changes == {}
