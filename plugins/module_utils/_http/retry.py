# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Retrying an HTTP call within a time budget, for the Guance and Prometheus clients.

A budget in seconds rather than a count of attempts: an analysis round must end in bounded time
whatever the server does (rate limits that ask for 30 s, timeouts, 5xx). Exponential backoff with
jitter, so the rounds of several clusters sharing one key do not retry in step; a wait the server
asks for (Retry-After) is honoured when it fits.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import random
import typing as t

T = t.TypeVar("T")


class Retry(Exception):
    """An attempt failed in a way worth another: ``error`` is raised when the budget is spent;
    ``wait`` is the least the server asked to wait (None: the backoff decides)."""

    def __init__(self, error: Exception, wait: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.wait = wait


def with_retries(
    attempt: t.Callable[[], T],
    budget: float,
    backoff: float,
    max_backoff: float,
    clock: t.Callable[[], float],
    sleep: t.Callable[[float], None],
) -> tuple[T, int]:
    """``attempt()``'s answer and the attempts it took. ``attempt`` raises Retry for a failure worth
    another try; when the next wait would end past ``budget`` seconds from now, the last error is
    raised, its message saying how many attempts were made within the budget."""
    deadline = clock() + budget
    attempts = 0
    while True:
        attempts += 1
        try:
            return attempt(), attempts
        except Retry as retry:
            delay = min(max_backoff, backoff * (2 ** (attempts - 1))) * random.uniform(0.8, 1.0)
            if retry.wait is not None:
                delay = max(delay, retry.wait)
            if clock() + delay > deadline:
                error = retry.error
                made = f"{attempts} attempt" + ("s" if attempts > 1 else "")
                error.args = (f"{error} (gave up after {made} within retry_budget={budget:g}s)",)
                raise error from None
            sleep(delay)
