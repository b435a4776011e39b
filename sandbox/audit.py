"""Count the API requests a client made, from a sandbox cluster's audit log (JSON lines)."""
from __future__ import annotations

import json
import time
import uuid

from .cluster import Cluster

WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")


class AuditLog:
    """Requests the API server logged after `mark()`, counted by verb and resource."""

    def __init__(self, c: Cluster):
        self.cluster = c
        self.path = c.audit_log
        self.offset = 0

    def mark(self) -> "AuditLog":
        self.offset = self.path.stat().st_size if self.path.exists() else 0
        return self

    def events(self, user: str | None = None) -> list[dict]:
        """Events since mark(); a sentinel request makes sure earlier ones are on disk."""
        sentinel = f"audit-sentinel-{uuid.uuid4().hex}"
        api = self.cluster.admin()
        api.session.get(f"{self.cluster.server}/api/v1/namespaces/default",
                        headers={"User-Agent": sentinel}, timeout=10)
        deadline = time.monotonic() + 10
        while True:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                lines = fh.read().decode().splitlines()
            events = [json.loads(ln) for ln in lines if ln.strip()]
            if any(e.get("userAgent") == sentinel for e in events) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        events = [e for e in events if e.get("userAgent") != sentinel]
        return [e for e in events if user is None or e["user"]["username"] == user]

    def count(self, user: str | None = None, verbs=None, resource: str | None = None,
              namespace: str | None = None) -> int:
        return sum(1 for e in self.events(user)
                   if (verbs is None or e["verb"] in verbs)
                   and (resource is None or e.get("objectRef", {}).get("resource") == resource)
                   and (namespace is None or e.get("objectRef", {}).get("namespace") == namespace))
