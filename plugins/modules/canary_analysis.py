#!/usr/bin/python
# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: canary_analysis
short_description: Judge a canary version from Guance or Prometheus over one release step
version_added: 0.1.0
description:
  - Runs the analysis of one release step, like Flagger's O(interval), O(iterations) and
    O(threshold) - waits O(interval), asks the provider for the canary's (and the baseline's)
    numbers over the last O(window), judges them against O(checks), and repeats until the step
    passes or fails.
  - Returns as soon as the step is decided - a failing round that reaches O(threshold) ends the
    task at once, so traffic can go back within one check interval.
  - "The step passes after O(iterations) rounds when the B(last) round passed. A round with fewer
    than O(min_requests) canary requests, or without data for a check, is B(inconclusive), and
    inconclusive is never a pass. The rules are in C(docs/analysis.md) of the collection."
  - With O(provider=guance) every query of a round goes to Guance in B(one) HTTP request, whatever
    the number of checks (the OpenAPI allows 20 requests a minute per key). With
    O(provider=prometheus) each query is one request to Prometheus' HTTP API.
  - The task fails when the step fails, and when it ends inconclusive unless
    O(fail_on_inconclusive=false); the message names the failing checks with their values and bounds.
  - Only reads, unless O(rollback) is set - then a failing step sends all traffic back to the
    stable version itself, in the same process that reached the verdict, before the task ends.
options:
  rollback:
    description:
      - Route all traffic of the VirtualService back to O(rollback.to_version), the canary at weight
        0, the moment the step fails - a failed verdict, an inconclusive end that fails the task, or
        a provider that could not answer. The playbook's own rollback still runs after the task; it
        finds the route already back and writes nothing.
      - Saves the seconds of Ansible tasks between the verdict and a rollback task's write - traffic
        is back within one O(interval) (plus one query and one write) of a regression's start.
      - The write is the one C(canary.istio.traffic_split) makes with O(canary.istio.traffic_split#module:force=true) - only
        the route's weights change, a conflict re-reads and tries again.
      - Never in check mode. A write that fails does not hide the verdict - it is returned in
        RV(rollback.error) and the task fails on the verdict as it would have.
      - Connection - O(rollback.kubeconfig) and O(rollback.context), else the E(K8S_AUTH_*) variables
        and C(~/.kube/config), as for the other Kubernetes modules of this collection.
    type: dict
    suboptions:
      to_version:
        description: The subset that gets all traffic back, normally the stable version, for example V(v1).
        type: str
        required: true
      virtual_service:
        description: The VirtualService (or, with O(rollback.kind=HTTPRoute), the HTTPRoute) to route back. Defaults to O(service).
        type: str
      kind:
        description:
          - What routes the service. With V(HTTPRoute), the weights of the Gateway API HTTPRoute's catch-all rule
            go back, as C(canary.istio.traffic_split) writes them with O(canary.istio.traffic_split#module:kind=HTTPRoute).
        type: str
        choices: [VirtualService, HTTPRoute]
        default: VirtualService
      route:
        description: The name of the HTTP route to weigh. Defaults to the catch-all route (the first route that matches every request).
        type: str
      api_version:
        description: The Istio API version of the VirtualService.
        type: str
        choices: [networking.istio.io/v1, networking.istio.io/v1beta1, networking.istio.io/v1alpha3]
        default: networking.istio.io/v1
      kubeconfig:
        description:
          - Path to a kubeconfig file, or its content as a dictionary. Defaults to E(K8S_AUTH_KUBECONFIG),
            then C(~/.kube/config).
        type: raw
      context:
        description: The kubeconfig context. Defaults to E(K8S_AUTH_CONTEXT), then the current context.
        type: str
  provider:
    description:
      - Where the numbers come from.
      - V(guance) - the Guance OpenAPI (or a DataKit with O(api=datakit)); Istio metrics from
        C(istio_prom), traces from C(T::), logs from C(L::).
      - V(prometheus) - a Prometheus that scrapes the Istio sidecars; Istio metrics only.
    type: str
    choices: [guance, prometheus]
    default: guance
  prometheus_url:
    description:
      - Base URL of Prometheus for O(provider=prometheus), for example V(http://prometheus.istio-system:9090).
      - Can also be set with E(PROMETHEUS_URL).
      - O(timeout), O(retry_budget) and O(validate_certs) apply to Prometheus too.
    type: str
  prometheus_token:
    description: A bearer token for Prometheus (or the proxy in front of it). Never returned or logged.
    type: str
  prometheus_username:
    description: User name for basic authentication to Prometheus, with O(prometheus_password).
    type: str
  prometheus_password:
    description: Password for basic authentication to Prometheus. Never returned or logged.
    type: str
  service:
    description:
      - The service under analysis, the C(app) label and Istio's C(destination_service_name),
        for example V(reviews).
      - Istio metrics are selected by C(destination_workload) matching C(<service>-.*), the
        Deployment names of this collection (C(reviews-v1), C(reviews-v2)).
    type: str
    required: true
  namespace:
    description: The namespace of the service (Istio's C(destination_workload_namespace)).
    type: str
    required: true
  canary_version:
    description: The version label of the canary, for example V(v2) (Istio's C(destination_version)).
    type: str
    required: true
  baseline_version:
    description:
      - The version to compare with, normally the stable one, for example V(v1).
      - Needed by checks with C(max_over_baseline) or C(max_ratio_to_baseline).
    type: str
  labels:
    description:
      - "Labels (tags) that the Istio metrics must also have, matched exactly, for example
        V({destination_cluster: eu-1})."
      - For a Guance workspace or a Prometheus that several clusters report to, where the same
        namespace and service exist in each, so that one cluster's canary is judged on its own
        numbers. Applies to the Istio metric queries, not to traces, logs or custom metrics.
    type: dict
  interval:
    description:
      - Seconds between two rounds. Also waited before the first round, so that its window
        holds traffic at the step's weight.
      - V(0) runs the rounds one after the other without waiting (with the defaults, one round now).
      - A round's retries (O(retry_budget)) never last longer than this interval, so a provider that
        is down fails the round within one interval of when it was due.
    type: int
    default: 0
  iterations:
    description: How many rounds the step needs before it can pass (Flagger's C(iterations)).
    type: int
    default: 1
  threshold:
    description:
      - Failed rounds that fail the step at once (Flagger's C(threshold)).
      - At most O(iterations) + O(threshold) - 1 rounds run.
    type: int
    default: 1
  window:
    description:
      - How far back each round looks, as whole seconds (V(30)) or a duration (V(30s), V(2m), V(1.5m), V(1h)).
      - Defaults to O(interval), or 60 seconds when O(interval=0).
      - Should span at least two scrapes of the Istio metrics, or counters cannot grow in it.
    type: raw
  scrape_interval:
    description:
      - How often DataKit scrapes the sidecars' Istio metrics, as whole seconds or a duration.
        Only used with O(istio_query_language=dql), where it is the width of the buckets the
        counters are read in; O(window) must be at least twice as long.
      - The default is what the C(canary.istio.deploy_version) role's DataKit annotation sets.
    type: raw
    default: 60
  min_requests:
    description:
      - A round with fewer canary requests in its window is inconclusive. Relative checks also need
        this many baseline requests.
      - Set it to what a meaningful sample is for the service, for example V(50).
    type: int
    default: 1
  expected_weight:
    description:
      - The canary's configured weight in percent (the step's). Each round then also checks that
        the canary's observed share of the requests of canary and baseline agrees with it
        (check C(traffic_share)), and fails the round when the canary gets far more than its
        weight (beyond a 99.9% Wilson interval widened by 1 point plus a quarter of the smaller
        side's weight) or none at all where the weight promised at least 10 requests - for
        example 0% of 400 requests under a 10% weight, when the mesh ignores the VirtualService
        or the canary has no sidecar or no Ready pod. Less than its weight, but some, is not a
        failure (a new canary's series counts from its first scrape).
      - Needs O(baseline_version). V(0) checks nothing.
    type: int
  detect_error_points:
    description:
      - The smallest error regression to catch, in percentage points over the baseline's error rate
        (for example V(2)). Needs O(confidence) and the weights to plan for (O(expected_weight) or
        O(plan_weights)).
      - The result's RV(sample_plan) then says how many canary requests the success- and error-rate
        checks need to show such a canary (at the step's confidence, in 80% of steps), and, at the
        request rate and baseline errors the rounds saw, whether a step at each weight pools them
        within its rounds (O(window) x (O(iterations) + O(threshold) - 1)). A step too short for it,
        or checks that cannot show it at all, are warnings.
      - In check mode (a release's preview, before anything changed) this is how a release learns up
        front that its steps are too short.
    type: float
  plan_weights:
    description:
      - The canary weights of the steps to plan for with O(detect_error_points), for example a
        release's V([10, 25, 50]). Defaults to O(expected_weight). Weights of 0 and 100 are skipped.
    type: list
    elements: int
  inconclusive:
    description:
      - What an inconclusive round counts as.
      - V(fail) - a failed round (with the default O(threshold=1) the step fails at once).
      - V(wait) - nothing; the step goes on, but still passes only on a passing last round and
        ends inconclusive after the last round.
      - Default V(fail), or V(wait) when O(confidence) is set (a round whose sample cannot decide
        yet waits for the next).
    type: str
    choices: [fail, wait]
  confidence:
    description:
      - Judge the success- and error-rate checks on counts, at this confidence (for example
        V(0.95)), pooled over the rounds of the step, instead of comparing each round's single
        rate with its bounds.
      - A bound fails only when the interval of the canary's rate (Wilson) or of its difference
        with the baseline (Newcombe) lies beyond it, passes only when it lies within it, and is
        undecided (C(the sample cannot tell yet)) otherwise. The error is spread over the step's
        rounds, so looking every round does not add false alarms.
      - O(min_requests) then counts the step's pooled canary requests. Other checks (latency,
        traces, logs, custom metrics) keep comparing each round's value.
      - Unset, every check compares the round's value with its bounds.
    type: float
  fail_on_inconclusive:
    description: Fail the task when the step ends inconclusive. Inconclusive is never a pass.
    type: bool
    default: true
  checks:
    description:
      - The checks of each round; all must hold. Each names a metric and at least one bound.
      - "Built-in metrics: V(request_count) (requests), V(request_success_rate) (%),
        V(request_error_rate) (%, 5xx), V(request_duration_p99) (ms), V(request_duration) (ms, the
        whole duration distribution against the baseline's by a rank test; needs O(confidence) and takes
        only O(checks[].max_ratio_to_baseline), the increase allowed), V(trace_error_rate) (%,
        C(T::), Guance only), V(error_log_count) (C(L::), Guance only); or the O(metrics[].name)
        of a custom metric."
      - "Default: V(request_success_rate) C(min: 99) and V(request_duration_p99) C(max: 500)."
    type: list
    elements: dict
    suboptions:
      metric:
        description: A built-in metric or the name of a custom metric from O(metrics).
        type: str
        required: true
      min:
        description: The canary's value must be at least this.
        type: float
      max:
        description: The canary's value must be at most this.
        type: float
      max_over_baseline:
        description:
          - The canary's value must be at most the baseline's plus this (percentage points for rates).
          - Needs O(baseline_version).
        type: float
      max_ratio_to_baseline:
        description:
          - The canary's value must be at most the baseline's times this, for example V(1.5) for the p99.
          - Needs O(baseline_version).
        type: float
      critical:
        description: Its failure fails the step at once, whatever O(threshold) allows.
        type: bool
        default: false
      must_have_data:
        description: No data for it is a failure (the step rolls back), not an inconclusive round.
        type: bool
        default: false
      dry_run:
        description:
          - Judged and reported in RV(checks) (with C(policy) V(dry_run)), but never deciding the
            round - a shadow check, to try a new bound on live releases.
          - Cannot be combined with O(checks[].critical) or O(checks[].must_have_data).
        type: bool
        default: false
      weight:
        description:
          - The check's share of the round's score (O(scoring)). Above 0; a check that should not
            count is a O(checks[].dry_run) check.
        type: float
        default: 1
  scoring:
    description:
      - How a round's checks add up, like Keptn's total score - the round's B(score) is the percent
        of the deciding checks' O(checks[].weight) that passed (a check without data, or undecided,
        does not pass).
      - Unset, any failed check fails the round (both scores 100).
      - A O(checks[].critical) check's failure fails the round whatever the score; the observed
        traffic share (O(expected_weight)) is not scored and fails the round on its own.
    type: dict
    suboptions:
      pass:
        description: With failed checks, a score at least this tolerates them (the round can pass).
        type: float
        default: 100
      marginal:
        description:
          - A score from this up to O(scoring.pass) makes the round V(marginal) rather than failed.
            Defaults to O(scoring.pass) (no marginal band).
        type: float
      on_marginal:
        description:
          - What a V(marginal) round does - V(fail) counts it as a failed round, V(wait) looks again
            next round. A step never passes on a marginal last round; out of rounds it is inconclusive.
        type: str
        choices: [fail, wait]
        default: fail
      no_data_fail_percent:
        description:
          - When at least this percent of the deciding checks have no data, the round fails instead of
            being inconclusive (Kayenta scores a run 0 when half its metrics have no data).
          - Unset, a round with checks without data is inconclusive.
        type: float
  metrics:
    description:
      - Custom metrics, any DQL or PromQL query, for O(checks) to refer to by name.
      - Grouped by a version tag (O(metrics[].version_tag)), each version gets the newest value of
        its series; without one the query must return one series, the canary's.
    type: list
    elements: dict
    suboptions:
      name:
        description: The name checks use, for example V(p95_ms). Not the name of a built-in metric.
        type: str
        required: true
      query:
        description: The DQL statement or PromQL expression. Put the window in it as you need it.
        type: str
        required: true
      qtype:
        description:
          - The query language. Defaults to V(dql) with O(provider=guance), V(promql) with O(provider=prometheus).
          - O(provider=prometheus) runs PromQL only; a DataKit (O(api=datakit)) answers DQL only.
        type: str
        choices: [dql, promql]
      version_tag:
        description: The tag (label) whose value is the version in the query's series, for example V(version).
        type: str
      column:
        description: The value column of the answer. Defaults to the first column that is not C(time).
        type: str
  istio_query_language:
    description:
      - How the Istio metrics are asked of Guance (O(provider=guance) only).
      - V(promql) - PromQL on C(istio_prom:istio_requests_total) and the duration histogram,
        as an instant query at the end of the window.
      - V(dql) - DQL on C(M::istio_prom), counters read per O(scrape_interval) bucket. Needed
        with O(api=datakit).
    type: str
    choices: [promql, dql]
    default: promql
extends_documentation_fragment:
  - canary.istio.guance
  - canary.istio.attributes.GUANCE_GROUP
attributes:
  check_mode:
    description: Can run in check mode and return the changed status without changing the target.
    support: partial
    details:
      - In check mode one round runs at once, without waiting for O(interval), and its verdict is
        returned; the task does not fail on the verdict (a preview - traffic did not move).
        Bad options and query errors still fail it.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: full
    details:
      - Only O(rollback) changes anything; the diff is the VirtualService's C(spec) before and after it.
  idempotent:
    description:
      - When run twice in a row with the same arguments, the second run reports no change and writes nothing.
    support: full
notes:
  - The task runs up to O(interval) x (O(iterations) + O(threshold) - 1) seconds; give Ansible's
    C(timeout) keyword room for that.
  - The Guance connection options (O(api), O(site), O(url), O(api_key)) are used with O(provider=guance) only.
  - "HTTP requests per round: one with O(provider=guance); one per query (two with the default
    checks) with O(provider=prometheus); plus retries."
  - Bad options (an unknown metric, a check without a bound, a relative check without
    O(baseline_version), a window shorter than two scrapes with DQL, a provider without its URL
    or key) fail before any request, naming the option.
seealso:
  - module: canary.istio.guance_query
    description: Run any DQL or PromQL query against Guance.
  - name: Flagger metrics analysis
    description: The interval, iterations and threshold model this module follows.
    link: https://docs.flagger.app/usage/metrics
author:
  - canary.istio maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Three rounds 30 s apart on the canary at its new weight, through the Guance OpenAPI
  canary.istio.canary_analysis:
    site: cn1
    api_key: "{{ guance_api_key }}"
    service: reviews
    namespace: prod
    canary_version: v2
    baseline_version: v1
    interval: 30
    iterations: 3
    min_requests: 50
    checks:
      - metric: request_success_rate
        min: 99
      - metric: request_duration_p99
        max: 500
        max_ratio_to_baseline: 1.5
      - metric: trace_error_rate
        max_over_baseline: 1
  register: analysis

- name: Show what the last round saw
  ansible.builtin.debug:
    msg: "{{ analysis.verdict }}: {{ analysis.reason }}"

- name: The same judgement from Prometheus, with a custom PromQL metric
  canary.istio.canary_analysis:
    provider: prometheus
    prometheus_url: http://prometheus.istio-system:9090
    service: reviews
    namespace: prod
    canary_version: v2
    baseline_version: v1
    interval: 60
    iterations: 2
    threshold: 2
    metrics:
      - name: p95_ms
        version_tag: destination_version
        query: >-
          histogram_quantile(0.95, sum by (le, destination_version)
          (rate(istio_request_duration_milliseconds_bucket{destination_workload_namespace="prod",
          destination_workload=~"reviews-.*"}[60s])))
    checks:
      - metric: request_success_rate
        min: 99
      - metric: p95_ms
        max: 300

- name: Through a DataKit (DQL only), tolerating rounds without enough traffic
  canary.istio.canary_analysis:
    api: datakit
    url: http://127.0.0.1:9529
    istio_query_language: dql
    scrape_interval: 10s
    window: 2m
    service: reviews
    namespace: prod
    canary_version: v2
    interval: 60
    iterations: 3
    inconclusive: wait
    fail_on_inconclusive: false
"""

RETURN = r"""
verdict:
  description:
    - The step's decision - V(pass), V(fail) or V(inconclusive).
    - In check mode, the verdict of the one round that ran (which can also be V(marginal), see O(scoring)).
    - Not returned when a query failed (the step did not come to a decision) or the options were refused.
  returned: when the rounds ran, also when the task fails on the verdict
  type: str
  sample: fail
reason:
  description: One line saying what was decided, in which round, and which checks failed with their values and bounds.
  returned: when the rounds ran, also when the task fails on the verdict
  type: str
  sample: "analysis of reviews v3 failed in round 1: request_success_rate 79.8 < min 99"
rounds:
  description: One item per round run, oldest first.
  returned: unless the options were refused
  type: list
  elements: dict
  contains:
    round:
      description: The round's number, from 1.
      type: int
    start_ms:
      description: Start of the round's window, epoch milliseconds.
      type: int
    end_ms:
      description: End of the round's window (when it was queried), epoch milliseconds.
      type: int
    verdict:
      description: The round's verdict, V(pass), V(fail), V(inconclusive) or V(marginal) (O(scoring)).
      type: str
    score:
      description: The percent of the deciding checks' weight that passed (O(scoring)); V(null) without checks to score.
      type: float
    reason:
      description: Why, in one line.
      type: str
    checks:
      description: Each check's result; the same shape as RV(checks).
      type: list
      elements: dict
    numbers:
      description: Every metric of the round per version, V(null) when there was no data.
      type: dict
      sample: {v2: {request_count: 1180.0, request_success_rate: 80.2, request_error_rate: 19.8}}
    http_requests:
      description: HTTP requests the round sent (retries included).
      type: int
      sample: 1
    answered:
      description:
        - V(false) for a round the provider rate-limited through its whole retry budget. Such a round
          decides nothing (its verdict is V(inconclusive), its checks empty) and the step asks again
          at the next round; see the module's notes.
      type: bool
      sample: true
sample_plan:
  description:
    - With O(detect_error_points), the sample the step's rate checks need to show that regression,
      and whether a step at each weight pools it. A plan (normal approximation, caught in 80% of steps), not a promise.
  returned: when O(detect_error_points) is set and the rounds ran
  type: dict
  contains:
    detect_error_points:
      description: The regression planned for, percentage points of errors over the baseline's.
      type: float
    service_requests_per_s:
      description: Requests a second to the service (all versions) in the answered rounds.
      type: float
    baseline_error_rate:
      description: The baseline's error rate (%) in those rounds; 0 without baseline requests.
      type: float
    bounds:
      description: Each rate check's bound and the canary requests it needs (V(null) - it cannot show the regression), at the first planned weight.
      type: list
      elements: dict
    steps:
      description:
        - Per weight - C(canary_requests_per_s), C(pooled_seconds) (window x rounds), C(canary_requests_needed)
          (the easiest bound's), C(seconds_needed), C(long_enough) (V(null) when no bound can show it).
      type: list
      elements: dict
  sample:
    detect_error_points: 2
    service_requests_per_s: 50.1
    baseline_error_rate: 0.5
    bounds: [{metric: request_error_rate, bound: max_over_baseline 1, canary_requests: 1240}]
    steps: [{weight: 10, canary_requests_per_s: 5.01, pooled_seconds: 90, canary_requests_needed: 1240,
             seconds_needed: 248, long_enough: false}]
checks:
  description: The last round's check results.
  returned: unless the options were refused
  type: list
  elements: dict
  contains:
    metric:
      description: The metric checked.
      type: str
      sample: request_success_rate
    result:
      description: V(pass), V(fail), V(no_data), or V(undecided) (with O(confidence), a bound the sample cannot decide yet).
      type: str
    reason:
      description: The comparison, for example C(79.8 < min 99) or C(1.7 > baseline 0.6 + 1).
      type: str
    policy:
      description: The check's policy flags that are set - V(critical), V(must_have_data), V(dry_run).
      type: list
      elements: str
      sample: [critical]
    canary:
      description: The canary's value, V(null) without data.
      type: float
    baseline:
      description: The baseline's value, V(null) without data or baseline.
      type: float
    unit:
      description: The metric's unit (C(%), C(ms), C(requests), C(logs)), V(null) for a custom metric.
      type: str
    query:
      description: The query the value came from.
      type: str
    bounds:
      description: The check's bounds, V(null) where not set.
      type: dict
      sample: {min: 99.0, max: null, max_over_baseline: null, max_ratio_to_baseline: null}
queries:
  description: The queries of a round, in the order they are sent.
  returned: unless the options were refused
  type: list
  elements: dict
  contains:
    name:
      description: V(requests), V(latency), V(traces), V(logs), or V(custom:<name>) for a custom metric.
      type: str
    qtype:
      description: V(dql) or V(promql).
      type: str
    query:
      description: The query text.
      type: str
http_requests:
  description: HTTP requests the module sent in all, retries included.
  returned: unless the options were refused
  type: int
  sample: 3
provider:
  description: The provider asked.
  returned: unless the options were refused
  type: str
  sample: guance
service:
  description: The service analysed.
  returned: unless the options were refused
  type: str
  sample: reviews
canary_version:
  description: The canary version.
  returned: unless the options were refused
  type: str
  sample: v2
baseline_version:
  description: The baseline version, V(null) when none was given.
  returned: unless the options were refused
  type: str
  sample: v1
window_s:
  description: Seconds each round looked back.
  returned: unless the options were refused
  type: int
  sample: 30
interval_s:
  description: Seconds between rounds.
  returned: unless the options were refused
  type: int
  sample: 30
rollback:
  description: What O(rollback) did when the step failed.
  returned: when O(rollback) is set and the step failed (not in check mode)
  type: dict
  contains:
    virtual_service:
      description: The VirtualService, C(namespace/name).
      type: str
      sample: prod/reviews
    changed:
      description: Whether the route was written (V(false) when it already sent nothing to the canary).
      type: bool
    previous_weights:
      description: The route's weights before, subset to weight.
      type: dict
      sample: {v1: 50, v2: 50}
    weights:
      description: The route's weights after.
      type: dict
      sample: {v1: 100, v2: 0}
    at:
      description: When the route was written back (UTC, ISO 8601).
      type: str
      sample: "2026-11-26T17:02:11Z"
    seconds:
      description: Seconds from the decision to the route written back (connection, read and write).
      type: float
      sample: 0.084
    error:
      description: Why the route could not be written back; the playbook's rollback is the next chance.
      type: str
      returned: when the write failed
"""

import importlib.util
import time
import typing as t

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib
from ansible_collections.canary.istio.plugins.module_utils._errors import CanaryError, fail_from_error
from ansible_collections.canary.istio.plugins.module_utils._analysis.rounds import (
    GuanceRounds,
    PrometheusRounds,
    StepError,
    run_step,
    step_sample_plan,
)
from ansible_collections.canary.istio.plugins.module_utils._analysis.settings import plan_from_params
from ansible_collections.canary.istio.plugins.module_utils._analysis.sample import plan_warnings
from ansible_collections.canary.istio.plugins.module_utils._guance.client import GuanceClient
from ansible_collections.canary.istio.plugins.module_utils._guance.settings import (
    config_from_params,
    guance_argument_spec,
)
from ansible_collections.canary.istio.plugins.module_utils._analysis.prometheus import PrometheusClient
from ansible_collections.canary.istio.plugins.module_utils._analysis.prometheus import make_config as prometheus_config
from ansible_collections.canary.istio.plugins.module_utils._istio.api import ISTIO_API_ARG_SPEC
from ansible_collections.canary.istio.plugins.module_utils._istio.http_route import ROUTING_KIND_OPTION
from ansible_collections.canary.istio.plugins.module_utils._istio.owned_objects import spec_diff
from ansible_collections.canary.istio.plugins.module_utils._istio.route_writes import route_back
from ansible_collections.canary.istio.plugins.module_utils._http.redact import mask_secrets
from ansible_collections.canary.istio.plugins.module_utils._required import fail_on_blank_required

CHECK_SPEC: dict[str, t.Any] = dict(
    metric=dict(type="str", required=True),
    min=dict(type="float"),
    max=dict(type="float"),
    max_over_baseline=dict(type="float"),
    max_ratio_to_baseline=dict(type="float"),
    critical=dict(type="bool", default=False),
    must_have_data=dict(type="bool", default=False),
    dry_run=dict(type="bool", default=False),
    weight=dict(type="float", default=1.0),
)
SCORING_SPEC: dict[str, t.Any] = {
    # A score, not a password: validate-modules reads "pass" as a secret's name.
    "pass": dict(type="float", default=100.0, no_log=False),
    "marginal": dict(type="float"),
    "on_marginal": dict(type="str", choices=["fail", "wait"], default="fail"),
    "no_data_fail_percent": dict(type="float"),
}
METRIC_SPEC: dict[str, t.Any] = dict(
    name=dict(type="str", required=True),
    query=dict(type="str", required=True),
    qtype=dict(type="str", choices=["dql", "promql"]),
    version_tag=dict(type="str"),
    column=dict(type="str"),
)
# Only the connection options that do not clash with the Guance ones (api_key, validate_certs):
# the rest come from the K8S_AUTH_* variables, as for every Kubernetes module of the collection.
ROLLBACK_SPEC: dict[str, t.Any] = dict(
    ISTIO_API_ARG_SPEC,
    to_version=dict(type="str", required=True),
    virtual_service=dict(type="str"),
    kind=ROUTING_KIND_OPTION,
    route=dict(type="str"),
    # A kubeconfig given as a mapping holds tokens: never in invocation, -vvv or registered results.
    kubeconfig=dict(type="raw", no_log=True),
    context=dict(type="str"),
)
OWN_OPTIONS: dict[str, dict[str, t.Any]] = dict(
    provider=dict(type="str", choices=["guance", "prometheus"], default="guance"),
    prometheus_url=dict(type="str", fallback=(env_fallback, ["PROMETHEUS_URL"])),
    prometheus_token=dict(type="str", no_log=True),
    prometheus_username=dict(type="str"),
    prometheus_password=dict(type="str", no_log=True),
    service=dict(type="str", required=True),
    namespace=dict(type="str", required=True),
    canary_version=dict(type="str", required=True),
    baseline_version=dict(type="str"),
    labels=dict(type="dict"),
    interval=dict(type="int", default=0),
    iterations=dict(type="int", default=1),
    threshold=dict(type="int", default=1),
    window=dict(type="raw"),
    scrape_interval=dict(type="raw", default=60),
    min_requests=dict(type="int", default=1),
    expected_weight=dict(type="int"),
    inconclusive=dict(type="str", choices=["fail", "wait"]),
    confidence=dict(type="float"),
    detect_error_points=dict(type="float"),
    plan_weights=dict(type="list", elements="int"),
    fail_on_inconclusive=dict(type="bool", default=True),
    checks=dict(type="list", elements="dict", options=CHECK_SPEC),
    scoring=dict(type="dict", options=SCORING_SPEC),
    metrics=dict(type="list", elements="dict", options=METRIC_SPEC),
    istio_query_language=dict(type="str", choices=["promql", "dql"], default="promql"),
    rollback=dict(type="dict", options=ROLLBACK_SPEC),
)


def round_retry_budget(retry_budget: float | None, interval_s: float) -> float | None:
    """The retry budget of one round: never longer than the interval between rounds, so a provider
    that is down fails the round (and, in a release, rolls back) within one interval of when it
    was due, not after a minute of retries at every interval."""
    if retry_budget is None or interval_s <= 0:
        return retry_budget
    return min(retry_budget, interval_s)


def round_source(params: t.Mapping[str, t.Any], provider: str, interval_s: float = 0) -> GuanceRounds | PrometheusRounds:
    """The provider's client behind the round loop (config errors name the option)."""
    budget = round_retry_budget(params.get("retry_budget"), interval_s)
    if provider == "prometheus":
        config = prometheus_config(
            params.get("prometheus_url"), token=params.get("prometheus_token"), username=params.get("prometheus_username"),
            password=params.get("prometheus_password"), timeout=params.get("timeout"),
            retry_budget=budget, validate_certs=params.get("validate_certs", True))
        return PrometheusRounds(PrometheusClient(config))
    return GuanceRounds(GuanceClient(config_from_params(dict(params, retry_budget=budget))))


def main() -> None:
    module = AnsibleModule(argument_spec=guance_argument_spec(OWN_OPTIONS), supports_check_mode=True)
    fail_on_blank_required(module, module.argument_spec)
    if importlib.util.find_spec("requests") is None:
        module.fail_json(msg=missing_required_lib("requests"))
    params = module.params
    try:
        plan = plan_from_params(params)
        source = round_source(params, plan.provider, plan.step.interval_s)
    except CanaryError as exc:
        fail_from_error(module, exc)
    mask_secrets(module, source.client.config.secrets())
    for warning in source.client.config.warnings():
        module.warn(warning)
    facts = dict(
        changed=False, provider=plan.provider, service=plan.target.service, canary_version=plan.target.canary_version,
        baseline_version=plan.target.baseline_version, window_s=plan.step.window_s, interval_s=plan.step.interval_s,
        queries=[dict(name=q.key, qtype=q.qtype, query=q.query) for q in plan.queries],
    )
    failure: StepError | None = None
    try:
        result = run_step(plan, source, lambda: int(time.time() * 1000), time.monotonic, time.sleep,
                          check_mode=module.check_mode)
    except StepError as exc:
        failure = exc
    finally:
        source.close()
    if failure is not None:
        rounds = [r.as_dict() for r in failure.rounds]
        # No verdict: the step did not run to a decision (callers tell errors from verdicts by that).
        fail_step(module, dict(facts, msg=str(failure), rounds=rounds, checks=rounds[-1]["checks"] if rounds else [],
                               http_requests=source.requests_made, option=failure.option, status=failure.status,
                               error_code=failure.error_code or None))
    rounds = [r.as_dict() for r in result.rounds]
    outcome = dict(facts, verdict=result.verdict, reason=result.reason, rounds=rounds, checks=rounds[-1]["checks"],
                   http_requests=source.requests_made)
    sample = step_sample_plan(plan, result.rounds)
    if sample is not None:
        outcome["sample_plan"] = sample
        for warning in plan_warnings(sample, plan.step.confidence):
            module.warn(warning)
    if result.failed:
        fail_step(module, dict(outcome, msg=result.reason))
    module.exit_json(**outcome)


def fail_step(module: AnsibleModule, outcome: dict[str, t.Any]) -> t.NoReturn:
    """Fail the task, first sending traffic back when ``rollback`` is set (never in check mode)."""
    params = module.params
    if params.get("rollback") and not module.check_mode:
        settings = dict(params["rollback"], virtual_service=params["rollback"].get("virtual_service") or params["service"])
        done = route_back(settings, params["namespace"], params["canary_version"], module.tmpdir)
        mask_secrets(module, done.secrets)
        for warning in done.warnings:
            module.warn(warning)
        outcome.update(rollback=done.outcome, changed=done.outcome["changed"])
        if done.outcome.get("error"):
            module.warn(done.outcome["error"])
        elif module._diff:
            outcome["diff"] = spec_diff({"spec": done.before_spec}, {"spec": done.after_spec},
                                        "%s %s/%s" % (settings["kind"], params["namespace"], settings["virtual_service"]))
    module.fail_json(**outcome)
    raise AssertionError("unreachable")  # fail_json exits


if __name__ == "__main__":
    main()
