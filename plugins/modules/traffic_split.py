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
options:
  name:
    description: Name of the VirtualService.
    type: str
    required: true
  namespace:
    description: Namespace of the VirtualService. Its hosts' short names are read in it.
    type: str
    required: true
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
  - "API requests: 1 read when nothing changes (a LIST of the namespace's VirtualServices); 4 reads and 1 write for a change (VirtualServices,
    DestinationRules, Service, pods); 2 reads and 1 write with O(force=true)."
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
  description: The route changed, by name, or by its index in C(spec.http) when it has no name.
  returned: success
  type: raw
  sample: default
previous_weights:
  description:
    - Subset to weight as the route sent traffic before. A lone destination counts as 100; a
      destination without a subset is keyed by the empty string.
  returned: success
  type: dict
  sample: {"v1": 100, "v2": 0}
weights:
  description: Subset to weight as the route sends traffic now (in check mode, would send).
  returned: success
  type: dict
  sample: {"v1": 90, "v2": 10}
diff:
  description: The VirtualService's C(spec) before and after, nothing from C(metadata) or C(status).
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
from ansible_collections.canary.istio.plugins.module_utils._istio.common import (
    IstioSpecError,
    qualify_host,
    same_host,
    specs_equal,
)
from ansible_collections.canary.istio.plugins.module_utils._istio.destination_rule import subset_labels, subset_names
from ansible_collections.canary.istio.plugins.module_utils._istio.traffic import (
    find_route_index,
    route_weights,
    set_route_weights,
    subsets_with_traffic,
    validate_weights,
    weights_from_canary,
)
from ansible_collections.canary.istio.plugins.module_utils._istio.routing import (
    merge_destination_rules,
    virtual_services_for_host,
)
from ansible_collections.canary.istio.plugins.module_utils._istio.owned_objects import vs_diff
from ansible_collections.canary.istio.plugins.module_utils._istio.api import (
    ISTIO_API_ARG_SPEC,
    VIRTUAL_SERVICES,
    istio_path,
)
from ansible_collections.canary.istio.plugins.module_utils._errors import CanaryError, doing, exit_from
from ansible_collections.canary.istio.plugins.module_utils._k8s.module import client_from_module
from ansible_collections.canary.istio.plugins.module_utils._k8s.options import auth_argument_spec
from ansible_collections.canary.istio.plugins.module_utils._k8s.transport import format_label_selector
from ansible_collections.canary.istio.plugins.module_utils._istio.mesh_reads import (
    find_destination_rules,
    ready_pods_by_subset,
    service_of_host,
)
from ansible_collections.canary.istio.plugins.module_utils._istio.route_writes import (
    route_weights_of,
    write_route_weights,
)
from ansible_collections.canary.istio.plugins.module_utils._required import fail_on_blank_required

OWN_OPTIONS: dict[str, dict[str, t.Any]] = dict(
    ISTIO_API_ARG_SPEC,
    name=dict(type="str", required=True),
    namespace=dict(type="str", required=True),
    route=dict(type="str"),
    weights=dict(type="dict"),
    stable=dict(type="str"),
    canary=dict(type="str"),
    canary_weight=dict(type="int"),
    force=dict(type="bool", default=False),
)


class Plan(t.NamedTuple):
    """What a change to the route means, computed from one read of the VirtualService."""

    route: str | int
    previous_weights: dict[str, int]
    new_spec: dict
    host: str


def wanted_weights(params: t.Mapping[str, t.Any]) -> dict[str, int]:
    """subset -> weight from either ``weights`` or ``stable``/``canary``/``canary_weight``."""
    if params.get("weights") is not None:
        return validate_weights(params["weights"], "weights")
    return weights_from_canary(params["stable"], params["canary"], params["canary_weight"])


def option_naming(subset: str, params: t.Mapping[str, t.Any]) -> str:
    """The option through which the user named ``subset``, for error messages."""
    if params.get("weights") is None:
        return "canary" if subset == params.get("canary") else "stable"
    return "weights"


def plan_split(spec: dict, weights: dict[str, int], route: str | None, namespace: str) -> Plan:
    """The new spec, the route's label and weights before, and the host the subsets belong to.

    Raises IstioSpecError (naming the option) when the route is missing or cannot be weighted,
    or when the weighted destinations go to more than one host.
    """
    index = find_route_index(spec, route)
    old_route = spec["http"][index]
    new_spec = set_route_weights(spec, weights, route)
    label: str | int = old_route.get("name") or index
    hosts: list[str] = []
    for destination in new_spec["http"][index].get("route") or []:
        host = (destination.get("destination") or {}).get("host") or ""
        if not any(same_host(host, known, namespace) for known in hosts):
            hosts.append(host)
    if len(hosts) != 1 or not hosts[0]:
        raise IstioSpecError(
            "route",
            "HTTP route %r sends the subsets to %s; traffic_split weighs the subsets of one host, "
            "so point the route's destinations at one host first" % (label, ", ".join(repr(h) for h in hosts) or "no host"),
        )
    return Plan(label, route_weights(old_route), new_spec, hosts[0])


def mesh_virtual_services(virtual_services: list[dict], host: str, namespace: str) -> list[str]:
    """Names of the mesh VirtualServices that name ``host``, oldest (the one Istio uses) first."""
    chosen = virtual_services_for_host(virtual_services, qualify_host(host, namespace), namespace)
    return [(vs.get("metadata") or {}).get("name") for vs in chosen["applied"] + chosen["dropped"]]


def several_virtual_services_problem(names: list[str], name: str, host: str, force: bool) -> str | None:
    """Why ``name`` must not be changed when several VirtualServices name its host, or None.

    Writing one that Istio ignores moves no traffic, force or not. Writing the one in use does,
    but the other is a trap (delete one and the other's routes take over): refused unless
    ``force``, which the rollback sets, so that traffic can always go back.
    """
    if len(names) < 2:
        return None
    if names[0] != name:
        return ("name: Istio ignores VirtualService %r for host %r in the mesh: VirtualService %r names the same host and is "
                "older, and sidecars use only the oldest, whole, so weights written to %r would move no traffic; keep one "
                "VirtualService per host (delete or merge %r)" % (name, host, names[0], name, name))
    if not force:
        return ("name: VirtualServices %s all name host %r for the mesh; Istio uses %r whole and ignores the others, which "
                "take over if it goes; keep one VirtualService per host, or set force=true to change %r anyway"
                % (", ".join(repr(n) for n in names), host, name, name))
    return None


def missing_subsets(weights: dict[str, int], dr_spec: dict | None) -> list[str]:
    """Subsets named in ``weights`` that the DestinationRule does not define, in order."""
    defined = set(subset_names(dr_spec))
    return [subset for subset in weights if subset not in defined]


def subsets_defined(client, params: t.Mapping[str, t.Any], plan: Plan, weights: dict[str, int]) -> dict:
    """The merged DestinationRule of the host; CanaryError when a subset is not in it."""
    service = service_of_host(plan.host, params["namespace"])
    dr_namespace = service.namespace if service else params["namespace"]
    with doing("listing the DestinationRules of namespace %s" % dr_namespace):
        rules = find_destination_rules(client, params["api_version"], dr_namespace, plan.host)
    rule = merge_destination_rules(rules)
    if rule is None:
        option = option_naming(next(iter(weights)), params)
        raise CanaryError(
            "%s: no DestinationRule in namespace %s defines host %r, so its subsets %s do not exist; create it "
            "with canary.istio.destination_rule first" % (option, dr_namespace, plan.host, ", ".join(weights)),
            option)
    missing = missing_subsets(weights, rule["spec"])
    if missing:
        option = option_naming(missing[0], params)
        names = [(r.get("metadata") or {}).get("name") for r in rules]
        raise CanaryError(
            "%s: subset %s is not defined in DestinationRule %s of host %r (it defines: %s); add it with "
            "canary.istio.destination_rule first" % (
                option, ", ".join(repr(s) for s in missing), ", ".join(repr(n) for n in names), plan.host,
                ", ".join(subset_names(rule["spec"])) or "no subsets"),
            option, missing_subsets=missing)
    return rule


def check_ready_pods(client, params: t.Mapping[str, t.Any], plan: Plan, weights: dict[str, int], rule: dict) -> None:
    """CanaryError when a subset that would get traffic has no Ready pod."""
    receiving = subsets_with_traffic(weights)
    if not receiving:
        return
    service = service_of_host(plan.host, params["namespace"])
    if service is None:
        raise CanaryError(
            "force: host %r is not a Service of this cluster, so the Ready pods of %s cannot be counted; set "
            "force=true to route to it anyway" % (plan.host, ", ".join(receiving)), "force")
    labels = {subset: subset_labels(rule["spec"], subset) or {} for subset in receiving}
    with doing("counting the Ready pods of Service %s/%s" % (service.namespace, service.name)):
        ready = ready_pods_by_subset(client, service, labels)
    if ready.problem:
        raise CanaryError(
            "force: cannot check that %s have Ready pods: %s; fix the Service, or set force=true to route "
            "anyway" % (", ".join(receiving), ready.problem), "force")
    empty = [subset for subset in receiving if ready.counts.get(subset, 0) == 0]
    if empty:
        option = option_naming(empty[0], params)
        details = "; ".join(
            "%s would get %d%% (pods of Service %s/%s with %s)"
            % (subset, weights[subset], service.namespace, service.name, format_label_selector(labels[subset]) or "any labels")
            for subset in empty
        )
        raise CanaryError(
            "%s: subset %s has no Ready pod: %s. Wait until its Deployment is Ready, or set force=true to send "
            "traffic anyway" % (option, ", ".join(repr(s) for s in empty), details),
            option, ready_pods=ready.counts)


def run(module: AnsibleModule) -> dict[str, t.Any]:
    """Where the route's traffic goes after this task; CanaryError for whatever stops it."""
    params = module.params
    weights = wanted_weights(params)
    path = istio_path(params["api_version"], VIRTUAL_SERVICES, params["namespace"], params["name"])
    client = client_from_module(module)
    # One LIST, not a GET: the other VirtualServices of the namespace decide whether Istio uses
    # this one at all for its host.
    with doing("listing the VirtualServices of namespace %s" % params["namespace"]):
        listed = client.list(path.rsplit("/", 1)[0]).get("items") or []
    live = next((vs for vs in listed if (vs.get("metadata") or {}).get("name") == params["name"]), None)
    if live is None:
        raise CanaryError("name: VirtualService %s/%s not found; create it with canary.istio.virtual_service first"
                          % (params["namespace"], params["name"]), "name")

    live_spec = live.get("spec") or {}
    plan = plan_split(live_spec, weights, params["route"], params["namespace"])
    problem = several_virtual_services_problem(mesh_virtual_services(listed, plan.host, params["namespace"]),
                                               params["name"], plan.host, params["force"])
    if problem:
        raise CanaryError(problem, "name")

    response: dict[str, t.Any] = dict(changed=False, route=plan.route, previous_weights=plan.previous_weights)
    if specs_equal(plan.new_spec, live_spec):
        # Nothing to send anywhere new: no DestinationRule, Service or pod read is needed.
        response["weights"] = plan.previous_weights
        if module._diff:
            response["diff"] = vs_diff(live_spec, live_spec, params["namespace"], params["name"])
        return response

    rule = subsets_defined(client, params, plan, weights)
    if not params["force"]:
        check_ready_pods(client, params, plan, weights, rule)

    # An IstioSpecError here: the route changed under us (e.g. removed) between two attempts.
    with doing("updating VirtualService %s/%s" % (params["namespace"], params["name"])):
        result = write_route_weights(client, path, weights, params["route"], dry_run=module.check_mode, live=live)

    previous, now = route_weights_of(result, params["route"])
    response.update(changed=result.changed, previous_weights=previous, weights=now)
    if module._diff:
        response["diff"] = vs_diff((result.before or {}).get("spec") or {}, (result.after or {}).get("spec") or {},
                                   params["namespace"], params["name"])
    return response


def main() -> None:
    module = AnsibleModule(
        argument_spec=auth_argument_spec(OWN_OPTIONS),
        mutually_exclusive=[("weights", "stable"), ("weights", "canary"), ("weights", "canary_weight")],
        required_one_of=[("weights", "canary_weight")],
        required_together=[("stable", "canary", "canary_weight")],
        supports_check_mode=True,
    )
    fail_on_blank_required(module, module.argument_spec)
    exit_from(module, run)


if __name__ == "__main__":
    main()
