"""A real Prometheus (Debian's `prometheus` package) scraping the simulator's `/metrics`.

The binary is `prometheus` on PATH when the package is installed; otherwise the package is fetched
with `apt-get download` and unpacked into the sandbox cache (no system change, no service started).
Config and data live in the given directory (the sandbox state); everything listens on loopback.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import requests
import yaml

from .. import procs, versions

CACHE_DIR = versions.CACHE_ROOT / "prometheus"
CACHED_BINARY = CACHE_DIR / "usr" / "bin" / "prometheus"


def find_binary(fetch: bool = True) -> Path:
    """The prometheus binary: installed, cached, or (with `fetch`) unpacked from the Debian package."""
    found = shutil.which("prometheus")
    if found:
        return Path(found)
    if CACHED_BINARY.is_file():
        return CACHED_BINARY
    if not fetch:
        raise procs.fail("prometheus not found: apt-get install prometheus (or let the sandbox fetch it)")
    with tempfile.TemporaryDirectory() as tmp:
        got = subprocess.run(["apt-get", "download", "prometheus"], cwd=tmp, capture_output=True, text=True, check=False)
        debs = list(Path(tmp).glob("prometheus_*.deb"))
        if got.returncode != 0 or not debs:
            raise procs.fail(f"prometheus not found and `apt-get download prometheus` failed: {got.stderr.strip()[-300:]}; "
                             "install it with apt-get install prometheus")
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(CACHE_DIR)], check=True)
    return CACHED_BINARY


def config(metrics_url: str, scrape_interval_s: float = 2.0) -> dict:
    target = urlparse(metrics_url)
    return {"global": {"scrape_interval": f"{scrape_interval_s}s", "evaluation_interval": f"{scrape_interval_s}s"},
            "scrape_configs": [{"job_name": "mesh-sim", "metrics_path": target.path or "/metrics",
                                "static_configs": [{"targets": [target.netloc]}]}]}


def start(state_dir: Path, metrics_url: str, port: int, scrape_interval_s: float = 2.0, timeout: float = 30) -> int:
    """Write the config, start Prometheus on 127.0.0.1:`port`, wait until ready; returns its PID."""
    binary = find_binary()
    state_dir.mkdir(parents=True, exist_ok=True)
    config_file = state_dir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config(metrics_url, scrape_interval_s), sort_keys=False))
    procs.ensure_port_free(port, "prometheus")
    log = state_dir / "prometheus.log"
    pid = procs.start("prometheus", [str(binary), f"--config.file={config_file}", f"--storage.tsdb.path={state_dir / 'data'}",
                                     f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1d"], log)
    url = f"http://127.0.0.1:{port}"
    procs.wait_until(f"prometheus ready on {url}", lambda: requests.get(url + "/-/ready", timeout=1).status_code == 200,
                     timeout, pid, "prometheus", log)
    return pid


def stop(pid: int) -> None:
    procs.stop(pid, str(find_binary(fetch=False)))
