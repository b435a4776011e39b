# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The last guard before a message from a server leaves a client: every secret replaced.

The Kubernetes, Guance and Prometheus clients pass their keys, tokens and passwords here, so a
server that echoes one back (in an error body, a URL) cannot put it into a result or a log.

A secret travels in more spellings than its own: HTTP libraries quote a bad header value with
``repr()``, JSON escapes it, URLs percent-encode it and Basic auth base64-encodes ``user:password``.
Each of those is replaced too; Ansible's ``no_log`` only knows the plain value.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import base64
import json
import typing as t
from urllib.parse import quote

REDACTED = "********"
# Shorter values would mangle ordinary words and say more than they hide.
MIN_SECRET_LENGTH = 4


def secret_forms(secret: str) -> list[str]:
    """``secret`` as written, as ``repr()`` and JSON quote it (without the quotes), and
    percent-encoded; longest first so a longer spelling is replaced whole."""
    forms = {secret, repr(secret)[1:-1], json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
             quote(secret, safe=""), quote(secret, safe="/:")}
    return sorted((form for form in forms if len(form) >= MIN_SECRET_LENGTH), key=len, reverse=True)


def basic_auth_token(username: str, password: str) -> str:
    """The base64 word a ``Basic`` Authorization header carries: itself a secret."""
    return base64.b64encode(f"{username}:{password}".encode("utf-8")).decode("ascii")


def redact(text: str, secrets: t.Iterable[str | None]) -> str:
    """``text`` with every spelling of every secret (see ``secret_forms``) replaced."""
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET_LENGTH:
            for form in secret_forms(secret):
                text = text.replace(form, REDACTED)
    return text


def mask_secrets(module: t.Any, secrets: t.Iterable[str | None]) -> None:
    """Have Ansible mask every spelling of ``secrets`` in the module's result and log."""
    module.no_log_values.update(form for secret in secrets if secret for form in secret_forms(secret))
