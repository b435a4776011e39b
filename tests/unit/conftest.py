# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared fixtures for unit tests (the FQCN import path is set up in ``tests/conftest.py``)."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, settings

# The machines that run these are small and often busy: a slow example is the machine, not a bug.
# Tests' own @settings keep their example counts; health and deadline come from here.
settings.register_profile("busy-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("busy-machine")

REPO_ROOT = Path(__file__).resolve().parents[2]


def _sandbox_versions():
    # By file path: under `ansible-test units` the repository root is not on sys.path.
    spec = importlib.util.spec_from_file_location("canary_istio_sandbox_versions", REPO_ROOT / "sandbox" / "versions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Istio's bookinfo and CRDs, laid out by `python -m sandbox build` from the Go module proxy.
FIXTURES = _sandbox_versions().FIXTURES_DIR
MISSING_FIXTURES = (
    "ISTIO FIXTURES MISSING: %s does not exist, so the tests on real bookinfo/Istio manifests "
    "cannot run. Run `python -m sandbox build` (or `make sandbox-build`), which takes them from the Go module proxy."
    % FIXTURES
)


@pytest.fixture(scope="session")
def istio_fixtures() -> Path:
    """Bookinfo and Istio manifests (``bookinfo/``, ``istio/``) as ``sandbox build`` lays them out."""
    if not FIXTURES.is_dir():
        pytest.skip(MISSING_FIXTURES)
    return FIXTURES


def bookinfo_networking_objects(kind: str) -> list[tuple[str, dict]]:
    """(id, object) for every ``kind`` object in the bookinfo networking manifests (multi-document)."""
    found = []
    for path in sorted((FIXTURES / "bookinfo" / "networking").glob("*.yaml")):
        with path.open(encoding="utf-8") as stream:
            for doc in yaml.safe_load_all(stream):
                if isinstance(doc, dict) and doc.get("kind") == kind:
                    found.append(("%s:%s" % (path.stem, doc["metadata"]["name"]), doc))
    return found


_PARAMETRIZED_KINDS = {
    "bookinfo_virtual_service": "VirtualService",
    "bookinfo_destination_rule": "DestinationRule",
}


def pytest_generate_tests(metafunc):
    """Run a test once per bookinfo VirtualService / DestinationRule it asks for (a fresh copy each)."""
    for argname, kind in _PARAMETRIZED_KINDS.items():
        if argname not in metafunc.fixturenames:
            continue
        objects = bookinfo_networking_objects(kind) if FIXTURES.is_dir() else []
        if objects:
            metafunc.parametrize(argname, [copy.deepcopy(obj) for obj_id, obj in objects], ids=[obj_id for obj_id, obj in objects])
        else:
            metafunc.parametrize(argname, [pytest.param(None, marks=pytest.mark.skip(reason=MISSING_FIXTURES))])


COMPLEX_VIRTUAL_SERVICE = """
hosts: [reviews, reviews.prod.svc.cluster.local]
gateways: [mesh, prod/edge-gateway]
exportTo: ["."]
x-vendor-annotation: {owner: team-a, rank: 3}
tcp:
  - match: [{port: 9090}]
    route: [{destination: {host: reviews, port: {number: 9090}}}]
http:
  - name: jason-v2
    match:
      - headers: {end-user: {exact: jason}}
      - headers: {x-canary: {prefix: "yes"}}
        uri: {prefix: /reviews}
    route:
      - destination: {host: reviews, subset: v2}
    timeout: 3s
    retries: {attempts: 3, perTryTimeout: 1s, retryOn: "5xx,reset"}
  - name: api-mirror
    match:
      - uri: {regex: "^/api/v[0-9]+/"}
        method: {exact: GET}
    route:
      - destination: {host: reviews, subset: v1, port: {number: 9080}}
        headers:
          response: {set: {x-served-by: v1}}
    mirror: {host: reviews, subset: v3}
    mirrorPercentage: {value: 12.5}
    headers:
      request: {add: {x-trace-origin: mesh}, remove: [x-debug]}
  - name: chaos
    match:
      - headers: {x-chaos: {exact: abort}}
    fault:
      abort: {httpStatus: 503, percentage: {value: 50}}
    route:
      - destination: {host: reviews, subset: v1}
  - name: default
    route:
      - destination: {host: reviews, subset: v1, port: {number: 9080}}
        weight: 90
        headers:
          request: {set: {x-version: v1}}
      - destination: {host: reviews, subset: v2, port: {number: 9080}}
        weight: 10
    timeout: 10s
    retries: {attempts: 2, retryOn: gateway-error}
    corsPolicy: {allowOrigins: [{exact: "https://example.com"}], allowMethods: [GET]}
    x-unknown-route-field: {keep: me}
"""


@pytest.fixture
def complex_virtual_service() -> dict:
    """A hand-made VirtualService spec with several routes, matches, retries, mirrors, header
    rewrites, a fault, a TCP route and keys no module knows; a fresh copy per test."""
    return yaml.safe_load(COMPLEX_VIRTUAL_SERVICE)
