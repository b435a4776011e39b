# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/_k8s/connection.py: which API server and credentials: kubeconfig, options or service account."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
import textwrap
from pathlib import Path

import pytest

from ansible_collections.canary.istio.plugins.module_utils._k8s.config import ClientConfig
from ansible_collections.canary.istio.plugins.module_utils._k8s.connection import in_cluster_config, load_client_config
from ansible_collections.canary.istio.plugins.module_utils._k8s.errors import K8sConfigError
from ansible_collections.canary.istio.plugins.module_utils._k8s.options import resolve_auth_params
from ansible_collections.canary.istio.tests.unit.plugins.module_utils.k8s_fakes import (
    PASSWORD,
    TOKEN,
    two_contexts,
    write_kubeconfig,
)


def config_for(params: dict, environ: dict | None = None) -> ClientConfig:
    env = {} if environ is None else environ
    return load_client_config(resolve_auth_params(params, env), env)


class TestKubeconfig:
    def test_current_context_with_token(self, tmp_path):
        kc = write_kubeconfig(tmp_path / "kc", two_contexts())
        config = config_for({"kubeconfig": str(kc)})
        assert (config.server, config.token, config.context, config.namespace) == ("https://a.example:6443", TOKEN, "a", "prod")
        assert config.verify_ssl is True
        assert TOKEN not in repr(config) and TOKEN not in json.dumps(config.describe())
        assert config.describe()["auth"] == "token"

    def test_context_option_selects_another_context(self, tmp_path):
        kc = write_kubeconfig(tmp_path / "kc", two_contexts())
        config = config_for({"kubeconfig": str(kc), "context": "b"})
        assert (config.server, config.username, config.password, config.token) == ("https://b.example:6443", "bob", PASSWORD, None)
        assert config.verify_ssl is False  # insecure-skip-tls-verify
        assert config_for({"kubeconfig": str(kc), "context": "b", "validate_certs": True}).verify_ssl is True

    def test_missing_context_names_the_option_and_the_choices(self, tmp_path):
        kc = write_kubeconfig(tmp_path / "kc", two_contexts())
        with pytest.raises(K8sConfigError) as err:
            config_for({"kubeconfig": str(kc), "context": "prod-eu"})
        assert err.value.option == "context"
        assert "'prod-eu' not found" in str(err.value) and "one of: a, b" in str(err.value)
        assert TOKEN not in str(err.value) and PASSWORD not in str(err.value)

    def test_no_current_context_asks_for_the_context_option(self, tmp_path):
        doc = two_contexts()
        del doc["current-context"]
        kc = write_kubeconfig(tmp_path / "kc", doc)
        with pytest.raises(K8sConfigError, match="no current-context") as err:
            config_for({"kubeconfig": str(kc)})
        assert err.value.option == "context"

    def test_missing_kubeconfig_names_option_and_path(self, tmp_path):
        missing = tmp_path / "nowhere" / "kubeconfig-x"
        with pytest.raises(K8sConfigError) as err:
            config_for({"kubeconfig": str(missing)})
        assert err.value.option == "kubeconfig"
        assert "'kubeconfig-x'" in str(err.value) and str(missing.parent) in str(err.value)
        assert "option 'kubeconfig'" in str(err.value)

    def test_token_file_and_relative_paths_start_at_the_kubeconfig_folder(self, tmp_path):
        folder = tmp_path / "conf"
        folder.mkdir()
        (folder / "token").write_text(TOKEN + "\n")
        (folder / "ca.pem").write_text("CA")
        doc = two_contexts()
        doc["users"][0]["user"] = {"tokenFile": "token"}
        doc["clusters"][0]["cluster"]["certificate-authority"] = "ca.pem"
        kc = write_kubeconfig(folder / "kc", doc)
        config = config_for({"kubeconfig": str(kc)})
        assert config.token == TOKEN
        assert config.ca_file == str(folder / "ca.pem")

    def test_missing_file_named_in_kubeconfig_is_reported(self, tmp_path):
        doc = two_contexts()
        doc["clusters"][0]["cluster"]["certificate-authority"] = "gone.pem"
        kc = write_kubeconfig(tmp_path / "kc", doc)
        with pytest.raises(K8sConfigError, match="certificate-authority of cluster 'ca' file .*gone.pem") as err:
            config_for({"kubeconfig": str(kc)})
        assert err.value.option == "kubeconfig"

    def test_data_fields_become_private_temp_files_removed_on_cleanup(self, tmp_path):
        doc = two_contexts()
        doc["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(b"CA-BYTES").decode()
        doc["users"][0]["user"].update({
            "client-certificate-data": base64.b64encode(b"CERT-BYTES").decode(),
            "client-key-data": base64.b64encode(b"KEY-BYTES").decode(),
        })
        config = config_for({"kubeconfig": doc})
        files = {"ca": config.ca_file, "cert": config.client_cert_file, "key": config.client_key_file}
        assert {k: Path(v).read_bytes() for k, v in files.items()} == {"ca": b"CA-BYTES", "cert": b"CERT-BYTES", "key": b"KEY-BYTES"}
        for path in files.values():
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert config.describe()["auth"] == "token+client-certificate"
        config.cleanup()
        assert not any(os.path.exists(p) for p in files.values())

    def test_bad_base64_names_the_field_not_the_data(self):
        doc = two_contexts()
        doc["users"][0]["user"]["client-key-data"] = "not*base64!"
        with pytest.raises(K8sConfigError, match="client-key-data of user 'ua' is not valid base64") as err:
            config_for({"kubeconfig": doc})
        assert "not*base64!" not in str(err.value)

    def test_unreadable_yaml_does_not_quote_the_file(self, tmp_path):
        kc = tmp_path / "kc"
        kc.write_text(f"users:\n- name: u\n  user: {{token: {TOKEN}\n")  # unbalanced brace
        with pytest.raises(K8sConfigError) as err:
            config_for({"kubeconfig": str(kc)})
        assert "cannot be read" in str(err.value) and TOKEN not in str(err.value)

    def test_several_files_merge_first_wins(self, tmp_path):
        first = write_kubeconfig(tmp_path / "one", {
            "clusters": [{"name": "ca", "cluster": {"server": "https://first:6443"}}],
            "users": [], "contexts": [{"name": "only-in-first", "context": {"cluster": "ca"}}],
        })
        second = write_kubeconfig(tmp_path / "two", two_contexts())
        config = config_for({"kubeconfig": f"{first}{os.pathsep}{second}"})
        # current-context from the second file; cluster "ca" from the first.
        assert (config.context, config.server, config.token) == ("a", "https://first:6443", TOKEN)
        config = config_for({"kubeconfig": f"{first}{os.pathsep}{second}", "context": "only-in-first"})
        assert (config.server, config.token) == ("https://first:6443", None)

    def test_default_kubeconfig_locations(self, tmp_path):
        home = tmp_path / "home"
        write_kubeconfig(home / ".kube" / "config", two_contexts("https://home:6443"))
        listed = write_kubeconfig(tmp_path / "listed", two_contexts("https://listed:6443"))
        chosen = write_kubeconfig(tmp_path / "chosen", two_contexts("https://chosen:6443"))
        assert config_for({}, {"HOME": str(home)}).server == "https://home:6443"
        assert config_for({}, {"HOME": str(home), "KUBECONFIG": str(listed)}).server == "https://listed:6443"
        # context alone reads the default kubeconfig, as the Kubernetes client does
        assert config_for({"context": "b"}, {"HOME": str(home), "KUBECONFIG": str(listed)}).server == "https://b.example:6443"
        env = {"HOME": str(home), "KUBECONFIG": str(listed), "K8S_AUTH_KUBECONFIG": str(chosen)}
        assert config_for({}, env).server == "https://chosen:6443"
        assert config_for({"kubeconfig": str(listed)}, env).server == "https://listed:6443"

    def test_nothing_configured_says_what_to_set(self, tmp_path):
        with pytest.raises(K8sConfigError, match="no Kubernetes cluster configured") as err:
            config_for({}, {"HOME": str(tmp_path)})
        assert err.value.option == "kubeconfig"

    def test_kubeconfig_impersonation_fields(self, tmp_path):
        doc = two_contexts()
        doc["users"][0]["user"].update({"as": "deployer", "as-groups": ["release"]})
        config = config_for({"kubeconfig": doc})
        assert (config.impersonate_user, config.impersonate_groups) == ("deployer", ["release"])

    @pytest.mark.parametrize("value", ["false", "true", "no", 1])
    def test_insecure_skip_tls_verify_must_be_a_real_boolean(self, value):
        doc = two_contexts()
        doc["clusters"][0]["cluster"]["insecure-skip-tls-verify"] = value
        with pytest.raises(K8sConfigError, match="insecure-skip-tls-verify of cluster 'ca' in .* must be true or false "
                                                 "without quotes") as err:
            config_for({"kubeconfig": doc})
        assert err.value.option == "kubeconfig"

    def test_insecure_skip_tls_verify_with_a_ca_is_refused(self):
        doc = two_contexts()
        doc["clusters"][0]["cluster"].update({"insecure-skip-tls-verify": True,
                                              "certificate-authority-data": base64.b64encode(b"CA").decode()})
        with pytest.raises(K8sConfigError, match="sets both insecure-skip-tls-verify and a certificate authority"):
            config_for({"kubeconfig": doc})
        doc["clusters"][0]["cluster"]["insecure-skip-tls-verify"] = False
        assert config_for({"kubeconfig": doc}).verify_ssl is True

    def test_kubeconfig_temp_files_go_to_the_given_directory(self, tmp_path):
        doc = two_contexts()
        doc["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(b"CA").decode()
        own = tmp_path / "module-tmp"
        own.mkdir()
        config = load_client_config(resolve_auth_params({"kubeconfig": doc}, {}), {}, temp_dir=str(own))
        assert config.ca_file and config.ca_file.startswith(str(own) + "/")
        config.cleanup()
        assert list(own.iterdir()) == []


def _broken(change) -> dict:
    doc = two_contexts()
    change(doc)
    return doc


class TestMalformedKubeconfig:
    """A clear error naming the field, never the credential."""

    @pytest.mark.parametrize("change, option, words", [
        (lambda d: d["users"][0]["user"].update(token="s3cr3t-\u79d8-token"), "kubeconfig", "the token from kubeconfig"),
        (lambda d: d["users"][0]["user"].update(token="s3cr3t-to\nken-second-line"), "kubeconfig", "holds a line break"),
        (lambda d: d["users"][0]["user"].update(token="s3cr3t-to\tken"), "kubeconfig", "holds a control character"),
        (lambda d: d["users"].__setitem__(0, "ua"), "kubeconfig", "users[0] must be a mapping with name and user, got a str"),
        (lambda d: d["clusters"].__setitem__(0, "https://a.example"), "kubeconfig", "clusters[0] must be a mapping"),
        (lambda d: d["contexts"][0].__setitem__("context", "ca/ua"), "kubeconfig", "the context of context 'a' must be a mapping"),
        (lambda d: d["users"][0].__setitem__("user", "s3cr3t-token-as-text"), "kubeconfig", "the user of user 'ua' must be a mapping"),
        (lambda d: d.__setitem__("users", {"ua": {}}), "kubeconfig", "users must be a list of entries"),
    ], ids=["non-ascii-token", "token-over-two-lines", "tab-in-token", "user-a-string", "cluster-a-string",
            "context-body-a-string", "user-body-a-string", "users-a-mapping"])
    def test_malformed_kubeconfig_is_a_clear_error_without_the_secret(self, tmp_path, change, option, words):
        doc = _broken(change)
        for given in (doc, str(write_kubeconfig(tmp_path / "kc", doc))):
            with pytest.raises(K8sConfigError) as err:
                config_for({"kubeconfig": given})
            message = str(err.value)
            assert words in message and err.value.option == option
            for secret in ("s3cr3t", "\u79d8", "ca/ua"):
                assert secret not in message and secret not in repr(err.value)


class TestExplicitOptions:
    def test_host_and_api_key_skip_the_kubeconfig(self, tmp_path):
        config = config_for({"host": "https://direct:6443/", "api_key": TOKEN, "kubeconfig": str(tmp_path / "missing")})
        assert (config.server, config.token, config.source) == ("https://direct:6443", TOKEN, "parameters")

    def test_options_override_the_kubeconfig(self, tmp_path):
        kc = write_kubeconfig(tmp_path / "kc", two_contexts())
        ca = tmp_path / "ca.pem"
        ca.write_text("CA")
        config = config_for({"kubeconfig": str(kc), "host": "https://other:6443", "ca_cert": str(ca),
                             "impersonate_user": "alice", "impersonate_groups": ["g1", "g2"]})
        assert (config.server, config.token, config.ca_file) == ("https://other:6443", TOKEN, str(ca))
        assert (config.impersonate_user, config.impersonate_groups) == ("alice", ["g1", "g2"])
        env_config = config_for({"kubeconfig": str(kc)}, {"K8S_AUTH_API_KEY": "from-env-token"})
        assert env_config.token == "from-env-token"

    @pytest.mark.parametrize("params, option, text", [
        ({"host": "127.0.0.1:6443", "api_key": "x"}, "host", "must be a URL"),
        ({"host": "https://h:1", "api_key": "x", "ca_cert": "/no/such/ca.pem"}, "ca_cert", "ca_cert: file /no/such/ca.pem not found"),
        ({"host": "https://h:1", "client_cert": "/no/cert.pem", "client_key": "/no/key.pem"}, "client_cert", "client_cert: file /no/cert.pem"),
    ])
    def test_bad_options_name_the_option(self, params, option, text):
        with pytest.raises(K8sConfigError) as err:
            config_for(params)
        assert err.value.option == option and text in str(err.value)

    def test_client_cert_needs_client_key(self, tmp_path):
        cert = tmp_path / "c.pem"
        cert.write_text("C")
        with pytest.raises(K8sConfigError, match="client_cert and client_key must be given together"):
            config_for({"host": "https://h:1", "api_key": "x", "client_cert": str(cert)})

    def test_an_api_key_with_a_line_break_names_the_option_not_the_value(self):
        with pytest.raises(K8sConfigError) as err:
            config_for({"host": "https://a.example:6443", "api_key": "s3cr3t\n"})
        assert err.value.option == "api_key" and "s3cr3t" not in str(err.value)


class TestInCluster:
    def test_in_cluster_service_account(self, tmp_path):
        (tmp_path / "token").write_text(TOKEN)
        (tmp_path / "ca.crt").write_text("CA")
        (tmp_path / "namespace").write_text("awx\n")
        env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
        config = in_cluster_config(env, sa_dir=str(tmp_path))
        assert (config.server, config.token, config.ca_file, config.namespace) == (
            "https://10.96.0.1:443", TOKEN, str(tmp_path / "ca.crt"), "awx")
        assert in_cluster_config({}, sa_dir=str(tmp_path)) is None


class TestExecPlugin:
    """Credentials from an exec plugin, through the kubernetes package's loader."""

    def test_failing_exec_plugin_is_a_config_error(self, tmp_path):
        pytest.importorskip("kubernetes")
        doc = two_contexts()
        doc["users"][0]["user"] = {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                            "command": str(tmp_path / "missing-plugin"), "interactiveMode": "Never"}}
        with pytest.raises(K8sConfigError, match="exec plugin or auth-provider did not return credentials") as err:
            config_for({"kubeconfig": doc})
        assert err.value.option == "kubeconfig"

    def test_failing_exec_plugin_output_is_shown_without_secrets(self, tmp_path):
        pytest.importorskip("kubernetes")
        plugin = tmp_path / "get-token"
        jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz"
        plugin.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import os, sys
        sys.stderr.write("refresh failed for " + os.environ["PLUGIN_SECRET"] + " with {jwt}\\n")
        sys.exit(3)
        """))
        plugin.chmod(0o755)
        doc = two_contexts()
        doc["users"][0]["user"] = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin),
                                            "interactiveMode": "Never", "env": [{"name": "PLUGIN_SECRET", "value": "env-pass-42"}]}}
        with pytest.raises(K8sConfigError) as err:
            config_for({"kubeconfig": doc})
        message = str(err.value)
        assert "refresh failed for ******** with ********" in message  # the plugin's own words stay
        assert "env-pass-42" not in message and jwt not in message
