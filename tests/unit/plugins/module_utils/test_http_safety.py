# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_http/safety.py: header values, credentials in URLs, redirects and plain-http warnings."""
# What each client refuses: test_guance_client.py, test_analysis_prometheus.py, test_k8s_transport.py.

from __future__ import annotations

import pytest

from ansible_collections.canary.istio.plugins.module_utils._http.safety import (
    header_problem,
    redirect_message,
    split_userinfo,
    transport_warnings,
)


PASSWORD = "pw-0a9b8c7d6e5f"


@pytest.mark.parametrize("value, problem", [
    ("plain-KEY_1.2", None), ("", None), (None, None),
    ("KEY\n", "a line break"), ("a\rb", "a line break"), ("tab\there", "a control character"),
    ("del\x7f", "a control character"), ("clé", "a non-ASCII character"),
])
def test_header_problem(value, problem) -> None:
    assert header_problem(value) == problem


def test_split_userinfo() -> None:
    assert split_userinfo(f"http://bob:{PASSWORD}@prom:9090/x") == ("http://prom:9090/x", [f"bob:{PASSWORD}", PASSWORD])
    assert split_userinfo("https://token@guance.example") == ("https://guance.example", ["token"])
    assert split_userinfo("https://guance.example/a@b") == ("https://guance.example/a@b", [])


def test_redirect_message_names_the_host_not_the_location() -> None:
    message = redirect_message("GET /x", 302, "https://evil.example/cb?key=abc123", "url")
    assert "evil.example" in message and "key=abc123" not in message and "Set url" in message
    assert "no Location" in redirect_message("GET /x", 301, None, "url")


def test_transport_warnings() -> None:
    assert transport_warnings("http://prom.example:9090", "Prometheus", True, True) == [
        "credentials are sent over plain http:// to http://prom.example:9090 (Prometheus): anyone on the path can read "
        "them. Use https://"]
    assert transport_warnings("http://prom.example:9090", "Prometheus", False, True) == []
    assert transport_warnings("http://127.0.0.1:9090", "Prometheus", True, True) == []  # loopback stays here
    assert transport_warnings("http://localhost:9529", "Guance", True, True) == []
    off = transport_warnings(f"https://u:{PASSWORD}@k.example", "the Kubernetes API server", True, False)
    assert len(off) == 1 and "TLS certificate verification is off for https://k.example" in off[0]
    assert PASSWORD not in off[0]
