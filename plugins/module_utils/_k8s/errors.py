# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What can go wrong talking to a Kubernetes API server, one class per answer a caller treats
differently (a 404 is "absent", a 409 is "read again"), and the error made from a failed response.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import typing as t

from ansible_collections.canary.istio.plugins.module_utils._errors import CanaryError
from ansible_collections.canary.istio.plugins.module_utils._http.redact import redact


class K8sError(CanaryError):
    """Base of every error of the Kubernetes client."""


class K8sConfigError(K8sError):
    """The connection settings are unusable. ``option`` names the module option to fix."""


class K8sNameError(K8sError, ValueError):
    """A name or namespace that cannot be part of a REST path (empty, ``.``, ``..``, with ``/``);
    ``option`` is what it was given as (``name``, ``namespace``)."""


class K8sConnectionError(K8sError):
    """The API server could not be reached (DNS, refused connection, TLS, timeout)."""


class K8sApiError(K8sError):
    """The API server answered with an error status.

    ``message`` is the server's ``Status.message``; ``details`` its ``Status.details`` (for 422 the
    field causes).
    """

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        method: str | None = None,
        path: str | None = None,
        details: dict[str, t.Any] | None = None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.message = message
        self.method = method
        self.path = path
        self.details = details or {}
        where = f"{method} {path}: " if method and path else ""
        super().__init__(f"{where}{status} {reason}: {message}")

    def result_fields(self) -> dict[str, t.Any]:
        """The status and reason, and for a 422 the fields the server refused."""
        fields: dict[str, t.Any] = {"status": self.status, "reason": self.reason}
        if self.details.get("causes"):
            fields["causes"] = self.details["causes"]
        return fields


class K8sUnauthorizedError(K8sApiError):
    """401: the credentials were not accepted."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        # The server says no more than "Unauthorized": name the settings that hold the credentials.
        self.args = (
            f"{self.args[0]}. The API server did not accept the credentials: check 'api_key' (the bearer "
            "token) or the user of the kubeconfig's context; a token may have expired or been revoked",
        )


class K8sForbiddenError(K8sApiError):
    """403: RBAC does not allow the request."""


class K8sNotFoundError(K8sApiError):
    """404: the object (or its namespace, or its API version) does not exist."""


class K8sConflictError(K8sApiError):
    """409: stale resourceVersion on a write, or the object already exists on create."""


class K8sInvalidError(K8sApiError):
    """422: the object failed validation."""


_API_ERRORS: dict[int, type[K8sApiError]] = {
    401: K8sUnauthorizedError,
    403: K8sForbiddenError,
    404: K8sNotFoundError,
    409: K8sConflictError,
    422: K8sInvalidError,
}


def api_error(method: str, path: str, response: t.Any, secrets: list[str]) -> K8sApiError:
    status = response.status_code
    reason = response.reason or ""
    details: dict[str, t.Any] = {}
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict) and payload.get("kind") == "Status":
        message = str(payload.get("message") or reason)
        reason = str(payload.get("reason") or reason)
        details = payload.get("details") or {}
    else:
        message = (response.text or reason).strip()[:500]
    cls = _API_ERRORS.get(status, K8sApiError)
    return cls(status, reason, redact(message, secrets), method, path, details)
