"""One sandbox cluster: etcd, kube-apiserver, controller-manager, scheduler and kwok on loopback.

Each cluster gets its own ports, etcd data, tokens and audit log under `.sandbox/cluster-N/`.
"""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from . import procs, versions
from .api import AdminApi, ApiError

# Identities in the static token file. Controllers get their own users so the audit policy can
# leave their background traffic out and tests count only what a client did.
ADMIN_USER = "sandbox-admin"
RELEASE_USER = "canary-release"
RELEASE_ROLE_FILE = versions.REPO_ROOT / "playbooks" / "files" / "release-rbac.yaml"
RELEASE_ROLE = "canary-istio-release"
CONTROLLER_USERS = {
    "kube-controller-manager": "system:kube-controller-manager",
    "kube-scheduler": "system:kube-scheduler",
    "kwok": "sandbox:kwok",
}
# Namespaces where the release token is bound at start-up (the demo's namespace).
DEFAULT_RELEASE_NAMESPACES = ("prod",)

START_TIMEOUT = 90  # seconds for any one component to become ready


def port_base() -> int:
    return int(os.environ.get("CANARY_ISTIO_SANDBOX_PORT_BASE", "24000"))


@dataclass
class Cluster:
    index: int
    dir: str
    etcd_port: int
    etcd_peer_port: int
    apiserver_port: int
    admin_token: str = ""
    release_token: str = ""
    pids: dict[str, int] = field(default_factory=dict)

    @classmethod
    def new(cls, index: int, state_dir: Path) -> "Cluster":
        base = port_base() + 10 * index
        return cls(index=index, dir=str(state_dir / f"cluster-{index}"), etcd_port=base,
                   etcd_peer_port=base + 1, apiserver_port=base + 3)

    @property
    def name(self) -> str:
        return f"sandbox-{self.index}"

    @property
    def path(self) -> Path:
        return Path(self.dir)

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def ca_file(self) -> Path:
        return self.path / "pki" / "apiserver.crt"

    @property
    def audit_log(self) -> Path:
        return self.path / "audit.log"

    def log(self, component: str) -> Path:
        return self.path / "logs" / f"{component}.log"

    def admin(self) -> AdminApi:
        return AdminApi(self.server, self.admin_token, str(self.ca_file))

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- files


def _write_files(c: Cluster) -> None:
    for sub in ("pki", "logs", "etcd"):
        (c.path / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(c.path, 0o700)  # tokens and keys inside
    subprocess.run(["openssl", "genrsa", "-out", str(c.path / "sa.key"), "2048"], check=True,
                   capture_output=True)
    subprocess.run(["openssl", "rsa", "-in", str(c.path / "sa.key"), "-pubout", "-out",
                    str(c.path / "sa.pub")], check=True, capture_output=True)
    c.admin_token = secrets.token_hex(24)
    c.release_token = secrets.token_hex(24)
    rows = [f'{c.admin_token},{ADMIN_USER},uid-admin,"system:masters"',
            f'{c.release_token},{RELEASE_USER},uid-release,"canary:release"']
    for component, user in CONTROLLER_USERS.items():
        token = secrets.token_hex(24)
        rows.append(f'{token},{user},uid-{component},"system:masters"')
        _write_component_kubeconfig(c, component, user, token)
    (c.path / "tokens.csv").write_text("\n".join(rows) + "\n")
    (c.path / "audit-policy.yaml").write_text(yaml.safe_dump(_audit_policy(), sort_keys=False))
    (c.path / "scheduler.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": {"kubeconfig": str(c.path / "kube-scheduler.kubeconfig")},
        "leaderElection": {"leaderElect": False},
    }))


def _audit_policy() -> dict:
    return {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],  # one line per request: ResponseComplete (or Panic)
        "rules": [
            {"level": "None", "users": sorted(CONTROLLER_USERS.values()) + ["system:apiserver"]},
            {"level": "None", "nonResourceURLs": ["/readyz*", "/livez*", "/healthz*", "/version"]},
            {"level": "Metadata"},
        ],
    }


def kubeconfig_doc(entries: list[tuple[str, str, str, str]], current: str) -> dict:
    """entries: (context name, server, ca file, token)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": e[0], "cluster": {"server": e[1], "certificate-authority": e[2]}} for e in entries],
        "users": [{"name": e[0], "user": {"token": e[3]}} for e in entries],
        "contexts": [{"name": e[0], "context": {"cluster": e[0], "user": e[0]}} for e in entries],
        "current-context": current,
    }


def _write_component_kubeconfig(c: Cluster, component: str, user: str, token: str) -> None:
    doc = kubeconfig_doc([(user, c.server, str(c.ca_file), token)], user)
    path = c.path / f"{component}.kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    os.chmod(path, 0o600)


# --------------------------------------------------------------------------- processes


def _start_etcd(c: Cluster) -> None:
    procs.ensure_port_free(c.etcd_port, f"etcd of {c.name}")
    procs.ensure_port_free(c.etcd_peer_port, f"etcd peer of {c.name}")
    client, peer = f"http://127.0.0.1:{c.etcd_port}", f"http://127.0.0.1:{c.etcd_peer_port}"
    c.pids["etcd"] = procs.start("etcd", [
        str(versions.binary("etcd")), f"--name={c.name}", f"--data-dir={c.path / 'etcd'}",
        f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster={c.name}={peer}", "--unsafe-no-fsync=true",
        "--quota-backend-bytes=1073741824", "--auto-compaction-retention=1", "--log-level=warn",
    ], c.log("etcd"))

    import requests  # the sandbox's only HTTP dependency

    procs.wait_until("etcd /health", lambda: requests.get(client + "/health", timeout=2).ok,
                     START_TIMEOUT, c.pids["etcd"], f"etcd of {c.name}", c.log("etcd"))


def _start_apiserver(c: Cluster) -> None:
    procs.ensure_port_free(c.apiserver_port, f"kube-apiserver of {c.name}")
    c.pids["kube-apiserver"] = procs.start("kube-apiserver", [
        str(versions.binary("kube-apiserver")),
        f"--etcd-servers=http://127.0.0.1:{c.etcd_port}",
        "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
        f"--secure-port={c.apiserver_port}", f"--cert-dir={c.path / 'pki'}",
        f"--token-auth-file={c.path / 'tokens.csv'}", "--authorization-mode=Node,RBAC",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={c.path / 'sa.pub'}",
        f"--service-account-signing-key-file={c.path / 'sa.key'}",
        "--service-cluster-ip-range=10.96.0.0/16", "--endpoint-reconciler-type=none",
        "--allow-privileged=true", "--profiling=false",
        f"--audit-policy-file={c.path / 'audit-policy.yaml'}", f"--audit-log-path={c.audit_log}",
        "--audit-log-format=json", "--audit-log-mode=blocking", "--audit-log-maxsize=0",
        "--v=1",
    ], c.log("kube-apiserver"))
    api = c.admin()

    def ready() -> bool:
        return api.session.get(c.server + "/readyz", timeout=2).status_code == 200

    procs.wait_until("kube-apiserver /readyz", ready, START_TIMEOUT, c.pids["kube-apiserver"],
                     f"kube-apiserver of {c.name}", c.log("kube-apiserver"))


def _start_controllers(c: Cluster) -> None:
    c.pids["kube-controller-manager"] = procs.start("kube-controller-manager", [
        str(versions.binary("kube-controller-manager")),
        f"--kubeconfig={c.path / 'kube-controller-manager.kubeconfig'}",
        "--secure-port=0", "--leader-elect=false",
        f"--service-account-private-key-file={c.path / 'sa.key'}", f"--root-ca-file={c.ca_file}",
        # kwok readies a pod once (Pending to Running) and never again. When the control plane is
        # down longer than the grace period (an API server or etcd restart on a loaded machine), the
        # node's lease goes stale and the node-lifecycle controller marks every pod NotReady: a
        # kubelet would restore them within seconds, kwok leaves them so for good. Outages shorter
        # than this leave the fake node and its pods alone.
        "--node-monitor-grace-period=5m",
        "--v=1",
    ], c.log("kube-controller-manager"))
    c.pids["kube-scheduler"] = procs.start("kube-scheduler", [
        str(versions.binary("kube-scheduler")), f"--config={c.path / 'scheduler.yaml'}",
        "--secure-port=0", "--v=1",
    ], c.log("kube-scheduler"))
    c.pids["kwok"] = procs.start("kwok", [
        str(versions.binary("kwok")), f"--kubeconfig={c.path / 'kwok.kubeconfig'}",
        f"--config={versions.KWOK_STAGES}", "--manage-all-nodes=true",
        "--cidr=10.244.0.0/16", "--node-ip=10.240.0.10",
        # Without a lease kwok's heartbeat stage renews nothing the node-lifecycle controller
        # watches: the node would flap NotReady every grace period, taking its pods' Ready with it.
        "--node-lease-duration-seconds=40",
    ], c.log("kwok"))


# --------------------------------------------------------------------------- bootstrap objects

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
NODE_NAME = "kwok-node-0"


def _crd_files() -> list[Path]:
    """Istio's CRDs and the Gateway API's standard ones, as `sandbox build` laid them out."""
    files = [versions.ISTIO_CRDS] + [versions.GATEWAY_API_DIR / f"gateway.networking.k8s.io_{kind}.yaml"
                                     for kind in versions.GATEWAY_API_CRDS]
    missing = [str(path) for path in files if not path.exists()]
    if missing:
        raise procs.fail(f"CRDs not found at {', '.join(missing)}: run `python -m sandbox build` (it takes them from the Go "
                         "module proxy)")
    return files


def _install_istio_crds(c: Cluster) -> list[str]:
    api = c.admin()
    names = []
    for crd_file in _crd_files():
        for doc in yaml.safe_load_all(crd_file.read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                api.create(CRD_PATH, doc, exist_ok=True)
                names.append(doc["metadata"]["name"])

    def established(name: str) -> bool:
        conds = api.get(f"{CRD_PATH}/{name}").get("status", {}).get("conditions", [])
        return any(x["type"] == "Established" and x["status"] == "True" for x in conds)

    for name in names:
        procs.wait_until(f"CRD {name} Established", lambda n=name: established(n), START_TIMEOUT,
                         c.pids["kube-apiserver"], f"kube-apiserver of {c.name}", c.log("kube-apiserver"))
    return names


def bind_release_role(api: AdminApi, namespace: str) -> None:
    """The release identity's scope is one namespace: a RoleBinding to the documented ClusterRole."""
    api.create(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "canary-istio-release", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": RELEASE_ROLE},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": RELEASE_USER}],
    }, exist_ok=True)


def create_namespace(api: AdminApi, namespace: str, release_binding: bool = True) -> None:
    api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                      "metadata": {"name": namespace}}, exist_ok=True)
    if release_binding:
        bind_release_role(api, namespace)


def _install_rbac(c: Cluster) -> None:
    api = c.admin()
    role = yaml.safe_load(RELEASE_ROLE_FILE.read_text())
    api.create("/apis/rbac.authorization.k8s.io/v1/clusterroles", role, exist_ok=True)
    for ns in DEFAULT_RELEASE_NAMESPACES:
        create_namespace(api, ns)


def _register_node(c: Cluster) -> None:
    api = c.admin()
    api.create("/api/v1/nodes", {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": NODE_NAME,
                     "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
                     "labels": {"kubernetes.io/hostname": NODE_NAME, "kubernetes.io/os": "linux",
                                "kubernetes.io/arch": "amd64", "type": "kwok"}},
        "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "250"},
                   "capacity": {"cpu": "32", "memory": "256Gi", "pods": "250"}},
    }, exist_ok=True)

    def schedulable() -> bool:
        node = api.get(f"/api/v1/nodes/{NODE_NAME}")
        ready = any(x["type"] == "Ready" and x["status"] == "True"
                    for x in node.get("status", {}).get("conditions", []))
        # Until the node-lifecycle controller sees it Ready, the not-ready taint blocks scheduling.
        tainted = any(t["key"].startswith("node.kubernetes.io/not-ready")
                      for t in node.get("spec", {}).get("taints", []) or [])
        return ready and not tainted

    procs.wait_until(f"node {NODE_NAME} Ready and untainted", schedulable, START_TIMEOUT,
                     c.pids["kwok"], f"kwok of {c.name}", c.log("kwok"))


def _default_service_account(c: Cluster) -> None:
    # The ServiceAccount admission plugin rejects pods until the controller made `default`.
    api = c.admin()
    for ns in DEFAULT_RELEASE_NAMESPACES:
        procs.wait_until(f"ServiceAccount default in {ns}",
                         lambda n=ns: api.get(f"/api/v1/namespaces/{n}/serviceaccounts/default"),
                         START_TIMEOUT, c.pids["kube-controller-manager"],
                         f"kube-controller-manager of {c.name}", c.log("kube-controller-manager"))


# --------------------------------------------------------------------------- lifecycle


def start(c: Cluster, on_step=lambda text: None) -> None:
    """Bring one cluster up from nothing. On failure, stop what was started and re-raise."""
    t0 = time.monotonic()
    try:
        _write_files(c)
        _start_etcd(c)
        on_step("etcd")
        _start_apiserver(c)
        on_step("kube-apiserver")
        _install_istio_crds(c)
        _install_rbac(c)
        on_step("Istio CRDs and RBAC")
        _start_controllers(c)
        _register_node(c)
        _default_service_account(c)
        on_step(f"controllers and kwok node (up in {time.monotonic() - t0:.1f}s)")
    except Exception:
        stop(c)
        raise


def stop(c: Cluster) -> None:
    order = ["kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"]
    for name in order:
        pid = c.pids.get(name)
        if pid:
            procs.stop(pid, str(versions.binary(name)))


# What a fault test may stop and start again in a running cluster. The other components (and
# clients) reconnect on their own, as they would to a restarted control plane.
_RESTARTABLE = {"etcd": _start_etcd, "kube-apiserver": _start_apiserver}


def stop_component(c: Cluster, name: str, kill: bool = False) -> None:
    """Stop one component of `c`; `kill` sends SIGKILL, a crash with no graceful shutdown."""
    if name not in _RESTARTABLE:
        raise ValueError(f"{name} cannot be restarted; choose one of {sorted(_RESTARTABLE)}")
    procs.stop(c.pids[name], str(versions.binary(name)), sig=signal.SIGKILL if kill else signal.SIGTERM)
    # A killed Go process looks gone (its main thread a zombie) while its other threads still
    # close its sockets: wait for the ports, so that start_component can bind them again.
    ports = [c.apiserver_port] if name == "kube-apiserver" else [c.etcd_port, c.etcd_peer_port]
    for port in ports:
        procs.wait_until(f"port {port} free", lambda p=port: _port_free(p), START_TIMEOUT, os.getpid(),
                         f"{name} of {c.name}", c.log(name))


def _port_free(port: int) -> bool:
    try:
        procs.ensure_port_free(port, "")
    except procs.SandboxError:
        return False
    return True


def start_component(c: Cluster, name: str) -> None:
    """Start a stopped component of `c` again (new PID in `c.pids`) and wait until the API server is ready."""
    _RESTARTABLE[name](c)
    api = c.admin()
    # After etcd, the running API server must reconnect before it serves again.
    procs.wait_until("kube-apiserver /readyz", lambda: api.session.get(c.server + "/readyz", timeout=2).status_code == 200,
                     START_TIMEOUT, c.pids["kube-apiserver"], f"kube-apiserver of {c.name}", c.log("kube-apiserver"))


def component_status(c: Cluster) -> dict[str, bool]:
    return {name: procs.alive(pid, str(versions.binary(name))) for name, pid in c.pids.items()}


def is_healthy(c: Cluster) -> bool:
    try:
        return all(component_status(c).values()) and c.admin().session.get(
            c.server + "/readyz", timeout=3).status_code == 200
    except Exception:  # noqa: BLE001 - any failure means "not healthy"
        return False


__all__ = ["ApiError", "Cluster", "create_namespace", "bind_release_role", "start", "stop",
           "stop_component", "start_component", "component_status", "is_healthy", "kubeconfig_doc"]
