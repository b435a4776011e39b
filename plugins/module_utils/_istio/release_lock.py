# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The release lock: one release of a service at a time, held in an annotation on its VirtualService.

PRIVATE to this collection: may change at any time.

The lock lives on the object the release changes, so it needs no extra RBAC and is written with the
same resourceVersion check as every routing change: two releases racing for it cannot both win,
because the loser's PUT gets a 409 and, on re-read, sees the winner's lock. It carries an expiry so a
release that died without cleaning up does not block the service forever.

The owner names a release (by default the app, version, user and host) and stays the same when it
is run again; the ``run`` names one run of it (the AWX job id, or a nonce). Two runs of the same
release at once would otherwise both "hold" the lock and the first to finish would remove it
under the other; so a second run is refused unless it says it takes the place of a run that died.
"""

from __future__ import annotations

import copy
import datetime
import json
import typing as t

from ansible_collections.canary.istio.plugins.module_utils._errors import CanaryError

LOCK_ANNOTATION = "canary.istio/release-lock"


class LockHeldError(CanaryError):
    """Another owner, or another run of the same owner, holds an unexpired lock; the result shows
    the ``holder``."""

    def __init__(self, holder: dict[str, t.Any], same_owner: bool = False):
        if same_owner:
            message = (
                "another run of this release holds the lock: owner %r, run %r, acquired %s, expires %s. It may still "
                "be running: wait for it. If that run is gone (killed), take its place with take_over=true "
                "(canary_release playbook: -e canary_resume=true)"
                % (holder.get("owner"), holder.get("run"), holder.get("acquired"), holder.get("expires")))
        else:
            message = (
                "another release holds the lock: owner %r, acquired %s, expires %s. Wait for it to finish, "
                "or release it with state=absent and force=true if that release is gone"
                % (holder.get("owner"), holder.get("acquired"), holder.get("expires")))
        super().__init__(message, holder=holder)
        self.holder = holder


def _fmt(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str) -> datetime.datetime | None:
    try:
        return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        return None


def read_lock(obj: dict[str, t.Any]) -> dict[str, t.Any] | None:
    """The lock on an object, or None. An unreadable annotation counts as an expired lock."""
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(LOCK_ANNOTATION)
    if raw is None:
        return None
    try:
        lock = json.loads(raw)
    except ValueError:
        lock = None
    if not isinstance(lock, dict):
        return {"owner": None, "acquired": None, "expires": None}
    return lock


def lock_view(obj: dict[str, t.Any], now: datetime.datetime) -> dict[str, t.Any] | None:
    """Who holds the lock on an object and whether it has expired (None: no lock), for readers
    that wait on a release without taking part in it (a watch while a person decides)."""
    lock = read_lock(obj)
    if lock is None:
        return None
    return {"owner": lock.get("owner"), "run": lock.get("run"), "acquired": lock.get("acquired"),
            "expires": lock.get("expires"), "expired": is_expired(lock, now)}


def is_expired(lock: dict[str, t.Any], now: datetime.datetime) -> bool:
    expires = _parse(lock.get("expires"))
    return expires is None or expires <= now


def _with_annotation(obj: dict[str, t.Any], value: str | None) -> dict[str, t.Any]:
    new = copy.deepcopy(obj)
    annotations = new.setdefault("metadata", {}).setdefault("annotations", {}) or {}
    if value is None:
        annotations.pop(LOCK_ANNOTATION, None)
    else:
        annotations[LOCK_ANNOTATION] = value
    new["metadata"]["annotations"] = annotations
    return new


def _same_run(lock: dict[str, t.Any], run: str | None) -> bool:
    # A lock written without a run (or a caller that gives none) keeps the owner-only rule.
    return run is None or lock.get("run") is None or lock.get("run") == run


def acquire(
    obj: dict[str, t.Any], owner: str, ttl: int, now: datetime.datetime, run: str | None = None, take_over: bool = False,
) -> tuple[dict[str, t.Any], str, dict[str, t.Any] | None]:
    """Take the lock for ``owner`` (and its ``run``). Returns (new object, outcome, previous lock).

    outcome: ``held`` (ours already, unexpired: nothing to write), ``acquired`` (was free),
    ``taken_over`` (someone else's expired lock; the caller warns), ``resumed`` (another run of
    the same owner, taken with ``take_over``). Raises LockHeldError otherwise.
    """
    current = read_lock(obj)
    outcome = "acquired" if current is None else "taken_over"
    if current is not None and not is_expired(current, now):
        if current.get("owner") != owner:
            raise LockHeldError(current)
        if _same_run(current, run):
            return copy.deepcopy(obj), "held", current
        if not take_over:
            raise LockHeldError(current, same_owner=True)
        outcome = "resumed"
    lock = {"owner": owner, "acquired": _fmt(now), "expires": _fmt(now + datetime.timedelta(seconds=ttl))}
    if run is not None:
        lock["run"] = run
    return _with_annotation(obj, json.dumps(lock, sort_keys=True)), outcome, current


def release(obj: dict[str, t.Any], owner: str | None, force: bool = False, run: str | None = None) -> tuple[dict[str, t.Any], str]:
    """Drop the lock if ``owner`` (and its ``run``) holds it, or with ``force``. Returns (new object, outcome).

    outcome: ``released``, ``free`` (no lock: nothing to do) or ``not_owner`` (left in place).
    """
    current = read_lock(obj)
    if current is None:
        return copy.deepcopy(obj), "free"
    if not force and (current.get("owner") != owner or not _same_run(current, run)):
        return copy.deepcopy(obj), "not_owner"
    return _with_annotation(obj, None), "released"
