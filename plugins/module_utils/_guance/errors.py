# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What can go wrong asking Guance, one class per answer a caller treats differently (a refused key,
a rate limit still there when the budget ran out, a 5xx, an answer that cannot be read). Messages
never hold the key.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import typing as t

from ansible_collections.canary.istio.plugins.module_utils._errors import CanaryError


class GuanceError(CanaryError):
    """Base of every error raised here. Messages never contain the API key."""


class GuanceConfigError(GuanceError):
    """Unusable settings. ``option`` names the module option to fix."""


class GuanceConnectionError(GuanceError):
    """No answer: refused connection, DNS, TLS, or a timeout (after the retries)."""


class GuanceApiError(GuanceError):
    """Guance or the DataKit answered with an error. ``error_code`` is the answer's
    ``errorCode`` (OpenAPI) or ``error_code`` (DataKit), empty when it had none."""

    def __init__(self, message: str, status: int | None = None, error_code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code

    def result_fields(self) -> dict[str, t.Any]:
        return {"status": self.status, "error_code": self.error_code}


class GuanceAuthError(GuanceApiError):
    """The key was refused (401 or 403 that is not a rate limit)."""


class GuanceRateLimitError(GuanceApiError):
    """Still rate limited when the time budget ran out."""


class GuanceServerError(GuanceApiError):
    """5xx, still failing when the time budget ran out."""


class GuanceResponseError(GuanceApiError):
    """An answer this client cannot read: not JSON, or not the documented shape."""
