#!/usr/bin/python
# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: release_lock
short_description: Take or release the lock that keeps two releases of a service apart
version_added: 0.1.0
description:
  - Holds the lock in an annotation (C(canary.istio/release-lock)) on the service's VirtualService
    (or, with O(kind=HTTPRoute), its Gateway API HTTPRoute), with the owner, when it was taken and
    when it expires.
  - Taking it fails while another owner holds an unexpired lock, naming that owner. An expired lock
    is taken over with a warning, so a release that died does not block the service forever.
  - With O(run), two runs of the same owner at once are kept apart too. The second is refused
    unless O(take_over) says it takes the place of a run that died.
  - The lock is written with the object's C(resourceVersion), so of two releases racing for it
    exactly one wins.
options:
  name:
    description: Name of the VirtualService (or HTTPRoute) that carries the lock.
    type: str
    required: true
  namespace:
    description: Namespace of the VirtualService (or HTTPRoute).
    type: str
    required: true
  kind:
    description: What routes the service and carries the lock, a VirtualService or a Gateway API HTTPRoute.
    type: str
    choices: [VirtualService, HTTPRoute]
    default: VirtualService
  owner:
    description:
      - Who holds the lock, for example the AWX job ID. Use the same value to release it.
    type: str
    required: true
  run:
    description:
      - Which run of the owner this is, for example the AWX job ID or a nonce made once per run. Use
        the same value to release it.
      - Without it, any run of the same O(owner) holds the lock (and may release it).
    type: str
  take_over:
    description:
      - With O(state=present), take an unexpired lock held by another O(run) of the same O(owner), to
        resume a release whose run was killed. Another owner's lock is never taken.
    type: bool
    default: false
  state:
    description: V(present) takes the lock, V(absent) releases it.
    type: str
    choices: [present, absent]
    default: present
  ttl:
    description: Seconds until the lock expires (when taking it), from 1 to 2592000 (30 days). Make it longer than the whole release.
    type: int
    default: 3600
  force:
    description: With O(state=absent), release the lock even when another owner holds it.
    type: bool
    default: false
extends_documentation_fragment:
  - canary.istio.k8s_auth
  - canary.istio.istio_api
  - canary.istio.attributes
author:
  - canary.istio maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Take the release lock on reviews
  canary.istio.release_lock:
    name: reviews
    namespace: prod
    owner: reviews/v2 by release-team
    run: "{{ awx_job_id | default('manual') }}"
    ttl: 7200

- name: Release it, success or failure
  canary.istio.release_lock:
    name: reviews
    namespace: prod
    owner: reviews/v2 by release-team
    run: "{{ awx_job_id | default('manual') }}"
    state: absent
"""

RETURN = r"""
outcome:
  description:
    - V(acquired), V(held) (already ours), V(taken_over) (an expired lock of another owner),
      V(resumed) (another run's lock of the same owner, with O(take_over)),
      V(released), V(free) (there was no lock) or V(not_owner) (another owner's or run's lock, left in place).
  returned: always
  type: str
  sample: acquired
lock:
  description: The lock now on the VirtualService (or HTTPRoute), or null.
  returned: always
  type: dict
  sample: {"owner": "reviews/v2 by release-team", "run": "42", "acquired": "2026-11-26T05:00:00Z", "expires": "2026-11-26T07:00:00Z"}
previous:
  description: The lock that was there before, or null.
  returned: always
  type: dict
  sample: null
"""

import datetime
import typing as t

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.canary.istio.plugins.module_utils._istio.api import ISTIO_API_ARG_SPEC
from ansible_collections.canary.istio.plugins.module_utils._istio.http_route import ROUTING_KIND_OPTION, routing_path
from ansible_collections.canary.istio.plugins.module_utils._errors import CanaryError, doing
from ansible_collections.canary.istio.plugins.module_utils._k8s.errors import K8sError, K8sNotFoundError
from ansible_collections.canary.istio.plugins.module_utils._k8s.module import client_from_module
from ansible_collections.canary.istio.plugins.module_utils._k8s.options import auth_argument_spec
from ansible_collections.canary.istio.plugins.module_utils._k8s.writes import update_with_retry
from ansible_collections.canary.istio.plugins.module_utils._istio.release_lock import (
    LOCK_ANNOTATION,
    acquire,
    read_lock,
    release,
)
from ansible_collections.canary.istio.plugins.module_utils._main import run_module


MAX_TTL_S = 30 * 24 * 3600


def run(module: AnsibleModule) -> dict[str, t.Any]:
    """The lock after this task; CanaryError for whatever stops it."""
    params = module.params
    if not 1 <= params["ttl"] <= MAX_TTL_S:
        # Python's dates end in year 9999: a huge ttl would be a traceback, not an expiry.
        raise CanaryError("ttl: must be from 1 second to %d (30 days), got %d" % (MAX_TTL_S, params["ttl"]), "ttl")
    client = client_from_module(module)
    path = routing_path(params["kind"], params["api_version"], params["namespace"], params["name"])
    outcome = {}

    def change(live):
        # Re-run on a fresh read after a 409: the outcome always describes the last attempt.
        if params["state"] == "present":
            new, outcome["value"], outcome["previous"] = acquire(
                live, params["owner"], params["ttl"], datetime.datetime.now(datetime.timezone.utc), params["run"],
                params["take_over"])
        else:
            outcome["previous"] = read_lock(live)
            new, outcome["value"] = release(live, params["owner"], params["force"], params["run"])
        return new

    try:
        with doing("updating the release lock on %s" % path, (K8sError,)):
            result = update_with_retry(client, path, change, dry_run=module.check_mode)
    except K8sNotFoundError:
        raise CanaryError("name: %s %s/%s not found; the lock lives on the object that routes the service, so "
                          "create it first" % (params["kind"], params["namespace"], params["name"]), "name") from None

    if outcome["value"] == "taken_over":
        module.warn("took over an expired release lock from %r (expired %s)"
                    % (outcome["previous"].get("owner"), outcome["previous"].get("expires")))
    elif outcome["value"] == "resumed":
        module.warn("took the release lock over from run %r of the same owner (take_over=true; it would have expired %s)"
                    % (outcome["previous"].get("run"), outcome["previous"].get("expires")))
    lock = read_lock(result.after or {})
    response = dict(changed=result.changed, outcome=outcome["value"], lock=lock, previous=outcome["previous"])
    if module._diff:
        response["diff"] = {
            "before": {LOCK_ANNOTATION: outcome["previous"]},
            "after": {LOCK_ANNOTATION: lock},
        }
    return response


def main() -> None:
    run_module(
        run,
        auth_argument_spec(dict(
            ISTIO_API_ARG_SPEC,
            name=dict(type="str", required=True),
            namespace=dict(type="str", required=True),
            kind=ROUTING_KIND_OPTION,
            owner=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            ttl=dict(type="int", default=3600),
            force=dict(type="bool", default=False),
            run=dict(type="str"),
            take_over=dict(type="bool", default=False),
        )),
    )


if __name__ == "__main__":
    main()
