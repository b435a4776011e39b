# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pure Istio spec transforms: ``(live spec, wanted change) -> new spec``.

Why this file exists: every change the routing modules make to a VirtualService or a
DestinationRule is computed here, without I/O, so it can be tested on real and hand-made specs
with no cluster, and so a module re-applies the same change after a 409 conflict simply by calling
the function again on the re-read spec. Each function owns only its fields and keeps everything
else (other routes, matches, retries, timeouts, mirrors, headers, keys it does not know); inputs are
never mutated.

This is the entry point; the code lives in one file per concern:

* ``_istio_common``: IstioSpecError, durations, host names, semantic equality
* ``_istio_traffic``: weights and which route they go to (traffic_split)
* ``_istio_fault``: fault validation and fault rules (fault_injection)
* ``_istio_destination_rule`` / ``_istio_virtual_service``: specs from module options
* ``_istio_matches`` / ``_istio_routing``: where a host's traffic goes, by Envoy's rules (mesh_info and
  every decision that depends on routing)

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

from ansible_collections.canary.istio.plugins.module_utils._istio_common import (
    IstioSpecError,
    duration_ns,
    parse_duration,
    qualify_host,
    same_host,
    specs_equal,
    validate_duration,
)
from ansible_collections.canary.istio.plugins.module_utils._istio_destination_rule import (
    build_destination_rule_spec,
    subset_labels,
    subset_names,
)
from ansible_collections.canary.istio.plugins.module_utils._istio_fault import (
    fault_from_istio,
    fault_rules,
    fault_to_istio,
    remove_fault_rule,
    upsert_fault_rule,
    validate_fault,
)
from ansible_collections.canary.istio.plugins.module_utils._istio_traffic import (
    find_catch_all_index,
    find_route_index,
    http_routes,
    is_catch_all,
    route_weights,
    set_route_weights,
    subsets_with_traffic,
    validate_weights,
    weights_from_canary,
)
from ansible_collections.canary.istio.plugins.module_utils._istio_virtual_service import (
    build_virtual_service_spec,
    http_route_from_options,
)

__all__ = [
    "IstioSpecError",
    "build_destination_rule_spec",
    "build_virtual_service_spec",
    "duration_ns",
    "fault_from_istio",
    "fault_rules",
    "fault_to_istio",
    "find_catch_all_index",
    "find_route_index",
    "http_route_from_options",
    "http_routes",
    "is_catch_all",
    "parse_duration",
    "qualify_host",
    "remove_fault_rule",
    "route_weights",
    "same_host",
    "set_route_weights",
    "specs_equal",
    "subset_labels",
    "subset_names",
    "subsets_with_traffic",
    "upsert_fault_rule",
    "validate_duration",
    "validate_fault",
    "validate_weights",
    "weights_from_canary",
]
