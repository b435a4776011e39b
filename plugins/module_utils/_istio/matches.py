# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTP match conditions as Envoy sees them from a sidecar: which apply, which match everything,
and when one match holds every request of another.

Istio turns each entry of a route's ``match`` list into one Envoy route, after removing what it
decides when it writes the sidecar's configuration rather than per request: a ``port`` (the route
is dropped on other ports, and the condition disappears on its own), ``gateways`` (a match bound
to gateways only is dropped for sidecars) and ``sourceNamespace`` (kept only for clients of that
namespace). What is left are the per-request conditions Envoy checks. A match whose remaining
conditions are none (a ``name`` alone, a ``uri`` prefix ``/``) is a catch-all: Envoy takes the
first route whose match holds, so every route after it is never reached, and Istio does not even
send those to Envoy.

The comparisons are conservative: ``implies`` says True only when it can show that every request
of one match also matches the other; ``may_overlap`` says False only when it can show that no
request matches both.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import typing as t

# Keys of an HTTPMatchRequest that label it without narrowing what it matches.
_LABEL_KEYS = frozenset(("name", "statPrefix"))
# A uri that Istio writes as Envoy's prefix "/" (or a regex matching every path): no condition.
_CATCH_ALL_URI = ({"prefix": "/"}, {"regex": ".*"}, {"regex": "*"})


def conditions(match: t.Any, port: int | None = None, client_namespace: str | None = None) -> dict | None:
    """The per-request conditions of one HTTPMatchRequest for a sidecar client; None when the
    match does not apply to that client at all.

    ``port`` is the service port the request goes to: a match for another port does not apply,
    and a match for this one no longer checks the port. With ``port`` None (unknown) a port
    stays a condition. ``client_namespace`` decides ``sourceNamespace`` the same way.
    """
    if not isinstance(match, dict):
        return {}
    result = {k: v for k, v in match.items() if k not in _LABEL_KEYS and v not in (None, [], {}, "", 0)}
    gateways = result.pop("gateways", None)
    if gateways and "mesh" not in gateways:
        return None
    if "port" in result and port is not None:
        if _as_port(result["port"]) != port:
            return None
        del result["port"]
    source_namespace = result.get("sourceNamespace")
    if source_namespace and client_namespace is not None:
        if source_namespace != client_namespace:
            return None
        del result["sourceNamespace"]
    if result.get("uri") in _CATCH_ALL_URI:
        del result["uri"]
    if "uri" not in result:
        result.pop("ignoreUriCase", None)
    return result


def _as_port(value: t.Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def route_conditions(route: dict, port: int | None = None, client_namespace: str | None = None) -> list[dict]:
    """The conditions of each match of an HTTP route that applies to the client, in order.

    A route without ``match`` is one catch-all (``[{}]``); a route whose every match is for
    another port, gateway or namespace gives ``[]`` (it is not there for this client).
    """
    matches = route.get("match")
    if not matches:
        return [{}]
    found = [conditions(m, port, client_namespace) for m in matches]
    return [c for c in found if c is not None]


def is_catch_all(conds: dict) -> bool:
    return not conds


def _string_implies(narrow: t.Any, wide: t.Any) -> bool:
    """Whether every string matching StringMatch ``narrow`` matches ``wide``."""
    if narrow == wide:
        return True
    if not isinstance(narrow, dict) or not isinstance(wide, dict):
        return False
    if "prefix" in wide and isinstance(wide["prefix"], str):
        for kind in ("exact", "prefix"):
            value = narrow.get(kind)
            if isinstance(value, str) and value.startswith(wide["prefix"]):
                return True
    return False


def _string_disjoint(a: t.Any, b: t.Any) -> bool:
    """Whether no string matches both StringMatches (shown only for exact and prefix)."""
    if not isinstance(a, dict) or not isinstance(b, dict):
        return False
    for x, y in ((a, b), (b, a)):
        if isinstance(x.get("exact"), str):
            if isinstance(y.get("exact"), str):
                return x["exact"] != y["exact"]
            if isinstance(y.get("prefix"), str):
                return not x["exact"].startswith(y["prefix"])
    if isinstance(a.get("prefix"), str) and isinstance(b.get("prefix"), str):
        return not (a["prefix"].startswith(b["prefix"]) or b["prefix"].startswith(a["prefix"]))
    return False


def implies(narrow: dict, wide: dict) -> bool:
    """Whether every request that meets ``narrow`` meets ``wide`` (both from ``conditions``)."""
    for key, wanted in wide.items():
        have = narrow.get(key)
        if key in ("headers", "queryParams"):
            if not isinstance(wanted, dict) or not isinstance(have, dict):
                return False
            if not all(name in have and _string_implies(have[name], value) for name, value in wanted.items()):
                return False
        elif key == "uri":
            if narrow.get("ignoreUriCase") != wide.get("ignoreUriCase") or not _string_implies(have, wanted):
                return False
        elif key == "ignoreUriCase":
            continue  # compared with the uri it qualifies
        elif have != wanted:  # method, scheme, authority, sourceLabels, withoutHeaders, ...: whole values
            return False
    return True


def may_overlap(a: dict, b: dict) -> bool:
    """Whether some request could meet both ``a`` and ``b``."""
    for key in ("headers", "queryParams"):
        for name, value in (a.get(key) or {}).items() if isinstance(a.get(key), dict) else ():
            other = (b.get(key) or {}).get(name) if isinstance(b.get(key), dict) else None
            if other is not None and _string_disjoint(value, other):
                return False
    if "uri" in a and "uri" in b and not (a.get("ignoreUriCase") or b.get("ignoreUriCase")):
        if _string_disjoint(a["uri"], b["uri"]):
            return False
    for key in ("method", "scheme", "authority"):
        if key in a and key in b and _string_disjoint(a[key], b[key]):
            return False
    for x, y in ((a, b), (b, a)):
        absent = x.get("withoutHeaders") if isinstance(x.get("withoutHeaders"), dict) else {}
        present = y.get("headers") if isinstance(y.get("headers"), dict) else {}
        if any(value == {} and name in present for name, value in absent.items()):
            return False  # one needs the header absent, the other present
    return True
