# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where Guance is and how to reach it: the sites, the two APIs (the OpenAPI with a key, a DataKit
without), their paths, and a module's connection options (doc_fragments/guance.py) read into a
``GuanceConfig``, each refusal naming the option.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import os

import typing as t

from dataclasses import dataclass, field

from ansible.module_utils.basic import env_fallback

from ansible_collections.canary.istio.plugins.module_utils._http.client import Endpoint, timing_problems, url_problem
from ansible_collections.canary.istio.plugins.module_utils._http.safety import credential_problem

from ansible_collections.canary.istio.plugins.module_utils._guance.errors import GuanceConfigError


# Source: docs.guance.com/open-api (the site -> OpenAPI endpoint table).
SITES: dict[str, str] = {
    "cn1": "https://openapi.guance.com",
    "cn2": "https://aws-openapi.guance.com",
    "cn4": "https://cn4-openapi.guance.com",
    "cn5": "https://cn5-openapi.guance.com",
    "cn6": "https://cn6-openapi.guance.one",
    "us1": "https://us1-openapi.guance.com",
    "eu1": "https://eu1-openapi.guance.one",
    "ap1": "https://ap1-openapi.guance.one",
    "za1": "https://za1-openapi.guance.com",
    "id1": "https://id1-openapi.guance.com",
    "me1": "https://me1-openapi.guance.com",
}


API_OPENAPI = "openapi"


API_DATAKIT = "datakit"


APIS: tuple[str, ...] = (API_OPENAPI, API_DATAKIT)


DEFAULT_DATAKIT_URL = "http://localhost:9529"


QUERY_PATH = "/api/v1/df/query_data_v1"


EVENT_PATH = "/api/v1/events/create"


DATAKIT_QUERY_PATH = "/v1/query/raw"


DATAKIT_EVENT_PATH = "/v1/write/keyevent"


EVENT_STATUSES: tuple[str, ...] = ("critical", "error", "warning", "ok", "info", "nodata")


DEFAULT_EVENT_SOURCE = "canary_release"


RATE_LIMIT_CODES: tuple[str, ...] = ("ft.TriggerApiAkCurrentLimiting", "ft.TriggerApiWorkspaceCurrentLimiting")


DATAKIT_RATE_LIMIT_CODE = "datakit.reachMaxAPILimit"


@dataclass(frozen=True)
class GuanceConfig(Endpoint):
    """Where and how to talk to Guance: an ``Endpoint`` with the API it speaks and, for the
    OpenAPI, the key."""

    api: str = API_OPENAPI
    api_key: str | None = field(default=None, repr=False)

    service: t.ClassVar[str] = "Guance"

    def secrets(self) -> list[str]:
        return ([self.api_key] if self.api_key else []) + super().secrets()


def base_url(site: str | None = None, url: str | None = None, api: str = API_OPENAPI) -> str:
    """The base URL from ``url`` (wins), else ``site``, else the DataKit default for ``api=datakit``."""
    if api not in APIS:
        raise GuanceConfigError(f"api must be one of {', '.join(APIS)}, got {api!r}", "api")
    if url:
        url = url.strip().rstrip("/")
        problem = url_problem(url, "url")
        if problem:
            raise GuanceConfigError(problem, "url")
        return url
    if site:
        if api == API_DATAKIT:
            raise GuanceConfigError("site names an OpenAPI endpoint; for api=datakit set url (default "
                                    f"{DEFAULT_DATAKIT_URL})", "site")
        if site not in SITES:
            raise GuanceConfigError(f"unknown site {site!r}; use one of {', '.join(SITES)}, or url for a private deployment",
                                    "site")
        return SITES[site]
    if api == API_DATAKIT:
        return DEFAULT_DATAKIT_URL
    raise GuanceConfigError("set site (for example cn1 or us1) or url (also from the GUANCE_URL environment variable)", "url")


def make_config(
    site: str | None = None,
    url: str | None = None,
    api: str = API_OPENAPI,
    api_key: str | None = None,
    **kwargs: t.Any,
) -> GuanceConfig:
    """A checked GuanceConfig; the OpenAPI needs a key."""
    resolved = base_url(site, url, api)
    if api == API_OPENAPI and not api_key:
        raise GuanceConfigError("the Guance OpenAPI needs api_key (or the GUANCE_API_KEY environment variable): "
                                "the API Key ID from Management > API Key", "api_key")
    problem = credential_problem(api_key, "api_key (or GUANCE_API_KEY)")
    if problem:
        raise GuanceConfigError(problem, "api_key")
    for option, problem in timing_problems(kwargs):
        raise GuanceConfigError(problem, option)
    return GuanceConfig(url=resolved, api=api, api_key=api_key or None,
                        **{k: v for k, v in kwargs.items() if v is not None})


GUANCE_ENV_URL = "GUANCE_URL"


GUANCE_ENV_API_KEY = "GUANCE_API_KEY"


# The modules' connection options (documented in doc_fragments/guance.py).
GUANCE_ARG_SPEC: dict[str, dict[str, t.Any]] = {
    "api": {"type": "str", "choices": list(APIS), "default": API_OPENAPI},
    "site": {"type": "str", "choices": list(SITES)},
    # No env fallback here: GUANCE_URL is read in config_from_params, after an explicit site, which
    # a fallback would override (url wins over site).
    "url": {"type": "str"},
    "api_key": {"type": "str", "no_log": True, "fallback": (env_fallback, [GUANCE_ENV_API_KEY])},
    "validate_certs": {"type": "bool", "default": True},
    "timeout": {"type": "float", "default": 30.0},
    "retry_budget": {"type": "float", "default": 60.0},
}


def guance_argument_spec(own: t.Mapping[str, t.Any] | None = None) -> dict[str, t.Any]:
    """A module's argument_spec: a copy of the Guance options plus its own."""
    spec = {name: dict(option) for name, option in GUANCE_ARG_SPEC.items()}
    for name, option in (own or {}).items():
        if name in spec:
            raise ValueError(f"option {name!r} is already a Guance connection option")
        spec[name] = option
    return spec


def config_from_params(params: t.Mapping[str, t.Any], environ: t.Mapping[str, str] | None = None) -> GuanceConfig:
    """The GuanceConfig of a module's options (GuanceConfigError naming the option to fix).

    The url is the option, else E(GUANCE_URL) unless the task names a ``site``: an option the task
    sets wins over the environment (an AWX credential injects GUANCE_URL into every job)."""
    environ = os.environ if environ is None else environ
    url = params.get("url") or (None if params.get("site") else environ.get(GUANCE_ENV_URL) or None)
    return make_config(
        site=params.get("site"), url=url, api=params.get("api") or API_OPENAPI,
        api_key=params.get("api_key"), timeout=params.get("timeout"), retry_budget=params.get("retry_budget"),
        validate_certs=params.get("validate_certs", True),
    )
