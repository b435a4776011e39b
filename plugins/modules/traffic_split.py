#!/usr/bin/python
# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: traffic_split
short_description: Set the traffic weights of one route of an Istio VirtualService
version_added: 0.1.0
description:
  - Sets how one HTTP route of an existing VirtualService splits its requests between the subsets
    of its host, for example 90% to V(v1) and 10% to V(v2). By default the route changed is the
    catch-all - the B(first) route that matches every request (no match, or a match holding no
    condition such as a C(name) alone), the one plain traffic takes, since Envoy takes the first
    route whose match holds.
  - Refuses, with nothing written, a named O(route) that no request reaches (it comes after the
    catch-all), naming the route that takes its requests; a VirtualService that Istio ignores
    for its host because an older VirtualService names the same host (sidecars use only the
    oldest, whole), naming that one; and, unless O(force=true), the one Istio uses when others
    name its host too, naming them (the rollback role sets O(force), so traffic can always go back).
  - Only that route's destinations change. Other routes, matches, retries, timeouts, mirrors,
    header rewrites, fault rules, labels, annotations and fields this module does not know stay as
    they were. A destination keeps its host, port and headers; a subset new to the route gets the
    host and port of the route's first destination; destinations of subsets not named are removed.
  - Refuses, with nothing written, to route to a subset that the host's DestinationRule does not
    define, or to give traffic to a subset with no Ready pod (unless O(force=true)).
  - The VirtualService is written with its C(resourceVersion); when another writer changed it
    between this module's read and its write, the same weights are applied again to a fresh read,
    so both changes are kept.
  - When the route already has the wanted weights nothing else is read and nothing is written.
  - "An A/B step (O(canary_match)) adds a route named C(canary-match-<canary>) that sends the
    matching requests to the canary subset, placed just before the first route that would take all
    of them (the catch-all at the latest) and keeping that route's other settings. A shadow step
    (O(canary_mirror)) mirrors that share of the route's requests to the canary subset; Envoy
    discards the mirrored answers."
  - Those routes, mirrors and cookies are the release's own. A write without O(canary_match),
    O(canary_mirror) or O(canary_sticky) removes the A/B route, the mirror and the sticky route and
    cookie of every subset it writes, so the next step, the promotion and a rollback leave none
    behind. Other routes and mirrors stay.
  - "With O(kind=HTTPRoute) it sets the weights of a Gateway API HTTPRoute instead: the C(backendRefs)
    of its catch-all rule (the rule whose match holds no condition, which the Gateway API tries
    last), one Service per version named C(<service>-<version>), where C(<service>) is the route's
    parent Service (in-mesh routing, GAMMA) or, for a route of a Gateway, the route's name. The
    same promises hold: a version that would get traffic needs its Service (even with
    O(force=true), since Istio answers 500 for a missing backend) and a Ready pod behind it; an
    unchanged rule is not written."
  - Refuses, unless O(force=true), a host routed by both a VirtualService and an HTTPRoute, naming
    both; Istio would let one shadow the other.
options:
  name:
    description: Name of the VirtualService.
    type: str
    required: true
  namespace:
    description: Namespace of the VirtualService. Its hosts' short names are read in it.
    type: str
    required: true
  kind:
    description:
      - What routes the host. V(VirtualService) (Istio's API), or V(HTTPRoute) (the Gateway API,
        C(gateway.networking.k8s.io/v1)), whose weights are versions' Services.
      - "With V(HTTPRoute), an A/B step (O(canary_match)) is a rule named C(canary-match-<canary>)
        matching its headers (a cookie is a match on the Cookie header) with the canary's Service as
        its backend; the Gateway API ranks it above the catch-all, and it keeps the catch-all's
        filters and timeouts. A shadow step (O(canary_mirror)) is a C(RequestMirror) filter of the
        catch-all to the canary's Service. A write without them removes those of the versions it
        writes."
      - With V(HTTPRoute), O(route) and O(canary_sticky) are refused, and O(api_version) only names
        the VirtualServices read to refuse a host routed by both.
    type: str
    choices: [VirtualService, HTTPRoute]
    default: VirtualService
  route:
    description:
      - Name of the HTTP route to change.
      - When not set, the catch-all route (the first one that matches every request).
    type: str
  weights:
    description:
      - "Subset name to integer weight, for example V({v1: 90, v2: 10})."
      - Weights are whole numbers from 0 to 100 that sum to exactly 100. A subset at 0 stays in the
        route with weight 0.
      - Mutually exclusive with O(stable), O(canary) and O(canary_weight).
    type: dict
  stable:
    description:
      - The subset that keeps the rest of the traffic, with O(canary) and O(canary_weight).
    type: str
  canary:
    description:
      - The subset that receives O(canary_weight) percent of the traffic. Must differ from O(stable).
    type: str
  canary_weight:
    description:
      - Percentage, 0 to 100, of the traffic for O(canary); O(stable) gets the rest.
    type: int
  canary_match:
    description:
      - An A/B step. The requests that match go to O(canary); the others keep the weights.
      - "O(canary_match.headers): header name to C({exact|prefix|regex: value}) (a bare string is
        exact). O(canary_match.cookie): a C(name=value) cookie among the request's cookies, the value
        a regex if needed (C(user=jason), C(tester=(jason|ana)))."
      - Needs O(stable), O(canary) and O(canary_weight).
    type: dict
    suboptions:
      headers:
        description: Header name to match.
        type: dict
      cookie:
        description: A C(name=value) cookie.
        type: str
  canary_mirror:
    description:
      - A shadow step. Percentage, above 0 and at most 100, of the route's requests also sent to
        O(canary), whose answers are discarded.
      - Needs O(stable), O(canary) and O(canary_weight).
    type: float
  canary_sticky:
    description:
      - Sticky sessions. Seconds a user who reached O(canary) stays on it. The canary's answers on
        the route set the cookie C(canary-istio-<service>=<canary>) (with that C(Max-Age)), and a
        route named C(canary-sticky-<canary>) before the others sends requests that carry it to the
        canary, so a user does not flip back to the stable version between requests. The weights
        decide for users without the cookie. V(0) for none.
      - The cookie must reach the user's client, so this suits the service a browser or an API
        client calls (through the ingress gateway); a service called by other services only sees
        the cookie when its callers pass it on.
      - Needs O(stable), O(canary) and O(canary_weight).
    type: int
    default: 0
  force:
    description:
      - Give traffic to a subset even when none of its pods is Ready (or they cannot be counted,
        for example for a host outside the cluster). The pods are then not read at all.
      - A subset that the DestinationRule does not define is refused even with O(force=true),
        because Istio would answer every request sent to it with an error.
      - Also change the VirtualService Istio uses for the host when other VirtualServices name
        the host too (a VirtualService Istio ignores is refused even with O(force=true)).
    type: bool
    default: false
extends_documentation_fragment:
  - canary.istio.k8s_auth
  - canary.istio.istio_api
  - canary.istio.attributes
notes:
  - The DestinationRule is looked up in the namespace of the host's Service, by its C(host)
    (C(reviews), C(reviews.prod) and C(reviews.prod.svc.cluster.local) name the same service).
    Several rules for one host are merged as Istio merges them; rules with a C(workloadSelector)
    are ignored.
  - The Ready pods of a subset are the pods selected by the Service's selector that also carry the
    subset's labels; a pod being deleted does not count.
  - "API requests: 1 read when nothing changes (a LIST of the namespace's VirtualServices); 5 reads and 1 write for a change (VirtualServices,
    DestinationRules, HTTPRoutes, Service, pods); 2 reads and 1 write with O(force=true)."
  - "With O(kind=HTTPRoute): 1 read when nothing changes (the HTTPRoute); for a change 2 reads, plus 2 per version that
    gets traffic (its Service, its pods), and 1 write; with O(force=true) 1 read, plus 1 per version that gets traffic,
    and 1 write."
seealso:
  - module: canary.istio.virtual_service
  - module: canary.istio.destination_rule
  - module: canary.istio.mesh_info
author:
  - canary.istio maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Send 10% of the reviews traffic to v2
  canary.istio.traffic_split:
    name: reviews
    namespace: prod
    stable: v1
    canary: v2
    canary_weight: 10

- name: Split explicitly between three versions
  canary.istio.traffic_split:
    name: reviews
    namespace: prod
    weights:
      v1: 50
      v2: 25
      v3: 25

- name: Change the named route only, even before v2 has Ready pods
  canary.istio.traffic_split:
    name: reviews
    namespace: prod
    route: beta-testers
    weights: {v1: 0, v2: 100}
    force: true

- name: A/B step - only jason's requests to v2, everyone else stays on v1
  canary.istio.traffic_split:
    name: reviews
    namespace: prod
    stable: v1
    canary: v2
    canary_weight: 0
    canary_match:
      headers:
        end-user: {exact: jason}

- name: Shadow step - copy every v1 request to v2, its answers discarded
  canary.istio.traffic_split:
    name: reviews
    namespace: prod
    stable: v1
    canary: v2
    canary_weight: 0
    canary_mirror: 100

- name: Send 10% to v2 on a Gateway API HTTPRoute (Services reviews-v1 and reviews-v2)
  canary.istio.traffic_split:
    name: reviews
    namespace: prod
    kind: HTTPRoute
    stable: v1
    canary: v2
    canary_weight: 10

- name: Roll back with the cluster set once for the whole group
  module_defaults:
    group/canary.istio.istio:
      kubeconfig: /etc/canary/prod-eu.kubeconfig
      context: prod-eu
  block:
    - name: All traffic back to v1
      canary.istio.traffic_split:
        name: reviews
        namespace: prod
        weights: {v1: 100, v2: 0}
"""

RETURN = r"""
route:
  description:
    - The route changed, by name, or by its index in C(spec.http) when it has no name.
    - With O(kind=HTTPRoute), the index of the catch-all rule in C(spec.rules).
  returned: success
  type: raw
  sample: default
previous_weights:
  description:
    - Subset (with O(kind=HTTPRoute), version) to weight as the route sent traffic before. A lone destination counts as 100; a
      destination without a subset is keyed by the empty string.
  returned: success
  type: dict
  sample: {"v1": 100, "v2": 0}
weights:
  description: Subset to weight as the route sends traffic now (in check mode, would send).
  returned: success
  type: dict
  sample: {"v1": 90, "v2": 10}
step_routes:
  description:
    - The A/B route, the mirror and the sticky route to O(canary) in force now (in check mode, would be).
    - C(match) is the A/B route's name, C(mirror) the mirrored percentage, C(sticky) the sticky
      route's name; null when there is none.
  returned: success, when O(canary) is given
  type: dict
  sample: {"match": "canary-match-v2", "mirror": null, "sticky": null}
diff:
  description: The VirtualService's (or HTTPRoute's) C(spec) before and after, nothing from C(metadata) or C(status).
  returned: when diff mode is on
  type: dict
  contains:
    before:
      description: C(spec) before the change.
      type: dict
    after:
      description: C(spec) after the change (in check mode, as the API server's dry run answered).
      type: dict
    before_header:
      description: Which object, for the diff's header.
      type: str
      sample: VirtualService prod/reviews (spec)
    after_header:
      description: Which object, for the diff's header.
      type: str
      sample: VirtualService prod/reviews (spec)
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.canary.istio.plugins.module_utils._errors import CanaryError, doing
from ansible_collections.canary.istio.plugins.module_utils._istio.api import ISTIO_API_ARG_SPEC, VIRTUAL_SERVICES, istio_path
from ansible_collections.canary.istio.plugins.module_utils._istio.common import specs_equal
from ansible_collections.canary.istio.plugins.module_utils._istio.http_route import HTTP_ROUTE_KIND, ROUTING_KIND_OPTION, refuse_mixed_routing
from ansible_collections.canary.istio.plugins.module_utils._istio.owned_objects import vs_diff
from ansible_collections.canary.istio.plugins.module_utils._istio.route_writes import route_weights_of, write_route_weights
from ansible_collections.canary.istio.plugins.module_utils._istio.route_split import http_routes_of_host, split_http_route
from ansible_collections.canary.istio.plugins.module_utils._istio.split_plan import (
    check_ready_pods,
    mesh_virtual_services,
    plan_split,
    several_virtual_services_problem,
    subsets_defined,
    wanted_step,
    wanted_weights,
)
from ansible_collections.canary.istio.plugins.module_utils._istio.step_routes import step_routes_of
from ansible_collections.canary.istio.plugins.module_utils._k8s.module import client_from_module
from ansible_collections.canary.istio.plugins.module_utils._k8s.options import auth_argument_spec
from ansible_collections.canary.istio.plugins.module_utils._main import run_module

OWN_OPTIONS: dict[str, dict[str, t.Any]] = dict(
    ISTIO_API_ARG_SPEC,
    name=dict(type="str", required=True),
    namespace=dict(type="str", required=True),
    kind=ROUTING_KIND_OPTION,
    route=dict(type="str"),
    weights=dict(type="dict"),
    stable=dict(type="str"),
    canary=dict(type="str"),
    canary_weight=dict(type="int"),
    canary_match=dict(type="dict", options=dict(headers=dict(type="dict"), cookie=dict(type="str"))),
    canary_mirror=dict(type="float"),
    canary_sticky=dict(type="int", default=0),
    force=dict(type="bool", default=False),
)


def run(module: AnsibleModule) -> dict[str, t.Any]:
    """Where the route's traffic goes after this task; CanaryError for whatever stops it."""
    params = module.params
    weights = wanted_weights(params)
    step = wanted_step(params)
    client = client_from_module(module)
    if params["kind"] == HTTP_ROUTE_KIND:
        refuse_vs_options(params)
        return split_http_route(client, params, weights, module.check_mode, module._diff, step)
    path = istio_path(params["api_version"], VIRTUAL_SERVICES, params["namespace"], params["name"])
    # One LIST, not a GET: the other VirtualServices of the namespace decide whether Istio uses
    # this one at all for its host.
    with doing("listing the VirtualServices of namespace %s" % params["namespace"]):
        listed = client.list(path.rsplit("/", 1)[0]).get("items") or []
    live = next((vs for vs in listed if (vs.get("metadata") or {}).get("name") == params["name"]), None)
    if live is None:
        raise CanaryError("name: VirtualService %s/%s not found; create it with canary.istio.virtual_service first"
                          % (params["namespace"], params["name"]), "name")

    live_spec = live.get("spec") or {}
    plan = plan_split(live_spec, weights, params["route"], params["namespace"], step)
    problem = several_virtual_services_problem(mesh_virtual_services(listed, plan.host, params["namespace"]),
                                               params["name"], plan.host, params["force"])
    if problem:
        raise CanaryError(problem, "name")

    response: dict[str, t.Any] = dict(changed=False, route=plan.route, previous_weights=plan.previous_weights)
    if params["canary"]:
        response["step_routes"] = step_routes_of(plan.new_spec, params["route"], params["canary"])
    if specs_equal(plan.new_spec, live_spec):
        # Nothing to send anywhere new: no DestinationRule, Service or pod read is needed.
        response["weights"] = plan.previous_weights
        if module._diff:
            response["diff"] = vs_diff(live_spec, live_spec, params["namespace"], params["name"])
        return response

    rule = subsets_defined(client, params, plan, weights)
    if not params["force"]:
        refuse_mixed_routing(plan.host, http_routes_of_host(client, plan.host, params["namespace"]), [params["name"]])
        check_ready_pods(client, params, plan, weights, rule)

    # An IstioSpecError here: the route changed under us (e.g. removed) between two attempts.
    with doing("updating VirtualService %s/%s" % (params["namespace"], params["name"])):
        result = write_route_weights(client, path, weights, params["route"], dry_run=module.check_mode, live=live, step=step)

    previous, now = route_weights_of(result, params["route"])
    response.update(changed=result.changed, previous_weights=previous, weights=now)
    if params["canary"]:
        response["step_routes"] = step_routes_of((result.after or {}).get("spec") or {}, params["route"], params["canary"])
    if module._diff:
        response["diff"] = vs_diff((result.before or {}).get("spec") or {}, (result.after or {}).get("spec") or {},
                                   params["namespace"], params["name"])
    return response


def refuse_vs_options(params: t.Mapping[str, t.Any]) -> None:
    """CanaryError for the options an HTTPRoute split does not take (yet), naming the first."""
    if params.get("route") is not None:
        raise CanaryError("route: with kind=HTTPRoute the weights of the catch-all rule (the rule whose match holds no "
                          "condition) are set; remove route", "route")
    if params.get("canary_sticky"):
        raise CanaryError("canary_sticky: with kind=HTTPRoute the catch-all rule's weights are set, and sticky sessions are "
                          "written to VirtualServices only; set canary_sticky=0, or route the host with a VirtualService",
                          "canary_sticky")


def main() -> None:
    run_module(
        run,
        auth_argument_spec(OWN_OPTIONS),
        mutually_exclusive=[("weights", "stable"), ("weights", "canary"), ("weights", "canary_weight")],
        required_one_of=[("weights", "canary_weight")],
        required_together=[("stable", "canary", "canary_weight")],
        required_by={"canary_match": "canary", "canary_mirror": "canary"},
    )


if __name__ == "__main__":
    main()
