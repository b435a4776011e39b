# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""fault_injection's options applied to a VirtualService spec, pure: the rule added, updated or
removed, its destinations built like the virtual_service module's, and option names as that module
calls them (the transforms call the rule's name "name"; there "name" is the VirtualService).

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import typing as t

from ansible_collections.canary.istio.plugins.module_utils._istio.common import IstioSpecError
from ansible_collections.canary.istio.plugins.module_utils._istio.fault import remove_fault_rule, upsert_fault_rule
from ansible_collections.canary.istio.plugins.module_utils._istio.traffic import find_catch_all_index, http_routes
from ansible_collections.canary.istio.plugins.module_utils._istio.virtual_service import http_route_from_options


def default_host(spec: dict) -> str:
    """Host for a destination given without one: the catch-all's, else the VirtualService's first."""
    routes = http_routes(spec)
    index = find_catch_all_index(spec)
    if index is not None:
        for destination in routes[index].get("route") or []:
            host = (destination.get("destination") or {}).get("host")
            if host:
                return host
    hosts = spec.get("hosts") or []
    return hosts[0] if hosts else ""


def istio_destinations(destinations: list[dict] | None, spec: dict) -> list[dict] | None:
    """Istio HTTPRouteDestinations from the O(destinations) option; None keeps the catch-all's."""
    if destinations is None:
        return None
    try:
        return http_route_from_options({"destinations": destinations}, default_host(spec), field="")["route"]
    except IstioSpecError as exc:
        raise IstioSpecError(exc.option.lstrip("."), exc.message) from None


def changed_spec(spec: dict, params: t.Mapping[str, t.Any]) -> dict:
    """The VirtualService spec with the rule added, updated or removed (pure)."""
    try:
        if params["state"] == "absent":
            return remove_fault_rule(spec, params["rule"])
        return upsert_fault_rule(
            spec, params["rule"], params["headers"], params["delay"], params["abort"],
            istio_destinations(params["destinations"], spec), params["uri"],
        )
    except IstioSpecError as exc:
        # The transforms call the rule's name "name"; here that option names the VirtualService.
        raise IstioSpecError("rule" if exc.option == "name" else exc.option, exc.message) from None


def find_rule(spec: dict, name: str) -> dict | None:
    """The HTTP route named ``name``, or None."""
    return next((r for r in http_routes(spec) if isinstance(r, dict) and r.get("name") == name), None)
