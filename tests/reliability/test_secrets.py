"""Secrets: no key or token in -vvv output or results, and TLS verified by default

The Guance API key (sandbox endpoints.json) and the release identity's Kubernetes bearer token (from
kubeconfig-release) are looked for, in every spelling and base64-encoded, in everything a whole
release leaves behind: ansible-playbook -vvv output (which prints every task's result, i.e. what
`register` keeps), the release report files and the Guance events the release wrote. (Every module
at -vvv, refused calls included, is checked in `make test`: tests/integration/test_secrets_vvv.py.) Certificates: a kubeconfig whose
CA is not the API server's, and a Guance URL served over HTTPS with a self-signed certificate, both
fail naming certificate verification, and pass only with validate_certs=false.
"""
from __future__ import annotations

import base64
import datetime
import http.server
import ipaddress
import json
import ssl
import threading
import uuid
from pathlib import Path

import pytest
import requests
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sandbox import versions
from sandbox.api import collection_path
from sandbox.audit import AuditLog

from _secret_leaks import leaks, playbook, release_cluster_of, secret_spellings, task_results  # pylint: disable=import-error
from runners import run_module  # pylint: disable=import-error

pytestmark = pytest.mark.integration

APP = "reviews"
CANARY_IMAGE = "docker.io/istio/examples-bookinfo-reviews-v2:1.20.1"
HEALTHY = {"error_rate": 0.0, "error_code": 500, "latency_ms": 20.0, "latency_sigma": 0.2}
RATE = 40  # simulated requests per second to reviews in the release's namespace


@pytest.fixture(scope="module")
def endpoints(sandbox) -> dict:
    return json.loads((versions.STATE_DIR / "endpoints.json").read_text())


@pytest.fixture(scope="module")
def release_cluster(release_kubeconfig) -> dict:
    return release_cluster_of(release_kubeconfig)


def _sim(endpoints: dict, what: str, body: dict) -> None:
    resp = requests.post(f"{endpoints['datakit']}/__sim/{what}", json=body, timeout=10)
    assert resp.status_code == 200, resp.text


def _stable(version: str) -> list[dict]:
    labels = {"app": APP, "version": version}
    return [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": APP, "labels": {"app": APP}},
             "spec": {"selector": {"app": APP}, "ports": [{"name": "http", "port": 9080}]}},
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"{APP}-{version}", "labels": labels},
             "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                      "template": {"metadata": {"labels": labels},
                                   "spec": {"containers": [{"name": APP, "image": CANARY_IMAGE.replace("v2", "v1"),
                                                            "ports": [{"containerPort": 9080}]}]}}}}]


def _events(endpoints: dict, namespace: str) -> list[dict]:
    """The release events written for `namespace`, read through the DataKit API (no key needed)."""
    query = f"E::`custom`:(`time`, `df_title`, `df_status`, `df_message`, `phase`) {{ `namespace` = '{namespace}' }}"
    resp = requests.post(f"{endpoints['datakit']}/v1/query/raw", json={"queries": [{"query": query}]}, timeout=10)
    assert resp.status_code == 200, resp.text
    return [dict(zip(s["columns"], row)) for s in resp.json()["content"][0]["series"] for row in s["values"]]


def test_full_release_at_vvv_shows_neither_key_nor_token(admin, namespace, endpoints, release_kubeconfig,
                                                         release_cluster, tmp_path, record):
    """A whole canary_release with Guance analysis and events, run with -vvv, shows neither the key nor the token"""
    uid = uuid.uuid4().hex[:6]
    stable, canary = f"s{uid}", f"c{uid}"  # the simulator's profiles are global per version
    for version in (stable, canary):
        _sim(endpoints, "profiles", {"service": APP, "version": version, **HEALTHY})
    admin.apply_manifest(_stable(stable), namespace)
    path = f"{collection_path('Deployment', namespace)}/{APP}-{stable}"
    admin.wait_for(f"{APP}-{stable} Ready", lambda: admin.get(path).get("status", {}).get("readyReplicas") == 1, 90)
    _sim(endpoints, "traffic", {"cluster": "sandbox-1", "namespace": namespace, "service": APP, "rate": RATE})
    guance = {"url": endpoints["guance_openapi"], "api_key": endpoints["guance_api_key"]}
    extra = {
        "canary_app": APP, "canary_namespace": namespace, "canary_stable_version": stable, "canary_version": canary,
        "canary_image": CANARY_IMAGE, "canary_steps": [50, 100], "canary_delete_old_versions": False,
        "canary_kubeconfig": release_kubeconfig, "canary_context": "sandbox-1", "canary_report_dir": str(tmp_path / "reports"),
        # 8 s rounds: Prometheus, behind the simulated Guance, needs two scrapes of the canary's series.
        "canary_analysis": {"provider": "guance", "interval": 8, "iterations": 1, "window": "8s", "min_requests": 10,
                            "guance": guance},
        "canary_events": True, "canary_guance": guance,
    }
    try:
        proc = playbook("canary.istio.canary_release", "-vvv", "-e", json.dumps(extra))
    finally:
        _sim(endpoints, "traffic", {"cluster": "sandbox-1", "namespace": namespace, "service": APP, "rate": 0})
    output = proc.stdout + proc.stderr
    reports = {str(p.relative_to(tmp_path)): p.read_text(errors="replace") for p in (tmp_path / "reports").rglob("*") if p.is_file()}
    events = _events(endpoints, namespace)
    found = leaks({"output": output, **reports, "events": json.dumps(events)}, secret_spellings(endpoints, release_cluster))
    record(output_bytes=len(output), task_results=len(task_results(output)), report_files=len(reports),
           report_bytes=sum(len(t) for t in reports.values()), events=len(events), leaks=found)
    assert proc.returncode == 0 and f"done: 100% on {canary}" in output, output[-4000:]
    # The key was really used: the analysis asked Guance and the events reached it.
    assert '"verdict": "pass"' in output and [e["phase"] for e in events].count("analysis") == 2, events
    assert reports, "no release report was written"
    assert not found, found


# --- certificates ----------------------------------------------------------------------------------

def _self_signed(common_name: str, tmp: Path, ip: str | None = None) -> tuple[Path, Path]:
    """A self-signed certificate (a CA nobody trusts) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True))
    if ip:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    cert_file, key_file = tmp / f"{common_name}.crt", tmp / f"{common_name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_kubeconfig_with_an_unknown_ca_fails_on_certificate_verification(sandbox, release_kubeconfig, tmp_path, record):
    """A kubeconfig whose CA did not sign the API server's certificate fails, naming verification; validate_certs defaults to true"""
    ca_file, _key = _self_signed("unknown-ca", tmp_path)
    config = yaml.safe_load(Path(release_kubeconfig).read_text())
    for entry in config["clusters"]:
        entry["cluster"].pop("certificate-authority", None)
        entry["cluster"]["certificate-authority-data"] = base64.b64encode(ca_file.read_bytes()).decode()
    kubeconfig = tmp_path / "kubeconfig-unknown-ca"
    kubeconfig.write_text(yaml.safe_dump(config))
    args = {"service_host": APP, "namespace": "prod", "kubeconfig": str(kubeconfig), "context": "sandbox-1"}

    log = AuditLog(sandbox[0]).mark()
    refused = run_module("mesh_info", args)
    reached = log.count("canary-release")
    allowed = run_module("mesh_info", {**args, "validate_certs": False})
    record(message=refused.get("msg", "")[:400], requests_reaching_the_server=reached,
           with_validate_certs_false=("ok" if not allowed.get("failed") else allowed.get("msg", "")[:200]),
           warning=(allowed.get("warnings") or [""])[0][:200])
    assert refused.get("failed"), refused
    for part in ("TLS error", "certificate verify failed", "ca_cert", "validate_certs=false"):
        assert part in refused["msg"], (part, refused["msg"])
    assert reached == 0  # the handshake failed: no request was sent
    # Only an explicit validate_certs=false gets through, and it says so.
    assert not allowed.get("failed"), allowed
    assert any("verification is off" in w for w in allowed.get("warnings", [])), allowed.get("warnings")


class _GuanceOverTls(http.server.ThreadingHTTPServer):
    """HTTPS in front of the simulator's Guance OpenAPI, with a self-signed certificate."""

    def __init__(self, upstream: str, cert: Path, key: Path):
        super().__init__(("127.0.0.1", 0), _Forward)
        self.upstream, self.requests_seen = upstream, 0
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.socket = context.wrap_socket(self.socket, server_side=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}"


class _Forward(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - the name http.server calls
        self.server.requests_seen += 1
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "df-api-key")}
        answer = requests.post(self.server.upstream + self.path, data=body, headers=headers, timeout=30)
        self.send_response(answer.status_code)
        self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass  # keep pytest's output clean


def test_guance_over_https_with_an_unknown_ca_fails_unless_validate_certs_false(endpoints, tmp_path, record):
    """guance_query to an HTTPS endpoint with a self-signed certificate fails naming verification, unless validate_certs=false"""
    cert, key = _self_signed("guance-test", tmp_path, ip="127.0.0.1")
    server = _GuanceOverTls(endpoints["guance_openapi"], cert, key)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    args = {"url": server.url, "api_key": endpoints["guance_api_key"], "retry_budget": 0,
            "queries": [{"query": "M::`istio_requests_total`:(count(`value`))"}]}
    try:
        refused = run_module("guance_query", args)
        seen_refused = server.requests_seen
        allowed = run_module("guance_query", {**args, "validate_certs": False})
    finally:
        server.shutdown()
        server.server_close()
    record(message=refused.get("msg", "")[:400], requests_served_when_refused=seen_refused,
           with_validate_certs_false=("ok" if not allowed.get("failed") else allowed.get("msg", "")[:200]))
    assert refused.get("failed"), refused
    for part in ("TLS error", "certificate verify failed", "validate_certs=false"):
        assert part in refused["msg"], (part, refused["msg"])
    assert seen_refused == 0  # no request got past the handshake
    assert not allowed.get("failed"), allowed
    assert server.requests_seen == 1 and allowed["results"][0]["query"] == args["queries"][0]["query"]
