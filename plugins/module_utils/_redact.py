# -*- coding: utf-8 -*-
# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The last guard before a message from a server leaves a client: every secret replaced.

The Kubernetes, Guance and Prometheus clients pass their keys, tokens and passwords here, so a
server that echoes one back (in an error body, a URL) cannot put it into a result or a log.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import typing as t

REDACTED = "********"


def redact(text: str, secrets: t.Iterable[str | None]) -> str:
    """``text`` with every secret replaced. Values shorter than 4 characters are left alone:
    replacing them would mangle ordinary words and say more than it hides."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return text
