# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one grammar of the durations a user writes in this collection's options (guance_query's
``last``, the analysis' ``interval``, ``window`` and ``scrape_interval``): a number of seconds, or a
number and one unit, ``500ms``, ``90s``, ``1.5m``, ``1h``, ``2d``.

Istio's own duration fields (a fault's delay, a route's timeout) keep Go's grammar (``1m30s``),
read in ``_istio/common.py``: istiod reads them that way, so the collection must too.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import math
import re
import typing as t

from ansible_collections.canary.istio.plugins.module_utils._errors import CanaryError

UNIT_SECONDS: dict[str, float] = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*")


def duration_seconds(
    value: t.Any,
    option: str,
    minimum: float = 0,
    whole: bool = False,
    error: type[CanaryError] = CanaryError,
) -> float:
    """The seconds ``value`` stands for: at least ``minimum``, and a whole number when ``whole``.
    ``error`` (a CanaryError naming ``option``) otherwise; a caller passes its own subclass."""
    seconds = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value) if math.isfinite(value) else None
    elif isinstance(value, str):
        match = _DURATION.fullmatch(value)
        if match:
            # To the millisecond, the smallest unit: 0.07h is 252 s, not 252.00000000000003.
            seconds = round(float(match.group(1)) * UNIT_SECONDS[match.group(2) or "s"], 3)
    if seconds is None:
        raise error(f"{option} must be a duration like 90s, 10m, 1h or 2d, or a number of seconds; got {value!r}",
                    option)
    if whole and not seconds.is_integer():
        raise error(f"{option} must be whole seconds, got {value!r}", option)
    if seconds < minimum:
        raise error(f"{option} must be at least {minimum:g} second{'' if minimum == 1 else 's'}, got {value!r}", option)
    return seconds
