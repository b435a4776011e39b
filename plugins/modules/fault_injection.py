#!/usr/bin/python
# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: fault_injection
short_description: Add, change or remove a header-matched fault rule in an Istio VirtualService
version_added: 0.1.0
description:
  - Manages one named HTTP route of an existing VirtualService that delays and/or aborts the
    requests matching some headers (and optionally a URI), to rehearse failures for chosen users
    only, for example a 7 s delay for requests with the header C(end-user) set to V(jason).
  - Envoy takes the first route whose match holds, so a rule after a route that takes all of its
    requests would never fire. The rule is placed just before the first route that would take all
    of its requests - the catch-all (the first route that matches every request) at the latest, or
    an earlier route such as a header route for the same user - and sends the matched requests
    where that route sends them, unless O(destinations) are given. Every other request is routed
    as before.
  - An earlier route that may take only some of the rule's requests (a request matching both goes
    there, without the fault) is named in a warning.
  - An existing rule of that name is updated where it is when it fires there, and moved otherwise;
    O(state=absent) removes it and leaves the VirtualService as it was before the rule was added.
  - A route of that name without a fault belongs to someone else and is never changed or removed.
  - The fault is checked as Istio checks it before anything is read or written.
options:
  name:
    description: Name of the VirtualService.
    type: str
    required: true
  namespace:
    description: Namespace of the VirtualService.
    type: str
    required: true
  rule:
    description:
      - Name of the fault rule, which is the name of its HTTP route. Must be unique in the VirtualService.
    type: str
    required: true
  state:
    description: V(present) adds or updates the rule, V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  headers:
    description:
      - "Request headers the rule matches, all of them, as header name to a match such as
        V({exact: jason}), V({prefix: test-}) or V({regex: ^qa-.*}). A plain string means an exact match."
      - With O(state=present), O(headers) or O(uri) (or both) are required, so the fault never hits all traffic.
    type: dict
  uri:
    description:
      - Request path the rule matches, in addition to O(headers).
    type: dict
    suboptions:
      exact:
        description: The path is exactly this.
        type: str
      prefix:
        description: The path starts with this.
        type: str
      regex:
        description: The path matches this RE2 regular expression.
        type: str
  delay:
    description:
      - Delay the matched requests. With O(state=present), O(delay) or O(abort) (or both) are required.
    type: dict
    suboptions:
      fixed_delay:
        description:
          - How long, as an Istio duration such as V(7s), V(500ms) or V(1m); at least V(1ms), in whole milliseconds.
        type: str
        required: true
      percentage:
        description: Share of the matched requests delayed, V(0) or from V(0.0001) to V(100).
        type: float
        default: 100
  abort:
    description:
      - Answer the matched requests with an HTTP error instead of forwarding them.
    type: dict
    suboptions:
      http_status:
        description: HTTP status to answer with, 200 to 599, for example V(503).
        type: int
        required: true
      percentage:
        description: Share of the matched requests aborted, V(0) or from V(0.0001) to V(100).
        type: float
        default: 100
  destinations:
    description:
      - Where the matched requests go (after the delay). When not set, the destinations of the
        route the rule is placed before (the one that would otherwise take its requests) are
        copied, weights included.
      - With several destinations give each a weight, summing to 100.
    type: list
    elements: dict
    suboptions:
      host:
        description: Destination host. Defaults to the host of the catch-all route's first destination.
        type: str
      subset:
        description: Subset of the host, as named in its DestinationRule.
        type: str
      port:
        description: Port number on the host.
        type: int
      weight:
        description: Share of the matched requests, 0 to 100.
        type: int
extends_documentation_fragment:
  - canary.istio.k8s_auth
  - canary.istio.istio_api
  - canary.istio.attributes
seealso:
  - module: canary.istio.mesh_info
  - module: canary.istio.virtual_service
author:
  - canary.istio maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Delay jason's requests to ratings by 7 seconds
  canary.istio.fault_injection:
    name: ratings
    namespace: prod
    rule: ratings-delay-jason
    headers:
      end-user:
        exact: jason
    delay:
      fixed_delay: 7s
      percentage: 100

- name: Abort half of the test team's API calls with 503, sent to v2
  canary.istio.fault_injection:
    name: ratings
    namespace: prod
    rule: ratings-abort-testers
    headers:
      x-team: {prefix: test}
    uri: {prefix: /ratings/}
    abort:
      http_status: 503
      percentage: 50
    destinations:
      - subset: v2

- name: Remove the delay again
  canary.istio.fault_injection:
    name: ratings
    namespace: prod
    rule: ratings-delay-jason
    state: absent
"""

RETURN = r"""
rule:
  description:
    - The fault rule's HTTP route as it is now (in check mode, would be), in Istio's form; null when absent.
  returned: success
  type: dict
  sample:
    name: ratings-delay-jason
    match: [{"headers": {"end-user": {"exact": "jason"}}}]
    fault: {"delay": {"fixedDelay": "7s", "percentage": {"value": 100}}}
    route: [{"destination": {"host": "ratings", "subset": "v1"}}]
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
from ansible_collections.canary.istio.plugins.module_utils._errors import CanaryError, doing
from ansible_collections.canary.istio.plugins.module_utils._istio.api import ISTIO_API_ARG_SPEC, VIRTUAL_SERVICES, istio_path
from ansible_collections.canary.istio.plugins.module_utils._istio.common import specs_equal
from ansible_collections.canary.istio.plugins.module_utils._istio.fault import fault_rule_overlaps, validate_fault
from ansible_collections.canary.istio.plugins.module_utils._istio.fault_options import changed_spec, find_rule
from ansible_collections.canary.istio.plugins.module_utils._istio.owned_objects import vs_diff
from ansible_collections.canary.istio.plugins.module_utils._k8s.errors import K8sNotFoundError
from ansible_collections.canary.istio.plugins.module_utils._k8s.module import client_from_module
from ansible_collections.canary.istio.plugins.module_utils._k8s.options import auth_argument_spec
from ansible_collections.canary.istio.plugins.module_utils._k8s.writes import update_with_retry
from ansible_collections.canary.istio.plugins.module_utils._main import run_module

_STRING_MATCH = dict(exact=dict(type="str"), prefix=dict(type="str"), regex=dict(type="str"))

OWN_OPTIONS: dict[str, dict[str, t.Any]] = dict(
    ISTIO_API_ARG_SPEC,
    name=dict(type="str", required=True),
    namespace=dict(type="str", required=True),
    rule=dict(type="str", required=True),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    headers=dict(type="dict"),
    uri=dict(
        type="dict", options=_STRING_MATCH,
        mutually_exclusive=[("exact", "prefix", "regex")], required_one_of=[("exact", "prefix", "regex")],
    ),
    delay=dict(type="dict", options=dict(
        fixed_delay=dict(type="str", required=True),
        percentage=dict(type="float", default=100),
    )),
    abort=dict(type="dict", options=dict(
        http_status=dict(type="int", required=True),
        percentage=dict(type="float", default=100),
    )),
    destinations=dict(type="list", elements="dict", options=dict(
        host=dict(type="str"),
        subset=dict(type="str"),
        port=dict(type="int"),
        weight=dict(type="int"),
    )),
)


def run(module: AnsibleModule) -> dict[str, t.Any]:
    """The fault rule after this task; CanaryError for whatever stops it."""
    params = module.params
    if params["state"] == "present":
        validate_fault(params["delay"], params["abort"])
    path = istio_path(params["api_version"], VIRTUAL_SERVICES, params["namespace"], params["name"])
    client = client_from_module(module)

    def change(obj: dict) -> dict:
        # Pure, and run again on a fresh read after a 409, so a concurrent writer's change is kept.
        spec = obj.get("spec") or {}
        new_spec = changed_spec(spec, params)
        if not specs_equal(new_spec, spec):
            obj["spec"] = new_spec
        return obj

    try:
        with doing("updating VirtualService %s/%s" % (params["namespace"], params["name"])):
            result = update_with_retry(client, path, change, dry_run=module.check_mode)
    except K8sNotFoundError:
        if params["state"] == "absent":
            return dict(changed=False, rule=None)
        raise CanaryError("name: VirtualService %s/%s not found; create it with canary.istio.virtual_service first"
                          % (params["namespace"], params["name"]), "name") from None

    after_spec = (result.after or {}).get("spec") or {}
    response: dict[str, t.Any] = dict(changed=result.changed, rule=find_rule(after_spec, params["rule"]))
    if params["state"] == "present":
        overlaps = fault_rule_overlaps(after_spec, params["rule"])
        if overlaps:
            module.warn("%s of VirtualService %s/%s come before fault rule %r and may take some of its requests (a request "
                        "that matches both goes there, without the fault)" % (
                            ", ".join(overlaps), params["namespace"], params["name"], params["rule"]))
    if module._diff:
        before_spec = (result.before or {}).get("spec") or {}
        response["diff"] = vs_diff(before_spec, after_spec, params["namespace"], params["name"])
    return response


def main() -> None:
    run_module(
        run,
        auth_argument_spec(OWN_OPTIONS),
        required_if=[
            ("state", "present", ("headers", "uri"), True),
            ("state", "present", ("delay", "abort"), True),
        ],
    )


if __name__ == "__main__":
    main()
