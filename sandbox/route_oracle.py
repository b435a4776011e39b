"""Ask Istio's own route computation (pilot, in-process) which HTTP routes a sidecar gets.

`istio_routes(cases)` runs sandbox/route_oracle_go's Go binary once for a whole batch: JSON cases on
stdin, one result per case on stdout (see sandbox/route_oracle_go/main.go for both shapes). Tests of our
pure-Python routing model compare their answers with these.

A case:  {"namespace": "prod", "objects": [Service, VirtualService, DestinationRule, ...],
          "host": "reviews.prod.svc.cluster.local", "port": 9080}
A result: {"routes": [{"name", "match", "catch_all", "action", "clusters": [{"cluster", "subset",
          "host", "weight"}], "mirrors": [{"cluster", "subset", "host", "percent"}], "fault"}],
          "default_route": <index of the first catch-all route or None>, "domains": [...],
          "error": None or why the host has no routes (invalid objects, no virtual host, ...)}
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from . import versions


class RouteOracleError(RuntimeError):
    """The oracle binary is missing, or it failed on the batch as a whole."""


def binary() -> Path:
    return versions.route_oracle_binary()


def available() -> bool:
    return binary().exists()


def istio_routes(cases: list[dict], timeout: float = 600) -> list[dict]:
    """Istio's routes for each case, in order (one oracle process for the whole batch)."""
    path = binary()
    if not path.exists():
        raise RouteOracleError(
            f"Istio route oracle not built ({path} missing): run `make sandbox-build`")
    if not cases:
        return []
    proc = subprocess.run([str(path)], input=json.dumps({"cases": cases}), capture_output=True,
                          text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RouteOracleError(f"istio-route-oracle exited with {proc.returncode}:\n{tail}")
    results = json.loads(proc.stdout)["results"]
    if len(results) != len(cases):  # never expected; a silent mismatch would pair wrong answers
        raise RouteOracleError(f"istio-route-oracle answered {len(results)} of {len(cases)} cases")
    return results
