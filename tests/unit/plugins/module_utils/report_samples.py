# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Realistic release records for the report tests.

The analysis rounds are made the way ``canary_analysis`` makes them: per-version numbers judged
by the real ``_analysis.judge``, checks as ``CheckResult.as_dict()``, and the whole registered
module result (with ``changed``, ``queries``, ``http_requests``...) as the record's analysis.
The report tests import the builders from here by FQCN; that the samples follow the schema is
tested in test_report_records.py.
"""

from __future__ import annotations

import datetime
import typing as t

from ansible_collections.canary.istio.plugins.module_utils._analysis import checks
from ansible_collections.canary.istio.plugins.module_utils._analysis import judge
from ansible_collections.canary.istio.plugins.module_utils._analysis import queries
from ansible_collections.canary.istio.plugins.module_utils._analysis import terms


T0 = datetime.datetime(2026, 11, 26, 6, 0, 0, tzinfo=datetime.timezone.utc)
INTERVAL_S = 30
CHECKS = (
    checks.Check(terms.REQUEST_SUCCESS_RATE, min=99),
    checks.Check(terms.REQUEST_DURATION_P99, max=500, max_ratio_to_baseline=1.5),
    checks.Check(terms.REQUEST_ERROR_RATE, max_over_baseline=1),
)
QUERY = 'sum by (destination_version, response_code) (increase(istio_requests_total{reporter="destination"}[30s]))'


def iso(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def ms(moment: datetime.datetime) -> int:
    return int(moment.timestamp() * 1000)


def numbers(canary: tuple[float, float | None, float], baseline: tuple[float, float | None, float]) -> dict:
    """``{version: {metric: value}}`` from (requests, p99 ms, error %) for v2 (canary) and v1."""
    out = {}
    for version, (count, p99, errors) in (("v2", canary), ("v1", baseline)):
        out[version] = {
            terms.REQUEST_COUNT: count,
            terms.REQUEST_ERROR_RATE: errors,
            terms.REQUEST_SUCCESS_RATE: 100.0 - errors,
            terms.REQUEST_DURATION_P99: p99,
        }
    return out


def analysis_result(start: datetime.datetime, rounds: t.Sequence[dict], min_requests: int = 20) -> dict:
    """A registered canary_analysis result: one judged round per item of ``rounds`` (numbers),
    each round ``INTERVAL_S`` long, starting at ``start``."""
    out_rounds = []
    verdicts = []
    for index, per_version in enumerate(rounds):
        checks = judge.with_queries(CHECKS, [queries.MetricQuery(queries.Q_REQUESTS, terms.QTYPE_PROMQL, QUERY)])
        verdict = judge.judge(per_version, checks, "v2", "v1", min_requests)
        verdicts.append(verdict.verdict)
        begin = start + datetime.timedelta(seconds=index * INTERVAL_S)
        out_rounds.append({
            "round": index + 1, "start_ms": ms(begin), "end_ms": ms(begin + datetime.timedelta(seconds=INTERVAL_S)),
            "verdict": verdict.verdict, "reason": verdict.reason, "checks": [c.as_dict() for c in verdict.checks],
            "numbers": per_version,
            "http_requests": 1,
        })
    decision = judge.step_decision(verdicts, checks=len(rounds), threshold=1, inconclusive_is_failure=False)
    verdict = decision.decision if decision.decision != judge.CONTINUE else terms.INCONCLUSIVE
    result = {
        "changed": False, "verdict": verdict, "reason": decision.reason, "rounds": out_rounds,
        "checks": out_rounds[-1]["checks"], "queries": [{"name": "requests", "qtype": "promql", "query": QUERY}],
        "http_requests": len(out_rounds), "provider": "prometheus", "service": "reviews", "canary_version": "v2",
        "baseline_version": "v1", "window_s": INTERVAL_S, "interval_s": INTERVAL_S,
    }
    if verdict == terms.FAIL:
        failing = [c for c in out_rounds[-1]["checks"] if c["result"] == "fail"]
        result["failed"] = True
        result["msg"] = (f"analysis of reviews v2 failed in round {len(out_rounds)}: "
                         + "; ".join(f"{c['metric']} {c['reason']}" for c in failing))
    return result


HEALTHY = numbers((240, 180.0, 0.4), (2160, 170.0, 0.3))


def promoted_release() -> list[dict]:
    """Start, three steps (10, 25, 50%) each analysed over three passing rounds, promotion."""
    records = [{"time": iso(T0), "event": "start", "weights": {"v1": 100, "v2": 0},
                "message": "release reviews v2 started"}]
    moment = T0 + datetime.timedelta(seconds=20)
    for step, weight in enumerate((10, 25, 50), start=1):
        records.append({"time": iso(moment), "event": "step", "step": step, "weight": weight,
                        "weights": {"v1": 100 - weight, "v2": weight}})
        canary_count = 24 * weight
        rounds = [numbers((canary_count + i, 180.0 + 10 * step + i * 5, 0.3 + 0.05 * i),
                          (2400 - canary_count, 170.0 + i, 0.3)) for i in range(3)]
        result = analysis_result(moment, rounds)
        assert result["verdict"] == "pass", result["reason"]
        moment += datetime.timedelta(seconds=3 * INTERVAL_S)
        records.append({"time": iso(moment), "event": "analysis", "step": step, "weight": weight, "analysis": result})
        moment += datetime.timedelta(seconds=5)
    records.append({"time": iso(moment), "event": "promoted", "weights": {"v1": 0, "v2": 100},
                    "message": "v2 serves all traffic; v1 scaled down"})
    return records


def rolled_back_release() -> list[dict]:
    """Start, step 10% passing (its first round without p99 data), step 25% failing in round 2
    (success rate 79.8 < min 99, p99 above the ratio bound), rollback to v1."""
    records = [{"time": iso(T0), "event": "start", "weights": {"v1": 100, "v2": 0}}]
    moment = T0 + datetime.timedelta(seconds=15)
    records.append({"time": iso(moment), "event": "step", "step": 1, "weight": 10, "weights": {"v1": 90, "v2": 10}})
    first = analysis_result(moment, [numbers((230, None, 0.5), (2100, 160.0, 0.4)),
                                     numbers((250, 190.0, 0.5), (2200, 170.0, 0.4))])
    first["verdict"], first["reason"] = "pass", "2 rounds, the last passed, 0 failed checks (threshold 1)"
    moment += datetime.timedelta(seconds=2 * INTERVAL_S)
    records.append({"time": iso(moment), "event": "analysis", "step": 1, "weight": 10, "analysis": first})
    moment += datetime.timedelta(seconds=5)
    records.append({"time": iso(moment), "event": "step", "step": 2, "weight": 25, "weights": {"v1": 75, "v2": 25}})
    second = analysis_result(moment, [numbers((600, 210.0, 0.6), (1800, 175.0, 0.4)),
                                      numbers((610, 460.0, 20.2), (1790, 180.0, 0.5))])
    assert second["verdict"] == "fail"
    moment += datetime.timedelta(seconds=2 * INTERVAL_S)
    records.append({"time": iso(moment), "event": "analysis", "step": 2, "weight": 25, "analysis": second})
    moment += datetime.timedelta(seconds=4)
    records.append({"time": iso(moment), "event": "rolled_back", "weights": {"v1": 100, "v2": 0},
                    "message": second["msg"]})
    return records


def header(**overrides: str) -> dict:
    return dict({"release": "reviews-v2", "cluster": "sandbox-1", "app": "reviews", "namespace": "prod",
                 "stable_version": "v1", "canary_version": "v2"}, **overrides)
