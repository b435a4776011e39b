# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The HTTP client for known REST paths: JSON in, dicts out, a K8sError on failure.

Why our own client instead of kubernetes.core's: a task of kubernetes.core pays for importing the
``kubernetes`` package and for API discovery before its first request. Our modules only touch kinds
whose REST paths are known (Istio networking objects, Deployments, Pods, Services), so this speaks
HTTP with ``requests``.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import base64
import json
import typing as t
import warnings

from ansible_collections.canary.istio.plugins.module_utils._http.redact import redact
from ansible_collections.canary.istio.plugins.module_utils._http.safety import USER_AGENT, redirect_refusal, split_userinfo
from ansible_collections.canary.istio.plugins.module_utils._k8s.config import ClientConfig
from ansible_collections.canary.istio.plugins.module_utils._k8s.errors import K8sApiError, K8sConnectionError, api_error


DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 60.0)  # connect, read (seconds)


def _basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode("utf-8")).decode("ascii")


def _build_session(config: ClientConfig) -> t.Any:
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3 import HTTPHeaderDict

    groups = list(config.impersonate_groups)
    # proxy_headers go to the proxy (with CONNECT for https), as kubernetes.core sends them.
    extra_proxy_headers: dict[str, str] = {}
    if config.proxy_headers.get("proxy_basic_auth"):
        extra_proxy_headers["Proxy-Authorization"] = _basic(config.proxy_headers["proxy_basic_auth"])
    if config.proxy_headers.get("basic_auth"):
        extra_proxy_headers["Authorization"] = _basic(config.proxy_headers["basic_auth"])
    if config.proxy_headers.get("user_agent"):
        extra_proxy_headers["User-Agent"] = config.proxy_headers["user_agent"]

    class _Adapter(HTTPAdapter):
        def add_headers(self, request: t.Any, **kwargs: t.Any) -> None:
            # The API server reads one group per Impersonate-Group header line; requests keeps one
            # value per header name, so the repeated lines are added on the way out.
            if groups:
                headers = HTTPHeaderDict(dict(request.headers))
                for group in groups:
                    headers.add("Impersonate-Group", group)
                request.headers = headers

        def proxy_headers(self, proxy: str) -> dict[str, str]:
            headers = super().proxy_headers(proxy)
            headers.update(extra_proxy_headers)
            return headers

    session = requests.Session()
    session.trust_env = False  # like kubernetes.core: HTTP(S)_PROXY and .netrc do not apply
    adapter = _Adapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    if config.verify_ssl:
        session.verify = config.ca_file or True
    else:
        session.verify = False
    if config.client_cert_file and config.client_key_file:
        session.cert = (config.client_cert_file, config.client_key_file)
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    if config.token:
        headers["Authorization"] = "Bearer " + config.token
    elif config.username and config.password:
        headers["Authorization"] = _basic(f"{config.username}:{config.password}")
    if config.impersonate_user:
        headers["Impersonate-User"] = config.impersonate_user
    session.headers.update(headers)
    if config.proxy:
        bypass = False
        if config.no_proxy:
            from requests.utils import should_bypass_proxies

            bypass = should_bypass_proxies(config.server, no_proxy=config.no_proxy)
        if not bypass:
            session.proxies = {"http": config.proxy, "https": config.proxy}
    return session


def format_label_selector(labels: t.Mapping[str, str] | str | None) -> str | None:
    """``{"app": "reviews", "version": "v2"}`` -> ``"app=reviews,version=v2"`` (sorted)."""
    if labels is None or isinstance(labels, str):
        return labels
    return ",".join(f"{key}={labels[key]}" for key in sorted(labels))


class K8sClient:
    """A Kubernetes API client for known REST paths: JSON in, dicts out, K8sError on failure."""

    def __init__(self, config: ClientConfig, timeout: float | tuple[float, float] = DEFAULT_TIMEOUT) -> None:
        self.config = config
        self.timeout = timeout
        self.requests_made = 0
        self._session = _build_session(config)

    @property
    def server(self) -> str:
        return self.config.server

    def get(self, path: str) -> dict[str, t.Any]:
        """GET one object; raises K8sNotFoundError when it does not exist."""
        return self._request("GET", path)

    def list(self, path: str, label_selector: t.Mapping[str, str] | str | None = None) -> dict[str, t.Any]:
        """GET a collection (a ``*List`` object, objects under ``items``)."""
        selector = format_label_selector(label_selector)
        return self._request("GET", path, params={"labelSelector": selector} if selector else None)

    def create(self, path: str, body: dict[str, t.Any], dry_run: bool = False) -> dict[str, t.Any]:
        """POST ``body`` to the collection ``path``."""
        return self._request("POST", path, body=body, dry_run=dry_run)

    def replace(self, path: str, body: dict[str, t.Any], dry_run: bool = False) -> dict[str, t.Any]:
        """PUT the whole object; with ``metadata.resourceVersion`` set, a stale write gets 409."""
        return self._request("PUT", path, body=body, dry_run=dry_run)

    def delete(self, path: str, dry_run: bool = False) -> dict[str, t.Any]:
        """DELETE the object at ``path``."""
        return self._request("DELETE", path, dry_run=dry_run)

    def close(self) -> None:
        self._session.close()
        self.config.cleanup()

    def __enter__(self) -> K8sClient:
        return self

    def __exit__(self, *exc_info: t.Any) -> None:
        self.close()

    def _request(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        body: dict[str, t.Any] | None = None,
        dry_run: bool = False,
    ) -> dict[str, t.Any]:
        import requests

        if not path.startswith("/"):
            raise ValueError(f"API path must start with '/': {path!r}")
        query = dict(params or {})
        if dry_run:
            query["dryRun"] = "All"
        headers = {"Content-Type": "application/json"} if body is not None else None
        data = json.dumps(body).encode("utf-8") if body is not None else None
        secrets = self.config.secrets()
        self.requests_made += 1
        try:
            with warnings.catch_warnings():
                if not self.config.verify_ssl:
                    # validate_certs=false was asked for; client_from_module warns once instead.
                    from urllib3.exceptions import InsecureRequestWarning

                    warnings.simplefilter("ignore", InsecureRequestWarning)
                response = self._session.request(
                    method, self.config.server + path, params=query or None, data=data,
                    headers=headers, timeout=self.timeout, allow_redirects=False,
                )
        except requests.exceptions.SSLError as exc:
            raise K8sConnectionError(redact(
                f"{method} {path}: TLS error talking to {split_userinfo(self.config.server)[0]}: {exc}. Give the cluster's "
                "CA with 'ca_cert' (or certificate-authority in the kubeconfig), or set "
                "validate_certs=false for a test cluster", secrets)) from None
        except requests.exceptions.RequestException as exc:
            raise K8sConnectionError(redact(
                f"{method} {path}: cannot reach the API server {split_userinfo(self.config.server)[0]}: {exc}",
                secrets)) from None
        refusal = redirect_refusal(f"{method} {path} on {split_userinfo(self.config.server)[0]}", response,
                                   "host (or the server of the kubeconfig's cluster)")
        if refusal:
            raise K8sConnectionError(redact(refusal, secrets))
        if 200 <= response.status_code < 300:
            if not response.content:
                return {}
            try:
                return response.json()
            except ValueError:
                raise K8sApiError(response.status_code, response.reason or "",
                                  "the API server answered with a body that is not JSON", method, path) from None
        raise api_error(method, path, response, secrets)
