# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A resolved connection to one API server (``ClientConfig``): the server, the credentials kept
out of ``repr``, and the temporary files holding a kubeconfig's inline certificates and keys.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import atexit
import base64
import os
import tempfile
import typing as t
from dataclasses import dataclass, field

from ansible_collections.canary.istio.plugins.module_utils._http.redact import basic_auth_token
from ansible_collections.canary.istio.plugins.module_utils._http.safety import split_userinfo


@dataclass
class ClientConfig:
    """Everything the transport needs, resolved. Secret fields stay out of ``repr``."""

    server: str
    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_cert_file: str | None = None
    client_key_file: str | None = None
    ca_file: str | None = None
    verify_ssl: bool = True
    proxy: str | None = field(default=None, repr=False)
    no_proxy: str | None = None
    proxy_headers: dict[str, str] = field(default_factory=dict, repr=False)
    impersonate_user: str | None = None
    impersonate_groups: list[str] = field(default_factory=list)
    context: str | None = None
    kubeconfig_user: str | None = None
    namespace: str | None = None
    source: str = "parameters"
    temp_files: list[str] = field(default_factory=list, repr=False)
    # Where *-data certificates and keys are written: a module passes its own temporary directory,
    # which Ansible removes even when the run is killed before our cleanup.
    temp_dir: str | None = field(default=None, repr=False)

    def secrets(self) -> list[str]:
        """Strings that must never be shown: token, password, the Basic header they make, proxy
        and URL credentials."""
        values = [self.token, self.password]
        if self.username and self.password:
            values.append(basic_auth_token(self.username, self.password))
        for credentials in (self.proxy_headers.get(k) for k in ("proxy_basic_auth", "basic_auth")):
            if credentials:
                values.extend([credentials, base64.b64encode(credentials.encode("utf-8")).decode("ascii")])
        for url in (self.proxy, self.server):
            values.extend(split_userinfo(url or "")[1])
        return [v for v in values if v]

    def describe(self) -> dict[str, t.Any]:
        """Where the connection came from, safe to return from a module (no credentials)."""
        auth = "none"
        if self.token:
            auth = "token"
        elif self.username and self.password:
            auth = "basic"
        if self.client_cert_file:
            auth = "client-certificate" if auth == "none" else f"{auth}+client-certificate"
        return {
            "server": split_userinfo(self.server)[0],
            "source": self.source,
            "context": self.context,
            "user": self.kubeconfig_user,
            "auth": auth,
            "impersonate_user": self.impersonate_user,
            "validate_certs": self.verify_ssl,
        }

    def cleanup(self) -> None:
        """Remove the temp files holding *-data certificates and keys."""
        while self.temp_files:
            path = self.temp_files.pop()
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def write_secure_temp(data: bytes, config: ClientConfig) -> str:
    # mkstemp creates the file with mode 0600, readable by this user only.
    fd, path = tempfile.mkstemp(prefix="canary-istio-", suffix=".pem", dir=config.temp_dir)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    config.temp_files.append(path)
    atexit.register(_unlink_quietly, path)
    return path


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
