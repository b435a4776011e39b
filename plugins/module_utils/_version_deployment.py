# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Deployment of one version of an app: the stable version's own Deployment cloned for the
canary, or the user's manifest, with only what makes it that version changed. Pure.

PRIVATE to this collection: may change at any time.

A canary built from a minimal template loses what the user's Deployment carries (probes,
affinity, tolerations, pull secrets, security contexts, init containers, several containers,
annotations). Flagger and Argo Rollouts reuse the real pod template; so does this: the clone keeps
everything and changes the name, the version label (Deployment labels, selector, pod labels), the
images of the containers named, and the Guance scrape and tracing annotations.

- ``for_version``: a version's Deployment made from another's (the stable one cloned for the canary).
- ``own_manifest``: the user's Deployment, checked and labelled for the version.
- ``not_ready_reasons``: why a version's pods are not Ready, from their status and events.
- ``put_body`` / ``same_deployment``: the update, and idempotency judged on the server's
  answers (a dry run fills the defaults in) rather than on what was sent.
"""

from __future__ import annotations

import copy
import re
import typing as t

from ansible_collections.canary.istio.plugins.module_utils._errors import CanaryError

MANAGED_BY = {"app.kubernetes.io/managed-by": "canary.istio"}
# What the API server owns: never copied from one Deployment to another.
_SERVER_METADATA = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink",
                    "ownerReferences", "deletionTimestamp", "deletionGracePeriodSeconds")
_SERVER_ANNOTATIONS = ("deployment.kubernetes.io/revision", "kubectl.kubernetes.io/last-applied-configuration")
_LABEL_KEY_RE = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


class DeploymentSpecError(CanaryError, ValueError):
    """Bad input for a version's Deployment; ``option`` names the option to fix."""


def deployment_name(pattern: str, app: str, version: str) -> str:
    """The Deployment name of ``version`` by ``pattern`` (``{app}`` and ``{version}``)."""
    if "{version}" not in pattern:
        raise DeploymentSpecError(f"name_pattern {pattern!r} has no {{version}}: every version needs its own Deployment",
                                  "name_pattern")
    try:
        name = pattern.format(app=app, version=version)
    except (KeyError, IndexError, ValueError) as exc:
        raise DeploymentSpecError(f"name_pattern {pattern!r} can use only {{app}} and {{version}} ({exc})",
                                  "name_pattern") from None
    if not _NAME_RE.match(name) or len(name) > 253:
        raise DeploymentSpecError(f"name_pattern {pattern!r} gives {name!r}, which is not a Deployment name (lower-case "
                                  "letters, digits, '-' and '.')", "name_pattern")
    return name


def check_version_label(key: str) -> str:
    if not isinstance(key, str) or not _LABEL_KEY_RE.match(key):
        raise DeploymentSpecError(f"version_label {key!r} is not a label key such as version or app.kubernetes.io/version",
                                  "version_label")
    return key


def _labelled(labels: t.Mapping[str, str] | None, key: str, version: str) -> dict[str, str]:
    out = dict(labels or {})
    out[key] = version
    return out


def set_images(pod_spec: dict[str, t.Any], images: t.Mapping[str, str], option: str = "images") -> None:
    """Set the image of each container named in ``images`` (init containers too); an unknown name
    is an error naming the containers there are, never a silent no-op."""
    containers = {c.get("name"): c for c in (pod_spec.get("containers") or []) + (pod_spec.get("initContainers") or [])}
    for name, image in images.items():
        if not isinstance(image, str) or not image.strip():
            raise DeploymentSpecError(f"{option}: the image of container {name!r} is empty", option)
        if name not in containers:
            raise DeploymentSpecError(f"{option}: the Deployment has no container {name!r}; its containers are "
                                      f"{', '.join(sorted(str(n) for n in containers)) or 'none'}", option)
        containers[name]["image"] = image


def _version_metadata(metadata: dict[str, t.Any], name: str, namespace: str, key: str, version: str) -> dict[str, t.Any]:
    out = {k: v for k, v in metadata.items() if k not in _SERVER_METADATA}
    out["name"], out["namespace"] = name, namespace
    out["labels"] = dict(_labelled(metadata.get("labels"), key, version), **MANAGED_BY)
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items() if k not in _SERVER_ANNOTATIONS}
    if annotations:
        out["annotations"] = annotations
    else:
        out.pop("annotations", None)
    return out


def for_version(deployment: t.Mapping[str, t.Any], *, name: str, namespace: str, version: str, version_label: str,
                images: t.Mapping[str, str], pod_annotations: t.Mapping[str, str] | None = None,
                replicas: int | None = None) -> dict[str, t.Any]:
    """``deployment`` made into ``version``'s: its name, the version label on the Deployment, its
    selector and its pods, the named containers' images, ``pod_annotations`` over the pod
    template's; everything else as it was. Status and server-owned metadata are dropped."""
    out = copy.deepcopy(dict(deployment))
    out.pop("status", None)
    out["apiVersion"], out["kind"] = "apps/v1", "Deployment"
    out["metadata"] = _version_metadata(out.get("metadata") or {}, name, namespace, version_label, version)
    spec = out.setdefault("spec", {})
    selector = spec.setdefault("selector", {})
    if selector.get("matchExpressions"):
        raise DeploymentSpecError("the Deployment's selector uses matchExpressions; a version needs a matchLabels "
                                  f"selector with {version_label}", "from_version")
    selector["matchLabels"] = _labelled(selector.get("matchLabels"), version_label, version)
    template = spec.setdefault("template", {})
    meta = template.setdefault("metadata", {})
    meta["labels"] = _labelled(meta.get("labels"), version_label, version)
    missing = [k for k, v in selector["matchLabels"].items() if meta["labels"].get(k) != v]
    if missing:
        raise DeploymentSpecError(f"the pod template's labels do not match the selector on {', '.join(missing)}",
                                  "manifest")
    if pod_annotations:
        meta["annotations"] = dict(meta.get("annotations") or {}, **pod_annotations)
    set_images(template.setdefault("spec", {}), images)
    if replicas is not None:
        spec["replicas"] = replicas
    return out


def own_manifest(manifest: t.Any, *, app: str, **settings: t.Any) -> dict[str, t.Any]:
    """The user's Deployment manifest, checked, made into the version's (see ``for_version``)."""
    if not isinstance(manifest, dict):
        raise DeploymentSpecError(f"manifest must be a Deployment as a mapping, got {type(manifest).__name__}", "manifest")
    if manifest.get("kind", "Deployment") != "Deployment" or manifest.get("apiVersion", "apps/v1") != "apps/v1":
        raise DeploymentSpecError(f"manifest must be an apps/v1 Deployment, got {manifest.get('apiVersion')} "
                                  f"{manifest.get('kind')}", "manifest")
    containers = ((manifest.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers")
    if not containers:
        raise DeploymentSpecError("manifest has no spec.template.spec.containers", "manifest")
    labelled = copy.deepcopy(manifest)
    labels = ((labelled.setdefault("spec", {}).setdefault("template", {}).setdefault("metadata", {}))
              .setdefault("labels", {}))
    labels.setdefault("app", app)
    selector = labelled["spec"].setdefault("selector", {}).setdefault("matchLabels", {})
    selector.setdefault("app", app)
    return for_version(labelled, **settings)


def put_body(live: dict[str, t.Any], wanted: dict[str, t.Any]) -> dict[str, t.Any]:
    """The object to PUT over ``live`` for ``wanted``: live's metadata (its resourceVersion, and
    labels and annotations others set) with wanted's labels and annotations over them, and
    wanted's spec whole, so that a key the user removed from the manifest goes too."""
    out = copy.deepcopy(live)
    out.pop("status", None)
    metadata = out.setdefault("metadata", {})
    for key in ("labels", "annotations"):
        if key in wanted["metadata"]:
            metadata[key] = dict(metadata.get(key) or {}, **wanted["metadata"][key])
    out["spec"] = copy.deepcopy(wanted["spec"])
    return out


def same_deployment(a: t.Mapping[str, t.Any], b: t.Mapping[str, t.Any]) -> bool:
    """Whether two server answers for one Deployment say the same: spec, labels, annotations
    (not status, not the metadata the server keeps). Compared on the server's answers, defaults
    filled in, so that a manifest that leaves a default out is not a change."""
    def view(obj: t.Mapping[str, t.Any]) -> tuple:
        meta = obj.get("metadata") or {}
        return obj.get("spec"), meta.get("labels") or {}, meta.get("annotations") or {}
    return view(a) == view(b)


def not_ready_reasons(pods: t.Sequence[t.Mapping[str, t.Any]], events: t.Sequence[t.Mapping[str, t.Any]],
                      most: int = 6) -> list[str]:
    """Why the pods are not Ready, one line each: a condition that is not True (unschedulable), a
    container waiting (image pull, crash loop) or not ready, then the pods' latest warning events
    (failed probes, failed scheduling, pull errors) - newest last, at most ``most`` of them."""
    out: list[str] = []
    names = set()
    for pod in pods:
        name = (pod.get("metadata") or {}).get("name", "?")
        names.add(name)
        status = pod.get("status") or {}
        found = []
        for cond in status.get("conditions") or []:
            if cond.get("status") != "True" and cond.get("type") in ("PodScheduled", "Initialized"):
                found.append(f"{cond.get('type')}: {cond.get('reason') or ''} {cond.get('message') or ''}".strip())
        for state in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            waiting = (state.get("state") or {}).get("waiting")
            terminated = (state.get("state") or {}).get("terminated")
            if waiting:
                found.append(f"container {state.get('name')} waiting: {waiting.get('reason') or ''} "
                             f"{waiting.get('message') or ''}".strip())
            elif terminated and terminated.get("exitCode"):
                found.append(f"container {state.get('name')} exited {terminated.get('exitCode')}: "
                             f"{terminated.get('reason') or ''}".strip())
            elif not state.get("ready"):
                found.append(f"container {state.get('name')} not ready")
        out.append(f"pod {name} {status.get('phase') or 'Unknown'}" + (f" ({'; '.join(found)})" if found else ""))
    if not pods:
        out.append("no pods (the ReplicaSet could not create them: quota, admission, or a bad template)")
    warnings = [e for e in events if e.get("type") == "Warning" and (e.get("involvedObject") or {}).get("name") in names]
    warnings.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or (e.get("metadata") or {}).get("creationTimestamp") or ""))
    for event in warnings[-most:]:
        out.append(f"event {event.get('involvedObject', {}).get('name')}: {event.get('reason')} {event.get('message') or ''}".strip())
    return out


def is_ready(deployment: t.Mapping[str, t.Any]) -> tuple[bool, str | None]:
    """(ready, failure): every wanted replica updated and available for the current generation;
    ``failure`` when the Deployment itself says it will not get there (ProgressDeadlineExceeded)."""
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    wanted = spec.get("replicas", 1)
    generation = (deployment.get("metadata") or {}).get("generation")
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("status") == "False":
            return False, f"{cond.get('reason')}: {cond.get('message') or ''}".strip()
    current = generation is None or status.get("observedGeneration", 0) >= generation
    done = (status.get("updatedReplicas", 0) >= wanted and status.get("availableReplicas", 0) >= wanted
            and status.get("replicas", 0) <= wanted)
    return bool(current and done), None
