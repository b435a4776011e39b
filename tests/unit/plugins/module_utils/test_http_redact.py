# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_http/redact.py: secrets hidden in every spelling, and the Basic auth word."""

from __future__ import annotations

import base64
import json

from ansible_collections.canary.istio.plugins.module_utils._http.redact import (
    REDACTED,
    basic_auth_token,
    redact,
    secret_forms,
)


PASSWORD = "pw-0a9b8c7d6e5f"


def test_secret_forms_cover_repr_json_and_url_spellings() -> None:
    secret = 'k\ney"/é'
    text = f"header {secret!r} json {json.dumps(secret)} url k%0Aey%22%2F%C3%A9 plain {secret}"
    cleaned = redact(text, [secret])
    assert "k\\ney" not in cleaned and "k%0Aey" not in cleaned and secret not in cleaned
    assert cleaned.count(REDACTED) == 4
    assert secret_forms("abc") == []  # too short to hide without mangling words


def test_basic_auth_token_is_the_header_word() -> None:
    assert basic_auth_token("bob", PASSWORD) == base64.b64encode(f"bob:{PASSWORD}".encode()).decode()
