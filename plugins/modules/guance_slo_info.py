#!/usr/bin/python
# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: guance_slo_info
short_description: Read how much error budget a Guance SLO has left
version_added: 0.1.0
description:
  - Reads one SLO of the Guance workspace, by name (O(slo)) or id (O(slo_id)), and the minutes it
    lost over its check range (7 days by default), and says how much of its error budget is left.
  - The error budget is the minutes the SLO's goal allows to lose over the check range (a 95% goal
    over 7 days allows 504 minutes). The minutes lost are the sum of C(df_slo_cost) of Guance's
    C(slo) events over that range; the OpenAPI's SLO answers hold the goal but not what was met.
  - A release's pre-flight check (C(canary_slo) of the C(canary.istio.canary_release) playbook)
    refuses to start when RV(slo.spent).
  - Needs the OpenAPI (O(api=openapi)); a DataKit does not serve SLOs.
  - "Requests: 1 to find the SLO (C(GET /api/v1/slo/list) or C(/slo/<id>/get)), 1 query
    (C(POST /api/v1/df/query_data_v1))."
options:
  slo:
    description: The SLO's exact name. Mutually exclusive with O(slo_id).
    type: str
  slo_id:
    description: The SLO's id (C(monitor_...)). Mutually exclusive with O(slo).
    type: str
  min_budget_left:
    description:
      - RV(slo.spent) is true when no more than this percent of the error budget is left.
      - V(0) (the default) means spent when nothing is left.
    type: float
    default: 0
extends_documentation_fragment:
  - canary.istio.guance
  - canary.istio.attributes.READ_ONLY
  - canary.istio.attributes.GUANCE_GROUP
seealso:
  - module: canary.istio.guance_mute
  - module: canary.istio.guance_query
author:
  - canary.istio maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: How much of the error budget of reviews' SLO is left
  canary.istio.guance_slo_info:
    slo: reviews availability
  register: reviews_slo

- name: Refuse to release while the budget is spent
  ansible.builtin.assert:
    that: not reviews_slo.slo.spent
    fail_msg: "{{ reviews_slo.slo.name }}: {{ reviews_slo.slo.lost_minutes }} of {{ reviews_slo.slo.budget_minutes }} minutes lost"
"""

RETURN = r"""
slo:
  description: The SLO and its error budget over its check range.
  returned: success
  type: dict
  contains:
    uuid:
      description: The SLO's id.
      type: str
    name:
      description: Its name.
      type: str
    goal:
      description: Its goal, in percent.
      type: float
    min_goal:
      description: Its minimum goal, in percent (null when it has none).
      type: float
    check_range_s:
      description: The range it is judged over, in seconds.
      type: int
    budget_minutes:
      description: The minutes the goal allows to lose over the check range.
      type: float
    lost_minutes:
      description: The minutes lost over the check range.
      type: float
    left_minutes:
      description: The minutes left (negative when more were lost than allowed).
      type: float
    left_percent:
      description: The percent of the error budget left.
      type: float
    compliance:
      description: The percent of the check range the SLO was met.
      type: float
    spent:
      description: Whether no more than O(min_budget_left) percent of the budget is left.
      type: bool
  sample: {"uuid": "monitor_3f2a", "name": "reviews availability", "goal": 95.0, "min_goal": 90.0, "check_range_s": 604800,
           "budget_minutes": 504.0, "lost_minutes": 120.0, "left_minutes": 384.0, "left_percent": 76.19,
           "compliance": 98.8095, "spent": false}
requests:
  description: HTTP requests sent, retries included.
  returned: always
  type: int
  sample: 2
"""

import importlib.util
import time
import typing as t

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.canary.istio.plugins.module_utils._errors import doing, fail_from_error
from ansible_collections.canary.istio.plugins.module_utils._guance.client import GuanceClient
from ansible_collections.canary.istio.plugins.module_utils._guance.errors import GuanceConfigError, GuanceError
from ansible_collections.canary.istio.plugins.module_utils._guance.guard import (
    SLO_LIST_PATH,
    error_budget,
    lost_minutes,
    pick_slo,
    slo_cost_query,
    slo_get_path,
    slo_items,
    slo_targets,
)
from ansible_collections.canary.istio.plugins.module_utils._guance.queries import Query
from ansible_collections.canary.istio.plugins.module_utils._guance.module import guance_client, require_openapi
from ansible_collections.canary.istio.plugins.module_utils._guance.settings import config_from_params, guance_argument_spec

OWN_OPTIONS: dict[str, dict[str, t.Any]] = dict(
    slo=dict(type="str"),
    slo_id=dict(type="str"),
    min_budget_left=dict(type="float", default=0),
)


def read_budget(client: GuanceClient, params: t.Mapping[str, t.Any], now_ms: int) -> dict[str, t.Any]:
    """The SLO the options name and its error budget (GuanceError on failure)."""
    if params.get("slo_id"):
        slo = client.openapi("GET", slo_get_path(params["slo_id"]))
        if not isinstance(slo, dict):
            raise GuanceConfigError("slo_id: Guance has no SLO %r" % params["slo_id"], "slo_id")
    else:
        listed = client.openapi("GET", SLO_LIST_PATH, params={"search": params["slo"], "pageIndex": 1, "pageSize": 100})
        slo = pick_slo(slo_items(listed), params["slo"])
    targets = slo_targets(slo)
    answer = client.query([Query(slo_cost_query(targets["uuid"]))], now_ms - targets["check_range_s"] * 1000, now_ms)
    return error_budget(targets, lost_minutes(answer.series[0]), params.get("min_budget_left") or 0.0)


def main() -> None:
    module = AnsibleModule(argument_spec=guance_argument_spec(OWN_OPTIONS), supports_check_mode=True,
                           required_one_of=[("slo", "slo_id")], mutually_exclusive=[("slo", "slo_id")])
    if importlib.util.find_spec("requests") is None:
        module.fail_json(msg=missing_required_lib("requests"))
    try:
        config = config_from_params(module.params)
        require_openapi(config, "SLOs are read")
    except GuanceConfigError as exc:
        fail_from_error(module, exc)
    client = guance_client(module, config)
    try:
        with doing("reading the SLO from Guance"):
            slo = read_budget(client, module.params, int(time.time() * 1000))
    except GuanceError as exc:
        fail_from_error(module, exc, requests=client.requests_made)
    finally:
        client.close()
    module.exit_json(changed=False, slo=slo, requests=client.requests_made)


if __name__ == "__main__":
    main()
