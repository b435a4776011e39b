"""Pinned component versions and where their builds are cached.

Binaries live outside the checkout, keyed by version, so a fresh clone on the same machine (as CI
makes) reuses them and a second run builds nothing.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

K8S_VERSION = "1.36.3"
ETCD_VERSION = "3.6.16"
KWOK_VERSION = "0.8.0"

CACHE_ROOT = Path(os.environ.get("CANARY_ISTIO_CACHE", Path.home() / ".cache" / "canary-istio"))
BIN_DIR = CACHE_ROOT / f"k8s-v{K8S_VERSION}" / "bin"
# Scratch Go modules used to build; kept beside the binaries so a rebuild reuses go.sum.
SRC_DIR = CACHE_ROOT / "src"

REPO_ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = Path(os.environ.get("CANARY_ISTIO_SANDBOX_DIR", REPO_ROOT / ".sandbox"))


def binary(name: str) -> Path:
    return BIN_DIR / name


KWOK_STAGES = BIN_DIR / f"kwok-v{KWOK_VERSION}-stages.yaml"

# Istio's route computation (pilot), built into sandbox/route_oracle's small Go program.
# istio.io/istio has no Go-semver tags (its release tags are not valid module versions), so the Go
# module proxy only serves pseudo-versions of it: v0.0.0-<commit time UTC>-<commit hash>, here
# commit eed52ebb66ad of 2026-08-27.
ISTIO_ORACLE_MODULE_VERSION = "v0.0.0-20260827124520-eed52ebb66ad"
ISTIO_ORACLE_BIN_DIR = CACHE_ROOT / f"istio-{ISTIO_ORACLE_MODULE_VERSION}" / "bin"
ROUTE_ORACLE_SOURCE = REPO_ROOT / "sandbox" / "route_oracle_go" / "main.go"
# Istio's CRDs (from the istio.io/api module that istio.io/istio requires) and the bookinfo sample
# (from istio.io/istio's samples/bookinfo), taken from the Go module proxy at build time, of the same
# Istio as the oracle: `sandbox build` lays them out here as istio/ and bookinfo/{platform,networking}/.
FIXTURES_DIR = Path(os.environ.get("CANARY_ISTIO_FIXTURES", CACHE_ROOT / f"istio-{ISTIO_ORACLE_MODULE_VERSION}" / "fixtures"))
ISTIO_CRDS = FIXTURES_DIR / "istio" / "customresourcedefinitions.gen.yaml"
BOOKINFO_DIR = FIXTURES_DIR / "bookinfo"
# The Kubernetes Gateway API CRDs (standard channel) of the sigs.k8s.io/gateway-api module this
# Istio requires, laid out beside the fixtures by `sandbox build` with their own completion marker
# (a cache made before they were added stays valid for the rest).
GATEWAY_API_DIR = FIXTURES_DIR.with_name("gateway-api")
GATEWAY_API_CRDS = ("gatewayclasses", "gateways", "httproutes", "referencegrants", "grpcroutes")


def route_oracle_binary() -> Path:
    """The oracle built from this checkout's main.go: keyed by its content as well as by Istio's
    version, so editing main.go builds a new binary instead of silently reusing a stale one."""
    digest = hashlib.sha256(ROUTE_ORACLE_SOURCE.read_bytes()).hexdigest()[:12]
    return ISTIO_ORACLE_BIN_DIR / f"istio-route-oracle-{digest}"
