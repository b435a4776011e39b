"""Bad input: every case fails naming the field, and nothing is written

Each case gives one module, role or playbook one wrong value (a type, a range, a missing or unknown
object, weights that do not add up, a duration, DQL, a URL, a key, a kubeconfig or context) against
a namespace holding the bookinfo reviews service as a release finds it: Deployments v1 and v2
Ready, the DestinationRule (v1, v2, v3; v3 has no pods) and a VirtualService sending all to v1.

A case passes when the run fails, its message names the option or variable at fault (and, where the
collection gives one, the fix), and the API server's audit log holds no write in that namespace
while it ran. All cases run once, in a module-scoped fixture: the modules in-process one after the
other, the roles in one playbook (a block and rescue per case), and the canary_release cases grouped by
the task that refuses them, each group one ansible-playbook run whose inventory hosts are the cases;
a few runs at a time. Writes are attributed to a case by the time the API server received them.
"""
from __future__ import annotations

import concurrent.futures
import copy
import datetime
import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import NamedTuple

import pytest
import requests
import yaml

from sandbox import cluster as sandbox_cluster
from sandbox import versions
from sandbox.audit import WRITE_VERBS, AuditLog

from _routing_fixtures import bookinfo_object, create, deploy_app, object_path  # pylint: disable=import-error
from runners import REPO, VENV_BIN, run_module  # pylint: disable=import-error

pytestmark = pytest.mark.integration

APP = "reviews"
IMAGE = "docker.io/istio/examples-bookinfo-reviews-v2:1.20.1"
PLAYBOOK_WORKERS = 3  # ansible-playbook runs at once: each is mostly Python start-up on a shared CPU

# Placeholders in the cases' arguments, filled in once the world exists.
NS, KUBECONFIG, GUANCE_URL, GUANCE_KEY, TMP = "@ns@", "@kubeconfig@", "@guance_url@", "@guance_key@", "@tmp@"
DROP = "@drop@"  # a variable to leave out


class Case(NamedTuple):
    """One bad input: where it goes (module, role or playbook), its arguments, what the message must say."""

    id: str
    kind: str  # module | role | playbook
    target: str  # module name, role name, or playbook (canary.istio.<name>)
    args: dict
    expect: tuple[str, ...]  # substrings of the message: the field first, then the fix where one is given
    group: str = ""  # playbook cases: those failing at the same task run as hosts of one ansible-playbook


def _m(case_id: str, module: str, args: dict, *expect: str) -> Case:
    return Case(case_id, "module", module, args, expect)


def _r(case_id: str, role: str, args: dict, *expect: str) -> Case:
    return Case(case_id, "role", role, args, expect)


# The variable of each rule of the release's "steps" check, and what its message says.
STEPS_RULES = (("canary_steps", "canary_steps: "), ("canary_steps", "canary_steps["), ("canary_version", "must differ"),
               ("canary_version", "canary_version ("), ("canary_stable_version", "canary_stable_version ("),
               ("canary_version", "canary_version is "),
               ("canary_interval", "canary_interval must"), ("canary_analysis", "canary_analysis must"))


def _p(case_id: str, group: str, args: dict, *expect: str) -> Case:
    return Case(case_id, "playbook", "canary.istio.canary_release", args, expect, group)


VS = {"name": APP, "namespace": NS}
SPLIT = {**VS, "stable": "v1", "canary": "v2", "canary_weight": 10}
DR = {"name": APP, "namespace": NS, "service_host": APP}
ROUTE = {"name": APP, "namespace": NS, "hosts": [APP]}
FAULT = {**VS, "rule": "chaos", "headers": {"end-user": {"exact": "jason"}}}
ANALYSIS = {"service": APP, "namespace": NS, "canary_version": "v2", "baseline_version": "v1",
            "url": GUANCE_URL, "api_key": GUANCE_KEY}
QUERY = {"url": GUANCE_URL, "api_key": GUANCE_KEY, "queries": [{"query": "M::`istio_requests_total`:(count(`value`))"}]}
EVENT = {"url": GUANCE_URL, "api_key": GUANCE_KEY, "title": f"bad input {NS}"}  # a title of this run alone
RELEASE_ANALYSIS = {"provider": "guance", "interval": 1, "iterations": 1, "window": "10s", "min_requests": 1,
                    "guance": {"url": GUANCE_URL, "api_key": GUANCE_KEY}}
BAD_KUBECONFIGS = ("wrong-token", "not-yaml", "no-server", "tls-false-quoted", "insecure-and-ca", "token-line-break")

MODULE_CASES = [
    # traffic_split: weights, ranges, subsets, missing objects
    _m("traffic_split-weights-sum-90", "traffic_split", {**VS, "weights": {"v1": 60, "v2": 30}},
       "weights", "sum to exactly 100", "sum to 90"),
    _m("traffic_split-weight-negative", "traffic_split", {**VS, "weights": {"v1": 110, "v2": -10}},
       "weights", "cannot be negative"),
    _m("traffic_split-weight-not-a-number", "traffic_split", {**VS, "weights": {"v1": "ninety", "v2": 10}},
       "weights", "must be an integer"),
    _m("traffic_split-canary_weight-150", "traffic_split", {**SPLIT, "canary_weight": 150},
       "canary_weight", "from 0 to 100"),
    _m("traffic_split-unknown-subset", "traffic_split", {**SPLIT, "canary": "v9"},
       "canary", "'v9' is not defined in DestinationRule", "add it with canary.istio.destination_rule"),
    _m("traffic_split-subset-without-ready-pods", "traffic_split", {**SPLIT, "canary": "v3"},
       "canary", "'v3' has no Ready pod", "force=true"),
    _m("traffic_split-same-subset-twice", "traffic_split", {**SPLIT, "canary": "v1"},
       "canary", "both name subset"),
    _m("traffic_split-missing-virtualservice", "traffic_split", {**SPLIT, "name": "nosuch"},
       "name", "nosuch not found", "create it with canary.istio.virtual_service"),
    _m("traffic_split-unknown-route", "traffic_split", {**SPLIT, "route": "nosuch"},
       "route", "no HTTP route named 'nosuch'", "named routes"),
    _m("traffic_split-canary_weight-without-subsets", "traffic_split", {**VS, "canary_weight": 10},
       "stable", "canary", "canary_weight"),
    _m("traffic_split-weights-and-canary_weight", "traffic_split", {**SPLIT, "weights": {"v1": 100}},
       "weights", "canary_weight", "mutually exclusive"),
    # destination_rule
    _m("destination_rule-subset-without-name", "destination_rule", {**DR, "subsets": [{"labels": {"version": "v4"}}]},
       "name", "subsets"),
    _m("destination_rule-label-not-a-string", "destination_rule", {**DR, "subsets": [{"name": "v4", "labels": {"version": True}}]},
       "subsets", "label 'version' must be a string", "quote it in YAML"),
    _m("destination_rule-subset-twice", "destination_rule",
       {**DR, "subsets": [{"name": "v1", "labels": {"version": "v1"}}, {"name": "v1", "labels": {"version": "v1"}}]},
       "subsets", "more than once"),
    _m("destination_rule-no-service_host", "destination_rule", {"name": APP, "namespace": NS, "subsets": []},
       "service_host"),
    _m("destination_rule-traffic_policy-not-a-dict", "destination_rule", {**DR, "traffic_policy": ["ROUND_ROBIN"]},
       "traffic_policy"),
    _m("destination_rule-namespace-with-slash", "destination_rule", {**DR, "namespace": "prod/../kube-system"},
       "namespace"),
    # virtual_service
    _m("virtual_service-weights-sum-90", "virtual_service",
       {**ROUTE, "http": [{"destinations": [{"subset": "v1", "weight": 60}, {"subset": "v2", "weight": 30}]}]},
       "http[0].destinations", "sum to exactly 100"),
    _m("virtual_service-weight-missing", "virtual_service",
       {**ROUTE, "http": [{"destinations": [{"subset": "v1", "weight": 100}, {"subset": "v2"}]}]},
       "http[0].destinations", "v2 has no weight"),
    _m("virtual_service-timeout-without-unit", "virtual_service",
       {**ROUTE, "http": [{"destinations": [{"subset": "v1"}], "timeout": "7"}]},
       "http[0].timeout", "has no unit"),
    _m("virtual_service-retry-timeout-unknown-unit", "virtual_service",
       {**ROUTE, "http": [{"destinations": [{"subset": "v1"}], "retries": {"attempts": 2, "per_try_timeout": "2d"}}]},
       "per_try_timeout", "unknown unit"),
    _m("virtual_service-no-hosts", "virtual_service", {"name": APP, "namespace": NS, "default_subset": "v1"},
       "hosts"),
    _m("virtual_service-http-and-default_subset", "virtual_service",
       {**ROUTE, "default_subset": "v1", "http": [{"destinations": [{"subset": "v1"}]}]},
       "http", "default_subset"),
    # fault_injection
    _m("fault_injection-delay-without-unit", "fault_injection", {**FAULT, "delay": {"fixed_delay": "7"}},
       "delay.fixed_delay", "has no unit"),
    _m("fault_injection-delay-in-days", "fault_injection", {**FAULT, "delay": {"fixed_delay": "1d"}},
       "delay.fixed_delay", "unknown unit"),
    _m("fault_injection-abort-status-700", "fault_injection", {**FAULT, "abort": {"http_status": 700}},
       "abort.http_status", "outside 200-599"),
    _m("fault_injection-percentage-150", "fault_injection", {**FAULT, "delay": {"fixed_delay": "7s", "percentage": 150}},
       "delay.percentage", "between 0.0001 and 100"),
    _m("fault_injection-no-match", "fault_injection", {**VS, "rule": "chaos", "delay": {"fixed_delay": "7s"}},
       "headers", "uri"),
    _m("fault_injection-rule-names-a-route", "fault_injection", {**FAULT, "rule": "jason", "delay": {"fixed_delay": "7s"}},
       "rule", "not a fault rule", "choose another name"),
    _m("fault_injection-missing-virtualservice", "fault_injection",
       {**FAULT, "name": "nosuch", "delay": {"fixed_delay": "7s"}}, "name", "not found"),
    # release_lock
    _m("release_lock-ttl-0", "release_lock", {**VS, "owner": "me", "ttl": 0}, "ttl", "from 1 second"),
    _m("release_lock-missing-virtualservice", "release_lock", {**VS, "name": "nosuch", "owner": "me"},
       "name", "not found", "create it first"),
    _m("release_lock-unknown-state", "release_lock", {**VS, "owner": "me", "state": "locked"},
       "state", "present, absent"),
    # mesh_info: connection (kubeconfig, context, host, token)
    _m("mesh_info-kubeconfig-missing", "mesh_info", {"service_host": APP, "namespace": NS, "kubeconfig": "/nonexistent/kubeconfig"},
       "kubeconfig not found", "/nonexistent", "Set the option 'kubeconfig'"),
    _m("mesh_info-kubeconfig-not-yaml", "mesh_info", {"service_host": APP, "namespace": NS, "kubeconfig": f"{TMP}/not-yaml"},
       "kubeconfig", "cannot be read"),
    _m("mesh_info-kubeconfig-without-server", "mesh_info", {"service_host": APP, "namespace": NS, "kubeconfig": f"{TMP}/no-server"},
       "no API server URL", "host"),
    _m("mesh_info-unknown-context", "mesh_info", {"service_host": APP, "namespace": NS, "context": "sandbox-9"},
       "context", "sandbox-9", "not found", "sandbox-1"),
    _m("mesh_info-wrong-token", "mesh_info", {"service_host": APP, "namespace": NS, "kubeconfig": f"{TMP}/wrong-token"},
       "401 Unauthorized", "api_key", "kubeconfig's context"),
    _m("mesh_info-host-without-scheme", "mesh_info",
       {"service_host": APP, "namespace": NS, "kubeconfig": DROP, "context": DROP, "host": "127.0.0.1:6443", "api_key": "x"},
       "host", "must be a URL"),
    _m("mesh_info-namespace-with-slash", "mesh_info", {"service_host": APP, "namespace": "a/b"}, "namespace"),
    # mesh_info: hostile or contradictory credentials and TLS settings
    _m("mesh_info-insecure-skip-tls-verify-quoted", "mesh_info",
       {"service_host": APP, "namespace": NS, "kubeconfig": f"{TMP}/tls-false-quoted"},
       "insecure-skip-tls-verify", "must be true or false without quotes"),
    _m("mesh_info-insecure-and-ca", "mesh_info", {"service_host": APP, "namespace": NS, "kubeconfig": f"{TMP}/insecure-and-ca"},
       "sets both insecure-skip-tls-verify and a certificate authority", "remove insecure-skip-tls-verify"),
    _m("mesh_info-token-with-line-break", "mesh_info",
       {"service_host": APP, "namespace": NS, "kubeconfig": f"{TMP}/token-line-break"},
       "token", "holds a line break", "one line of plain ASCII"),
    # canary_analysis: settings, durations, provider, key
    _m("canary_analysis-unknown-metric", "canary_analysis", {**ANALYSIS, "checks": [{"metric": "request_sucess_rate", "min": 99}]},
       "checks", "request_sucess_rate", "use a built-in"),
    _m("canary_analysis-min-above-max", "canary_analysis",
       {**ANALYSIS, "checks": [{"metric": "request_success_rate", "min": 99, "max": 50}]}, "checks", "min 99", "above max 50"),
    _m("canary_analysis-window-in-words", "canary_analysis", {**ANALYSIS, "window": "5 minutes"},
       "window", "like 90s, 10m"),
    _m("canary_analysis-iterations-0", "canary_analysis", {**ANALYSIS, "iterations": 0}, "iterations", ">= 1"),
    _m("canary_analysis-baseline-is-canary", "canary_analysis", {**ANALYSIS, "baseline_version": "v2"},
       "baseline_version", "differ"),
    _m("canary_analysis-label-name", "canary_analysis", {**ANALYSIS, "labels": {"destination-cluster": "a"}},
       "labels", "destination-cluster", "not a label name"),
    _m("canary_analysis-prometheus-url-without-scheme", "canary_analysis",
       {**ANALYSIS, "provider": "prometheus", "prometheus_url": "prometheus:9090"}, "prometheus_url", "http://"),
    _m("canary_analysis-wrong-guance-key", "canary_analysis", {**ANALYSIS, "api_key": "not-the-key"},
       "api_key", "refused"),
    _m("canary_analysis-prometheus-token-with-line-break", "canary_analysis",
       {**ANALYSIS, "provider": "prometheus", "prometheus_url": "http://127.0.0.1:9", "prometheus_token": "tok\r\nX-Injected: 1"},
       "prometheus_token", "holds a line break"),
    # guance_query: DQL, URLs, keys, times
    _m("guance_query-malformed-dql", "guance_query", {**QUERY, "queries": [{"query": "M::`istio_requests_total`:((("}]},
       "querying Guance", "dql: parse error", "position"),
    _m("guance_query-url-without-scheme", "guance_query", {**QUERY, "url": "127.0.0.1:9529"}, "url", "http://"),
    _m("guance_query-unreachable-url", "guance_query", {**QUERY, "url": "http://127.0.0.1:9", "retry_budget": 1},
       "127.0.0.1:9", "cannot connect", "Check url (or site)"),
    _m("guance_query-wrong-key", "guance_query", {**QUERY, "api_key": "not-the-key"}, "api_key", "refused"),
    _m("guance_query-key-with-line-break", "guance_query", {**QUERY, "api_key": GUANCE_KEY + "\n"},
       "api_key", "holds a line break", "one line of plain ASCII"),
    _m("guance_query-unknown-site", "guance_query", {**QUERY, "url": DROP, "site": "mars"}, "site", "mars", "cn1"),
    _m("guance_query-last-in-words", "guance_query", {**QUERY, "last": "ten minutes"}, "last", "like 90s"),
    _m("guance_query-start-in-seconds", "guance_query", {**QUERY, "last": DROP, "start": 1700000000},
       "start", "looks like seconds", "milliseconds"),
    # guance_event
    _m("guance_event-unknown-status", "guance_event", {**EVENT, "status": "bad"}, "status", "bad"),
    _m("guance_event-reserved-tag", "guance_event", {**EVENT, "tags": {"df_title": "x"}}, "tags", "df_title", "rename"),
    _m("guance_event-date-in-words", "guance_event", {**EVENT, "date": "yesterday"}, "date", "yesterday"),
    _m("guance_event-empty-title", "guance_event", {**EVENT, "title": ""}, "title", "is empty", "give a value"),
    _m("guance_event-wrong-key", "guance_event", {**EVENT, "api_key": "not-the-key"}, "api_key", "refused"),
]

ROLE_BASE = {"canary_app": APP, "canary_namespace": NS, "canary_stable_version": "v1", "canary_version": "v2",
             "canary_kubeconfig": KUBECONFIG, "canary_context": "sandbox-1"}
ROLE_CASES = [
    _r("role-shift_traffic-weight-150", "shift_traffic", {**ROLE_BASE, "shift_traffic_weight": 150},
       "shift_traffic_weight", "0 to 100"),
    _r("role-shift_traffic-weight-in-words", "shift_traffic", {**ROLE_BASE, "shift_traffic_weight": "ten"},
       "shift_traffic_weight"),
    _r("role-shift_traffic-unknown-canary", "shift_traffic", {**ROLE_BASE, "canary_version": "v9", "shift_traffic_weight": 10},
       "canary", "'v9' is not defined"),
    _r("role-rollback-unknown-action", "rollback", {**ROLE_BASE, "rollback_canary_action": "shred"},
       "rollback_canary_action", "scale_to_zero"),
    _r("role-promote-missing-version", "promote", {**ROLE_BASE, "canary_version": DROP}, "canary_version"),
    _r("role-fault_injection-delay-without-unit", "fault_injection",
       {"canary_namespace": NS, "canary_kubeconfig": KUBECONFIG, "canary_context": "sandbox-1", "fault_injection_service": APP,
        "fault_injection_rule": "chaos", "fault_injection_headers": {"end-user": {"exact": "jason"}},
        "fault_injection_delay": {"fixed_delay": "7"}}, "delay.fixed_delay", "has no unit"),
    _r("role-canary_analysis-unknown-provider", "canary_analysis",
       {"canary_analysis_service": APP, "canary_analysis_namespace": NS, "canary_analysis_canary_version": "v2",
        "canary_analysis_provider": "datadog"}, "canary_analysis_provider", "guance, prometheus"),
]

# Grouped by the task that refuses them: a group runs as the hosts of one ansible-playbook (its play
# stops for all after the first task where one fails, max_fail_percentage 0). A case refused
# elsewhere than its group shows no failure of its own, and fails its test.
PLAYBOOK_CASES = [
    # ansible.builtin.validate_argument_spec on the release variables
    _p("canary_release-missing-image", "spec", {"canary_image": DROP}, "canary_image", "missing required"),
    _p("canary_release-step-in-words", "steps", {"canary_steps": ["ten", 100]}, "canary_steps[0]", "'ten'"),
    _p("canary_release-interval-in-words", "spec", {"canary_interval": "soon"}, "canary_interval", "'soon'", "to an int"),
    # the steps and versions
    _p("canary_release-steps-as-text", "steps", {"canary_steps": "10,100"}, "canary_steps", "(got '10,100')"),
    _p("canary_release-steps-decreasing", "steps", {"canary_steps": [50, 10]}, "canary_steps[1]", "never decrease", "below the 50%"),
    _p("canary_release-step-over-100", "steps", {"canary_steps": [10, 150]}, "canary_steps[1]", "from 0 to 100", "got 150"),
    _p("canary_release-ab-step-matching-nothing", "steps", {"canary_steps": [{"match": {}}, 100]}, "canary_steps[0].match",
       "expected {headers"),
    _p("canary_release-mirror-after-100", "steps", {"canary_steps": [100, {"mirror": 50}]}, "canary_steps[1]",
       "needs plain traffic still on the stable version"),
    _p("canary_release-steps-empty", "steps", {"canary_steps": []}, "canary_steps", "non-empty", "(got [])"),
    _p("canary_release-same-versions", "steps", {"canary_version": "v1"},
       "canary_version (v1) and canary_stable_version (v1) must differ"),
    _p("canary_release-version-not-a-label", "steps", {"canary_version": "V2!"}, "canary_version (V2!)", "lower-case label value"),
    _p("canary_release-version-too-long", "steps", {"canary_version": "v" + "1" * 70},
       "canary_version is 71 characters long", "at most 63"),
    _p("canary_release-interval-negative", "steps", {"canary_interval": -5}, "canary_interval must be >= 0 (got -5)"),
    _p("canary_release-analysis-not-a-mapping", "steps", {"canary_analysis": "yes please"},
       "canary_analysis must be a mapping", "(got yes please)"),
    # the keys, then the numbers, of canary_analysis
    _p("canary_release-analysis-key-typo", "analysis-keys", {"canary_analysis": {**RELEASE_ANALYSIS, "iteration": 3}},
       "canary_analysis.iteration", "Supported parameters include"),
    _p("canary_release-analysis-unknown-provider", "analysis-keys", {"canary_analysis": {**RELEASE_ANALYSIS, "provider": "datadog"}},
       "provider", "guance, prometheus", "canary_analysis"),
    _p("canary_release-analysis-iterations-0", "analysis-numbers", {"canary_analysis": {**RELEASE_ANALYSIS, "iterations": 0}},
       "Invalid canary_analysis: canary_analysis.iterations must be >= 1", "(got 0)"),
    # the cluster: kubeconfig, context, the stable version's Deployment
    _p("canary_release-kubeconfig-missing", "kubeconfig", {"canary_kubeconfig": "/nonexistent/cluster.yaml"},
       "canary_kubeconfig: /nonexistent/cluster.yaml does not exist", "K8S_AUTH_KUBECONFIG"),
    _p("canary_release-unknown-context", "context", {"canary_context": "sandbox-9"},
       "canary_context: context sandbox-9 is not in", "use one of: sandbox-1"),
    _p("canary_release-unknown-stable-version", "stable", {"canary_stable_version": "v7"},
       "canary_stable_version", "reviews-v7 does not exist", "canary_stable_image"),
    # the analysis tried once, in check mode, before any change
    _p("canary_release-analysis-unknown-metric", "preview",
       {"canary_analysis": {**RELEASE_ANALYSIS, "checks": [{"metric": "request_sucess_rate", "min": 99}]}},
       "checks", "request_sucess_rate", "use a built-in"),
    _p("canary_release-analysis-wrong-guance-key", "preview",
       {"canary_analysis": {**RELEASE_ANALYSIS, "guance": {"url": GUANCE_URL, "api_key": "not-the-key"}}},
       "api_key", "refused"),
    # the play before the release: canary_hosts (a play-level variable, so a group of its own)
    _p("canary_release-hosts-typo", "hosts", {"canary_hosts": "clustrs"}, "canary_hosts: 'clustrs' matches no host"),
]

CASES = MODULE_CASES + ROLE_CASES + PLAYBOOK_CASES


def fill(value, values: dict):
    """The case's arguments with the placeholders replaced and DROP entries left out."""
    if isinstance(value, dict):
        return {k: fill(v, values) for k, v in value.items() if v != DROP}
    if isinstance(value, list):
        return [fill(v, values) for v in value]
    if isinstance(value, str):
        for placeholder, real in values.items():
            value = value.replace(placeholder, real)
    return value


class Outcome(NamedTuple):
    failed: bool
    message: str
    started: float
    ended: float
    guance_requests: int | None = None


# --- the world the cases run against -----------------------------------------------------------

def _world_vs() -> dict:
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": APP},
            "spec": {"hosts": [APP], "http": [
                {"name": "jason", "match": [{"headers": {"end-user": {"exact": "jason"}}}],
                 "route": [{"destination": {"host": APP, "subset": "v2"}}]},
                {"name": "default", "route": [{"destination": {"host": APP, "subset": "v1"}}]}]}}


def _bad_kubeconfigs(release_kubeconfig: str, tmp: Path) -> None:
    good = yaml.safe_load(Path(release_kubeconfig).read_text())
    wrong_token = copy.deepcopy(good)
    for user in wrong_token["users"]:
        user["user"]["token"] = "0" * 48
    (tmp / "wrong-token").write_text(yaml.safe_dump(wrong_token))
    (tmp / "not-yaml").write_text("clusters: [ {name: a\n  : : ]\n")
    no_server = copy.deepcopy(good)
    for entry in no_server["clusters"]:
        entry["cluster"].pop("server")
    (tmp / "no-server").write_text(yaml.safe_dump(no_server))
    quoted = copy.deepcopy(good)
    for entry in quoted["clusters"]:
        entry["cluster"]["insecure-skip-tls-verify"] = "false"  # a string: would have turned verification off
    (tmp / "tls-false-quoted").write_text(yaml.safe_dump(quoted))
    both = copy.deepcopy(good)
    for entry in both["clusters"]:
        entry["cluster"]["insecure-skip-tls-verify"] = True
    (tmp / "insecure-and-ca").write_text(yaml.safe_dump(both))
    broken = copy.deepcopy(good)
    for user in broken["users"]:
        user["user"]["token"] = user["user"]["token"][:10] + "\n" + user["user"]["token"][10:]
    (tmp / "token-line-break").write_text(yaml.safe_dump(broken))


def _snapshot(admin, namespace: str) -> dict:
    """resourceVersion of each object the cases could touch."""
    paths = [object_path("VirtualService", namespace, APP), object_path("DestinationRule", namespace, APP),
             object_path("Deployment", namespace, f"{APP}-v1"), object_path("Deployment", namespace, f"{APP}-v2"),
             object_path("Service", namespace, APP)]
    return {p: admin.get(p)["metadata"]["resourceVersion"] for p in paths}


# --- running the cases ---------------------------------------------------------------------------

def _run_module_case(case: Case, values: dict) -> Outcome:
    defaults = {} if case.target in ("guance_query", "guance_event", "canary_analysis") else \
        {"kubeconfig": KUBECONFIG, "context": "sandbox-1"}
    args = fill({**defaults, **case.args}, values)
    started = time.time()
    result = run_module(case.target, args)
    return Outcome(bool(result.get("failed")), str(result.get("msg", "")), started, time.time(),
                   result.get("requests", result.get("http_requests")))


def _ansible_env() -> dict:
    return {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections"), "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0"}


def _failure_messages(stdout: str) -> dict[str, list[str]]:
    """host -> the msg of each of its failed tasks, from ansible-playbook's default output."""
    messages: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        if line.startswith("fatal: [") and "=> " in line:
            host = line[len("fatal: ["):line.index("]")]
            try:
                messages.setdefault(host, []).append(str(json.loads(line.split("=> ", 1)[1]).get("msg", line)))
            except ValueError:
                messages.setdefault(host, []).append(line)
    return messages


def _release_vars(case: Case, tmp: Path) -> dict:
    """The variables of a good release on the world, with the case's bad ones in."""
    variables = {"canary_app": APP, "canary_namespace": NS, "canary_stable_version": "v1", "canary_version": "v2",
                 "canary_image": IMAGE, "canary_steps": [50, 100], "canary_interval": 0, "canary_analysis": False,
                 "canary_delete_old_versions": False, "canary_kubeconfig": KUBECONFIG, "canary_context": "sandbox-1",
                 "canary_report_dir": str(tmp / "reports" / case.id)}
    variables.update(case.args)
    return variables


def _run_playbook_group(cases: list[Case], values: dict, tmp: Path) -> dict[str, Outcome]:
    """The group's cases as hosts of one inventory (their variables as host vars, as a multi-cluster
    inventory gives them), all in one canary_release run; canary_hosts, a play-level variable, as -e."""
    hosts = {c.id: {"ansible_connection": "local", "ansible_python_interpreter": str(VENV_BIN / "python"),
                    **fill({k: v for k, v in _release_vars(c, tmp).items() if k != "canary_hosts"}, values)}
             for c in cases}
    inventory = tmp / f"inventory-{cases[0].group}.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"cases": {"hosts": hosts}}}}))
    pattern = cases[0].args.get("canary_hosts", "cases")
    started = time.time()
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), cases[0].target,
                           "-e", json.dumps({"canary_hosts": pattern})],
                          env=_ansible_env(), capture_output=True, text=True, timeout=600, check=False)
    ended, messages = time.time(), _failure_messages(proc.stdout)
    outcomes = {}
    for case in cases:
        # A canary_hosts matching nothing fails on the control node (localhost), before any case host.
        own = messages.get(case.id) or (messages.get("localhost", []) if pattern != "cases" else [])
        message = " | ".join(own) if own else \
            f"no failure of its own (exit {proc.returncode}): {proc.stdout[-1200:]} {proc.stderr[-300:]}"
        outcomes[case.id] = Outcome(bool(own) and proc.returncode != 0, message, started, ended)
    return outcomes


def _roles_playbook(cases: list[Case], values: dict, out: Path) -> list[dict]:
    """One play: each role case in a block whose rescue notes the failure, then all written to `out`."""
    tasks = []
    for case in cases:
        note = "{{ canary_bad_input + [{'id': '%s', 'failed': %s, 'msg': %s}] }}"
        tasks.append({
            "name": case.id,
            "block": [
                {"name": f"{case.id}: role", "ansible.builtin.include_role": {"name": f"canary.istio.{case.target}"},
                 "vars": fill(case.args, values)},
                {"name": f"{case.id}: it passed", "ansible.builtin.set_fact": {"canary_bad_input": note % (case.id, "false", "''")}},
            ],
            "rescue": [{"name": f"{case.id}: it failed", "ansible.builtin.set_fact": {
                "canary_bad_input": note % (case.id, "true", "ansible_failed_result.msg | default(ansible_failed_result | string)")}}],
        })
    tasks.append({"name": "Write the outcomes", "ansible.builtin.copy": {
        "content": "{{ canary_bad_input | to_nice_json }}", "dest": str(out), "mode": "0600"}})
    return [{"name": "Bad input to the roles", "hosts": "localhost", "connection": "local", "gather_facts": False,
             "vars": {"canary_bad_input": []}, "tasks": tasks}]


def _run_role_cases(cases: list[Case], values: dict, tmp: Path) -> dict[str, Outcome]:
    playbook, out = tmp / "roles.yml", tmp / "roles-outcome.json"
    playbook.write_text(yaml.safe_dump(_roles_playbook(cases, values, out), sort_keys=False))
    started = time.time()
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), str(playbook)], env=_ansible_env(),
                          capture_output=True, text=True, timeout=600, check=False)
    ended = time.time()
    assert out.exists(), f"the roles playbook did not finish:\n{proc.stdout[-3000:]}\n{proc.stderr[-1000:]}"
    rows = {row["id"]: row for row in json.loads(out.read_text())}
    return {c.id: Outcome(rows[c.id]["failed"], str(rows[c.id]["msg"]), started, ended) for c in cases}


def _events_titled(endpoints: dict, title: str) -> int:
    """Events Guance stored with this title, read through the simulator's DataKit API (no key needed)."""
    query = f"E::`custom`:(`time`, `df_title`) {{ `df_title` = '{title}' }}"
    resp = requests.post(f"{endpoints['datakit']}/v1/query/raw", json={"queries": [{"query": query}]}, timeout=10)
    assert resp.status_code == 200, resp.text
    return sum(len(series["values"]) for series in resp.json()["content"][0]["series"])


def _event_time(event: dict) -> float:
    stamp = event.get("requestReceivedTimestamp") or event.get("stageTimestamp")
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


class World(NamedTuple):
    namespace: str
    outcomes: dict[str, Outcome]
    writes: list[dict]  # write events in the namespace after set-up
    before: dict
    after: dict
    guance_events: int  # events that reached Guance with the guance_event cases' title

    def writes_during(self, outcome: Outcome) -> list[str]:
        return [f"{e['verb']} {e['objectRef'].get('resource')} by {e['user']['username']}" for e in self.writes
                if outcome.started - 0.05 <= _event_time(e) <= outcome.ended + 0.05]


@pytest.fixture(scope="module")
def world(sandbox, admin, release_kubeconfig, tmp_path_factory) -> World:
    """Set the objects up, mark the audit log, run every case, and read the log back once."""
    namespace = f"rel-bad-input-{uuid.uuid4().hex[:6]}"
    sandbox_cluster.create_namespace(admin, namespace)
    admin.wait_for(f"ServiceAccount default in {namespace}",
                   lambda: admin.get(f"/api/v1/namespaces/{namespace}/serviceaccounts/default"), 30)
    try:
        deploy_app(admin, namespace, APP, ("v1", "v2"))
        create(admin, namespace, bookinfo_object("networking/destination-rule-all.yaml", "DestinationRule", APP))
        create(admin, namespace, _world_vs())
        tmp = tmp_path_factory.mktemp("bad-input")
        _bad_kubeconfigs(release_kubeconfig, tmp)
        endpoints = json.loads((versions.STATE_DIR / "endpoints.json").read_text())
        values = {NS: namespace, KUBECONFIG: release_kubeconfig, GUANCE_URL: endpoints["guance_openapi"],
                  GUANCE_KEY: endpoints["guance_api_key"], TMP: str(tmp)}
        before = _snapshot(admin, namespace)
        log = AuditLog(sandbox[0]).mark()

        outcomes = {c.id: _run_module_case(c, values) for c in MODULE_CASES}
        with concurrent.futures.ThreadPoolExecutor(PLAYBOOK_WORKERS) as pool:
            roles = pool.submit(_run_role_cases, ROLE_CASES, values, tmp)
            groups: dict[str, list[Case]] = {}
            for case in PLAYBOOK_CASES:
                groups.setdefault(case.group, []).append(case)
            runs = [pool.submit(_run_playbook_group, group, values, tmp) for group in groups.values()]
            outcomes.update(roles.result())
            for run in runs:
                outcomes.update(run.result())

        writes = [e for e in log.events() if e["verb"] in WRITE_VERBS
                  and (e.get("objectRef") or {}).get("namespace") == namespace]
        yield World(namespace, outcomes, writes, before, _snapshot(admin, namespace),
                    _events_titled(endpoints, fill(EVENT["title"], values)))
    finally:
        admin.delete(f"/api/v1/namespaces/{namespace}")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_fails_naming_the_field_and_writes_nothing(world, case, record):
    """The run fails, its message names the field (and the fix), and no write reached the API server"""
    outcome = world.outcomes[case.id]
    writes = world.writes_during(outcome)
    details = {"message": outcome.message[:400], "writes": len(writes), "run_s": round(outcome.ended - outcome.started, 1)}
    if outcome.guance_requests is not None:
        details["guance_requests"] = outcome.guance_requests
    record(**details)
    assert outcome.failed, f"{case.id} did not fail: {outcome.message[:1000]}"
    missing = [part for part in case.expect if part not in outcome.message]
    assert not missing, f"the message lacks {missing}: {outcome.message[:1500]}"
    if case.group == "steps":
        # the release's rules are checked together, but only the broken one may be in the message
        named = " ".join(case.expect)
        others = [says for variable, says in STEPS_RULES if variable not in named and says in outcome.message]
        assert not others, f"the message also names {others}, which were fine: {outcome.message[:1500]}"
    assert not writes, writes
    if case.target == "guance_event":
        assert world.guance_events == 0  # Guance stored no event of these cases


def test_bad_input_left_the_objects_as_they_were(world, record):
    """After all bad-input cases the service's objects are unchanged and the namespace saw no write"""
    changed = sorted(p for p in world.before if world.before[p] != world.after[p])
    record(objects=len(world.before), changed=len(changed), writes=len(world.writes), cases=len(world.outcomes))
    assert not changed, changed
    assert not world.writes, [(e["verb"], e["objectRef"], e["user"]["username"]) for e in world.writes]
