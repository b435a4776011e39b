# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The words of the analysis: verdicts, check results, built-in metrics, providers and query
languages; the error of bad analysis input; numbers as answers carry them.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import math

import typing as t

from ansible_collections.canary.istio.plugins.module_utils._errors import CanaryError


PASS = "pass"


FAIL = "fail"


INCONCLUSIVE = "inconclusive"


# A round whose checks' score is below ``scoring.pass`` but not below ``scoring.marginal``.
MARGINAL = "marginal"


VERDICTS: tuple[str, ...] = (PASS, FAIL, INCONCLUSIVE, MARGINAL)


# Per-check results. NO_DATA makes the verdict inconclusive unless another check failed.
CHECK_PASS = "pass"


CHECK_FAIL = "fail"


CHECK_NO_DATA = "no_data"


# A bound the sample cannot decide yet (with ``confidence``): neither shown broken nor shown kept.
CHECK_UNDECIDED = "undecided"


# Built-in metric names, their units and what they mean (docs/analysis.md lists the same).
REQUEST_COUNT = "request_count"


REQUEST_SUCCESS_RATE = "request_success_rate"


REQUEST_ERROR_RATE = "request_error_rate"


REQUEST_DURATION_P99 = "request_duration_p99"


# The whole duration distribution, compared with the baseline's by a rank test (``confidence``).
REQUEST_DURATION = "request_duration"


TRACE_ERROR_RATE = "trace_error_rate"


ERROR_LOG_COUNT = "error_log_count"


BUILTIN_METRICS: dict[str, str] = {
    REQUEST_COUNT: "requests",
    REQUEST_SUCCESS_RATE: "%",
    REQUEST_ERROR_RATE: "%",
    REQUEST_DURATION_P99: "ms",
    REQUEST_DURATION: "ms",
    TRACE_ERROR_RATE: "%",
    ERROR_LOG_COUNT: "logs",
}


PROVIDER_GUANCE = "guance"


PROVIDER_PROMETHEUS = "prometheus"


QTYPE_DQL = "dql"


QTYPE_PROMQL = "promql"


Number = t.Union[int, float]


class AnalysisError(CanaryError, ValueError):
    """Bad analysis input. ``option`` names the module option to fix."""


def to_number(value: t.Any) -> float | None:
    """A finite float from an answer's cell, else None (null, NaN, text that is not a number).

    Prometheus sends sample values as strings ("0.5", "NaN", "+Inf"); Guance as JSON numbers.
    Infinity is kept: a histogram bound or a quantile can be +Inf and that is a real value.
    """
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def parse_le(value: t.Any) -> float | None:
    """A histogram bucket's upper bound from its ``le`` tag: "0.5", "1.8e+06", "+Inf"."""
    if isinstance(value, str) and value.strip().lower() in ("+inf", "inf"):
        return math.inf
    return to_number(value)


def rate(part: float | None, whole: float | None) -> float | None:
    # A percentage of nothing is no data, not 0% and not 100%.
    if part is None or whole is None or whole <= 0:
        return None
    return 100.0 * part / whole
