# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_k8s/transport.py: the HTTP client against a Kubernetes-like API server in a thread."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import ssl
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from ansible_collections.canary.istio.plugins.module_utils._istio.api import VIRTUAL_SERVICES, istio_path
from ansible_collections.canary.istio.plugins.module_utils._k8s.errors import (
    K8sApiError,
    K8sConnectionError,
    K8sForbiddenError,
    K8sInvalidError,
    K8sNotFoundError,
    K8sUnauthorizedError,
)
from ansible_collections.canary.istio.plugins.module_utils._k8s.module import client_from_params
from ansible_collections.canary.istio.plugins.module_utils._k8s.paths import pods_path
from ansible_collections.canary.istio.plugins.module_utils._k8s.transport import format_label_selector
from ansible_collections.canary.istio.tests.unit.plugins.module_utils.k8s_fakes import (
    PASSWORD,
    TOKEN,
    VS_PATH,
    FakeApiServer,
    client_for,
    virtual_service,
    write_kubeconfig,
)


KEY = "df-key-8c1d2e3f4a5b6c7d"


class TestRequests:
    def test_label_selector_format(self):
        assert format_label_selector({"version": "v2", "app": "reviews"}) == "app=reviews,version=v2"
        assert format_label_selector("app=reviews") == "app=reviews"
        assert format_label_selector(None) is None

    def test_requests_carry_token_json_and_dry_run(self, api):
        client = client_for(api)
        created = client.create(istio_path(None, VIRTUAL_SERVICES, "prod"), virtual_service({"v1": 100}))
        assert created["metadata"]["resourceVersion"]
        assert client.get(VS_PATH)["spec"]["hosts"] == ["reviews"]
        client.replace(VS_PATH, client.get(VS_PATH), dry_run=True)
        client.delete(VS_PATH, dry_run=True)
        assert VS_PATH in api.objects  # dry runs stored nothing
        post, get, put, delete = (api.requests[i] for i in (0, 1, 3, 4))
        assert post["headers"]["authorization"] == f"Bearer {TOKEN}"
        assert post["headers"]["content-type"] == "application/json" and post["query"] == {}
        assert post["body"]["spec"]["http"][0]["route"][0]["weight"] == 100
        assert get["headers"]["accept"] == "application/json" and "content-type" not in get["headers"]
        assert put["query"] == {"dryRun": "All"} and delete["query"] == {"dryRun": "All"}
        client.delete(VS_PATH)
        assert VS_PATH not in api.objects
        assert client.requests_made == 6

    def test_list_with_label_selector(self, api):
        pods = pods_path("prod")
        for name, version in (("r1", "v1"), ("r2", "v2"), ("r3", "v2")):
            api.put_object(f"{pods}/{name}", {"metadata": {"name": name, "labels": {"app": "reviews", "version": version}}})
        client = client_for(api)
        listed = client.list(pods, label_selector={"app": "reviews", "version": "v2"})
        assert [p["metadata"]["name"] for p in listed["items"]] == ["r2", "r3"]
        assert api.requests[-1]["query"] == {"labelSelector": "app=reviews,version=v2"}
        assert len(client.list(pods)["items"]) == 3

    def test_impersonation_headers(self, api):
        client = client_for(api, impersonate_user="alice", impersonate_groups=["release", "ops"])
        with pytest.raises(K8sNotFoundError):
            client.get(VS_PATH)
        request = api.requests[-1]
        assert request["headers"]["impersonate-user"] == "alice"
        assert request["groups"] == ["release", "ops"]  # one header line per group

    def test_exec_plugin_token_reaches_the_server(self, tmp_path, api):
        pytest.importorskip("kubernetes")
        plugin = tmp_path / "bin" / "get-token"
        plugin.parent.mkdir()
        plugin.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import json
        print(json.dumps({{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                          "status": {{"token": "{TOKEN}"}}}}))
        """))
        plugin.chmod(0o755)
        kc = write_kubeconfig(tmp_path / "kc", {
            "current-context": "c",
            "clusters": [{"name": "k", "cluster": {"server": api.url}}],
            "users": [{"name": "u", "user": {"exec": {
                "apiVersion": "client.authentication.k8s.io/v1", "command": "bin/get-token", "interactiveMode": "Never"}}}],
            "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        })
        client = client_from_params({"kubeconfig": str(kc)}, environ={})
        api.put_object(VS_PATH, virtual_service({"v1": 100}))
        assert client.get(VS_PATH)["metadata"]["name"] == "reviews"
        assert api.requests[-1]["headers"]["authorization"] == f"Bearer {TOKEN}"


URL_PASSWORD = "pw-0a9b8c7d6e5f"


class TestErrors:
    """Errors carry the API's status, never a credential."""

    def test_api_errors_carry_the_status_message(self, api):
        client = client_for(api)
        with pytest.raises(K8sNotFoundError) as err:
            client.get(VS_PATH)
        assert (err.value.status, err.value.reason, err.value.message) == (404, "NotFound", 'reviews "reviews" not found')
        assert str(err.value) == f'GET {VS_PATH}: 404 NotFound: reviews "reviews" not found'
        body = virtual_service({"v1": 100})
        body["spec"] = "invalid"
        with pytest.raises(K8sInvalidError) as err:
            client.create(istio_path(None, VIRTUAL_SERVICES, "prod"), body)
        assert err.value.details["causes"] == [{"field": "spec", "message": "bad"}]
        with pytest.raises(K8sApiError) as err:
            client.get("/not-json")
        assert err.value.status == 502 and "bad gateway" in err.value.message

    def test_wrong_token_is_401_without_the_token(self, api):
        client = client_for(api, api_key="wrong-token-abcdef")
        with pytest.raises(K8sUnauthorizedError) as err:
            client.get(VS_PATH)
        assert "wrong-token-abcdef" not in str(err.value)

    def test_secrets_quoted_back_by_the_server_are_redacted(self, api):
        with pytest.raises(K8sForbiddenError) as err:
            client_for(api).get("/echo-authorization")
        assert TOKEN not in str(err.value) and TOKEN not in err.value.message
        assert "********" in err.value.message
        basic = client_from_params({"host": api.url, "username": "bob", "password": PASSWORD}, environ={})
        with pytest.raises(K8sForbiddenError) as err:
            basic.get("/echo-authorization")
        encoded = base64.b64encode(f"bob:{PASSWORD}".encode()).decode()
        # The server saw the encoded pair, quoted it back, and the message hides that spelling too.
        assert api.requests[-1]["headers"]["authorization"] == f"Basic {encoded}"
        assert err.value.message == "request with Authorization Basic ******** is forbidden"
        assert encoded not in str(err.value)

    def test_kubernetes_server_credentials_stay_out_of_messages_and_describe(self) -> None:
        client = client_from_params({"host": f"http://u:{URL_PASSWORD}@127.0.0.1:9", "api_key": KEY}, environ={})
        with pytest.raises(K8sConnectionError) as info:
            client.get("/api")
        assert URL_PASSWORD not in str(info.value)
        assert client.config.describe()["server"] == "http://127.0.0.1:9"
        assert URL_PASSWORD in client.config.secrets()
        client.close()


class TestProxies:
    def test_connection_errors_do_not_show_proxy_credentials(self):
        client = client_from_params(
            {"host": "http://127.0.0.1:9", "api_key": TOKEN, "proxy": f"http://user:{PASSWORD}@127.0.0.1:9"}, environ={})
        with pytest.raises(K8sConnectionError) as err:
            client.get("/api")
        assert PASSWORD not in str(err.value) and TOKEN not in str(err.value)

    def test_no_proxy_bypasses_the_proxy(self, api):
        # The proxy address refuses connections; the request only works when it is bypassed.
        client = client_for(api, proxy="http://127.0.0.1:9", no_proxy="localhost,127.0.0.0/8")
        api.put_object(VS_PATH, virtual_service({"v1": 100}))
        assert client.get(VS_PATH)["kind"] == "VirtualService"

    def test_proxy_and_proxy_headers(self, api):
        # For an http:// API server, requests go to the proxy with the full URL; the fake server
        # answers as the proxy would have forwarded it. The API host itself does not resolve.
        client = client_for(api, host="http://kube.invalid:6443", proxy=api.url,
                            proxy_headers={"proxy_basic_auth": f"proxyuser:{PASSWORD}", "user_agent": "canary-test/1"})
        api.put_object(VS_PATH, virtual_service({"v1": 100}))
        assert client.get(VS_PATH)["kind"] == "VirtualService"
        seen = api.requests[-1]["headers"]
        assert seen["proxy-authorization"] == "Basic " + base64.b64encode(f"proxyuser:{PASSWORD}".encode()).decode()
        assert seen["user-agent"] == "canary-test/1"


def _pki(tmp_path: Path) -> dict:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def pem_key(key):
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("test-ca")).issuer_name(name("test-ca"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))

    def leaf(cn, usage, san=None):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(ca.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), pem_key(key)

    server_cert, server_key = leaf("apiserver", ExtendedKeyUsageOID.SERVER_AUTH,
                                   [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    client_cert, client_key = leaf("alice", ExtendedKeyUsageOID.CLIENT_AUTH)
    files = {"ca": ca.public_bytes(serialization.Encoding.PEM), "server_cert": server_cert,
             "server_key": server_key, "client_cert": client_cert, "client_key": client_key}
    out = {}
    for key, data in files.items():
        (tmp_path / f"{key}.pem").write_bytes(data)
        out[key] = data
        out[key + "_file"] = str(tmp_path / f"{key}.pem")
    return out


def _tls_server(pki: dict, require_client_cert: bool) -> FakeApiServer:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki["server_cert_file"], pki["server_key_file"])
    if require_client_cert:
        context.load_verify_locations(pki["ca_file"])
        context.verify_mode = ssl.CERT_REQUIRED
    return FakeApiServer(tls_context=context)


class TestTls:
    def test_tls_with_ca_and_client_certificate_data(self, tmp_path):
        pki = _pki(tmp_path)
        with _tls_server(pki, require_client_cert=True) as server:
            def b64(data: bytes) -> str:
                return base64.b64encode(data).decode()

            alice = {"client-certificate-data": b64(pki["client_cert"]), "client-key-data": b64(pki["client_key"])}
            kubeconfig = {
                "current-context": "c",
                "clusters": [{"name": "k", "cluster": {"server": server.url, "certificate-authority-data": b64(pki["ca"])}}],
                "users": [{"name": "alice", "user": alice}],
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "alice"}}],
            }
            client = client_from_params({"kubeconfig": kubeconfig}, environ={})
            temp_files = list(client.config.temp_files)
            with client:
                with pytest.raises(K8sNotFoundError):
                    client.get(VS_PATH)
            assert server.requests[-1]["client_cn"] == "alice"
            assert not any(os.path.exists(p) for p in temp_files)  # close() removed them

    def test_tls_ca_file_option_and_unknown_ca(self, tmp_path):
        pki = _pki(tmp_path)
        with _tls_server(pki, require_client_cert=False) as server:
            with pytest.raises(K8sNotFoundError):
                client_from_params({"host": server.url, "api_key": TOKEN, "ca_cert": pki["ca_file"]}, environ={}).get(VS_PATH)
            with pytest.raises(K8sConnectionError) as err:
                client_from_params({"host": server.url, "api_key": TOKEN}, environ={}).get(VS_PATH)
            assert "ca_cert" in str(err.value) and TOKEN not in str(err.value)
            insecure = client_from_params({"host": server.url, "api_key": TOKEN, "validate_certs": False}, environ={})
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # the InsecureRequestWarning stays inside the client
                with pytest.raises(K8sNotFoundError):
                    insecure.get(VS_PATH)


class TestRedirects:
    """Not followed: a redirect would carry the credentials to another host."""

    def test_kubernetes_does_not_resend_headers_or_body_on_a_307(self, redirect_pair) -> None:
        redirector, target = redirect_pair
        client = client_from_params({"host": redirector.url, "api_key": KEY, "impersonate_user": "alice"}, environ={})
        with pytest.raises(K8sConnectionError) as info:
            client.replace("/api/v1/namespaces/default/configmaps/x", {"kind": "ConfigMap", "data": {"secret": "s3cr3t"}})
        client.close()
        assert "307, a redirect to localhost" in str(info.value)
        assert redirector.seen[0]["method"] == "PUT" and target.seen == []
