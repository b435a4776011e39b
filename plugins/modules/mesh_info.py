#!/usr/bin/python
# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: mesh_info
short_description: Show how Istio routes a host, and what is wrong with it
version_added: 0.1.0
description:
  - Reads the VirtualServices that route a host, its DestinationRule, its Service and the Service's
    pods, and reports the HTTP routes with their weights and matches, the subsets with their Ready
    pod counts, the fault rules, and the problems found.
  - "Problems found: a route to a subset that the DestinationRule does not define (or a host with no
    DestinationRule); a subset that receives traffic but has no Ready pod; a route whose weights do
    not sum to 100; two or more VirtualServices for the host; a Service that is missing or has no
    selector."
  - Never writes anything. Use it before a release step, or with M(ansible.builtin.assert) on
    RV(problems).
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
      - Namespace whose VirtualServices are read, and where a short O(service_host) lives.
    type: str
    required: true
extends_documentation_fragment:
  - canary.istio.k8s_auth
  - canary.istio.istio_api
  - canary.istio.attributes.INFO_MODULE
notes:
  - Only VirtualServices of O(namespace) are read, and DestinationRules of the namespace of the
    host's Service; rules exported from other namespaces are not seen.
  - Several DestinationRules for the host are merged as Istio merges them (the oldest wins a subset
    name); rules with a C(workloadSelector) are ignored.
  - A subset's Ready pods are the pods selected by the Service's selector that also carry the
    subset's labels; a pod being deleted does not count. A subset with no Ready pod and no traffic
    (the old version after a promotion) is listed but is not a problem.
  - "API requests: 4 reads (VirtualServices, DestinationRules, Service, pods); 2 when no
    DestinationRule defines the host."
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

- name: Show the split of the catch-all route
  ansible.builtin.debug:
    msg: "{{ (reviews_mesh.routes | selectattr('match', 'equalto', []) | last).weights }}"
"""

RETURN = r"""
service_host:
  description: The host asked about, as given.
  returned: success
  type: str
  sample: reviews
virtual_services:
  description: Names of the VirtualServices of O(namespace) that route the host.
  returned: success
  type: list
  elements: str
  sample: [reviews]
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
  description: The HTTP routes of those VirtualServices, in order.
  returned: success
  type: list
  elements: dict
  contains:
    vs:
      description: The VirtualService the route belongs to.
      type: str
    name:
      description: The route's name, or null.
      type: str
    match:
      description: The route's match conditions in Istio's form; empty for a catch-all route.
      type: list
      elements: dict
    weights:
      description: Subset to weight, as Istio reads the route (a lone destination gets 100).
      type: dict
  sample:
    - {"vs": "reviews", "name": null, "match": [], "weights": {"v1": 90, "v2": 10}}
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
    receives_traffic:
      description: Whether a route gives the subset a weight above 0.
      type: bool
  sample:
    - {"name": "v1", "labels": {"version": "v1"}, "ready_pods": 3, "receives_traffic": true}
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
problems:
  description: What is wrong, one sentence each; empty when nothing is.
  returned: success
  type: list
  elements: str
  sample: ["subset 'v2' has no Ready pods but receives traffic from VirtualService 'reviews' route #0 (10%)"]
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.canary.istio.plugins.module_utils._istio import describe_host, subset_labels, subset_names
from ansible_collections.canary.istio.plugins.module_utils._k8s import (
    ISTIO_API_ARG_SPEC,
    VIRTUAL_SERVICES,
    K8sError,
    auth_argument_spec,
    client_from_module,
    fail_from_k8s_error,
    istio_path,
)
from ansible_collections.canary.istio.plugins.module_utils._mesh_reads import (
    find_destination_rules,
    merge_destination_rules,
    ready_pods_by_subset,
    service_of_host,
)

OWN_OPTIONS: dict[str, dict[str, t.Any]] = dict(
    ISTIO_API_ARG_SPEC,
    service_host=dict(type="str", required=True),
    namespace=dict(type="str", required=True),
)


def main() -> None:
    module = AnsibleModule(argument_spec=auth_argument_spec(OWN_OPTIONS), supports_check_mode=True)
    params = module.params
    host, namespace = params["service_host"], params["namespace"]
    try:
        service = service_of_host(host, namespace)
        vs_collection = istio_path(params["api_version"], VIRTUAL_SERVICES, namespace)
    except ValueError as exc:  # a namespace that cannot be part of a REST path
        module.fail_json(msg="namespace: %s" % exc, option="namespace")
    client = client_from_module(module)
    extra_problems: list[str] = []
    action = "listing the VirtualServices of namespace %s" % namespace
    try:
        virtual_services = client.list(vs_collection).get("items") or []
        for vs in virtual_services:
            vs.setdefault("metadata", {}).setdefault("namespace", namespace)
        rule_namespace = service.namespace if service else namespace
        action = "listing the DestinationRules of namespace %s" % rule_namespace
        rules = find_destination_rules(client, params["api_version"], rule_namespace, host)
        rule = merge_destination_rules(rules)
        ready_pods: dict[str, int] = {}
        names = subset_names((rule or {}).get("spec"))
        if names and service is None:
            extra_problems.append("host %r is not a Service of this cluster, so the Ready pods of its subsets cannot be counted" % host)
        elif names:
            action = "counting the Ready pods of Service %s/%s" % (service.namespace, service.name)
            ready = ready_pods_by_subset(client, service, {n: subset_labels(rule["spec"], n) or {} for n in names})
            ready_pods = ready.counts
            if ready.problem:
                extra_problems.append(ready.problem)
    except K8sError as exc:
        fail_from_k8s_error(module, exc, action)

    report = describe_host(host, virtual_services, rule, ready_pods, namespace)
    report["service_host"] = report.pop("host")
    report["problems"] = report["problems"] + extra_problems
    report["destination_rules"] = [(r.get("metadata") or {}).get("name") for r in rules]
    module.exit_json(changed=False, **report)


if __name__ == "__main__":
    main()
