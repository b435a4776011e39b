# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_http/retry.py: retries within a time budget, backoff and the server's wait."""

from __future__ import annotations

import pytest

from ansible_collections.canary.istio.plugins.module_utils._http.retry import Retry, with_retries


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def failing(times: int, wait: float | None = None):
    calls = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise Retry(RuntimeError(f"boom {len(calls)}"), wait)
        return "answer"

    return attempt


def test_an_answer_after_failures_says_how_many_attempts_and_backs_off_exponentially():
    fake = FakeTime()
    assert with_retries(failing(3), 60, 1.0, 15.0, fake.clock, fake.sleep) == ("answer", 4)
    # 1, 2, 4 s, each less up to 20 % of jitter.
    for slept, full in zip(fake.slept, (1.0, 2.0, 4.0)):
        assert 0.8 * full <= slept <= full


def test_a_wait_the_server_asks_for_is_honoured_and_the_budget_ends_the_retries():
    fake = FakeTime()
    with pytest.raises(RuntimeError) as error:
        with_retries(failing(10, wait=30.0), 45, 1.0, 15.0, fake.clock, fake.sleep)
    assert fake.slept == [30.0]  # a second wait of 30 s would end past the 45 s budget
    assert str(error.value) == "boom 2 (gave up after 2 attempts within retry_budget=45s)"


def test_no_budget_means_one_attempt():
    fake = FakeTime()
    with pytest.raises(RuntimeError) as error:
        with_retries(failing(1), 0, 1.0, 15.0, fake.clock, fake.sleep)
    assert str(error.value) == "boom 1 (gave up after 1 attempt within retry_budget=0s)" and fake.slept == []
