# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The release lock: one release of a service at a time, held in an annotation on its VirtualService.

PRIVATE to this collection: may change at any time.

The lock lives on the object the release changes, so it needs no extra RBAC and is written with the
same resourceVersion check as every routing change: two releases racing for it cannot both win,
because the loser's PUT gets a 409 and, on re-read, sees the winner's lock. It carries an expiry so a
release that died without cleaning up does not block the service forever.
"""

from __future__ import annotations

import copy
import datetime
import json
import typing as t

LOCK_ANNOTATION = "canary.istio/release-lock"


class LockHeldError(Exception):
    """Another owner holds an unexpired lock."""

    def __init__(self, holder: dict[str, t.Any]):
        super().__init__(
            "another release holds the lock: owner %r, acquired %s, expires %s. Wait for it to finish, "
            "or release it with state=absent and force=true if that release is gone"
            % (holder.get("owner"), holder.get("acquired"), holder.get("expires")))
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


def acquire(obj: dict[str, t.Any], owner: str, ttl: int, now: datetime.datetime) -> tuple[dict[str, t.Any], str, dict[str, t.Any] | None]:
    """Take the lock for ``owner``. Returns (new object, outcome, previous lock).

    outcome: ``held`` (ours already, unexpired: nothing to write), ``acquired`` (was free),
    ``taken_over`` (someone else's expired lock; the caller warns). Raises LockHeldError otherwise.
    """
    current = read_lock(obj)
    if current is not None and current.get("owner") == owner and not is_expired(current, now):
        return copy.deepcopy(obj), "held", current
    if current is not None and not is_expired(current, now):
        raise LockHeldError(current)
    lock = {"owner": owner, "acquired": _fmt(now), "expires": _fmt(now + datetime.timedelta(seconds=ttl))}
    outcome = "acquired" if current is None else "taken_over"
    return _with_annotation(obj, json.dumps(lock, sort_keys=True)), outcome, current


def release(obj: dict[str, t.Any], owner: str | None, force: bool = False) -> tuple[dict[str, t.Any], str]:
    """Drop the lock if ``owner`` holds it (or with ``force``). Returns (new object, outcome).

    outcome: ``released``, ``free`` (no lock: nothing to do) or ``not_owner`` (left in place).
    """
    current = read_lock(obj)
    if current is None:
        return copy.deepcopy(obj), "free"
    if not force and current.get("owner") != owner:
        return copy.deepcopy(obj), "not_owner"
    return _with_annotation(obj, None), "released"
