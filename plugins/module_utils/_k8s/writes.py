# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Read-modify-write of one object, safe against other writers: a write carries the
resourceVersion it was computed from, and a 409 means "read again and apply the same change".

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import copy
import random
import time
import typing as t

from ansible_collections.canary.istio.plugins.module_utils._k8s.errors import K8sConflictError, K8sNotFoundError
from ansible_collections.canary.istio.plugins.module_utils._k8s.paths import segment
from ansible_collections.canary.istio.plugins.module_utils._k8s.transport import K8sClient


class UpdateResult(t.NamedTuple):
    """What a write helper did. ``after`` is the server's answer (the dry-run result in check mode)."""

    before: dict[str, t.Any] | None
    after: dict[str, t.Any] | None
    changed: bool
    attempts: int


# Attempts of a write that keeps meeting 409s. Each attempt's window (its GET to its PUT) is lost
# when anyone else writes the object meanwhile: with busy co-writers (controllers, people) on a slow
# API server, 5 attempts within ~3 s failed a release step, which then rolled back (50 writers at
# ~3 writes/s on a loaded sandbox). 20 attempts wait up to ~15 s (backoff capped at 1 s).
CONFLICT_RETRIES = 20


def _backoff(attempt: int) -> float:
    # 50 ms, 100 ms, 200 ms ... capped at 1 s, jittered so two writers do not retry in step.
    return min(1.0, 0.05 * (2 ** (attempt - 1))) * random.uniform(0.5, 1.0)


def _put_with_version(
    client: K8sClient, path: str, live: dict[str, t.Any], new: dict[str, t.Any], dry_run: bool
) -> dict[str, t.Any]:
    body = copy.deepcopy(new)
    version = (live.get("metadata") or {}).get("resourceVersion")
    body.setdefault("metadata", {})["resourceVersion"] = version
    return client.replace(path, body, dry_run=dry_run)


def update_with_retry(
    client: K8sClient,
    path: str,
    change: t.Callable[[dict[str, t.Any]], dict[str, t.Any]],
    dry_run: bool = False,
    retries: int = CONFLICT_RETRIES,
    live: dict[str, t.Any] | None = None,
) -> UpdateResult:
    """Apply ``change`` to a fresh read of the object at ``path`` and PUT it back.

    ``change(live) -> new`` gets a deep copy and must be pure, because it is applied again to a
    new read after a 409 (someone else wrote in between): that is how both changes survive. When
    ``new == live`` nothing is written. Raises K8sNotFoundError when the object does not exist,
    K8sConflictError when ``retries`` attempts all conflicted, and whatever ``change`` raises.

    ``live``: the object as the caller just read it (it had to look before deciding to write);
    the first attempt uses it instead of a second GET, later attempts read afresh.
    """
    attempt = 0
    first_read = live
    while True:
        attempt += 1
        live = first_read if attempt == 1 and first_read is not None else client.get(path)
        new = change(copy.deepcopy(live))
        if new == live:
            return UpdateResult(live, live, False, attempt)
        try:
            after = _put_with_version(client, path, live, new, dry_run)
        except K8sConflictError:
            if attempt >= retries:
                raise
            time.sleep(_backoff(attempt))
            continue
        return UpdateResult(live, after, True, attempt)


def ensure(
    client: K8sClient,
    path_collection: str,
    name: str,
    build: t.Callable[[dict[str, t.Any] | None], dict[str, t.Any] | None],
    dry_run: bool = False,
    retries: int = CONFLICT_RETRIES,
) -> UpdateResult:
    """Create or update the object ``name`` in the collection ``path_collection``.

    ``build(live_or_None) -> obj`` returns the whole wanted object (with apiVersion, kind and
    metadata.name when creating), or None to leave things as they are. A create that meets an
    object created meanwhile, or an update that meets a newer version, re-reads and rebuilds.
    """
    path = f"{path_collection}/{segment(name, 'name')}"
    attempt = 0
    while True:
        attempt += 1
        try:
            live: dict[str, t.Any] | None = client.get(path)
        except K8sNotFoundError:
            live = None
        new = build(copy.deepcopy(live))
        if new is None or new == live:
            return UpdateResult(live, live, False, attempt)
        try:
            if live is None:
                after = client.create(path_collection, new, dry_run=dry_run)
            else:
                after = _put_with_version(client, path, live, new, dry_run)
        except (K8sConflictError, K8sNotFoundError) as exc:
            # 409: created or changed by someone else; 404 on PUT: deleted meanwhile. A 404 on
            # create means the namespace is missing, which a retry cannot fix.
            if attempt >= retries or (live is None and isinstance(exc, K8sNotFoundError)):
                raise
            time.sleep(_backoff(attempt))
            continue
        return UpdateResult(live, after, True, attempt)


def ensure_absent(client: K8sClient, path: str, dry_run: bool = False) -> UpdateResult:
    """Delete the object at ``path`` if it exists; a second run reports no change."""
    try:
        live = client.get(path)
    except K8sNotFoundError:
        return UpdateResult(None, None, False, 1)
    try:
        client.delete(path, dry_run=dry_run)
    except K8sNotFoundError:
        return UpdateResult(None, None, False, 1)  # deleted by someone else in between
    return UpdateResult(live, None, True, 1)
