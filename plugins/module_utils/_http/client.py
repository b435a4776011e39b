# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the Guance and Prometheus clients share: where the endpoint is and how patient to be
(``Endpoint``), the checks of those settings, and ``JsonHttpClient``, which sends one attempt of a
request and turns what the transport does wrong into the provider's own error. Each provider keeps
what differs: its paths, its credentials and how it reads an answer and its errors.

The session ignores the environment (``trust_env``: proxy variables, ``.netrc``): a request goes
where the module's options say and carries only the credentials they give.
``requests`` is imported when the first request is sent, so a module that makes none never needs it.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import time
import typing as t
from dataclasses import dataclass

from ansible_collections.canary.istio.plugins.module_utils._http.redact import redact
from ansible_collections.canary.istio.plugins.module_utils._http.retry import Retry, with_retries
from ansible_collections.canary.istio.plugins.module_utils._http.safety import (
    USER_AGENT,
    redirect_refusal,
    split_userinfo,
    transport_warnings,
)

T = t.TypeVar("T")


@dataclass(frozen=True)
class Endpoint:
    """Where a provider answers and how long to wait for it.

    ``retry_budget``: seconds the client may spend retrying rate limits, 5xx answers and
    timeouts, waits included (the first attempt is always made). ``backoff``: the first wait;
    each retry doubles it, up to ``max_backoff``. A provider's settings extend this with its
    credentials, which ``secrets`` must then list."""

    url: str
    timeout: float = 30.0
    retry_budget: float = 60.0
    backoff: float = 1.0
    max_backoff: float = 15.0
    validate_certs: bool = True

    # The provider's name in warnings ("Guance", "Prometheus").
    service: t.ClassVar[str] = "HTTP"

    def secrets(self) -> list[str]:
        """Every value that must never appear in a message: what the URL's userinfo holds."""
        return split_userinfo(self.url)[1]

    @property
    def display_url(self) -> str:
        """The URL as messages show it: without credentials written into it."""
        return split_userinfo(self.url)[0]

    def warnings(self) -> list[str]:
        return transport_warnings(self.url, self.service, bool(self.secrets()), self.validate_certs)


def url_problem(url: str, option: str) -> str | None:
    """Why ``url`` (already stripped) cannot be an endpoint, naming ``option``; None when it can."""
    if url.startswith(("http://", "https://")):
        return None
    return f"{option} must start with http:// or https://, got {split_userinfo(url)[0]!r}"


def timing_problems(settings: t.Mapping[str, t.Any]) -> list[tuple[str, str]]:
    """(option, message) for each of ``timeout`` and ``retry_budget`` in ``settings`` that is not a
    number of seconds a client can wait (a timeout of 0 would fail every request)."""
    problems = []
    for option in ("timeout", "retry_budget"):
        value = settings.get(option)
        if value is None:
            continue
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
                or (option == "timeout" and value == 0)):
            problems.append((option, f"{option} must be a positive number of seconds, got {value!r}"))
    return problems


def decoded_json(response: t.Any) -> tuple[t.Any, bool]:
    """(the body decoded, whether it was JSON); an empty body is (None, False)."""
    if not response.content:
        return None, False
    try:
        return response.json(), True
    except ValueError:
        return None, False


def body_snippet(response: t.Any, secrets: t.Sequence[str]) -> str:
    """The start of a body that held no readable error, on one line, for a message."""
    text = (response.text or response.reason or "").strip().replace("\n", " ")
    return redact(text[:200], list(secrets)) or "empty body"


def retry_after(response: t.Any) -> float | None:
    """The seconds a ``Retry-After`` header asks for; None without one (or with an HTTP date)."""
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class JsonHttpClient:
    """One provider's connection. A subclass names its errors and the options that set its URL, and
    adds its credentials to the session in ``prepare_session``."""

    # Set by each provider. Raised for no answer (refused, DNS, TLS, timeout): ``cls(message)``.
    connection_error: t.ClassVar[type[Exception]]
    # Raised for a redirect, which is never followed: ``cls(message, status)``.
    refused_error: t.ClassVar[t.Callable[..., Exception]]
    # The options a user changes to point the client elsewhere, for messages.
    url_options: t.ClassVar[str]

    def __init__(
        self,
        config: Endpoint,
        sleep: t.Callable[[float], None] = time.sleep,
        clock: t.Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.requests_made = 0
        self._sleep = sleep
        self._clock = clock
        self._session: t.Any = None

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def prepare_session(self, session: t.Any) -> None:
        """Add the provider's headers or auth to a new session."""

    def _session_for(self) -> t.Any:
        if self._session is None:
            import requests

            session = requests.Session()
            session.trust_env = False
            session.verify = self.config.validate_certs
            session.headers.update({"Accept": "application/json", "User-Agent": USER_AGENT})
            self.prepare_session(session)
            self._session = session
        return self._session

    def _retrying(self, attempt: t.Callable[[], T]) -> tuple[T, int]:
        """``attempt()``'s answer and the attempts it took, retried within the config's budget."""
        config = self.config
        return with_retries(attempt, config.retry_budget, config.backoff, config.max_backoff, self._clock, self._sleep)

    def _send(self, method: str, path: str, **kwargs: t.Any) -> tuple[t.Any, str]:
        """One attempt: (the response, ``"METHOD url-without-credentials/path"`` for messages).
        No answer is the provider's connection error, raised as Retry except for a TLS failure
        (which another attempt cannot mend); a redirect is its refused error."""
        import requests

        secrets = self.config.secrets()
        where = f"{method} {self.config.display_url}{path}"
        self.requests_made += 1
        try:
            response = self._session_for().request(method, self.config.url + path, timeout=self.config.timeout,
                                                   allow_redirects=False, **kwargs)
        except requests.exceptions.Timeout:
            raise Retry(self.connection_error(f"{where}: no answer within timeout={self.config.timeout:g}s")) from None
        except requests.exceptions.SSLError as exc:
            raise self.connection_error(redact(
                f"{where}: TLS error: {exc}. Set validate_certs=false only for a test endpoint", secrets)) from None
        except requests.exceptions.RequestException as exc:
            raise Retry(self.connection_error(redact(
                f"{where}: cannot connect: {exc}. Check {self.url_options} and the network", secrets))) from None
        refusal = redirect_refusal(where, response, self.url_options)
        if refusal:
            raise self.refused_error(redact(refusal, secrets), response.status_code)
        return response, where
