"""Pinned component versions and where their builds are cached.

Binaries live outside the checkout, keyed by version, so a fresh clone on the same machine (as CI
makes) reuses them and a second run builds nothing.
"""
from __future__ import annotations

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
FIXTURES_DIR = Path(os.environ.get("CANARY_ISTIO_FIXTURES", REPO_ROOT.parent / "shared" / "fixtures"))


def binary(name: str) -> Path:
    return BIN_DIR / name


KWOK_STAGES = BIN_DIR / f"kwok-v{KWOK_VERSION}-stages.yaml"
