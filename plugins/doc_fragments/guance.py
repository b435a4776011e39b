# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Connection options of the modules that talk to Guance. Keep in step with GUANCE_ARG_SPEC in
# plugins/module_utils/_guance/settings.py (tests/unit compares the two).

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  api:
    description:
      - Which Guance API to call.
      - V(openapi) is the Guance OpenAPI (C(/api/v1/df/query_data_v1), C(/api/v1/events/create)),
        authenticated with O(api_key), at the base URL of O(site) or O(url).
      - V(datakit) is a DataKit's local HTTP API (C(/v1/query/raw), C(/v1/write/keyevent)), which
        needs no key and answers DQL only; O(url) defaults to V(http://localhost:9529).
    type: str
    choices: [openapi, datakit]
    default: openapi
  site:
    description:
      - The Guance site whose OpenAPI endpoint to call, for example V(cn1) for
        C(https://openapi.guance.com) or V(us1) for C(https://us1-openapi.guance.com).
      - V(cn1) Hangzhou, V(cn2) Ningxia, V(cn4) Guangzhou, V(cn5) 21Vianet, V(cn6) Hong Kong,
        V(us1) Oregon, V(eu1) Frankfurt, V(ap1) Singapore, V(za1) Africa, V(id1) Indonesia,
        V(me1) Middle East.
      - O(url) wins when both are set.
    type: str
    choices: [cn1, cn2, cn4, cn5, cn6, us1, eu1, ap1, za1, id1, me1]
  url:
    description:
      - Base URL of the OpenAPI (private deployments, TrueWatch) or of the DataKit, without a path,
        for example V(https://openapi.guance.example.com) or V(http://127.0.0.1:9529).
      - Can also be set with E(GUANCE_URL), which an explicit O(site) overrides.
    type: str
  api_key:
    description:
      - The workspace's API key for the OpenAPI, sent in the C(DF-API-KEY) header. Guance's own
        tools send the B(API Key ID) shown under Management > API Key.
      - Never returned or logged.
      - Can also be set with E(GUANCE_API_KEY).
    type: str
  validate_certs:
    description: Check the TLS certificate of an C(https) URL. Turn it off only for a test endpoint.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for one answer.
    type: float
    default: 30
  retry_budget:
    description:
      - Seconds the module may spend retrying when Guance rate-limits the key (401 with
        C(ft.TriggerApi*CurrentLimiting), DataKit 429), answers 5xx, or does not answer in time.
        Waits grow from 1 s, doubling, up to 15 s.
      - V(0) tries once.
      - A refused key, another 4xx answer, a DataKit error inside a 200 answer and an answer that
        is not JSON are not retried.
    type: float
    default: 60
notes:
  - The OpenAPI allows 20 requests a minute per API key and 200 per workspace.
"""
