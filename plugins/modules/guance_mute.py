#!/usr/bin/python
# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: guance_mute
short_description: Mute a service's Guance monitors for a release, and unmute them
version_added: 0.1.0
description:
  - "With O(state=present), makes sure a mute named O(name) is in force in the Guance workspace: a
    one-time mute, from now for O(duration), of every monitor's events about O(service)
    (C(filterString) C(service:<service>)), so a planned canary release does not page anyone.
    It ends by itself at its end time, even when nothing unmutes it."
  - With O(state=absent), ends the mutes named O(name) that have not ended yet (or the one O(mute_id) names).
  - Idempotent. A mute of that name still in force is kept as it is (C(changed=false)); O(state=absent)
    with none in force changes nothing.
  - Needs the OpenAPI (O(api=openapi)).
  - "Requests: 1 list (C(GET /api/v1/monitor/mute/list)), then 1 create (C(POST /api/v1/monitor/mute/create))
    or 1 delete per mute ended (C(POST /api/v1/monitor/mute/<id>/delete))."
options:
  service:
    description: The service whose monitors' events are muted (the C(service) attribute of the events).
    type: str
    required: true
  name:
    description: The mute's name in Guance; it finds the mute again. Defaults to C(canary.istio release of <service>).
    type: str
  duration:
    description:
      - How long the mute lasts from now, a duration like V(90m), V(2h) or V(1d), or a number of seconds.
      - Choose it longer than the release, as a safety net; the release unmutes at its end.
    type: raw
    default: 2h
  state:
    description: Whether the mute is in force.
    type: str
    choices: [present, absent]
    default: present
  mute_id:
    description: With O(state=absent), the id (C(mute_...)) of the mute to end, instead of those named O(name).
    type: str
extends_documentation_fragment:
  - canary.istio.guance
  - canary.istio.attributes.GUANCE_GROUP
attributes:
  check_mode:
    description: Can run in check mode and return the changed status without changing the target.
    support: full
    details:
      - In check mode the mutes are listed but nothing is created or deleted.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: full
    details:
      - The diff lists the mutes of that name in force before and after.
  idempotent:
    description:
      - When run twice in a row with the same arguments, the second run reports no change and writes nothing.
    support: full
seealso:
  - module: canary.istio.guance_slo_info
  - module: canary.istio.guance_event
author:
  - canary.istio maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Mute the monitors of reviews for the release (2 hours at most)
  canary.istio.guance_mute:
    service: reviews
    duration: 2h
  register: reviews_mute

- name: Unmute them at the end, whatever happened
  canary.istio.guance_mute:
    service: reviews
    state: absent
"""

RETURN = r"""
mute:
  description:
    - The mute in force (O(state=present)), or the last one ended (O(state=absent)); empty when there is none.
    - C(uuid) is null in check mode for a mute not created yet.
  returned: always
  type: dict
  sample: {"uuid": "mute_7c1d", "name": "canary.istio release of reviews", "startTime": "2026/12/04 10:00:00",
           "endTime": "2026/12/04 12:00:00", "timezone": "UTC", "filterString": "service:reviews"}
ended:
  description: The ids of the mutes ended (O(state=absent)).
  returned: always
  type: list
  elements: str
  sample: ["mute_7c1d"]
requests:
  description: HTTP requests sent, retries included.
  returned: always
  type: int
  sample: 2
"""

import datetime
import importlib.util
import typing as t

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.canary.istio.plugins.module_utils._durations import duration_seconds
from ansible_collections.canary.istio.plugins.module_utils._errors import CanaryError, doing, fail_from_error
from ansible_collections.canary.istio.plugins.module_utils._guance.client import GuanceClient
from ansible_collections.canary.istio.plugins.module_utils._guance.errors import GuanceConfigError, GuanceError
from ansible_collections.canary.istio.plugins.module_utils._guance.guard import (
    MUTE_CREATE_PATH,
    MUTE_LIST_PATH,
    checked_service,
    checked_uuid,
    created_mute_uuid,
    live_mutes,
    mute_body,
    mute_delete_path,
    mute_items,
)
from ansible_collections.canary.istio.plugins.module_utils._guance.module import guance_client, require_openapi
from ansible_collections.canary.istio.plugins.module_utils._guance.settings import config_from_params, guance_argument_spec

OWN_OPTIONS: dict[str, dict[str, t.Any]] = dict(
    service=dict(type="str", required=True),
    name=dict(type="str"),
    duration=dict(type="raw", default="2h"),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    mute_id=dict(type="str"),
)


def mute_name(params: t.Mapping[str, t.Any]) -> str:
    return params.get("name") or "canary.istio release of %s" % params["service"]


def ensure(client: GuanceClient, params: t.Mapping[str, t.Any], seconds: int, now: datetime.datetime,
           check: bool) -> dict[str, t.Any]:
    """Make the mute of the options be as ``state`` says; the result's fields (GuanceError on failure)."""
    name = mute_name(params)
    listed = mute_items(client.openapi("GET", MUTE_LIST_PATH, params={"search": name, "pageIndex": 1, "pageSize": 100}))
    live = live_mutes(listed, name, now)
    if params["state"] == "absent":
        if params.get("mute_id"):
            live = [m for m in listed if m.get("uuid") == checked_uuid(params["mute_id"], "mute_id")]
        ended = [str(m.get("uuid")) for m in live]
        if not check:
            for uuid in ended:
                client.openapi("POST", mute_delete_path(uuid))
        return dict(changed=bool(ended), mute=live[-1] if live else {}, ended=ended)
    if live:
        return dict(changed=False, mute=live[0], ended=[])
    body = mute_body(name, params["service"], now, now + datetime.timedelta(seconds=seconds),
                     "A canary release is running; ends by itself at endTime")
    if check:
        return dict(changed=True, mute=dict(body, uuid=None), ended=[])
    created = client.openapi("POST", MUTE_CREATE_PATH, body=body)
    return dict(changed=True, mute=dict(body, uuid=created_mute_uuid(created)), ended=[])


def main() -> None:
    module = AnsibleModule(argument_spec=guance_argument_spec(OWN_OPTIONS), supports_check_mode=True)
    if importlib.util.find_spec("requests") is None:
        module.fail_json(msg=missing_required_lib("requests"))
    try:
        config = config_from_params(module.params)
        require_openapi(config, "mutes are made")
        checked_service(module.params["service"])
        if module.params.get("mute_id"):
            checked_uuid(module.params["mute_id"], "mute_id")
        seconds = int(duration_seconds(module.params["duration"], "duration", minimum=60, whole=True, error=GuanceConfigError))
    except CanaryError as exc:
        fail_from_error(module, exc)
    client = guance_client(module, config)
    try:
        with doing("muting the monitors of %s in Guance" % module.params["service"]):
            result = ensure(client, module.params, seconds, datetime.datetime.now(datetime.timezone.utc), module.check_mode)
    except GuanceError as exc:
        fail_from_error(module, exc, requests=client.requests_made)
    finally:
        client.close()
    if module._diff:
        result["diff"] = mute_diff(result, module.params["state"])
    module.exit_json(requests=client.requests_made, **result)


def mute_diff(result: t.Mapping[str, t.Any], state: str) -> dict[str, t.Any]:
    """Before and after: the mute in force of that name, or none."""
    mute = result.get("mute") or {}
    shown = {k: mute.get(k) for k in ("name", "startTime", "endTime", "filterString") if k in mute}
    had = shown if (state == "absent" and result.get("ended")) or (state == "present" and not result["changed"]) else {}
    has = shown if state == "present" else {}
    return {"before": had, "after": has, "before_header": "Guance mute (in force)", "after_header": "Guance mute (in force)"}


if __name__ == "__main__":
    main()
