# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Value helpers shared by the Istio spec transforms: the error type, durations, host names, equality.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import math
import re
import typing as t

from ansible_collections.canary.istio.plugins.module_utils._errors import CanaryError


class IstioSpecError(CanaryError, ValueError):
    """Bad input or an impossible change.

    ``option`` names the module option at fault, down to the field within it (``weights``,
    ``route``, ``delay.fixed_delay``); ``message`` says how to fix it, without the option.
    """

    def __init__(self, option: str, message: str) -> None:
        super().__init__("%s: %s" % (option, message), option)
        self.message = message


# --- durations -------------------------------------------------------------------------------

# Istio's CRDs check durations with CEL's duration(), which reads Go's time.ParseDuration syntax:
# a sequence of decimal numbers, each with a unit ("7s", "1.5s", "1h30m"). "0" alone needs no unit.
_DURATION_UNIT_NS = {
    "ns": 1,
    "us": 1000,
    "\u00b5s": 1000,  # micro sign
    "\u03bcs": 1000,  # Greek mu
    "ms": 1000 * 1000,
    "s": 1000 * 1000 * 1000,
    "m": 60 * 1000 * 1000 * 1000,
    "h": 3600 * 1000 * 1000 * 1000,
}
_DURATION_PART = re.compile(r"(\d*)(?:\.(\d*))?([A-Za-z\u00b5\u03bc]+)")


def duration_ns(text: str, field: str = "duration") -> int:
    """Nanoseconds in a Go/Istio duration string; exact integer arithmetic, as Go does."""
    if isinstance(text, bool) or not isinstance(text, str):
        raise IstioSpecError(field, "expected a duration string such as '7s', '500ms' or '1m', got %r" % (text,))
    body = text.strip()
    sign = 1
    if body[:1] in ("+", "-"):
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if body == "0":
        return 0
    if not body:
        raise IstioSpecError(field, "empty duration; write e.g. '7s', '500ms' or '1m'")
    total = 0
    pos = 0
    while pos < len(body):
        part = _DURATION_PART.match(body, pos)
        if part is None or (not part.group(1) and not part.group(2)):
            if body[pos:].replace(".", "").isdigit():
                raise IstioSpecError(field, "duration %r has no unit; write e.g. '%ss' or '%sms'" % (text, body, body))
            raise IstioSpecError(field, "%r is not a duration; write e.g. '7s', '1.5s', '500ms' or '1m30s'" % (text,))
        whole, frac, unit = part.group(1) or "0", part.group(2) or "", part.group(3)
        if unit not in _DURATION_UNIT_NS:
            raise IstioSpecError(field, "unknown unit %r in duration %r; use h, m, s, ms, us or ns" % (unit, text))
        scale = _DURATION_UNIT_NS[unit]
        total += int(whole) * scale
        if frac:
            # Like Go, fractions below a nanosecond are dropped rather than rounded.
            total += int(frac) * scale // (10 ** len(frac))
        pos = part.end()
    return sign * total


def parse_duration(text: str) -> float:
    """Seconds in a Go/Istio duration string ('7s' -> 7.0, '500ms' -> 0.5); IstioSpecError on bad input."""
    return duration_ns(text) / 1e9


def validate_duration(text: t.Any, field: str) -> str:
    """Check a duration as istiod does (at least 1ms, millisecond precision) and return it unchanged."""
    nanos = duration_ns(text, field)
    if nanos < 1000 * 1000:
        raise IstioSpecError(field, "duration %r is shorter than Istio's minimum of 1ms" % (text,))
    if nanos % (1000 * 1000):
        raise IstioSpecError(field, "duration %r is finer than Istio's millisecond precision; round it to whole ms" % (text,))
    return text


# --- host names ------------------------------------------------------------------------------

def _service_key(host: str, namespace: str | None, cluster_domain: str) -> tuple[str, str | None]:
    """(name, namespace) of a Kubernetes service host; (host, '') for any other name.

    As Istio reads hosts (ResolveShortnameToFQDN): a name without a dot is short and lives in the
    rule's namespace; a name with a dot is taken as written, so ``reviews.prod`` or
    ``reviews.prod.svc`` is not the Service ``reviews.prod.svc.cluster.local`` (Istio's own route
    computation leaves a VirtualService for ``reviews.prod`` unused).
    """
    labels = host.strip().lower().rstrip(".").split(".")
    if len(labels) == 1:
        return labels[0], namespace
    if len(labels) >= 4 and labels[2] == "svc" and ".".join(labels[3:]) == cluster_domain:
        return labels[0], labels[1]
    return ".".join(labels), ""


def qualify_host(host: str, namespace: str | None, cluster_domain: str = "cluster.local") -> str:
    """The FQDN Istio reads for ``host`` in ``namespace`` (``reviews`` -> ``reviews.prod.svc.cluster.local``).

    Names outside the cluster, wildcards, and short names with no namespace come back unchanged.
    """
    if "*" in host:
        return host
    name, service_namespace = _service_key(host, namespace, cluster_domain)
    if not service_namespace:
        return host
    return "%s.%s.svc.%s" % (name, service_namespace, cluster_domain)


def same_host(a: str, b: str, namespace: str | None = None, cluster_domain: str = "cluster.local") -> bool:
    """Whether two Istio host names name the same service.

    ``reviews`` and ``reviews.prod.svc.cluster.local`` are the same service when the short name is
    read in ``namespace`` (the namespace of the rule that holds it, as Istio reads it); with no
    namespace, a short name matches that name in any namespace. Other dotted forms
    (``reviews.prod``) are names of their own, as in Istio.
    """
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    name_a, ns_a = _service_key(a, namespace, cluster_domain)
    name_b, ns_b = _service_key(b, namespace, cluster_domain)
    if name_a != name_b:
        return False
    if ns_a is None or ns_b is None:
        return True
    return ns_a == ns_b


# --- semantic equality -----------------------------------------------------------------------

def specs_equal(a: t.Any, b: t.Any) -> bool:
    """Whether two specs mean the same to the API server and Istio.

    Numbers compare by value (10 == 10.0, as JSON has one number type), booleans only to booleans,
    dict key order is ignored, list order matters, and a key holding None equals an absent key
    (the API server prunes nulls from structural custom resources).
    """
    if isinstance(a, dict) and isinstance(b, dict):
        keys_a = {k for k, v in a.items() if v is not None}
        keys_b = {k for k, v in b.items() if v is not None}
        return keys_a == keys_b and all(specs_equal(a[k], b[k]) for k in keys_a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(specs_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, (dict, list, tuple)) or isinstance(b, (dict, list, tuple)):
        return False
    return bool(a == b)


def as_int(value: t.Any, field: str, what: str) -> int:
    """An integer from an int, an integral float, or an int-like string (Jinja renders numbers as text)."""
    if isinstance(value, bool):
        raise IstioSpecError(field, "%s must be an integer, got the boolean %r" % (what, value))
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise IstioSpecError(field, "%s must be an integer, got %r; Istio weights and codes are whole numbers" % (what, value))
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    raise IstioSpecError(field, "%s must be an integer, got %r" % (what, value))


def as_number(value: t.Any, field: str, what: str) -> int | float:
    """An int or float from a number or a numeric string; booleans and other text are refused."""
    if isinstance(value, bool):
        raise IstioSpecError(field, "%s must be a number, got the boolean %r" % (what, value))
    if isinstance(value, (int, float)):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise IstioSpecError(field, "%s must be a number, got %r" % (what, value)) from None
    else:
        raise IstioSpecError(field, "%s must be a number, got %r" % (what, value))
    if not math.isfinite(number):
        raise IstioSpecError(field, "%s must be a finite number, got %r" % (what, value))
    if isinstance(number, float) and number.is_integer():
        return int(number)
    return number
