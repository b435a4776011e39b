# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A local HTTP server that records what it received and answers every request alike, or as a
function says (for the clients' tests, and for the modules' tests against a scripted Guance or
Prometheus)."""

from __future__ import annotations

import json
import threading
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Recorder:
    """A local HTTP server answering every request with ``status`` (and ``Location``), recording
    what it received."""

    def __init__(
        self,
        status: int = 200,
        location: str | None = None,
        body: bytes = b"{}",
        answer: t.Callable[[str, str], tuple[int, t.Any]] | None = None,
    ) -> None:
        """``answer(path, body) -> (status, JSON payload)``, when given, answers each request instead."""
        self.seen: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers), "body": raw})
                code, data = status, body
                if answer is not None:
                    code, payload = answer(self.path, raw.decode())
                    data = json.dumps(payload).encode()
                self.send_response(code)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815 (http.server's names)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
