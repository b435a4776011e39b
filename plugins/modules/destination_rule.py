#!/usr/bin/python
# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: destination_rule
short_description: Create, update or delete an Istio DestinationRule and its subsets
version_added: 0.1.0
description:
  - Makes sure an Istio C(DestinationRule) exists for a host with the subsets given (name, pod
    labels, optional traffic policy) and an optional traffic policy, or that it is gone.
  - Only what is given changes. Subsets not listed stay unless O(purge_subsets=true); a listed
    subset gets the labels given and keeps its traffic policy unless O(subsets[].traffic_policy)
    is given; other spec fields (for example C(exportTo) or C(workloadSelector)) and other
    metadata labels and annotations stay as they are.
  - Writes are read-modify-write with C(metadata.resourceVersion). When someone else changes the
    object between our read and our write, the API server refuses the write (409) and the module
    reads again and re-applies the same change, a few times with a growing pause.
  - C(changed) comes from comparing the spec and the given labels and annotations by meaning, so
    a second run with the same options reports no change and writes nothing.
author:
  - canary.istio maintainers (!UNKNOWN)
options:
  name:
    description:
      - Name of the DestinationRule.
    type: str
    required: true
  namespace:
    description:
      - Namespace of the DestinationRule.
    type: str
    required: true
  service_host:
    description:
      - The service the rule applies to (the rule's C(spec.host)), for example V(reviews) or
        V(reviews.prod.svc.cluster.local). A short name is read in O(namespace).
      - Not called C(host), because O(host) is the URL of the Kubernetes API server, as in
        kubernetes.core; C(module_defaults) for the C(canary.istio.istio) group set it.
      - Required when O(state=present).
    type: str
  subsets:
    description:
      - Subsets to create or update, each a named group of the host's pods selected by labels.
      - A subset already in the rule gets exactly the labels given here.
      - Subsets of the rule that are not listed stay, unless O(purge_subsets=true).
      - When not given, the subsets of the rule stay as they are (also with O(purge_subsets=true)).
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - Name of the subset, as routes refer to it (for example V(v1)).
        type: str
        required: true
      labels:
        description:
          - "Pod labels that select the subset's pods, for example V({version: v1})."
          - "Numbers are turned into strings (YAML reads C(version: 2) as a number)."
          - When omitted, the subset has no labels and selects every pod of the host.
        type: dict
      traffic_policy:
        description:
          - Istio C(TrafficPolicy) of this subset, in Istio's own camelCase form, sent as given.
          - "For example V({connectionPool: {http: {http1MaxPendingRequests: 10}}})."
          - When omitted, the subset keeps the traffic policy it has.
        type: dict
  traffic_policy:
    description:
      - Istio C(TrafficPolicy) of the whole rule, in Istio's camelCase form; replaces the rule's
        traffic policy.
      - "For example V({loadBalancer: {simple: RANDOM}})."
      - When omitted, the rule keeps the traffic policy it has.
    type: dict
  purge_subsets:
    description:
      - Whether to remove the subsets of the rule that O(subsets) does not list.
      - Only applies when O(subsets) is given.
    type: bool
    default: false
  labels:
    description:
      - Labels to set on the DestinationRule's metadata. Other labels stay.
    type: dict
  annotations:
    description:
      - Annotations to set on the DestinationRule's metadata. Other annotations stay.
    type: dict
  state:
    description:
      - V(present) creates or updates the DestinationRule; V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - canary.istio.k8s_auth
  - canary.istio.istio_api
  - canary.istio.attributes
notes:
  - Refuses bad input (a subset listed twice, a label value that is a list, an empty
    O(service_host)) with a message naming the option, before anything is sent to the cluster.
  - Validation errors of the API server (for example a traffic policy duration below 1ms, which the
    Istio CRD refuses) fail the task with the server's message; nothing is written.
seealso:
  - module: canary.istio.virtual_service
  - module: canary.istio.traffic_split
  - name: Istio DestinationRule reference
    description: The fields of C(spec), including C(trafficPolicy).
    link: https://istio.io/latest/docs/reference/config/networking/destination-rule/
"""

EXAMPLES = r"""
- name: Subsets v1 and v2 of reviews, selected by the version label
  canary.istio.destination_rule:
    name: reviews
    namespace: prod
    service_host: reviews
    subsets:
      - name: v1
        labels: {version: v1}
      - name: v2
        labels: {version: v2}

- name: A load-balancing policy for the rule and a connection limit for v2
  canary.istio.destination_rule:
    name: reviews
    namespace: prod
    service_host: reviews
    traffic_policy:
      loadBalancer: {simple: LEAST_REQUEST}
    subsets:
      - name: v2
        labels: {version: v2}
        traffic_policy:
          connectionPool:
            http: {http1MaxPendingRequests: 10}

- name: Keep only v2 (removes v1 and any other subset)
  canary.istio.destination_rule:
    name: reviews
    namespace: prod
    service_host: reviews
    subsets:
      - name: v2
        labels: {version: v2}
    purge_subsets: true

- name: Cluster connection set once for the whole play
  module_defaults:
    group/canary.istio.istio:
      kubeconfig: ~/.kube/prod
      context: prod-eu
  block:
    - name: Delete the DestinationRule of reviews
      canary.istio.destination_rule:
        name: reviews
        namespace: prod
        state: absent
"""

RETURN = r"""
result:
  description:
    - The DestinationRule after the task, as the API server returned it (without
      C(metadata.managedFields)); in check mode, as it would be.
    - An empty dict when the DestinationRule does not exist (after O(state=absent)).
  returned: always
  type: dict
  sample:
    apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: {name: reviews, namespace: prod, resourceVersion: "4711"}
    spec:
      service_host: reviews
      subsets:
        - {name: v1, labels: {version: v1}}
        - {name: v2, labels: {version: v2}}
diff:
  description:
    - The DestinationRule's C(spec) before and after; an empty dict for an object that does not
      exist. Nothing from C(metadata) or C(status).
  returned: when diff mode is on
  type: dict
  contains:
    before:
      description: The spec before the task.
      type: dict
      returned: when diff mode is on
    after:
      description: The spec after the task (in check mode, as it would be).
      type: dict
      returned: when diff mode is on
  sample:
    before: {host: reviews, subsets: [{name: v1, labels: {version: v1}}]}
    after: {host: reviews, subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]}
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.canary.istio.plugins.module_utils._istio.common import IstioSpecError
from ansible_collections.canary.istio.plugins.module_utils._istio.destination_rule import build_destination_rule_spec
from ansible_collections.canary.istio.plugins.module_utils._istio.api import DESTINATION_RULES, ISTIO_API_ARG_SPEC
from ansible_collections.canary.istio.plugins.module_utils._k8s.options import auth_argument_spec
from ansible_collections.canary.istio.plugins.module_utils._istio.owned_objects import apply_object, wanted_object
from ansible_collections.canary.istio.plugins.module_utils._main import run_module

KIND = "DestinationRule"

SUBSET_SPEC: dict[str, dict[str, t.Any]] = {
    "name": {"type": "str", "required": True},
    "labels": {"type": "dict"},
    "traffic_policy": {"type": "dict"},
}


def argument_spec() -> dict[str, t.Any]:
    return auth_argument_spec(dict(
        ISTIO_API_ARG_SPEC,
        name={"type": "str", "required": True},
        namespace={"type": "str", "required": True},
        service_host={"type": "str"},
        subsets={"type": "list", "elements": "dict", "options": SUBSET_SPEC},
        traffic_policy={"type": "dict"},
        purge_subsets={"type": "bool", "default": False},
        labels={"type": "dict"},
        annotations={"type": "dict"},
        state={"type": "str", "choices": ["present", "absent"], "default": "present"},
    ))


# --- pure: options -> wanted object ----------------------------------------------------------


def wanted_destination_rule(live: dict | None, params: t.Mapping[str, t.Any]) -> dict | None:
    """The whole DestinationRule to write given the live one (None: missing), or None when the
    live one already has everything asked for. Raises IstioSpecError naming the option at fault."""
    host = params.get("service_host")
    if not isinstance(host, str) or not host.strip():
        raise IstioSpecError("service_host", "give the service the rule applies to, e.g. service_host: reviews")
    subsets = params.get("subsets")
    spec = build_destination_rule_spec(
        (live or {}).get("spec"),
        host,
        subsets,
        params.get("traffic_policy"),
        # purge_subsets without subsets would delete every subset: the amazon.aws rule for purge_*
        # options is that they act on the list given, and no list means nothing to act on.
        bool(params.get("purge_subsets")) and subsets is not None,
    )
    return wanted_object(live, params, KIND, spec)


# --- the module ------------------------------------------------------------------------------

def run(module: AnsibleModule) -> dict[str, t.Any]:
    return apply_object(module, KIND, DESTINATION_RULES, wanted_destination_rule)


def main() -> None:
    run_module(
        run,
        argument_spec(),
        required_if=[("state", "present", ("service_host",))],
    )


if __name__ == "__main__":
    main()
