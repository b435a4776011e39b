#!/usr/bin/python
# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: version_deployment
short_description: Deploy one version of an app from the stable version's own Deployment, or from the user's manifest
version_added: 0.2.0
description:
  - Makes the Deployment of O(version) and waits until it is Ready.
  - With O(from_version), the Deployment of that version (normally the stable one) is B(cloned)
    whole - probes, affinity, tolerations, pull secrets, security contexts, init containers, every
    container, volumes, annotations - and only what makes it O(version) changes - its name
    (O(name_pattern)), the version label O(version_label) on the Deployment, its selector and its
    pods, the images of the containers named in O(images), O(pod_annotations) over the pod
    template's, and O(replicas) when given.
  - With O(manifest), the user's own Deployment is used instead, with the same changes (the role
    C(canary.istio.deploy_version) renders it from a file or inline, Jinja allowed).
  - Idempotent on the server's answers - an update is first sent as a dry run, and nothing is
    written when the server's Deployment would stay the same (defaults the manifest leaves out are
    not a change, a key it removes is).
  - When the Deployment is not Ready within O(progress_deadline) seconds (or says
    C(ProgressDeadlineExceeded) sooner), the task fails with why, from the pods' status and their
    warning events - unschedulable, an image that cannot be pulled, a crash loop, a failing probe.
options:
  app:
    description: The app, the value of its C(app) label, for example V(reviews).
    type: str
    required: true
  namespace:
    description: The namespace of the app.
    type: str
    required: true
  version:
    description: The version to deploy, for example V(v2) - the value of O(version_label) on its pods.
    type: str
    required: true
  from_version:
    description:
      - The version whose Deployment is cloned (normally the stable one), when that Deployment exists.
      - When it does not (a first install), O(manifest) is used; without one, the task fails.
    type: str
  manifest:
    description:
      - The version's Deployment, as a mapping or YAML text, used when O(from_version) is not given or
        its Deployment does not exist. Its name, namespace and version label are set by this module;
        C(app) is added to its selector and pod labels when missing.
    type: raw
  images:
    description:
      - "The image of each container to change, by container name (init containers too), for
        example V({reviews: docker.io/istio/examples-bookinfo-reviews-v2:1.20.3})."
      - A name the Deployment has no container for is an error naming the containers it has.
    type: dict
    default: {}
  version_label:
    description: The pod label that tells versions apart, for example V(app.kubernetes.io/version).
    type: str
    default: version
  name_pattern:
    description: The Deployment name of a version, with C({app}) and C({version}).
    type: str
    default: "{app}-{version}"
  replicas:
    description: The canary's replicas. Defaults to the cloned Deployment's (or the manifest's).
    type: int
  pod_annotations:
    description:
      - Annotations set on the pod template over its own, for example the DataKit scrape and the
        tracing tags that carry the version.
    type: dict
    default: {}
  progress_deadline:
    description:
      - Seconds the Deployment has to become Ready; also its C(progressDeadlineSeconds).
    type: int
    default: 600
  wait:
    description: Wait until the Deployment is Ready. Never in check mode.
    type: bool
    default: true
extends_documentation_fragment:
  - canary.istio.k8s_auth
  - canary.istio.attributes
author:
  - canary.istio maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: The canary v2 of reviews from v1's own Deployment, a new image for one of its containers
  canary.istio.version_deployment:
    app: reviews
    namespace: prod
    version: v2
    from_version: v1
    images:
      reviews: registry.example.com/reviews:2.0.0

- name: A version from the user's manifest (also what a first install gets when v1 does not run yet), versions told apart by app.kubernetes.io/version
  canary.istio.version_deployment:
    app: reviews
    namespace: prod
    version: "2.0.0"
    version_label: app.kubernetes.io/version
    name_pattern: "{app}-{version}"
    manifest: "{{ lookup('ansible.builtin.template', 'reviews-deployment.yaml.j2') | from_yaml }}"
"""

RETURN = r"""
name:
  description: The Deployment's name.
  returned: success
  type: str
  sample: reviews-v2
source:
  description: Where the Deployment came from - C(from <version>'s Deployment <name>) or C(manifest).
  returned: success
  type: str
  sample: from v1's Deployment reviews-v1
deployment:
  description: The Deployment as the API server answered the write (or the dry run in check mode), or as it was when nothing changed.
  returned: success
  type: dict
ready:
  description: Whether it was seen Ready (V(false) in check mode or with O(wait=false)).
  returned: success
  type: bool
not_ready:
  description: Why the pods were not Ready, one line each, when the task fails on readiness.
  returned: failure
  type: list
  elements: str
  sample: ["pod reviews-v2-7d9c-x2 Pending (container reviews waiting: ImagePullBackOff Back-off pulling image ...)"]
"""

import time
import typing as t

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.canary.istio.plugins.module_utils._errors import CanaryError, doing
from ansible_collections.canary.istio.plugins.module_utils._k8s.errors import K8sNotFoundError
from ansible_collections.canary.istio.plugins.module_utils._k8s.module import client_from_module
from ansible_collections.canary.istio.plugins.module_utils._k8s.options import auth_argument_spec
from ansible_collections.canary.istio.plugins.module_utils._k8s.paths import deployments_path, pods_path
from ansible_collections.canary.istio.plugins.module_utils._main import run_module
from ansible_collections.canary.istio.plugins.module_utils._version_deployment import (
    DeploymentSpecError,
    check_version_label,
    deployment_name,
    for_version,
    is_ready,
    not_ready_reasons,
    own_manifest,
    put_body,
    same_deployment,
)

POLL_S = 1.0


def wanted_deployment(client: t.Any, params: t.Mapping[str, t.Any]) -> tuple[dict[str, t.Any], str]:
    """The version's Deployment and where it came from; DeploymentSpecError names the option."""
    if params["from_version"] is None and params["manifest"] is None:
        raise DeploymentSpecError("give from_version (clone that version's Deployment) or manifest", "from_version")
    label = check_version_label(params["version_label"])
    name = deployment_name(params["name_pattern"], params["app"], params["version"])
    settings = dict(name=name, namespace=params["namespace"], version=params["version"], version_label=label,
                    images=params["images"] or {}, pod_annotations=params["pod_annotations"] or {},
                    replicas=params["replicas"])
    stable = None
    if params["from_version"] is not None:
        source_name = deployment_name(params["name_pattern"], params["app"], params["from_version"])
        try:
            stable = client.get(deployments_path(params["namespace"], source_name))
        except K8sNotFoundError:
            if params["manifest"] is None:
                raise DeploymentSpecError(f"there is no Deployment {source_name} in {params['namespace']} to clone "
                                          f"(name_pattern {params['name_pattern']!r}); give the stable version that runs, "
                                          "or a manifest", "from_version") from None
    if stable is not None:
        wanted, source = for_version(stable, **settings), f"from {params['from_version']}'s Deployment {source_name}"
    else:
        manifest = params["manifest"]
        if isinstance(manifest, str):
            # Here, not at the top: client_from_module has checked that PyYAML is installed.
            import yaml  # pylint: disable=import-outside-toplevel

            try:
                manifest = yaml.safe_load(manifest)
            except yaml.YAMLError as exc:
                raise DeploymentSpecError(f"manifest is not YAML: {exc}", "manifest") from None
        wanted, source = own_manifest(manifest, app=params["app"], **settings), "manifest"
    wanted["spec"]["progressDeadlineSeconds"] = params["progress_deadline"]
    return wanted, source


def write(client: t.Any, wanted: dict[str, t.Any], check_mode: bool) -> tuple[dict[str, t.Any] | None, dict[str, t.Any], bool]:
    """(before, after, changed): created, updated after a dry run showed a difference, or left."""
    namespace, name = wanted["metadata"]["namespace"], wanted["metadata"]["name"]
    path = deployments_path(namespace, name)
    try:
        live = client.get(path)
    except K8sNotFoundError:
        return None, client.create(deployments_path(namespace), wanted, dry_run=check_mode), True
    body = put_body(live, wanted)
    trial = client.replace(path, body, dry_run=True)
    if same_deployment(trial, live):
        return live, live, False
    return live, (trial if check_mode else client.replace(path, body)), True


def wait_ready(client: t.Any, deployment: dict[str, t.Any], deadline_s: int) -> list[str]:
    """Poll until Ready; the reasons it is not (empty when it became Ready)."""
    namespace, name = deployment["metadata"]["namespace"], deployment["metadata"]["name"]
    give_up = time.monotonic() + deadline_s
    failure = None
    while True:
        live = client.get(deployments_path(namespace, name))
        ready, failure = is_ready(live)
        if ready:
            return []
        if failure or time.monotonic() >= give_up:
            break
        time.sleep(POLL_S)
    selector = ",".join(f"{k}={v}" for k, v in sorted(live["spec"]["selector"]["matchLabels"].items()))
    pods = client.list(pods_path(namespace), label_selector=selector).get("items") or []
    events = client.list(f"/api/v1/namespaces/{namespace}/events").get("items") or []
    why = [failure] if failure else [f"not Ready within {deadline_s}s"]
    return why + not_ready_reasons(pods, events)


def run(module: AnsibleModule) -> dict[str, t.Any]:
    """The version's Deployment after this task (Ready when waited for); CanaryError for whatever
    stops it."""
    params = module.params
    if params["progress_deadline"] < 1:
        raise CanaryError(f"progress_deadline: must be at least 1 second, got {params['progress_deadline']}",
                          "progress_deadline")
    client = client_from_module(module)
    with doing(f"deploying {params['app']} {params['version']} in {params['namespace']}"):
        wanted, source = wanted_deployment(client, params)
        before, after, changed = write(client, wanted, module.check_mode)
    result: dict[str, t.Any] = dict(changed=changed, name=wanted["metadata"]["name"], source=source, deployment=after,
                                    ready=False)
    if module._diff:
        result["diff"] = dict(before=before or {}, after=after)
    if params["wait"] and not module.check_mode:
        with doing(f"waiting for {wanted['metadata']['name']} to be Ready"):
            reasons = wait_ready(client, after, params["progress_deadline"])
        if reasons:
            raise CanaryError(f"{wanted['metadata']['name']} ({source}) is not Ready: " + "; ".join(reasons),
                              not_ready=reasons, **{k: v for k, v in result.items() if k != "ready"})
        result["ready"] = True
    return result


def main() -> None:
    run_module(
        run,
        auth_argument_spec(dict(
            app=dict(type="str", required=True),
            namespace=dict(type="str", required=True),
            version=dict(type="str", required=True),
            from_version=dict(type="str"),
            manifest=dict(type="raw"),
            images=dict(type="dict", default={}),
            version_label=dict(type="str", default="version"),
            name_pattern=dict(type="str", default="{app}-{version}"),
            replicas=dict(type="int"),
            pod_annotations=dict(type="dict", default={}),
            progress_deadline=dict(type="int", default=600),
            wait=dict(type="bool", default=True),
        )),
    )


if __name__ == "__main__":
    main()
