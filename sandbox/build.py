"""Build the sandbox's control-plane binaries from the Go module proxy, at pinned versions.

Each component is built in a scratch Go module under the cache folder (never in the checkout), and
only when one of its binaries is missing. `go build -v` lists packages as it compiles them, which we
turn into a progress line so a multi-minute cold build never looks hung.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

from . import versions


class BuildError(RuntimeError):
    """A component could not be built; the message names the component and the failing module."""


@dataclass(frozen=True)
class Component:
    name: str
    module: str  # module path whose version pins the build
    version: str  # module version, with the leading "v"
    packages: tuple[str, ...]  # main packages to build; binary name = last path element
    staging_replaces: bool = False  # k8s.io/kubernetes needs one replace per staging module
    ldflags: str = "-s -w"
    extra_files: tuple[str, ...] = field(default_factory=tuple)

    @property
    def binaries(self) -> list[Path]:
        return [versions.binary(p.rsplit("/", 1)[-1]) for p in self.packages]


def _k8s_ldflags() -> str:
    minor = versions.K8S_VERSION.split(".")[1]
    flags = ["-s", "-w"]
    # Stamp the version so /version and clients that parse it see v1.36.3, not v0.0.0-master.
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion=v{versions.K8S_VERSION}",
            f"-X {pkg}.gitMajor=1",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    return " ".join(flags)


COMPONENTS = (
    Component(
        name=f"kubernetes-v{versions.K8S_VERSION}",
        module="k8s.io/kubernetes",
        version=f"v{versions.K8S_VERSION}",
        packages=(
            "k8s.io/kubernetes/cmd/kube-apiserver",
            "k8s.io/kubernetes/cmd/kube-controller-manager",
            "k8s.io/kubernetes/cmd/kube-scheduler",
        ),
        staging_replaces=True,
        ldflags=_k8s_ldflags(),
    ),
    Component(
        name=f"etcd-v{versions.ETCD_VERSION}",
        module="go.etcd.io/etcd/server/v3",
        version=f"v{versions.ETCD_VERSION}",
        packages=("go.etcd.io/etcd/server/v3",),
    ),
    Component(
        name=f"kwok-v{versions.KWOK_VERSION}",
        module="sigs.k8s.io/kwok",
        version=f"v{versions.KWOK_VERSION}",
        packages=("sigs.k8s.io/kwok/cmd/kwok",),
    ),
)

# etcd's main package is its module root `go.etcd.io/etcd/server/v3`, which `go build` names "server".
_BINARY_RENAMES = {"server": "etcd"}

# kwok refuses to start without Stage definitions; these ship inside its module, so we copy them
# from the module cache instead of downloading release assets.
KWOK_STAGE_FILES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
)


def _go_binary_name(package: str) -> str:
    """The file name `go build -o dir/` gives a main package: its last element, skipping a /vN suffix."""
    parts = package.split("/")
    if re.fullmatch(r"v\d+", parts[-1]):
        parts.pop()
    return parts[-1]


def binary_paths(component: Component) -> list[Path]:
    return [versions.binary(_BINARY_RENAMES.get(name, name))
            for name in map(_go_binary_name, component.packages)]


def _is_cached(component: Component) -> bool:
    paths = binary_paths(component)
    if component.module == "sigs.k8s.io/kwok":
        paths.append(versions.KWOK_STAGES)
    return all(p.exists() for p in paths)


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(GOWORK="off", GOTOOLCHAIN="local", GOFLAGS="-mod=mod", CGO_ENABLED="0")
    return env


def _require_go() -> str:
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if not go:
        raise BuildError("Go is not installed (no `go` on PATH): install Go >= 1.26 to build the sandbox")
    return go


def _run(go: str, args: list[str], cwd: Path, component: Component, step: str) -> str:
    proc = subprocess.run([go, *args], cwd=cwd, env=_go_env(), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BuildError(_failure_message(component, step, proc.stderr))
    return proc.stdout


_MODULE_IN_ERROR = re.compile(r"((?:[a-z0-9.-]+\.[a-z]+)/[\w./-]+)@(v[\w.+-]+)")


def _failure_message(component: Component, step: str, output: str) -> str:
    lines = [ln for ln in output.strip().splitlines() if ln.strip()]
    failing = _MODULE_IN_ERROR.search(output)
    pkg = next((ln[2:] for ln in lines if ln.startswith("# ")), None)
    culprit = (f"module {failing.group(1)}@{failing.group(2)}" if failing
               else f"package {pkg}" if pkg else f"module {component.module}@{component.version}")
    tail = "\n".join("    " + ln for ln in lines[-15:])
    return f"building {component.name} failed at `{step}` ({culprit})\n{tail}"


def _served_gomod(go: str, component: Component) -> Path:
    """kubernetes' own go.mod as the module proxy serves it: the source of the staging list."""
    proc = subprocess.run([go, "mod", "download", "-json", f"{component.module}@{component.version}"],
                          cwd=tempfile.gettempdir(), env={**_go_env(), "GOFLAGS": ""},
                          capture_output=True, text=True, check=False)
    info = json.loads(proc.stdout or "{}") if proc.stdout.strip().startswith("{") else {}
    if proc.returncode != 0 or info.get("Error") or not info.get("GoMod"):
        raise BuildError(_failure_message(component, "go mod download",
                                          info.get("Error") or proc.stderr))
    return Path(info["GoMod"])


def staging_modules(gomod_text: str) -> list[str]:
    """Staging modules are those kubernetes' go.mod redirects into ./staging/src."""
    return re.findall(r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/src/", gomod_text, re.M)


def _prepare_module(go: str, component: Component) -> Path:
    workdir = versions.SRC_DIR / component.name
    workdir.mkdir(parents=True, exist_ok=True)
    gomod = workdir / "go.mod"
    if not gomod.exists():
        gomod.write_text(f"module local.build/{component.name}\n\ngo 1.26.0\n")
    if component.staging_replaces:
        staging_version = "v0." + component.version.split(".", 1)[1]
        served = _served_gomod(go, component).read_text()
        for mod in staging_modules(served):
            _run(go, ["mod", "edit", f"-replace={mod}={mod}@{staging_version}"], workdir, component,
                 "go mod edit")
    _say(component, "resolving modules from the Go module proxy")
    _run(go, ["get", "-tool", *(f"{p}@{component.version}" for p in component.packages)],
         workdir, component, "go get")
    return workdir


def _say(component: Component, text: str) -> None:
    print(f"[sandbox build] {component.name}: {text}", flush=True)


def _go_build(go: str, component: Component, workdir: Path, tags: str, output: str, packages: t.Sequence[str]) -> int:
    """`go build -v` with a progress line every 20 s (`-v` lists packages as they compile);
    returns the number of packages compiled, raises BuildError with the output's tail."""
    cmd = [go, "build", "-v", "-trimpath", f"-tags={tags}", f"-ldflags={component.ldflags}", "-o", output, *packages]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=workdir, env=_go_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    stop = threading.Event()

    def report() -> None:
        while not stop.wait(20):
            _say(component, f"compiling… {len(lines)} packages, {time.monotonic() - started:.0f}s")

    threading.Thread(target=report, daemon=True).start()
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip())
    rc = proc.wait()
    stop.set()
    if rc != 0:
        raise BuildError(_failure_message(component, "go build", "\n".join(lines)))
    return len(lines)


def _compile(go: str, component: Component, workdir: Path) -> None:
    out_dir = Path(tempfile.mkdtemp(prefix="build-", dir=versions.SRC_DIR))
    started = time.monotonic()
    try:
        count = _go_build(go, component, workdir, "selinux,notest,grpcnotrace", str(out_dir) + "/", component.packages)
        versions.BIN_DIR.mkdir(parents=True, exist_ok=True)
        for built in out_dir.iterdir():
            target = versions.binary(_BINARY_RENAMES.get(built.name, built.name))
            os.replace(built, target)  # atomic: a half-written binary never looks cached
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    _say(component, f"built {count} packages in {time.monotonic() - started:.0f}s")


def _copy_kwok_stages(go: str, component: Component) -> None:
    proc = subprocess.run([go, "mod", "download", "-json", f"{component.module}@{component.version}"],
                          cwd=tempfile.gettempdir(), env={**_go_env(), "GOFLAGS": ""},
                          capture_output=True, text=True, check=False)
    info = json.loads(proc.stdout or "{}")
    if proc.returncode != 0 or not info.get("Dir"):
        raise BuildError(_failure_message(component, "go mod download", info.get("Error") or proc.stderr))
    stage_root = Path(info["Dir"]) / "kustomize" / "stage"
    docs = []
    for rel in KWOK_STAGE_FILES:
        path = stage_root / rel
        if not path.exists():
            raise BuildError(f"building {component.name} failed: stage file {rel} missing from the module")
        docs.append("---\n" + path.read_text())
    tmp = versions.KWOK_STAGES.with_suffix(".tmp")
    tmp.write_text("".join(docs))
    os.replace(tmp, versions.KWOK_STAGES)


def build_component(component: Component) -> None:
    if _is_cached(component):
        _say(component, f"cached in {versions.BIN_DIR}")
        return
    go = _require_go()
    started = time.monotonic()
    if not all(p.exists() for p in binary_paths(component)):
        workdir = _prepare_module(go, component)
        _compile(go, component, workdir)
    if component.module == "sigs.k8s.io/kwok":
        _copy_kwok_stages(go, component)
    _say(component, f"ready ({time.monotonic() - started:.0f}s)")


# The Istio route oracle: not a sandbox server but a test tool, a small main package of ours
# (sandbox/route_oracle_go/main.go) linked against istio.io/istio's pilot, so it is built in its own
# scratch module (copied main.go + `go get istio.io/istio@<pseudo-version>` + `go mod tidy`).
ROUTE_ORACLE = Component(
    name="istio-route-oracle",
    module="istio.io/istio",
    version=versions.ISTIO_ORACLE_MODULE_VERSION,
    packages=(".",),
)


def build_route_oracle() -> Path:
    """Build the route oracle unless this main.go's binary is cached; returns the binary's path."""
    component = ROUTE_ORACLE
    target = versions.route_oracle_binary()
    if target.exists():
        _say(component, f"cached in {target.parent}")
        return target
    go = _require_go()
    started = time.monotonic()
    workdir = versions.SRC_DIR / f"istio-route-oracle-{component.version}"
    workdir.mkdir(parents=True, exist_ok=True)
    gomod = workdir / "go.mod"
    if not gomod.exists():
        gomod.write_text("module local.build/istio-route-oracle\n\ngo 1.26.0\n")
    shutil.copyfile(versions.ROUTE_ORACLE_SOURCE, workdir / "main.go")
    _say(component, f"resolving istio.io/istio@{component.version} from the Go module proxy")
    _run(go, ["get", f"{component.module}@{component.version}"], workdir, component, "go get")
    # main.go also imports envoy's protos, protobuf and k8s.io/api directly: tidy pins them at the
    # versions istio.io/istio requires.
    _run(go, ["mod", "tidy"], workdir, component, "go mod tidy")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".tmp")
    try:
        count = _go_build(go, component, workdir, "grpcnotrace", str(partial), ["."])
        os.replace(partial, target)  # atomic: a half-written binary never looks cached
    finally:
        partial.unlink(missing_ok=True)
    # Binaries of earlier main.go versions are ~110 MB each and nothing uses them any more.
    for old in target.parent.glob("istio-route-oracle-*"):
        if old != target:
            old.unlink(missing_ok=True)
    _say(component, f"built {count} packages, ready ({time.monotonic() - started:.0f}s, "
                    f"{target.stat().st_size / 1e6:.0f} MB)")
    return target


ISTIO_FIXTURES = Component(name="istio-fixtures", module="istio.io/istio", version=versions.ISTIO_ORACLE_MODULE_VERSION,
                           packages=())
# What the sandbox, the demo and the tests read, as (module file, fixtures file) per module.
_BOOKINFO_FILES = (("samples/bookinfo/platform/kube", "bookinfo/platform"), ("samples/bookinfo/networking", "bookinfo/networking"))
_FIXTURES_DONE = ".complete"


def _module_dir(go: str, component: Component, module: str, version: str) -> dict:
    proc = subprocess.run([go, "mod", "download", "-json", f"{module}@{version}"], cwd=tempfile.gettempdir(),
                          env={**_go_env(), "GOFLAGS": ""}, capture_output=True, text=True, check=False)
    info = json.loads(proc.stdout or "{}") if proc.stdout.strip().startswith("{") else {}
    if proc.returncode != 0 or info.get("Error") or not info.get("Dir"):
        raise BuildError(_failure_message(component, f"go mod download {module}@{version}", info.get("Error") or proc.stderr))
    return info


def _lay_out(target: Path, marker: str, fill: t.Callable[[Path], None]) -> None:
    """``fill`` a fresh directory beside ``target``, mark it complete, then put it in place at
    once: half a set of files never looks cached."""
    partial = target.with_name(target.name + ".tmp")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        fill(partial)
        (partial / _FIXTURES_DONE).write_text(marker)
        # Files from the module cache are read-only; the copies need not be.
        for path in [partial, *partial.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(partial, target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def fetch_istio_fixtures() -> Path:
    """Istio's CRDs and the bookinfo sample from the Go module proxy, unless already laid out."""
    component = ISTIO_FIXTURES
    target = versions.FIXTURES_DIR
    if (target / _FIXTURES_DONE).exists():
        _say(component, f"cached in {target}")
        return target
    go = _require_go()
    started = time.monotonic()
    istio = _module_dir(go, component, component.module, component.version)
    # The CRDs belong to istio.io/api, at the version this istio.io/istio requires.
    required = re.search(r"^\s*istio\.io/api\s+(\S+)", Path(istio["GoMod"]).read_text(), re.M)
    if not required:
        raise BuildError(f"building {component.name} failed: istio.io/istio@{component.version}'s go.mod requires no istio.io/api")
    api = _module_dir(go, component, "istio.io/api", required.group(1))

    def fill(partial: Path) -> None:
        (partial / "istio").mkdir(parents=True)
        shutil.copyfile(Path(api["Dir"]) / "kubernetes" / "customresourcedefinitions.gen.yaml",
                        partial / "istio" / "customresourcedefinitions.gen.yaml")
        shutil.copyfile(Path(api["Dir"]) / "LICENSE", partial / "istio" / "LICENSE")
        for source, dest in _BOOKINFO_FILES:
            (partial / dest).mkdir(parents=True)
            for path in sorted((Path(istio["Dir"]) / source).glob("*.yaml")):
                shutil.copyfile(path, partial / dest / path.name)
        shutil.copyfile(Path(istio["Dir"]) / "LICENSE", partial / "bookinfo" / "LICENSE")

    _lay_out(target, f"istio.io/istio@{component.version}\nistio.io/api@{required.group(1)}\n", fill)
    _say(component, f"ready ({time.monotonic() - started:.0f}s): Istio CRDs of istio.io/api@{required.group(1)} and "
                    f"bookinfo in {target}")
    return target


GATEWAY_API = Component(name="gateway-api-crds", module="sigs.k8s.io/gateway-api", version="", packages=())


def fetch_gateway_api_crds() -> Path:
    """The Gateway API's standard CRDs, at the version the pinned Istio requires, unless laid out."""
    component = GATEWAY_API
    target = versions.GATEWAY_API_DIR
    if (target / _FIXTURES_DONE).exists():
        _say(component, f"cached in {target}")
        return target
    go = _require_go()
    started = time.monotonic()
    istio = _module_dir(go, component, ISTIO_FIXTURES.module, ISTIO_FIXTURES.version)
    required = re.search(r"^\s*sigs\.k8s\.io/gateway-api\s+(\S+)", Path(istio["GoMod"]).read_text(), re.M)
    if not required:
        raise BuildError(f"building {component.name} failed: istio.io/istio@{ISTIO_FIXTURES.version}'s go.mod requires "
                         "no sigs.k8s.io/gateway-api")
    module = _module_dir(go, component, component.module, required.group(1))

    def fill(partial: Path) -> None:
        partial.mkdir(parents=True)
        for kind in versions.GATEWAY_API_CRDS:
            name = f"gateway.networking.k8s.io_{kind}.yaml"
            shutil.copyfile(Path(module["Dir"]) / "config" / "crd" / "standard" / name, partial / name)
        shutil.copyfile(Path(module["Dir"]) / "LICENSE", partial / "LICENSE")

    _lay_out(target, f"{component.module}@{required.group(1)}\n", fill)
    _say(component, f"ready ({time.monotonic() - started:.0f}s): {component.module}@{required.group(1)} standard CRDs in {target}")
    return target


def build_all() -> None:
    steps = len(COMPONENTS) + 3
    for i, component in enumerate(COMPONENTS, 1):
        print(f"[sandbox build] step {i}/{steps}: {component.name}", flush=True)
        build_component(component)
    print(f"[sandbox build] step {steps - 2}/{steps}: {ISTIO_FIXTURES.name}", flush=True)
    fetch_istio_fixtures()
    print(f"[sandbox build] step {steps - 1}/{steps}: {GATEWAY_API.name}", flush=True)
    fetch_gateway_api_crds()
    print(f"[sandbox build] step {steps}/{steps}: {ROUTE_ORACLE.name}", flush=True)
    build_route_oracle()


def main() -> int:
    try:
        build_all()
    except BuildError as exc:
        print(f"sandbox build: {exc}", file=sys.stderr)
        return 1
    return 0
