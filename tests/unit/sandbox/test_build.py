"""Pure parts of the sandbox build: the staging list and failure messages."""
from __future__ import annotations

from sandbox import build

GOMOD = """module k8s.io/kubernetes

go 1.26.0

require (
\tk8s.io/api v0.0.0
\tgithub.com/foo/bar v1.2.3
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/apiextensions-apiserver => ./staging/src/k8s.io/apiextensions-apiserver
\tk8s.io/cri-streaming => ./staging/src/k8s.io/cri-streaming
\tgithub.com/other/thing => github.com/fork/thing v1.0.0
)
"""


def test_staging_modules_are_the_local_replaces_only():
    assert build.staging_modules(GOMOD) == [
        "k8s.io/api", "k8s.io/apiextensions-apiserver", "k8s.io/cri-streaming"]


def test_failure_message_names_the_failing_module():
    component = build.COMPONENTS[0]
    msg = build._failure_message(
        component, "go get",
        "go: downloading x\ngo: k8s.io/cri-client@v0.36.3: reading https://proxy/...: 404 Not Found\n")
    assert msg.startswith(f"building {component.name} failed at `go get` (module k8s.io/cri-client@v0.36.3)")
    assert "404 Not Found" in msg


def test_failure_message_names_the_failing_package_on_compile_errors():
    msg = build._failure_message(build.COMPONENTS[1], "go build",
                                 "# go.etcd.io/etcd/server/v3/etcdmain\nmain.go:1: undefined: x\n")
    assert "(package go.etcd.io/etcd/server/v3/etcdmain)" in msg


def test_binaries_are_named_as_the_sandbox_starts_them():
    names = {p.name for c in build.COMPONENTS for p in build.binary_paths(c)}
    assert names == {"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd", "kwok"}


def test_missing_go_is_a_one_line_reason(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(build, "Path", lambda p: tmp_path / "nowhere")
    try:
        build._require_go()
    except build.BuildError as exc:
        assert "Go is not installed" in str(exc) and "\n" not in str(exc)
    else:
        raise AssertionError("expected BuildError")
