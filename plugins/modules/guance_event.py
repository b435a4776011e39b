#!/usr/bin/python
# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: guance_event
short_description: Write a release event to Guance
version_added: 0.1.0
description:
  - Writes one event to Guance, for example "canary reviews v2 at 10%", so that a release shows on
    the dashboards and in the event explorer people already watch.
  - Through the Guance OpenAPI (C(POST /api/v1/events/create), header C(DF-API-KEY)), where Guance
    stores it with C(df_source=custom) and the tags as custom fields; or through a DataKit
    (C(POST /v1/write/keyevent), a JSON point), where O(source) is the event's source.
  - "Each failure gets a plain message: a refused key (401 or 403 with C(errorCode)), a rate limit
    (401 with C(ft.TriggerApi*CurrentLimiting), DataKit 429; waited out within O(retry_budget)),
    server errors and timeouts (retried with backoff within O(retry_budget)), a DataKit error code
    (for example 400 C(datakit.invalidJsonPoint)), an answer that is not JSON. The key never appears
    in results or messages."
options:
  title:
    description: The event's title, for example V(Canary reviews v2 at 10%).
    type: str
    required: true
  status:
    description:
      - The event's status, one of Guance's event statuses. V(ok) and V(info) for progress,
        V(warning), V(error) or V(critical) for a failed analysis or a rollback.
    type: str
    choices: [critical, error, warning, ok, info, nodata]
    default: info
  text:
    description:
      - The event's message (Guance's C(message), C(df_message)), for example the weights and the
        analysis verdict.
      - Named O(text) because Ansible keeps the option name C(message) for itself.
    type: str
  tags:
    description:
      - "Tags to find and group the event by, for example V({service: reviews, version: v2, step: 2, weight: 10})."
      - Values must be strings or numbers; they are sent as strings (booleans as V(true)/V(false)).
      - Names starting with C(df_) or C(__) are refused, as Guance uses them for its own event fields.
      - OpenAPI C(customTags); DataKit point tags.
    type: dict
  date:
    description:
      - When the event happened, as epoch milliseconds or ISO 8601 (for example
        V(2026-11-26T06:00:00Z); without a zone, UTC). Defaults to now.
      - Numbers below 10^11 are refused as they are almost always seconds.
    type: raw
  source:
    description:
      - With O(api=datakit), the event's source (the keyevent's measurement); query it as
        C(E::`canary_release`).
      - The OpenAPI sets the source itself (C(df_source=custom)), so this is not sent there.
    type: str
    default: canary_release
extends_documentation_fragment:
  - canary.istio.guance
  - canary.istio.attributes.GUANCE_GROUP
attributes:
  check_mode:
    description: Can run in check mode and return the changed status without changing the target.
    support: full
    details:
      - In check mode nothing is sent; RV(event) is the event that would be written.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: none
    details:
      - An event is a new record, not a change to one; RV(event) shows it.
  idempotent:
    description:
      - When run twice in a row with the same arguments, the second run reports no change and writes nothing.
    support: none
    details:
      - Each run writes one more event and reports C(changed=true). Events are a log of what
        happened, and neither Guance API has a key to deduplicate them, nor a way to find "the same
        event" short of a query (C(events/create) takes no id and returns none).
      - Put what makes the event unique (service, version, step) in O(tags) to tell runs apart.
notes:
  - "API requests: one per run, plus one per retry. The OpenAPI allows 20 requests a minute per key,
    shared with M(canary.istio.guance_query)."
  - A request that timed out may still have been stored; its retry then writes the event twice. A
    duplicate release event is harmless, a missing one is a gap in the record, so timeouts are retried.
  - The OpenAPI answers without the event's id. To read the event back, query C(E::) by its tags,
    for example with M(canary.istio.guance_query); C(__docid) in the answer is the id for
    C(GET /api/v1/events/{id}/get).
seealso:
  - module: canary.istio.guance_query
  - name: Guance OpenAPI, create an event
    description: The fields of C(events/create).
    link: https://docs.guance.com/en/open-api/keyevent/create/
  - name: DataKit HTTP API
    description: C(/v1/write/keyevent) and its error codes.
    link: https://docs.guance.com/en/datakit/apis/
author:
  - canary.istio maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Record a traffic step of the reviews canary
  canary.istio.guance_event:
    site: cn1
    api_key: "{{ guance_api_key }}"
    title: "Canary reviews v2 at 10%"
    status: info
    text: "Step 1 of 3: 90% v1, 10% v2."
    tags:
      service: reviews
      version: v2
      step: 1
      weight: 10

- name: Record a rollback through the node's DataKit (no key needed)
  canary.istio.guance_event:
    api: datakit
    url: http://127.0.0.1:9529
    title: "Canary reviews v3 rolled back"
    status: error
    text: "Error rate 20.1% > 1%: all traffic back on v2."
    tags: {service: reviews, version: v3, step: 1, weight: 0}

- name: Record a promotion at the time it happened (key and URL from GUANCE_API_KEY and GUANCE_URL)
  canary.istio.guance_event:
    title: "reviews v2 promoted"
    status: ok
    date: "2026-11-26T06:10:00Z"
    tags: {service: reviews, version: v2, weight: 100}
"""

RETURN = r"""
event:
  description:
    - The event as sent (in check mode, as it would be sent), without the key.
    - OpenAPI, the body of C(events/create) with C(date) (epoch ms), C(status), C(title),
      C(message) (when set) and C(customTags) (when set).
    - DataKit, the one point written with C(measurement) (O(source)), C(tags), C(fields)
      (C(df_title), C(df_status), C(df_message), C(df_event_id), C(df_source), C(df_date_range))
      and C(time) (epoch nanoseconds).
  returned: always
  type: dict
  sample:
    date: 1764137400000
    status: info
    title: Canary reviews v2 at 10%
    message: "Step 1 of 3: 90% v1, 10% v2."
    customTags: {service: reviews, version: v2, step: "1", weight: "10"}
event_id:
  description:
    - The event's C(df_event_id), chosen by this module, to find it with C(E::) queries.
    - Null with the OpenAPI, which chooses the id itself and does not return it.
  returned: always
  type: str
  sample: event-6f1c0d6e4b0a4a7f9a3f0e2d1c5b8a79
trace_id:
  description: The C(traceId) of the OpenAPI's answer, to give Guance support. Null for a DataKit and in check mode.
  returned: always
  type: str
  sample: "1749091119335873001"
endpoint:
  description: The URL the event was (in check mode, would be) sent to.
  returned: always
  type: str
  sample: https://openapi.guance.com/api/v1/events/create
requests:
  description: HTTP requests sent (1, plus retries; 0 in check mode).
  returned: always
  type: int
  sample: 1
"""

import importlib.util
import typing as t

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.canary.istio.plugins.module_utils._guance.module import guance_client
from ansible_collections.canary.istio.plugins.module_utils._guance.errors import GuanceConfigError, GuanceError
from ansible_collections.canary.istio.plugins.module_utils._guance.events import EventRequest, epoch_ms, event_request
from ansible_collections.canary.istio.plugins.module_utils._guance.settings import (
    DEFAULT_EVENT_SOURCE,
    EVENT_STATUSES,
    config_from_params,
    guance_argument_spec,
)
from ansible_collections.canary.istio.plugins.module_utils._errors import fail_from_error
from ansible_collections.canary.istio.plugins.module_utils._required import fail_on_blank_required

OWN_OPTIONS: dict[str, dict[str, t.Any]] = dict(
    title=dict(type="str", required=True),
    status=dict(type="str", choices=list(EVENT_STATUSES), default="info"),
    text=dict(type="str"),
    tags=dict(type="dict"),
    date=dict(type="raw"),
    source=dict(type="str", default=DEFAULT_EVENT_SOURCE),
)


def request_from_params(params: t.Mapping[str, t.Any]) -> EventRequest:
    """The event the options describe (GuanceConfigError naming the option to fix)."""
    date = epoch_ms(params["date"], "date") if params.get("date") not in (None, "") else None
    return event_request(params.get("api") or "openapi", params["title"], params.get("status") or "info",
                         params.get("text") or None, params.get("tags"), date,
                         params.get("source") or DEFAULT_EVENT_SOURCE)


def main() -> None:
    module = AnsibleModule(argument_spec=guance_argument_spec(OWN_OPTIONS), supports_check_mode=True)
    fail_on_blank_required(module, module.argument_spec)
    if importlib.util.find_spec("requests") is None:
        module.fail_json(msg=missing_required_lib("requests"))
    try:
        config = config_from_params(module.params)
        request = request_from_params(module.params)
    except GuanceConfigError as exc:
        fail_from_error(module, exc)
    client = guance_client(module, config)
    result: dict[str, t.Any] = dict(changed=True, event=request.event, event_id=request.event_id, trace_id=None,
                                    endpoint=config.display_url + request.path, requests=0)
    if module.check_mode:
        module.exit_json(**result)
    try:
        answer = client.send_event(request)
    except GuanceError as exc:
        fail_from_error(module, exc, "writing the event to Guance", event=request.event, endpoint=result["endpoint"],
                        requests=client.requests_made)
    finally:
        client.close()
    result.update(trace_id=answer["trace_id"], requests=client.requests_made)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
