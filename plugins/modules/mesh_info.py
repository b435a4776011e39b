#!/usr/bin/python
# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: mesh_info
short_description: Show where Istio sends a host's traffic, by Envoy's rules, and what is wrong with it
version_added: 0.1.0
description:
  - Reads the VirtualServices and DestinationRules of the host, its Service, the Service's pods and
    the Deployments behind them, and answers as Istio configures a sidecar in O(namespace) -
    which VirtualService is in force, its routes in the order Envoy tries them, the route that
    takes plain traffic (the first that matches every request), the routes nothing reaches, the
    share of plain traffic per subset and per version, and every route, fault rule or mirror that
    still sends requests to each version and Deployment.
  - "Envoy takes the B(first) route whose match holds, so the first route without a match (or whose
    match holds no condition, such as a C(name) alone or the uri prefix C(/)) takes every request
    after it; Istio does not even send the later routes to Envoy."
  - "Several VirtualServices for one host are not merged for sidecars: the oldest (then the first by
    name) is used whole and the others are ignored. RV(virtual_service) names the one in force,
    RV(dropped_virtual_services) the ignored ones."
  - "A subset's identity is its label selector, not its name: versions are read from the pods and
    Deployments the selector picks (label O(version_label))."
  - "Problems found: a route nothing reaches; a route to a subset that the DestinationRule does not
    define (or a host with no DestinationRule); a subset that receives traffic but has no Ready pod;
    a subset without labels or selecting several versions; weights not summing to 100; several
    VirtualServices for the host; a delegated route (not followed); a missing Service or one with no
    selector."
  - "Reads the Gateway API HTTPRoutes whose parent is the host's Service too (in-mesh routing,
    GAMMA). When no VirtualService routes the host, they do: RV(routing_kind) is V(HTTPRoute), and
    RV(catch_all), RV(version_weights), RV(default_weights), RV(serving) and RV(traffic) come from
    the oldest route's catch-all rule (the rule whose match holds no condition) and from every
    rule's weighted C(backendRefs), one Service per version named C(<service>-<version>). A host
    routed by both kinds is a problem."
  - With O(release), also returns where a canary release stands (RV(release)), so a playbook
    decides with a plain C(when).
  - Never writes anything.
options:
  service_host:
    description:
      - The host, as a VirtualService names it, for example V(reviews) or
        V(reviews.prod.svc.cluster.local). A short name is read in O(namespace).
      - Not called C(host), because O(host) is the URL of the Kubernetes API server, as in
        kubernetes.core.
    type: str
    required: true
  namespace:
    description:
      - Namespace whose VirtualServices are read, and where a short O(service_host) lives. The
        routing is the one a sidecar of this namespace gets.
    type: str
    required: true
  version_label:
    description:
      - The pod label that tells versions apart.
    type: str
    default: version
  release:
    description:
      - A canary release to place on the routing read.
    type: dict
    suboptions:
      stable:
        description: The stable version (a value of O(version_label)).
        type: str
        required: true
      canary:
        description: The canary version.
        type: str
        required: true
      steps:
        description:
          - "The release's steps, in order, as C(canary_steps) of the C(canary.istio.canary_release)
            playbook gives them: weights, C({match: ...}), C({mirror: percent}), C({pause: true}).
            See the C(canary.istio.release_plan) filter."
        type: list
        elements: raw
        default: []
      allow_weight_decrease:
        description: Run every step even when the live canary weight is already above it.
        type: bool
        default: false
extends_documentation_fragment:
  - canary.istio.k8s_auth
  - canary.istio.istio_api
  - canary.istio.attributes.READ_ONLY
  - canary.istio.attributes.ISTIO_GROUP
notes:
  - Only VirtualServices of O(namespace) are read, and DestinationRules of the namespace of the
    host's Service; rules exported from other namespaces are not seen.
  - Several DestinationRules for the host are merged as Istio merges them (the oldest wins a subset
    name); rules with a C(workloadSelector) are ignored.
  - A subset's Ready pods are the pods selected by the Service's selector that also carry the
    subset's labels; a pod being deleted does not count. A subset with no Ready pod and no traffic
    (the old version after a promotion) is listed but is not a problem.
  - Matches on C(sourceLabels) are kept as conditions (they hold for some clients only); a C(port)
    match is decided when the Service has one port.
  - "API requests: 6 reads (VirtualServices, DestinationRules, HTTPRoutes, Service, pods, Deployments). A cluster
    without the Gateway API answers the HTTPRoutes' read with 404, read as none."
seealso:
  - module: canary.istio.traffic_split
  - module: canary.istio.fault_injection
author:
  - canary.istio maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Look at reviews before shifting traffic
  canary.istio.mesh_info:
    service_host: reviews
    namespace: prod
  register: reviews_mesh

- name: Stop when the mesh is not healthy
  ansible.builtin.assert:
    that: reviews_mesh.problems | length == 0
    fail_msg: "{{ reviews_mesh.problems | join('; ') }}"

- name: Show the split of plain traffic, per version
  ansible.builtin.debug:
    msg: "{{ reviews_mesh.version_weights }}"

- name: Where a release of v2 over v1 stands
  canary.istio.mesh_info:
    service_host: reviews
    namespace: prod
    release:
      stable: v1
      canary: v2
      steps: [10, 50, 100]
  register: reviews_release
"""

RETURN = r"""
service_host:
  description: The host asked about, as given.
  returned: success
  type: str
  sample: reviews
fqdn:
  description: The host's full name, as Istio reads it.
  returned: success
  type: str
  sample: reviews.prod.svc.cluster.local
virtual_service:
  description: The VirtualService in force for the mesh (the oldest of those naming the host), or null.
  returned: success
  type: str
  sample: reviews
routing_kind:
  description: What routes the host, V(VirtualService) or V(HTTPRoute), or null when nothing does.
  returned: success
  type: str
  sample: VirtualService
http_route:
  description: The HTTPRoute whose catch-all rule takes plain traffic (the oldest attached to the host's Service), or null.
  returned: success
  type: str
  sample: null
http_routes:
  description: Names of the HTTPRoutes whose parent is the host's Service, oldest first.
  returned: success
  type: list
  elements: str
  sample: []
locks:
  description:
    - The release lock (C(canary.istio.release_lock)) on each VirtualService naming the host (and
      each HTTPRoute attached to its Service) that carries one, by name. Read only; a lock past
      its expiry says C(expired=true).
  returned: success
  type: dict
  sample: {"reviews": {"owner": "reviews/v2 by admin@awx", "run": "1042", "acquired": "2026-12-04T02:00:00Z",
                       "expires": "2026-12-04T06:00:00Z", "expired": false}}
virtual_services:
  description: Names of the mesh VirtualServices of O(namespace) that name the host, oldest first.
  returned: success
  type: list
  elements: str
  sample: [reviews]
dropped_virtual_services:
  description: Those of RV(virtual_services) that Istio ignores for sidecars (all but the oldest).
  returned: success
  type: list
  elements: str
  sample: []
gateway_virtual_services:
  description: VirtualServices naming the host that are bound to gateways only (not used by sidecars).
  returned: success
  type: list
  elements: str
  sample: []
destination_rule:
  description: Name of the DestinationRule that defines the host's subsets (the oldest, when several), or null.
  returned: success
  type: str
  sample: reviews
destination_rules:
  description: Names of every DestinationRule that defines the host, oldest first.
  returned: success
  type: list
  elements: str
  sample: [reviews]
routes:
  description: The HTTP routes of the VirtualService in force, in the order Envoy tries them.
  returned: success
  type: list
  elements: dict
  contains:
    vs:
      description: The VirtualService the route belongs to.
      type: str
    index:
      description: The route's position in C(spec.http).
      type: int
    name:
      description: The route's name, or null.
      type: str
    label:
      description: How messages name the route.
      type: str
    match:
      description: The route's match conditions in Istio's form; empty for a route without match.
      type: list
      elements: dict
    catch_all:
      description: Whether this route takes every request that reaches it (it ends the routes Envoy sees).
      type: bool
    reachable:
      description: Whether some request can reach the route (no earlier route takes all its requests).
      type: bool
    shadowed_by:
      description: The route that takes this route's requests first, or null.
      type: str
    weights:
      description: Subset to weight, as Istio reads the route (a lone destination gets 100).
      type: dict
    destinations:
      description: Host (FQDN), subset and weight of each destination.
      type: list
      elements: dict
    mirrors:
      description: Host, subset and percent of each mirror target.
      type: list
      elements: dict
    fault:
      description: Whether the route injects a fault.
      type: bool
  sample:
    - {"vs": "reviews", "index": 0, "name": null, "label": "VirtualService 'reviews' route #0", "match": [],
       "catch_all": true, "reachable": true, "shadowed_by": null, "weights": {"v1": 90, "v2": 10}}
catch_all:
  description: The route that takes plain traffic (the first that matches every request), or null.
  returned: success
  type: dict
  sample: {"vs": "reviews", "index": 0, "name": null, "label": "VirtualService 'reviews' route #0"}
default_weights:
  description: Subset to weight of plain traffic (the catch-all's destinations to this host).
  returned: success
  type: dict
  sample: {"v1": 90, "v2": 10}
traffic:
  description: One sentence of where plain traffic goes now, per version, read from the cluster.
  returned: success
  type: str
  sample: "traffic now: v1 90%, v2 10% (VirtualService 'reviews' route #0)"
version_weights:
  description: Version to share of plain traffic, through the subsets' selectors.
  returned: success
  type: dict
  sample: {"v1": 90.0, "v2": 10.0}
serving:
  description: Version to every route, fault rule or mirror that sends it requests.
  returned: success
  type: dict
  sample: {"v1": ["VirtualService 'reviews' route #0 to subset 'v1' (90%)"]}
version_deployments:
  description:
    - Version (the value of O(version_label) on their pod templates) to the names of the Deployments
      the host's Service selects.
  returned: success
  type: dict
  sample: {"v1": ["reviews-v1"], "v2": ["reviews-v2"]}
serving_deployments:
  description: Deployment name to every route, fault rule or mirror that sends its pods requests.
  returned: success
  type: dict
  sample: {"reviews-v1": ["VirtualService 'reviews' route #0 to subset 'v1' (90%)"]}
subsets:
  description: The subsets of the DestinationRule.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Subset name.
      type: str
    labels:
      description: The pod labels that select the subset.
      type: dict
    ready_pods:
      description: Number of Ready pods of the host's Service that carry those labels.
      type: int
    versions:
      description: The versions of the pods and Deployments the subset selects.
      type: list
      elements: str
    deployments:
      description: The Deployments whose pods the subset selects.
      type: list
      elements: str
    receives_traffic:
      description: Whether a reachable route gives the subset a weight above 0.
      type: bool
  sample:
    - {"name": "v1", "labels": {"version": "v1"}, "ready_pods": 3, "versions": ["v1"], "deployments": ["reviews-v1"],
       "receives_traffic": true}
faults:
  description: The fault rules (routes with a fault), delay and abort in the options' form of M(canary.istio.fault_injection).
  returned: success
  type: list
  elements: dict
  sample:
    - name: ratings-delay-jason
      vs: ratings
      match: [{"headers": {"end-user": {"exact": "jason"}}}]
      delay: {"fixed_delay": "7s", "percentage": 100}
      abort: null
release:
  description: Where the release of O(release) stands.
  returned: when O(release) is given
  type: dict
  contains:
    live_weight:
      description: The canary version's share of plain traffic, in percent.
      type: int
    stable_weight:
      description: The stable version's share of plain traffic, in percent.
      type: int
    traffic_moved:
      description: Whether any route, fault rule or mirror sends the canary requests.
      type: bool
    canary_served_by:
      description: What sends the canary requests.
      type: list
      elements: str
    steps_to_run:
      description: The weights of the steps a (resumed) release still runs.
      type: list
      elements: int
    plan_to_run:
      description:
        - The steps a (resumed) release still runs, each with C(kind) (weight, match, mirror or
          pause), C(weight) (the canary's share of plain traffic while it holds), C(label), and
          C(match) or C(mirror) for those kinds.
      type: list
      elements: dict
    skipped_steps:
      description: The weights of the steps already passed.
      type: list
      elements: int
    skipped_labels:
      description: The steps already passed, as labels (C(10%), C(A/B end-user exact jason)).
      type: list
      elements: str
    has_virtual_service:
      description: Whether a VirtualService routes the host yet.
      type: bool
    has_routing:
      description: Whether a VirtualService or an HTTPRoute routes the host yet.
      type: bool
  sample: {"live_weight": 10, "stable_weight": 90, "traffic_moved": true, "steps_to_run": [10, 50, 100],
           "plan_to_run": [{"kind": "weight", "weight": 10, "label": "10%"}, {"kind": "weight", "weight": 50, "label": "50%"},
                           {"kind": "weight", "weight": 100, "label": "100%"}],
           "skipped_steps": [], "skipped_labels": [], "has_virtual_service": true, "has_routing": true,
           "canary_served_by": []}
problems:
  description: What is wrong, one sentence each; empty when nothing is.
  returned: success
  type: list
  elements: str
  sample: ["subset 'v2' has no Ready pods but receives traffic from VirtualService 'reviews' route #0"]
"""

import datetime
import typing as t

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.canary.istio.plugins.module_utils._istio.fault import fault_rules
from ansible_collections.canary.istio.plugins.module_utils._istio.mesh_config import deployments_by_version
from ansible_collections.canary.istio.plugins.module_utils._istio.release_steps import read_steps
from ansible_collections.canary.istio.plugins.module_utils._istio.http_route import gateway_routing, mixed_routing_problem
from ansible_collections.canary.istio.plugins.module_utils._istio.routing import host_routing, release_state, traffic_sentence
from ansible_collections.canary.istio.plugins.module_utils._istio.api import ISTIO_API_ARG_SPEC
from ansible_collections.canary.istio.plugins.module_utils._errors import CanaryError, doing
from ansible_collections.canary.istio.plugins.module_utils._k8s.module import client_from_module
from ansible_collections.canary.istio.plugins.module_utils._k8s.options import auth_argument_spec
from ansible_collections.canary.istio.plugins.module_utils._istio.release_lock import lock_view
from ansible_collections.canary.istio.plugins.module_utils._istio.mesh_reads import read_host
from ansible_collections.canary.istio.plugins.module_utils._main import run_module

OWN_OPTIONS: dict[str, dict[str, t.Any]] = dict(
    ISTIO_API_ARG_SPEC,
    service_host=dict(type="str", required=True),
    namespace=dict(type="str", required=True),
    version_label=dict(type="str", default="version"),
    release=dict(type="dict", options=dict(
        stable=dict(type="str", required=True),
        canary=dict(type="str", required=True),
        steps=dict(type="list", elements="raw", default=[]),
        allow_weight_decrease=dict(type="bool", default=False),
    )),
)


def check_params(params: t.Mapping[str, t.Any]) -> tuple[str, str] | None:
    """(option, message) for the first option that cannot be used, else None (the required
    names are checked by fail_on_blank_required)."""
    if not (params.get("version_label") or "").strip():
        return "version_label", "version_label: is empty; give the pod label that tells versions apart, e.g. version"
    release = params.get("release")
    if release:
        for key in ("stable", "canary"):
            if not (release.get(key) or "").strip():
                return "release.%s" % key, "release.%s: name the %s version" % (key, key)
    return None


def run(module: AnsibleModule) -> dict[str, t.Any]:
    """Where the host's traffic goes, what could change it, and the release's state; CanaryError
    for whatever stops the reading."""
    params = module.params
    bad = check_params(params)
    if bad:
        raise CanaryError(bad[1], bad[0])
    host, namespace = params["service_host"], params["namespace"]
    client = client_from_module(module)
    with doing("reading the routing of %s in namespace %s" % (host, namespace)):
        state = read_host(client, params["api_version"], host, namespace)

    model = host_routing(host, namespace, state.virtual_services, state.destination_rules, state.pods,
                         state.deployments, port=state.port, version_label=params["version_label"])
    winner = [vs for vs in state.virtual_services if (vs.get("metadata") or {}).get("name") == model["virtual_service"]]
    faults = [dict(rule, vs=model["virtual_service"]) for rule in fault_rules((winner[0].get("spec") or {}) if winner else {})]
    result = dict(model, changed=False, service_host=model.pop("host"), faults=faults)
    result["problems"] = model["problems"] + state.problems
    result["version_deployments"] = deployments_by_version(state.deployments, params["version_label"])
    now = datetime.datetime.now(datetime.timezone.utc)
    naming = set(model["virtual_services"]) | set(model.get("gateway_virtual_services") or [])
    views = {name: lock_view(vs, now) for vs in state.virtual_services
             for name in [(vs.get("metadata") or {}).get("name")] if name in naming}
    views.update((name, lock_view(route, now)) for route in state.http_routes for name in [(route.get("metadata") or {}).get("name")])
    result["locks"] = {name: view for name, view in views.items() if view is not None}
    with_http_routes(result, gateway_routing(host, namespace, state.http_routes))
    if params["release"]:
        release = params["release"]
        steps = read_steps(release["steps"], "release.steps") if release["steps"] else []
        result["release"] = release_state(result, release["stable"], release["canary"], steps,
                                          release["allow_weight_decrease"])
    return result


def with_http_routes(result: dict[str, t.Any], gateway: dict[str, t.Any]) -> None:
    """The HTTPRoutes' part of the answer: names always; where plain traffic goes when no
    VirtualService routes the host; a problem when both kinds route it."""
    result.update(http_route=gateway["http_route"], http_routes=gateway["http_routes"])
    result["routing_kind"] = "VirtualService" if result["virtual_service"] else ("HTTPRoute" if gateway["http_route"] else None)
    if result["routing_kind"] == "HTTPRoute":
        result.update((key, gateway[key]) for key in ("catch_all", "default_weights", "version_weights", "serving"))
        result["traffic"] = traffic_sentence(result["version_weights"], gateway["catch_all"])
        result["problems"] += gateway["problems"]
    problem = mixed_routing_problem(result["service_host"], gateway["http_routes"], result["virtual_services"])
    if problem:
        result["problems"].append(problem)


def main() -> None:
    run_module(run, auth_argument_spec(OWN_OPTIONS))


if __name__ == "__main__":
    main()
