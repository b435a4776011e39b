#!/usr/bin/python
# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: guance_query
short_description: Run DQL or PromQL queries against Guance in one request
version_added: 0.1.0
description:
  - Sends one or more DQL or PromQL queries to the Guance OpenAPI (C(POST /api/v1/df/query_data_v1))
    or DQL queries to a DataKit (C(POST /v1/query/raw)), all in B(one) HTTP request, over one time
    range, and returns each query's series in a simple shape plus the raw answer.
  - Only reads; runs the same in check mode.
  - "Each failure gets a plain message: a refused key (401 or 403 with C(errorCode)), a rate limit
    (401 with C(ft.TriggerApi*CurrentLimiting); waited out within O(retry_budget)), server errors
    and timeouts (retried with backoff within O(retry_budget)), a DataKit error inside a 200 answer,
    an answer that is not JSON. The key never appears in results or messages."
options:
  queries:
    description: The queries, sent together in one request. Results come back in the same order.
    type: list
    elements: dict
    required: true
    suboptions:
      query:
        description:
          - The DQL statement, for example
            C(T::`reviews`:(count(`*`) AS `spans`) { `status` = 'error' } BY `version`), or the PromQL
            expression, for example C(sum(rate(istio_prom:istio_requests_total[5m])) by (destination_version)).
          - Alias columns (C(AS `name`)) so that the result's columns have stable names.
        type: str
        required: true
      qtype:
        description: The query language. A DataKit (O(api=datakit)) answers DQL only.
        type: str
        choices: [dql, promql]
        default: dql
      name:
        description: A name for the result, to find it in RV(results) by name. Defaults to the query's position.
        type: str
      options:
        description:
          - "Extra fields of the query object, sent as given, for example V({slimit: 100}) or, for
            the OpenAPI, V({promqlType: rangeQuery, interval: 60})."
          - By default PromQL runs as an instant query at the end of the time range, and DQL runs
            without sampling in multi-column mode.
        type: dict
  last:
    description:
      - A relative time range ending now, for example V(90s), V(10m), V(1h), V(2d).
      - Mutually exclusive with O(start). When neither is set, the last 15 minutes.
    type: str
  start:
    description:
      - The start of an absolute time range, as epoch milliseconds or ISO 8601 (for example
        V(2026-11-26T06:00:00Z); without a zone, UTC).
    type: raw
  end:
    description: The end of the time range, in the same forms as O(start). Defaults to now.
    type: raw
extends_documentation_fragment:
  - canary.istio.guance
  - canary.istio.attributes.READ_ONLY
  - canary.istio.attributes.GUANCE_GROUP
notes:
  - The time range is sent as the request's time range (C(timeRange), C(time_range)); a range
    written in a DQL statement may also apply.
  - "API requests: one per run, plus one per retry."
seealso:
  - name: Guance OpenAPI query reference
    description: The fields of a query object.
    link: https://docs.guance.com/en/open-api/query-data/query-data-v1/
  - name: DQL
    description: The query language.
    link: https://docs.guance.com/en/dql/define/
author:
  - canary.istio maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Error spans and all spans of reviews per version over the last 10 minutes
  canary.istio.guance_query:
    site: cn1
    api_key: "{{ guance_api_key }}"
    last: 10m
    queries:
      - name: error_spans
        query: "T::`reviews`:(count(`*`) AS `spans`) { `status` = 'error' } BY `version`"
      - name: spans
        query: "T::`reviews`:(count(`*`) AS `spans`) BY `version`"
  register: spans

- name: Slow traces of ratings (longer than 5 s, duration is in microseconds), through a local DataKit
  canary.istio.guance_query:
    api: datakit
    url: http://127.0.0.1:9529
    start: "2026-11-26T06:00:00Z"
    end: "2026-11-26T06:10:00Z"
    queries:
      - query: "T::`ratings`:(`trace_id`, `duration`, `resource`) { `duration` > 5000000 } LIMIT 20"
  register: slow

- name: Istio request rate per version with PromQL (key and URL from GUANCE_API_KEY and GUANCE_URL)
  canary.istio.guance_query:
    last: 5m
    queries:
      - qtype: promql
        query: sum by (destination_version) (rate(istio_prom:istio_requests_total{destination_workload=~"reviews-.*"}[5m]))
"""

RETURN = r"""
results:
  description: One item per query, in the order of O(queries).
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: The query's O(queries[].name), else its position (V(0), V(1)...) as a string.
      type: str
      sample: error_spans
    qtype:
      description: The query language.
      type: str
      sample: dql
    query:
      description: The query text as sent.
      type: str
    series:
      description:
        - The answer's series. Empty when there is no data.
        - Rows are as Guance sends them (often newest first); C(time) is epoch milliseconds, or
          null for aggregates without time buckets.
      type: list
      elements: dict
      contains:
        name:
          description: The measurement or source, empty when the answer has none.
          type: str
        tags:
          description: The group's tags (the C(BY) clause), empty when ungrouped.
          type: dict
        columns:
          description: Column names, usually C(time) first.
          type: list
          elements: str
        rows:
          description: Rows of values aligned with C(columns).
          type: list
          elements: list
      sample:
        - name: reviews
          tags: {version: v2}
          columns: [time, spans]
          rows: [[null, 12]]
raw:
  description: The decoded answer, as received (OpenAPI envelope, or the DataKit's C(content) list).
  returned: success
  type: raw
time_range:
  description: The time range queried, epoch milliseconds.
  returned: success
  type: dict
  contains:
    start:
      description: Start, epoch milliseconds.
      type: int
    end:
      description: End, epoch milliseconds.
      type: int
  sample: {start: 1764136200000, end: 1764136800000}
requests:
  description: HTTP requests sent (1, plus retries).
  returned: success
  type: int
  sample: 1
"""

import importlib.util
import time
import typing as t

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.canary.istio.plugins.module_utils._guance.module import guance_client
from ansible_collections.canary.istio.plugins.module_utils._guance.errors import GuanceConfigError, GuanceError
from ansible_collections.canary.istio.plugins.module_utils._guance.events import epoch_ms
from ansible_collections.canary.istio.plugins.module_utils._guance.queries import Query
from ansible_collections.canary.istio.plugins.module_utils._guance.settings import (
    config_from_params,
    guance_argument_spec,
)
from ansible_collections.canary.istio.plugins.module_utils._durations import duration_seconds
from ansible_collections.canary.istio.plugins.module_utils._errors import CanaryError, fail_from_error
from ansible_collections.canary.istio.plugins.module_utils._required import fail_on_blank_required

QUERY_SPEC: dict[str, t.Any] = dict(
    query=dict(type="str", required=True),
    qtype=dict(type="str", choices=["dql", "promql"], default="dql"),
    name=dict(type="str"),
    options=dict(type="dict"),
)
OWN_OPTIONS: dict[str, dict[str, t.Any]] = dict(
    queries=dict(type="list", elements="dict", required=True, options=QUERY_SPEC),
    last=dict(type="str"),
    start=dict(type="raw"),
    end=dict(type="raw"),
)
DEFAULT_LAST_SECONDS = 15 * 60


def parse_instant(value: t.Any, option: str) -> int:
    """Epoch milliseconds or ISO 8601 (UTC when no zone) -> epoch ms, read as guance_event reads ``date``."""
    return epoch_ms(value, option)


def resolve_time_range(params: t.Mapping[str, t.Any], now_ms: int) -> tuple[int, int]:
    """``(start_ms, end_ms)`` from ``last`` or ``start``/``end``."""
    end = parse_instant(params["end"], "end") if params.get("end") is not None else now_ms
    if params.get("start") is not None:
        start = parse_instant(params["start"], "start")
    else:
        seconds = duration_seconds(params["last"], "last", minimum=0.001) if params.get("last") else DEFAULT_LAST_SECONDS
        start = end - int(seconds * 1000)
    if start >= end:
        option = "start" if params.get("start") is not None else "end"
        raise CanaryError(f"{option}: the time range must start before it ends (start {start}, end {end})", option)
    return start, end


def queries_from_params(items: t.Sequence[t.Mapping[str, t.Any]]) -> tuple[list[Query], list[str]]:
    """The Query objects and their result names; names must be unique."""
    queries: list[Query] = []
    names: list[str] = []
    for index, item in enumerate(items or []):
        if not (item.get("query") or "").strip():
            raise CanaryError(f"queries: queries[{index}].query is empty", "queries")
        name = item.get("name") or str(index)
        if name in names:
            raise CanaryError(f"queries: two queries are named {name!r}; names must be unique", "queries")
        names.append(name)
        queries.append(Query(item["query"], item.get("qtype") or "dql", dict(item.get("options") or {})))
    if not queries:
        raise CanaryError("queries: give at least one query", "queries")
    return queries, names


def main() -> None:
    module = AnsibleModule(
        argument_spec=guance_argument_spec(OWN_OPTIONS),
        mutually_exclusive=[("last", "start")],
        supports_check_mode=True,
    )
    fail_on_blank_required(module, module.argument_spec)
    if importlib.util.find_spec("requests") is None:
        module.fail_json(msg=missing_required_lib("requests"))
    params = module.params
    try:
        queries, names = queries_from_params(params["queries"])
        start, end = resolve_time_range(params, int(time.time() * 1000))
        config = config_from_params(params)
    except CanaryError as exc:
        fail_from_error(module, exc)
    client = guance_client(module, config)
    try:
        answer = client.query(queries, start, end)
    except GuanceConfigError as exc:
        fail_from_error(module, exc, requests=client.requests_made)
    except GuanceError as exc:
        fail_from_error(module, exc, "querying Guance", requests=client.requests_made)
    finally:
        client.close()
    results = [
        dict(name=name, qtype=query.qtype, query=query.q, series=series)
        for name, query, series in zip(names, queries, answer.series)
    ]
    module.exit_json(changed=False, results=results, raw=answer.raw, time_range=dict(start=start, end=end),
                     requests=client.requests_made)


if __name__ == "__main__":
    main()
