#!/usr/bin/python
# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: virtual_service
short_description: Create, update or delete an Istio VirtualService with typed HTTP routes
version_added: 0.1.0
description:
  - Makes sure an Istio C(VirtualService) exists for the hosts (and gateways) given, with either a
    list of HTTP routes described by typed options (O(http)) or one catch-all route that sends
    everything to one subset (O(default_subset)); or that it is gone.
  - With O(http), the VirtualService's HTTP routes become exactly the routes given, in order.
  - With O(default_subset), only the catch-all route (the first route that matches every request) changes; it
    sends all traffic to that subset of the first host, and is added when there is none. Other
    routes, for example fault rules added by M(canary.istio.fault_injection), stay.
  - Other spec fields (C(tcp), C(tls), C(exportTo), ...) and other metadata labels and annotations
    stay as they are. O(gateways) changes only when given.
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
      - Name of the VirtualService.
    type: str
    required: true
  namespace:
    description:
      - Namespace of the VirtualService.
    type: str
    required: true
  hosts:
    description:
      - The hosts the VirtualService applies to (C(spec.hosts)), for example V([reviews]).
      - The first host is the default host of O(http[].destinations) and O(http[].mirror), and
        the host O(default_subset) routes to.
      - Required when O(state=present).
    type: list
    elements: str
  gateways:
    description:
      - Gateways the routes apply to (C(spec.gateways)), for example V([mesh, prod/edge-gateway]).
      - When omitted, the gateways stay as they are.
    type: list
    elements: str
  default_subset:
    description:
      - Send all traffic that no other route takes to this subset of the first of O(hosts), for
        example V(v1).
      - Mutually exclusive with O(http). One of them is required when O(state=present).
    type: str
  http:
    description:
      - The HTTP routes, in the order Istio tries them; they replace the routes of the
        VirtualService.
      - Route names must be unique. Give the catch-all route (without O(http[].match)) last.
      - Mutually exclusive with O(default_subset).
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - Name of the route, used by M(canary.istio.traffic_split) and in Istio's statistics.
        type: str
      match:
        description:
          - Conditions, any of which makes a request take this route. Within one condition every
            field must match.
          - When omitted, the route takes every request (a catch-all).
        type: list
        elements: dict
        suboptions:
          name:
            description: Name of the condition, added to the route's name in access logs.
            type: str
          headers:
            description:
              - "Header name to V({exact|prefix|regex} value), for example V({end-user: {exact: jason}});
                a plain string means V(exact)."
            type: dict
          without_headers:
            description: Like O(http[].match[].headers), for headers that must not match.
            type: dict
          query_params:
            description: Query parameter to V({exact|prefix|regex} value).
            type: dict
          uri:
            description: The request path.
            type: dict
            suboptions: &string_match
              exact:
                description: The whole value, exactly.
                type: str
              prefix:
                description: The start of the value.
                type: str
              regex:
                description: An RE2 regular expression that the whole value matches.
                type: str
          method:
            description: The HTTP method.
            type: dict
            suboptions: *string_match
          authority:
            description: The C(Host)/C(:authority) header.
            type: dict
            suboptions: *string_match
          scheme:
            description: The URI scheme.
            type: dict
            suboptions: *string_match
          ignore_uri_case:
            description: Whether O(http[].match[].uri) matches regardless of case.
            type: bool
          port:
            description: The port the request came in on.
            type: int
          source_labels:
            description: Labels of the calling workload.
            type: dict
          source_namespace:
            description: Namespace of the calling workload.
            type: str
          gateways:
            description: Gateways this condition applies to, instead of O(gateways).
            type: list
            elements: str
      destinations:
        description:
          - Where the route sends its requests, and what share each destination gets.
        type: list
        elements: dict
        required: true
        suboptions:
          host:
            description: The destination service; the first of O(hosts) when omitted.
            type: str
          subset:
            description: A subset of the host's DestinationRule, for example V(v2).
            type: str
          weight:
            description:
              - Percentage of the route's requests, a whole number from 0 to 100.
              - With several destinations every one needs a weight and the weights sum to exactly
                100. A single destination gets all requests; omit its weight or give V(100).
            type: int
          port:
            description: Port number on the destination host.
            type: int
          headers:
            description: Header changes for this destination, as in O(http[].headers).
            type: dict
            suboptions: &headers
              request:
                description: Changes to the request headers.
                type: dict
                suboptions: &header_operations
                  set:
                    description: Headers to set, name to value; values are strings.
                    type: dict
                  add:
                    description: Headers to append, name to value; values are strings.
                    type: dict
                  remove:
                    description: Names of headers to remove.
                    type: list
                    elements: str
              response:
                description: Changes to the response headers.
                type: dict
                suboptions: *header_operations
      timeout:
        description:
          - Timeout of a request, a duration of at least 1ms in whole milliseconds, for example
            V(10s) or V(500ms).
        type: str
      retries:
        description: Retry policy of the route.
        type: dict
        suboptions:
          attempts:
            description: Number of retries.
            type: int
          per_try_timeout:
            description: Timeout of each try, a duration such as V(2s).
            type: str
          retry_on:
            description:
              - Conditions to retry on, for example V([5xx, reset, connect-failure]) (or a
                comma-separated string).
            type: list
            elements: str
      fault:
        description: A fault to inject into the route's requests.
        type: dict
        suboptions:
          delay:
            description: Delay requests before forwarding them.
            type: dict
            suboptions:
              fixed_delay:
                description: How long, a duration of at least 1ms such as V(7s).
                type: str
                required: true
              percentage:
                description: Percentage of requests delayed, V(0) or from V(0.0001) to V(100); V(100) when omitted.
                type: float
          abort:
            description: Answer requests with an error status instead of forwarding them.
            type: dict
            suboptions:
              http_status:
                description: HTTP status, from V(200) to V(599), for example V(503).
                type: int
                required: true
              percentage:
                description: Percentage of requests aborted, V(0) or from V(0.0001) to V(100); V(100) when omitted.
                type: float
      mirror:
        description: Send a copy of the route's requests to another destination as well.
        type: dict
        suboptions:
          host:
            description: The mirror's host; the first of O(hosts) when omitted.
            type: str
          subset:
            description: A subset of the mirror's host.
            type: str
          port:
            description: Port number on the mirror's host.
            type: int
      mirror_percentage:
        description: Percentage of requests mirrored, V(0) or from V(0.0001) to V(100).
        type: float
      headers:
        description: Header changes for all destinations of the route.
        type: dict
        suboptions: *headers
  labels:
    description:
      - Labels to set on the VirtualService's metadata. Other labels stay.
    type: dict
  annotations:
    description:
      - Annotations to set on the VirtualService's metadata. Other annotations stay.
    type: dict
  state:
    description:
      - V(present) creates or updates the VirtualService; V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - canary.istio.k8s_auth
  - canary.istio.istio_api
  - canary.istio.attributes
notes:
  - Refuses bad input with a message naming the option, before anything is sent to the cluster,
    for example weights that are not whole numbers or do not sum to 100 (the message names the
    route by O(http[].name) or position), two routes with one name, a duration below 1ms.
  - Validation errors of the API server fail the task with the server's message; nothing is written.
  - Whether the subsets exist in a DestinationRule and have Ready pods is not checked here; use
    M(canary.istio.traffic_split) to move traffic safely, and M(canary.istio.mesh_info) to see
    problems.
seealso:
  - module: canary.istio.destination_rule
  - module: canary.istio.traffic_split
  - module: canary.istio.fault_injection
  - name: Istio VirtualService reference
    description: The fields of C(spec) and of HTTP routes.
    link: https://istio.io/latest/docs/reference/config/networking/virtual-service/
"""

EXAMPLES = r"""
- name: All traffic of reviews to subset v1
  canary.istio.virtual_service:
    name: reviews
    namespace: prod
    hosts: [reviews]
    default_subset: v1

- name: Jason sees v2, everyone else a 90/10 split with retries and a timeout
  canary.istio.virtual_service:
    name: reviews
    namespace: prod
    hosts: [reviews]
    http:
      - name: jason
        match:
          - headers:
              end-user: {exact: jason}
        destinations:
          - subset: v2
      - name: default
        destinations:
          - {subset: v1, weight: 90}
          - {subset: v2, weight: 10}
        timeout: 10s
        retries:
          attempts: 3
          per_try_timeout: 2s
          retry_on: [5xx, reset]

- name: Mirror a quarter of the API traffic to v3 and tag responses
  canary.istio.virtual_service:
    name: reviews
    namespace: prod
    hosts: [reviews]
    gateways: [mesh, prod/edge-gateway]
    http:
      - name: api
        match:
          - uri: {prefix: /api/}
        destinations:
          - subset: v1
            port: 9080
        mirror: {subset: v3}
        mirror_percentage: 25
        headers:
          response:
            set: {x-served-by: v1}
      - name: default
        destinations:
          - subset: v1

- name: Delete the VirtualService of reviews
  canary.istio.virtual_service:
    name: reviews
    namespace: prod
    state: absent
"""

RETURN = r"""
result:
  description:
    - The VirtualService after the task, as the API server returned it (without
      C(metadata.managedFields)); in check mode, as it would be.
    - An empty dict when the VirtualService does not exist (after O(state=absent)).
  returned: always
  type: dict
  sample:
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: reviews, namespace: prod, resourceVersion: "4711"}
    spec:
      hosts: [reviews]
      http:
        - route:
            - destination: {host: reviews, subset: v1}
diff:
  description:
    - The VirtualService's C(spec) before and after; an empty dict for an object that does not
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
    before: {hosts: [reviews], http: [{route: [{destination: {host: reviews, subset: v1}}]}]}
    after: {hosts: [reviews], http: [{route: [{destination: {host: reviews, subset: v2}}]}]}
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.canary.istio.plugins.module_utils._istio.virtual_service import (
    build_virtual_service_spec,
    istio_http_routes,
)
from ansible_collections.canary.istio.plugins.module_utils._istio.api import ISTIO_API_ARG_SPEC, VIRTUAL_SERVICES
from ansible_collections.canary.istio.plugins.module_utils._k8s.options import auth_argument_spec
from ansible_collections.canary.istio.plugins.module_utils._istio.owned_objects import apply_object, wanted_object
from ansible_collections.canary.istio.plugins.module_utils._main import run_module

KIND = "VirtualService"

_ONE_OF_MATCH_KINDS = [("exact", "prefix", "regex")]
STRING_MATCH_SPEC: dict[str, t.Any] = {
    "type": "dict",
    "options": {"exact": {"type": "str"}, "prefix": {"type": "str"}, "regex": {"type": "str"}},
    "mutually_exclusive": _ONE_OF_MATCH_KINDS,
    "required_one_of": _ONE_OF_MATCH_KINDS,
}
HEADER_OPERATIONS_SPEC: dict[str, t.Any] = {
    "type": "dict",
    "options": {"set": {"type": "dict"}, "add": {"type": "dict"}, "remove": {"type": "list", "elements": "str"}},
}
HEADERS_SPEC: dict[str, t.Any] = {
    "type": "dict",
    "options": {"request": HEADER_OPERATIONS_SPEC, "response": HEADER_OPERATIONS_SPEC},
}
MATCH_OPTIONS: dict[str, t.Any] = {
    "name": {"type": "str"},
    "headers": {"type": "dict"},
    "without_headers": {"type": "dict"},
    "query_params": {"type": "dict"},
    "uri": STRING_MATCH_SPEC,
    "method": STRING_MATCH_SPEC,
    "authority": STRING_MATCH_SPEC,
    "scheme": STRING_MATCH_SPEC,
    "ignore_uri_case": {"type": "bool"},
    "port": {"type": "int"},
    "source_labels": {"type": "dict"},
    "source_namespace": {"type": "str"},
    "gateways": {"type": "list", "elements": "str"},
}
DESTINATION_OPTIONS: dict[str, t.Any] = {
    "host": {"type": "str"},
    "subset": {"type": "str"},
    "weight": {"type": "int"},
    "port": {"type": "int"},
    "headers": HEADERS_SPEC,
}
ROUTE_OPTIONS: dict[str, t.Any] = {
    "name": {"type": "str"},
    "match": {"type": "list", "elements": "dict", "options": MATCH_OPTIONS},
    "destinations": {"type": "list", "elements": "dict", "required": True, "options": DESTINATION_OPTIONS},
    "timeout": {"type": "str"},
    "retries": {
        "type": "dict",
        "options": {
            "attempts": {"type": "int"},
            "per_try_timeout": {"type": "str"},
            "retry_on": {"type": "list", "elements": "str"},
        },
    },
    "fault": {
        "type": "dict",
        "options": {
            "delay": {
                "type": "dict",
                "options": {"fixed_delay": {"type": "str", "required": True}, "percentage": {"type": "float"}},
            },
            "abort": {
                "type": "dict",
                "options": {"http_status": {"type": "int", "required": True}, "percentage": {"type": "float"}},
            },
        },
        "required_one_of": [("delay", "abort")],
    },
    "mirror": {
        "type": "dict",
        "options": {"host": {"type": "str"}, "subset": {"type": "str"}, "port": {"type": "int"}},
    },
    "mirror_percentage": {"type": "float"},
    "headers": HEADERS_SPEC,
}


def argument_spec() -> dict[str, t.Any]:
    return auth_argument_spec(dict(
        ISTIO_API_ARG_SPEC,
        name={"type": "str", "required": True},
        namespace={"type": "str", "required": True},
        hosts={"type": "list", "elements": "str"},
        gateways={"type": "list", "elements": "str"},
        default_subset={"type": "str"},
        http={"type": "list", "elements": "dict", "options": ROUTE_OPTIONS},
        labels={"type": "dict"},
        annotations={"type": "dict"},
        state={"type": "str", "choices": ["present", "absent"], "default": "present"},
    ))


# --- pure: options -> wanted object ----------------------------------------------------------


def wanted_virtual_service(live: dict | None, params: t.Mapping[str, t.Any]) -> dict | None:
    """The whole VirtualService to write given the live one (None: missing), or None when the
    live one already has everything asked for. Raises IstioSpecError naming the option at fault."""
    hosts = params.get("hosts")
    http = params.get("http")
    routes = istio_http_routes(http, hosts[0]) if http is not None and hosts else None
    spec = build_virtual_service_spec(
        (live or {}).get("spec"), hosts, params.get("gateways"), routes, params.get("default_subset"),
    )
    return wanted_object(live, params, KIND, spec)


# --- the module ------------------------------------------------------------------------------

def run(module: AnsibleModule) -> dict[str, t.Any]:
    return apply_object(module, KIND, VIRTUAL_SERVICES, wanted_virtual_service)


def main() -> None:
    run_module(
        run,
        argument_spec(),
        mutually_exclusive=[("http", "default_subset")],
        required_if=[
            ("state", "present", ("hosts",)),
            ("state", "present", ("http", "default_subset"), True),
        ],
    )


if __name__ == "__main__":
    main()
