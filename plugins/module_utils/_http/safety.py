# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the three HTTP clients (Kubernetes, Guance, Prometheus) share: the User-Agent they send, and
what they refuse or warn about alike.

- A credential must travel in a header as one line of ASCII: HTTP libraries quote a bad value
  with ``repr()`` in their error, and a line break in a header splits the request.
- Credentials written into a URL (``http://user:pass@host``) are secrets, and the URL shown in
  messages is the one without them.
- No client follows a redirect: ``requests`` keeps session headers (a Guance ``DF-API-KEY``,
  ``Impersonate-*``) and resends bodies on a 307/308, so a redirect to another host would carry
  them there. A 3xx is an error naming where it pointed.
- Plain ``http://`` with a credential, and TLS verification turned off, are warned about.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import ipaddress
import typing as t
from urllib.parse import urlsplit, urlunsplit

# What every request of the three clients says it is, so a server's logs tell our calls apart.
USER_AGENT = "canary.istio"


def header_problem(value: str | None) -> str | None:
    """What makes ``value`` unfit for an HTTP header (``"a line break"``...), None when fit."""
    if not value:
        return None
    bad = next((ch for ch in value if ord(ch) < 32 or ord(ch) > 126), None)
    if bad is None:
        return None
    if bad in "\r\n":
        return "a line break"
    if ord(bad) < 32 or ord(bad) == 127:
        return "a control character"
    return "a non-ASCII character"


def header_safety_message(what: str, problem: str) -> str:
    """The error for a credential with ``problem``; it never holds the value."""
    return (f"{what} holds {problem}; it must be one line of plain ASCII (copy it again, without line breaks, "
            "quotes or spaces around it)")


def split_userinfo(url: str) -> tuple[str, list[str]]:
    """(``url`` without ``user:password@``, the secrets it held: the userinfo and the password)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url, []
    if "@" not in parts.netloc:
        return url, []
    userinfo, host = parts.netloc.rsplit("@", 1)
    secrets = [userinfo]
    if ":" in userinfo:
        secrets.append(userinfo.split(":", 1)[1])
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)), [s for s in secrets if s]


def redirect_message(where: str, status: int, location: str | None, option: str) -> str:
    """The error for a 3xx answer: the host it pointed to (never the full Location, which may
    carry a token), and the fix."""
    target = "no Location"
    if location:
        try:
            target = f"{urlsplit(location).hostname or 'the same host'}"
        except ValueError:
            target = "an unreadable Location"
    return (f"{where}: the server answered {status}, a redirect to {target}; redirects are not followed (they would "
            f"carry the credentials along). Set {option} to the address that answers directly")


def transport_warnings(url: str, what: str, has_credential: bool, validate_certs: bool) -> list[str]:
    """Warnings for a connection whose credential or answers can be read or changed on the way."""
    warnings = []
    shown = split_userinfo(url)[0]
    scheme = url.split("://", 1)[0].lower()
    if scheme == "http" and has_credential and not _is_loopback(shown):
        warnings.append(f"credentials are sent over plain http:// to {shown} ({what}): anyone on the path can read "
                        "them. Use https://")
    if scheme == "https" and not validate_certs:
        warnings.append(f"TLS certificate verification is off for {shown} ({what}; validate_certs=false or "
                        "insecure-skip-tls-verify): the connection can be intercepted")
    return warnings


def _is_loopback(url: str) -> bool:
    # Traffic to this machine itself does not cross a network anyone else can read.
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def credential_problem(value: str | None, what: str) -> str | None:
    """The error for a credential that cannot be a header line (see ``header_problem``), or None."""
    problem = header_problem(value)
    return header_safety_message(what, problem) if problem else None


def redirect_refusal(where: str, response: t.Any, option: str) -> str | None:
    """The error for a 3xx ``response`` (see ``redirect_message``), or None for any other status."""
    if not 300 <= response.status_code < 400:
        return None
    return redirect_message(where, response.status_code, response.headers.get("Location"), option)
