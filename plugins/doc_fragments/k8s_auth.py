# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Kubernetes connection options, named as kubernetes.core names them. Keep in step with
# AUTH_ARG_SPEC in plugins/module_utils/_k8s/options.py (tests/unit compares the two).

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file, or the kubeconfig itself as a dictionary.
      - Several paths joined with V(:) (V(;) on Windows) are merged as C(kubectl) merges E(KUBECONFIG).
      - When neither this nor O(context) nor O(host) with credentials is set, the in-cluster service
        account is used if there is one, else E(KUBECONFIG) or C(~/.kube/config).
      - "Read on the host the module runs on: the control node with C(connection: local)."
      - Can also be set with E(K8S_AUTH_KUBECONFIG).
    type: raw
  context:
    description:
      - The kubeconfig context to use, instead of its C(current-context).
      - Setting it alone reads E(KUBECONFIG) or C(~/.kube/config).
      - Can also be set with E(K8S_AUTH_CONTEXT).
    type: str
  host:
    description:
      - URL of the Kubernetes API server, such as V(https://127.0.0.1:6443).
      - With O(api_key), O(username) and O(password), or O(client_cert) and O(client_key), no kubeconfig is read.
      - Can also be set with E(K8S_AUTH_HOST).
    type: str
  api_key:
    description:
      - Bearer token for the API server.
      - Can also be set with E(K8S_AUTH_API_KEY).
    type: str
  username:
    description:
      - User name for HTTP basic authentication, for clusters that accept it.
      - Can also be set with E(K8S_AUTH_USERNAME).
    type: str
  password:
    description:
      - Password for HTTP basic authentication, see O(username).
      - Can also be set with E(K8S_AUTH_PASSWORD).
    type: str
  validate_certs:
    description:
      - Whether to verify the API server's TLS certificate.
      - When unset, the kubeconfig's C(insecure-skip-tls-verify) decides, and otherwise certificates are verified.
      - Can also be set with E(K8S_AUTH_VERIFY_SSL) or E(K8S_AUTH_VALIDATE_CERTS); only V(0), V(false) and V(no) are false.
    type: bool
    aliases: [verify_ssl]
  ca_cert:
    description:
      - Path to the CA certificate (the full chain) that signed the API server's certificate.
      - Can also be set with E(K8S_AUTH_SSL_CA_CERT) or E(K8S_AUTH_CA_CERT).
    type: path
    aliases: [ssl_ca_cert]
  client_cert:
    description:
      - Path to a client certificate to authenticate with; needs O(client_key).
      - Can also be set with E(K8S_AUTH_CERT_FILE) or E(K8S_AUTH_CLIENT_CERT).
    type: path
    aliases: [cert_file]
  client_key:
    description:
      - Path to the private key of O(client_cert).
      - Can also be set with E(K8S_AUTH_KEY_FILE) or E(K8S_AUTH_CLIENT_KEY).
    type: path
    aliases: [key_file]
  proxy:
    description:
      - URL of an HTTP proxy to reach the API server through.
      - E(HTTP_PROXY) and E(HTTPS_PROXY) are not used.
      - Can also be set with E(K8S_AUTH_PROXY).
    type: str
  no_proxy:
    description:
      - Comma-separated hosts, domains, IP addresses or CIDR ranges reached without O(proxy),
        for example V(localhost,.local,127.0.0.0/8).
      - E(NO_PROXY) is not used.
      - Can also be set with E(K8S_AUTH_NO_PROXY).
    type: str
  proxy_headers:
    description:
      - Headers sent to the HTTP proxy.
    type: dict
    suboptions:
      proxy_basic_auth:
        description:
          - V(user:password) for the C(Proxy-Authorization) header.
          - Can also be set with E(K8S_AUTH_PROXY_HEADERS_PROXY_BASIC_AUTH).
        type: str
      basic_auth:
        description:
          - V(user:password) for a basic C(Authorization) header to the proxy.
          - Can also be set with E(K8S_AUTH_PROXY_HEADERS_BASIC_AUTH).
        type: str
      user_agent:
        description:
          - C(User-Agent) header sent to the proxy.
          - Can also be set with E(K8S_AUTH_PROXY_HEADERS_USER_AGENT).
        type: str
  persist_config:
    description:
      - Accepted for compatibility with kubernetes.core. Tokens that an C(auth-provider) refreshes
        are not written back to the kubeconfig file.
      - Can also be set with E(K8S_AUTH_PERSIST_CONFIG).
    type: bool
  impersonate_user:
    description:
      - User to act as, sent as the C(Impersonate-User) header. The authenticated user needs the
        RBAC right to impersonate.
      - Can also be set with E(K8S_AUTH_IMPERSONATE_USER).
    type: str
  impersonate_groups:
    description:
      - Groups to act as, one C(Impersonate-Group) header each.
      - Can also be set with E(K8S_AUTH_IMPERSONATE_GROUPS), comma-separated.
    type: list
    elements: str
notes:
  - Kubeconfig users whose credentials come from an C(exec) plugin or an C(auth-provider) need the
    Python package C(kubernetes) and the plugin's program on the host the module runs on. Tokens,
    basic credentials and client certificates need only C(requests) and C(PyYAML).
  - There is no API discovery; the objects are read and written at their known REST paths.
requirements:
  - requests
  - PyYAML
"""
