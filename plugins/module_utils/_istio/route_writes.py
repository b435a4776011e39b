# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Writing the weights of one HTTP route of a live VirtualService, or of an HTTPRoute's catch-all rule.

traffic_split writes every step through ``write_route_weights``; canary_analysis sends traffic back
to the stable version through ``route_back`` the moment a step fails, without waiting for the
playbook's next tasks (several seconds of Ansible between the verdict and a rollback task's write).
Both go through the same read-modify-write: only the route's weights change, a 409 means a fresh
read and the same change again, and an unchanged route is not written.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import time
import typing as t

from ansible_collections.canary.istio.plugins.module_utils._istio.common import IstioSpecError, specs_equal
from ansible_collections.canary.istio.plugins.module_utils._istio.step_routes import set_release_routes
from ansible_collections.canary.istio.plugins.module_utils._istio.traffic import find_route_index, route_weights, weights_from_canary
from ansible_collections.canary.istio.plugins.module_utils._istio.http_route import (
    HTTP_ROUTE_KIND,
    backend_weights,
    find_catch_all_rule,
    route_service,
    routing_path,
)
from ansible_collections.canary.istio.plugins.module_utils._istio.http_route_steps import set_step_rules
from ansible_collections.canary.istio.plugins.module_utils._k8s.errors import K8sError
from ansible_collections.canary.istio.plugins.module_utils._k8s.module import client_from_params, connection_warnings
from ansible_collections.canary.istio.plugins.module_utils._k8s.transport import K8sClient
from ansible_collections.canary.istio.plugins.module_utils._k8s.writes import UpdateResult, update_with_retry


def write_route_weights(
    client: K8sClient,
    path: str,
    weights: dict[str, int],
    route: str | None = None,
    dry_run: bool = False,
    live: dict | None = None,
    step: t.Mapping[str, t.Any] | None = None,
) -> UpdateResult:
    """Set ``weights`` on the route (``None``: the catch-all) of the VirtualService at ``path``.

    ``step``: ``{canary, match, mirror}`` of an A/B or shadow step; without it, the A/B routes
    and mirrors of the written subsets are removed (see ``step_routes``).

    Raises IstioSpecError when the route is gone or cannot be weighted, K8sError from the API server.
    """

    def change(obj: dict) -> dict:
        # Pure, and run again on a fresh read after a 409, so a concurrent writer's change is kept.
        new_spec = set_release_routes(obj.get("spec") or {}, weights, route, **(step or {}))
        if specs_equal(new_spec, obj.get("spec") or {}):
            return obj
        obj["spec"] = new_spec
        return obj

    return update_with_retry(client, path, change, dry_run=dry_run, live=live)


def write_backend_weights(client: K8sClient, path: str, weights: dict[str, int], dry_run: bool = False,
                          live: dict | None = None, step: t.Mapping[str, t.Any] | None = None) -> UpdateResult:
    """Set ``weights`` (version -> percentage) on the catch-all rule of the HTTPRoute at ``path``.

    ``step``: ``{canary, match, mirror}`` of an A/B or shadow step; without it, the A/B rules and
    mirrors of the written versions are removed (see ``http_route_steps``).
    """

    def change(obj: dict) -> dict:
        spec = obj.get("spec") or {}
        new_spec = set_step_rules(spec, weights, route_service(obj, _namespace_of(obj, path)),
                                  **{key: value for key, value in (step or {}).items() if key in ("canary", "match", "mirror")})
        if not specs_equal(new_spec, spec):
            obj["spec"] = new_spec
        return obj

    return update_with_retry(client, path, change, dry_run=dry_run, live=live)


def _namespace_of(obj: dict, path: str) -> str:
    return (obj.get("metadata") or {}).get("namespace") or path.split("/namespaces/", 1)[1].split("/", 1)[0]


def backend_weights_of(obj: dict | None, namespace: str) -> dict[str, int]:
    """version -> percentage of the HTTPRoute's catch-all rule."""
    obj = obj or {}
    spec = obj.get("spec") or {}
    return backend_weights(spec["rules"][find_catch_all_rule(spec)], route_service(obj, namespace))


def route_weights_of(result: UpdateResult, route: str | None = None) -> tuple[dict[str, int], dict[str, int]]:
    """The route's weights before and after a write."""
    before = (result.before or {}).get("spec") or {}
    after = (result.after or {}).get("spec") or {}
    # Looked up in each spec: an A/B route added or removed before it moves the route.
    return (route_weights(before["http"][find_route_index(before, route)]),
            route_weights(after["http"][find_route_index(after, route)]))


class RouteBack(t.NamedTuple):
    """What ``route_back`` did (returned to the user) and the spec before and after (for a diff)."""

    outcome: dict[str, t.Any]
    before_spec: dict
    after_spec: dict
    # For the module only, never in a result: what to warn about and what to mask.
    warnings: list[str]
    secrets: list[str]


def route_back(settings: t.Mapping[str, t.Any], namespace: str, canary: str, temp_dir: str | None = None) -> RouteBack:
    """All traffic of the route to ``settings['to_version']``, ``canary`` at weight 0, at once.

    ``settings``: canary_analysis's ``rollback`` option (to_version, virtual_service, route,
    api_version, kubeconfig, context; other connection settings from K8S_AUTH_* variables).
    Never raises: the playbook's rollback follows in any case, so a failure here is reported in
    ``outcome['error']`` and must not hide the verdict that called for it.
    """
    name = settings["virtual_service"]
    kind = settings.get("kind") or "VirtualService"
    outcome: dict[str, t.Any] = {"virtual_service": "%s/%s" % (namespace, name), "kind": kind, "changed": False}
    before_spec: dict = {}
    after_spec: dict = {}
    started = time.monotonic()
    client = None
    warnings: list[str] = []
    secrets: list[str] = []
    try:
        path = routing_path(kind, settings.get("api_version"), namespace, name)
        client = client_from_params(settings, temp_dir=temp_dir)
        warnings, secrets = connection_warnings(client.config), client.config.secrets()
        weights = weights_from_canary(settings["to_version"], canary, 0)
        if kind == HTTP_ROUTE_KIND:
            result = write_backend_weights(client, path, weights)
            previous, now = backend_weights_of(result.before, namespace), backend_weights_of(result.after, namespace)
        else:
            result = write_route_weights(client, path, weights, settings.get("route"))
            previous, now = route_weights_of(result, settings.get("route"))
        before_spec = (result.before or {}).get("spec") or {}
        after_spec = (result.after or {}).get("spec") or {}
        outcome.update(changed=result.changed, previous_weights=previous, weights=now,
                       at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    except (K8sError, IstioSpecError, ValueError) as exc:
        outcome["error"] = "%s %s/%s not routed back to %s: %s" % (kind, namespace, name, settings["to_version"], exc)
    finally:
        if client is not None:
            client.close()
        outcome["seconds"] = round(time.monotonic() - started, 3)
    return RouteBack(outcome, before_spec, after_spec, warnings, secrets)
