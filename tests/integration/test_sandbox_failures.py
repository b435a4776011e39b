"""Clear failures, no hangs: a taken port or a dying component is one line plus that component's log."""
from __future__ import annotations

import socket

import pytest

from sandbox import cluster, procs, versions

pytestmark = pytest.mark.skipif(not versions.binary("kube-apiserver").exists(),
                                reason="SANDBOX BINARIES NOT BUILT: run `python -m sandbox build`")


@pytest.fixture
def spare_cluster(tmp_path, monkeypatch):
    # Far from the running sandbox's ports, so these tests never touch it.
    monkeypatch.setenv("CANARY_ISTIO_SANDBOX_PORT_BASE", str(cluster.port_base() + 1500))
    c = cluster.Cluster.new(9, tmp_path)
    yield c
    cluster.stop(c)


def _nothing_left_running(c: cluster.Cluster) -> bool:
    return not any(procs.alive(pid) for pid in c.pids.values())


def test_taken_port_names_the_port_and_component_and_stops_what_started(spare_cluster):
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", spare_cluster.apiserver_port))
        squatter.listen()
        with pytest.raises(procs.SandboxError) as err:
            cluster.start(spare_cluster)
    first_line = str(err.value).splitlines()[0]
    assert f"port {spare_cluster.apiserver_port} for kube-apiserver of sandbox-9 is already in use" in first_line
    assert "etcd" in spare_cluster.pids  # etcd had started ...
    assert _nothing_left_running(spare_cluster)  # ... and was stopped again


def test_dying_component_gives_reason_and_log_tail(spare_cluster, monkeypatch):
    write_files = cluster._write_files

    def broken_token_file(c):
        write_files(c)
        (c.path / "tokens.csv").write_text('only-a-token\n')  # kube-apiserver refuses this and exits

    monkeypatch.setattr(cluster, "_write_files", broken_token_file)
    with pytest.raises(procs.SandboxError) as err:
        cluster.start(spare_cluster)
    lines = str(err.value).splitlines()
    assert lines[0] == "kube-apiserver of sandbox-9 exited while waiting for kube-apiserver /readyz"
    assert "last lines of" in lines[1] and "kube-apiserver.log" in lines[1]
    assert any("token" in ln.lower() for ln in lines[2:])  # the apiserver's own complaint
    assert _nothing_left_running(spare_cluster)
