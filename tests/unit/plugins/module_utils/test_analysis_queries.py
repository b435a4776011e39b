# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_analysis/queries.py: the PromQL and DQL of the built-in metrics."""

from __future__ import annotations

import json
import re

import pytest

from ansible_collections.canary.istio.plugins.module_utils._analysis import queries as an_queries
from ansible_collections.canary.istio.plugins.module_utils._analysis import terms as an_terms


TARGET = an_queries.AnalysisTarget(service="reviews", canary_version="v2", baseline_version="v1", window_seconds=600)


class TestBuiltinQueries:
    def test_promql_for_prometheus(self) -> None:
        queries = {q.key: q for q in an_queries.builtin_queries(TARGET, ["request_success_rate", "request_count", "request_duration_p99"],
                                                                "prometheus")}
        assert list(queries) == ["requests", "latency"]
        assert queries["requests"].qtype == "promql"
        counter = 'istio_requests_total{reporter="destination",destination_workload=~"reviews-.*",destination_version=~"v2|v1"}'
        # A series new in the window (a regression's first 5xx) counts in full, not dropped by increase().
        assert queries["requests"].query == (
            f"sum by (destination_version, response_code) (({counter} unless {counter} offset 600s) or increase({counter}[600s]))")
        assert queries["latency"].query == (
            'histogram_quantile(0.99, sum by (le, destination_version) (rate(istio_request_duration_milliseconds_bucket'
            '{reporter="destination",destination_workload=~"reviews-.*",destination_version=~"v2|v1"}[600s])))')

    def test_guance_promql_uses_measurement_prefix_and_dql_for_traces_and_logs(self) -> None:
        queries = {q.key: q for q in an_queries.builtin_queries(TARGET, list(an_terms.BUILTIN_METRICS), "guance")}
        assert "istio_prom:istio_requests_total{" in queries["requests"].query
        assert "istio_prom:istio_request_duration_milliseconds_bucket{" in queries["latency"].query
        assert queries["traces"].qtype == "dql"
        assert queries["traces"].query == (
            "T::`reviews`:(count(`*`) AS `spans`) { `version` IN ['v2', 'v1'] } [600s] BY `version`, `status`")
        assert queries["logs"].query == (
            "L::re(`.*`):(count(`*`) AS `errors`) { `service` = 'reviews', `status` = 'error', `version` IN ['v2', 'v1'] } "
            "[600s] BY `version`")

    def test_guance_dql_istio_queries(self) -> None:
        target = an_queries.AnalysisTarget(service="reviews", canary_version="v2", baseline_version="v1", namespace="prod",
                                           window_seconds=300, step_seconds=30)
        queries = {q.key: q for q in an_queries.builtin_queries(target, ["request_count", "request_duration_p99"], "guance", "dql")}
        assert queries["requests"].query == (
            "M::`istio_prom`:(sum(`istio_requests_total`) AS `requests`) { `reporter` = 'destination', "
            "`destination_workload` = re(`reviews-.*`), `destination_version` IN ['v2', 'v1'], "
            "`destination_workload_namespace` = 'prod' } [360s::30s:last] BY `destination_version`, `response_code`")
        assert queries["latency"].query.endswith("[360s::30s:last] BY `destination_version`, `le`")
        # the counters reach two buckets before the window, in the statement and in the time range
        assert queries["requests"].lookback_s == queries["latency"].lookback_s == 60

    def test_labels_keep_one_clusters_numbers_apart(self) -> None:
        """Several clusters reporting to one workspace: the extra labels go into every Istio metric query."""
        target = an_queries.AnalysisTarget(service="reviews", canary_version="v2", baseline_version="v1", namespace="prod",
                                           labels=(("destination_cluster", "eu-1"),))
        promql = {q.key: q.query for q in an_queries.builtin_queries(target, ["request_count", "request_duration_p99"], "prometheus")}
        assert all('destination_workload_namespace="prod",destination_cluster="eu-1"}' in q for q in promql.values()), promql
        dql = {q.key: q.query for q in an_queries.builtin_queries(target, ["request_count", "request_duration_p99"], "guance", "dql")}
        assert all("`destination_workload_namespace` = 'prod', `destination_cluster` = 'eu-1' }" in q for q in dql.values()), dql

    def test_builder_errors_name_the_option(self) -> None:
        with pytest.raises(an_terms.AnalysisError, match="no traces or logs") as info:
            an_queries.builtin_queries(TARGET, ["trace_error_rate"], "prometheus")
        assert info.value.option == "checks"
        with pytest.raises(an_terms.AnalysisError, match="unknown built-in metric 'cpu'"):
            an_queries.builtin_queries(TARGET, ["cpu"], "guance")
        with pytest.raises(an_terms.AnalysisError, match="provider must be") as info:
            an_queries.builtin_queries(TARGET, ["request_count"], "datadog")
        assert info.value.option == "provider"


class TestTarget:
    """Values that would break a query are refused, naming the option."""

    @pytest.mark.parametrize("labels, fragment", [
        ((("destination-cluster", "eu-1"),), "not a label name"),
        ((("destination_cluster", 'eu"1'),), "without quotes"),
        ((("destination_cluster", "eu`1"),), "without quotes"),
        ((("destination_cluster", 1),), "must be a string"),
    ])
    def test_bad_labels_are_refused_naming_the_option(self, labels, fragment) -> None:
        with pytest.raises(an_terms.AnalysisError, match=fragment) as info:
            an_queries.AnalysisTarget(service="reviews", canary_version="v2", labels=labels)
        assert info.value.option == "labels"

    @pytest.mark.parametrize("kwargs, option", [
        ({"service": "Reviews!"}, "service"),
        ({"canary_version": "v2;drop"}, "canary_version"),
        ({"baseline_version": "v2"}, "baseline_version"),
        ({"window_seconds": 0}, "window_seconds"),
        ({"reporter": 'x"}'}, "reporter"),
        ({"workload_regex": 'a"b'}, "workload_regex"),
    ])
    def test_target_rejects_values_that_would_break_a_query(self, kwargs, option) -> None:
        base = {"service": "reviews", "canary_version": "v2", "baseline_version": "v1"}
        with pytest.raises(an_terms.AnalysisError) as info:
            an_queries.AnalysisTarget(**dict(base, **kwargs))
        assert info.value.option == option


class TestNamesInQueries:
    """Names with '-', '.', '_' and digits in PromQL and DQL (a hyphen broke every round)."""

    @pytest.mark.parametrize("service, version", [("details-api", "v1.2"), ("my.svc-2", "v2-rc.1"), ("reviews2", "2024")])
    def test_promql_escapes_names_for_promql_strings_and_re2(self, service, version):
        target = an_queries.AnalysisTarget(service=service, canary_version=version, baseline_version="v1", window_seconds=60)
        query = an_queries.build_promql(target)["requests"].query
        workload = re.search(r'destination_workload=~("(?:[^"\\]|\\.)*")', query).group(1)
        versions = re.search(r'destination_version=~("(?:[^"\\]|\\.)*")', query).group(1)
        # PromQL's string syntax takes the Go escapes only (\\ \" \n ...): never \- or \.
        for literal in (workload, versions):
            assert not re.search(r'(?<!\\)\\[^\\"nrtabfv]', literal.replace("\\\\", "")), literal
        # Unquoted, the patterns match exactly the names (RE2 agrees with Python's re on these).
        workload_re = json.loads(workload)
        versions_re = json.loads(versions)
        assert re.fullmatch(workload_re, service + "-" + version)
        if "." in service:
            assert not re.fullmatch(workload_re, service.replace(".", "x") + "-v1"), "a dot matches only a dot"
        assert re.fullmatch(versions_re, version) and not re.fullmatch(versions_re, version + "x")
        if "." in version:
            assert not re.fullmatch(versions_re, version.replace(".", "x"))

    def test_dql_keeps_names_raw_inside_backticks(self):
        target = an_queries.AnalysisTarget(service="details-api", canary_version="v1.2", baseline_version="v1", window_seconds=60)
        query = an_queries.builtin_queries(target, ["request_count"], "guance", "dql")[0].query
        assert "re(`details-api-.*`)" in query and "IN ['v1.2', 'v1']" in query
