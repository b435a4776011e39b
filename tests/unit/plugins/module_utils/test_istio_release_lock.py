# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_istio/release_lock.py: the lock annotation acquired, taken over and released."""

from __future__ import annotations

import datetime
import json

import pytest

from ansible_collections.canary.istio.plugins.module_utils._istio.release_lock import (
    LOCK_ANNOTATION,
    LockHeldError,
    acquire,
    lock_view,
    read_lock,
    release,
)


NOW = datetime.datetime(2026, 11, 26, 5, 0, 0, tzinfo=datetime.timezone.utc)
VS = {"metadata": {"name": "reviews", "annotations": {"team": "a"}}, "spec": {"hosts": ["reviews"]}}


def _later(seconds: int) -> datetime.datetime:
    return NOW + datetime.timedelta(seconds=seconds)


def test_acquire_free_lock_writes_owner_and_expiry_and_keeps_other_annotations():
    new, outcome, previous = acquire(VS, "job-1", 600, NOW)
    assert outcome == "acquired" and previous is None
    assert read_lock(new) == {"owner": "job-1", "acquired": "2026-11-26T05:00:00Z", "expires": "2026-11-26T05:10:00Z"}
    assert new["metadata"]["annotations"]["team"] == "a"
    assert new["spec"] == VS["spec"] and LOCK_ANNOTATION not in VS["metadata"]["annotations"]


def test_acquire_own_unexpired_lock_changes_nothing():
    locked = acquire(VS, "job-1", 600, NOW)[0]
    again, outcome = acquire(locked, "job-1", 600, _later(60))[:2]
    assert outcome == "held" and again == locked


def test_acquire_someone_elses_unexpired_lock_is_refused_naming_them():
    locked = acquire(VS, "job-1", 600, NOW)[0]
    with pytest.raises(LockHeldError) as err:
        acquire(locked, "job-2", 600, _later(599))
    assert "'job-1'" in str(err.value) and "2026-11-26T05:10:00Z" in str(err.value)
    assert err.value.holder["owner"] == "job-1"


@pytest.mark.parametrize("holder", ["job-1", "job-2"])
def test_expired_lock_is_taken_over(holder):
    locked = acquire(VS, "job-1", 600, NOW)[0]
    new, outcome, previous = acquire(locked, holder, 600, _later(600))
    assert outcome == "taken_over" and previous["owner"] == "job-1"
    assert read_lock(new)["owner"] == holder and read_lock(new)["expires"] == "2026-11-26T05:20:00Z"


def test_unreadable_lock_counts_as_expired():
    broken = json.loads(json.dumps(VS))
    broken["metadata"]["annotations"][LOCK_ANNOTATION] = "not json"
    outcome, previous = acquire(broken, "job-2", 60, NOW)[1:]
    assert outcome == "taken_over" and previous["owner"] is None


def test_release_only_by_owner_unless_forced():
    locked = acquire(VS, "job-1", 600, NOW)[0]
    same, outcome = release(locked, "job-2")
    assert outcome == "not_owner" and same == locked
    freed, outcome = release(locked, "job-1")
    assert outcome == "released" and freed == VS
    forced, outcome = release(locked, "job-2", force=True)
    assert outcome == "released" and forced == VS
    again, outcome = release(freed, "job-1")
    assert outcome == "free" and again == VS


def test_a_second_run_of_the_same_owner_is_refused_and_cannot_release():
    locked = acquire(VS, "reviews/v2 by alice@ops", 600, NOW, run="run-1")[0]
    assert read_lock(locked)["run"] == "run-1"
    assert acquire(locked, "reviews/v2 by alice@ops", 600, _later(5), run="run-1")[1] == "held"
    with pytest.raises(LockHeldError) as err:
        acquire(locked, "reviews/v2 by alice@ops", 600, _later(5), run="run-2")
    assert "another run of this release holds the lock" in str(err.value) and "'run-1'" in str(err.value)
    assert "take_over=true" in str(err.value) and "canary_resume=true" in str(err.value)
    # The second run's cleanup must not remove the first run's lock.
    kept, outcome = release(locked, "reviews/v2 by alice@ops", run="run-2")
    assert outcome == "not_owner" and kept == locked
    assert release(locked, "reviews/v2 by alice@ops", run="run-1")[1] == "released"


def test_take_over_resumes_a_dead_run_of_the_same_owner_only():
    locked = acquire(VS, "reviews/v2 by alice@ops", 600, NOW, run="run-1")[0]
    new, outcome, previous = acquire(locked, "reviews/v2 by alice@ops", 600, _later(5), run="run-2", take_over=True)
    assert outcome == "resumed" and previous["run"] == "run-1" and read_lock(new)["run"] == "run-2"
    with pytest.raises(LockHeldError, match="another release holds the lock"):
        acquire(locked, "someone-else", 600, _later(5), run="run-3", take_over=True)


def test_a_lock_without_a_run_keeps_the_owner_only_rule():
    locked = acquire(VS, "job-1", 600, NOW)[0]
    assert "run" not in read_lock(locked)
    assert acquire(locked, "job-1", 600, _later(5), run="run-9")[1] == "held"
    assert release(locked, "job-1", run="run-9")[1] == "released"


def test_lock_view_says_who_holds_it_and_whether_it_expired():
    assert lock_view(VS, NOW) is None
    held, _outcome, _previous = acquire(VS, "reviews/v2 by admin", 600, NOW, run="1042")
    expected = {"owner": "reviews/v2 by admin", "run": "1042", "acquired": "2026-11-26T05:00:00Z",
                "expires": "2026-11-26T05:10:00Z", "expired": False}
    assert lock_view(held, _later(60)) == expected
    assert lock_view(held, _later(600))["expired"] is True
