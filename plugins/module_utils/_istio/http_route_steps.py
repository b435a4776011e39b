# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rules an A/B or shadow step adds to an HTTPRoute, and their removal: the Gateway API's
counterpart of ``step_routes`` for VirtualServices.

An A/B step is a rule named ``canary-match-<canary>`` whose match holds the step's headers (a
cookie is a match on the Cookie header) and whose one backend is the canary's Service. Placement
needs no care here, unlike a VirtualService's routes: the Gateway API ranks a match with more
headers above the catch-all's, whatever the order of the rules. A request that a rule with a
longer path takes keeps going there, as the Gateway API says. The rule keeps the catch-all's
filters (header rewrites) and timeouts, so only the backend differs for the matching requests.

A shadow step is a ``RequestMirror`` filter of the catch-all rule to the canary's Service, with
its share (``percent``, or a ``fraction`` for a share that is not a whole number).

Both are the release's own: a weight write without them removes those of the versions it writes,
so the next step, the promotion and a rollback leave none behind. Sticky sessions are not written
here (they are VirtualService routes only).

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import copy
import re
import typing as t

from ansible_collections.canary.istio.plugins.module_utils._istio.common import IstioSpecError
from ansible_collections.canary.istio.plugins.module_utils._istio.http_route import (
    find_catch_all_rule,
    rules,
    set_backend_weights,
    version_service,
    with_defaults,
)
from ansible_collections.canary.istio.plugins.module_utils._istio.step_routes import match_route_name

# What an A/B rule does not take over from the catch-all rule.
_NOT_COPIED = ("name", "matches", "backendRefs")


def gateway_header_matches(match: dict) -> list[dict]:
    """Istio's header conditions (``release_steps.match_condition``) as the Gateway API's, which
    know Exact and RegularExpression only: a prefix becomes a regular expression."""
    found = []
    for name, condition in (match.get("headers") or {}).items():
        kind, value = next(iter(condition.items()))
        if kind == "exact":
            found.append({"name": name, "type": "Exact", "value": value})
        elif kind == "regex":
            found.append({"name": name, "type": "RegularExpression", "value": value})
        else:
            found.append({"name": name, "type": "RegularExpression", "value": re.escape(value) + ".*"})
    return found


def _is_mirror_to(flt: t.Any, names: set[str]) -> bool:
    return (isinstance(flt, dict) and flt.get("type") == "RequestMirror"
            and ((flt.get("requestMirror") or {}).get("backendRef") or {}).get("name") in names)


def _mirror_share(mirror: float) -> dict:
    if float(mirror).is_integer():
        return {"percent": int(mirror)}
    return {"fraction": {"numerator": int(round(mirror * 1000)), "denominator": 100000}}


def set_step_rules(spec: dict, weights: dict[str, int], service: str, canary: str | None = None,
                   match: dict | None = None, mirror: float | None = None) -> dict:
    """A new spec with ``weights`` on the catch-all rule and, for ``canary``, exactly the A/B rule
    and mirror asked for: those of a version in ``weights`` that are not asked for are removed."""
    if (match or mirror) and canary not in weights:
        raise IstioSpecError("canary", "an A/B or shadow step needs the canary version named (stable, canary and canary_weight)")
    new_spec = set_backend_weights(spec, weights, service)
    owned_rules = {match_route_name(version) for version in weights}
    owned_backends = {version_service(service, version) for version in weights}
    new_spec["rules"] = [rule for rule in rules(new_spec) if not (isinstance(rule, dict) and rule.get("name") in owned_rules)]
    catch_all = new_spec["rules"][find_catch_all_rule(new_spec)]
    kept = [flt for flt in catch_all.get("filters") or [] if not _is_mirror_to(flt, owned_backends)]
    if kept:
        catch_all["filters"] = kept
    else:
        catch_all.pop("filters", None)
    port = (catch_all["backendRefs"][0] or {}).get("port")
    backend = {"name": version_service(service, canary or ""), **({"port": port} if port is not None else {})}
    if mirror:
        share = dict({"backendRef": dict(backend)}, **_mirror_share(mirror))
        catch_all.setdefault("filters", []).append({"type": "RequestMirror", "requestMirror": share})
    if match:
        rule = {key: copy.deepcopy(value) for key, value in catch_all.items() if key not in _NOT_COPIED}
        rule["filters"] = [flt for flt in rule.get("filters") or [] if flt.get("type") != "RequestMirror"]
        if not rule["filters"]:
            del rule["filters"]
        rule.update(name=match_route_name(canary or ""), matches=[{"headers": gateway_header_matches(match)}],
                    backendRefs=[dict(backend)])
        new_spec["rules"].insert(0, rule)
    # The stored route carries the API server's defaults: the same rules again are no change.
    return copy.deepcopy(spec) if with_defaults(new_spec) == with_defaults(spec) else new_spec


def step_rules_of(spec: dict, service: str, canary: str | None) -> dict:
    """For ``canary``: the A/B rule's name and the mirrored percent (None for each that is not there)."""
    if not canary:
        return {"match": None, "mirror": None, "sticky": None}
    names = {rule.get("name") for rule in rules(spec) if isinstance(rule, dict)}
    mirror = None
    for flt in spec["rules"][find_catch_all_rule(spec)].get("filters") or []:
        if _is_mirror_to(flt, {version_service(service, canary)}):
            share = flt["requestMirror"]
            fraction = share.get("fraction")
            mirror = share.get("percent", 100) if not fraction else fraction["numerator"] * 100 / fraction.get("denominator", 100)
    return {"match": match_route_name(canary) if match_route_name(canary) in names else None, "mirror": mirror, "sticky": None}
