"""No Guance key or Kubernetes token in -vvv output, in any spelling: every module given both as
options (the way AWX hands credentials over) and through the kubeconfig, refused calls included
(a key with a line break among them), then every registered result printed."""
from __future__ import annotations

import json

import pytest
import yaml

from ansible_collections.canary.istio.plugins.module_utils._http.redact import secret_forms
from sandbox import versions

from _routing_fixtures import bookinfo_object, create, deploy_app  # pylint: disable=import-error
from _secret_leaks import leaks, playbook, release_cluster_of, secret_spellings, task_results  # pylint: disable=import-error

pytestmark = pytest.mark.integration

APP = "reviews"


@pytest.fixture(scope="module")
def endpoints(sandbox) -> dict:  # pylint: disable=unused-argument
    return json.loads((versions.STATE_DIR / "endpoints.json").read_text())


@pytest.fixture(scope="module")
def release_cluster(release_kubeconfig) -> dict:
    return release_cluster_of(release_kubeconfig)


def module_playbook(namespace: str, release_kubeconfig: str, release_cluster: dict, endpoints: dict) -> list[dict]:
    """Every module, given the token and the key as options (the way AWX credentials hand them over)
    and through the kubeconfig; one refused call of each kind; then every registered result printed."""
    k8s = {"host": release_cluster["server"], "api_key": "{{ canary_token }}", "ca_cert": release_cluster["ca"]}
    guance = {"url": endpoints["guance_openapi"], "api_key": "{{ canary_guance_key }}"}
    vs = {"name": APP, "namespace": namespace}
    tasks = [  # (module, options, refused on purpose)
        ("mesh_info", {"service_host": APP, "namespace": namespace, **k8s}, False),
        ("mesh_info", {"service_host": APP, "namespace": namespace, "kubeconfig": release_kubeconfig,
                       "context": "sandbox-1"}, False),
        ("traffic_split", {**vs, "weights": {"v1": 100}, **k8s}, False),
        ("traffic_split", {**vs, "stable": "v1", "canary": "v9", "canary_weight": 10, **k8s}, True),
        ("destination_rule", {"name": APP, "namespace": namespace, "service_host": APP, **k8s}, False),
        ("guance_query", {"queries": [{"query": "M::`istio_requests_total`:(count(`value`))"}], **guance}, False),
        ("guance_query", {"queries": [{"query": "M::`istio_requests_total`:((("}], **guance}, True),
        ("guance_event", {"title": "secrets test", "tags": {"namespace": namespace}, **guance}, False),
        # A key pasted with its line break: refused by option name; the HTTP library would have quoted it.
        ("guance_query", {"queries": [{"query": "M::`istio_requests_total`:(count(`value`))"}],
                          **dict(guance, api_key="{{ canary_guance_key[:6] }}\n{{ canary_guance_key[6:] }}")}, True),
        # No traffic in the namespace: the analysis asks Guance and finds no data for the canary.
        ("canary_analysis", {"service": APP, "namespace": namespace, "canary_version": "v1", "window": "30s",
                             **guance}, True),
    ]
    play_tasks = []
    for index, (module, args, refused) in enumerate(tasks):
        task = {"name": f"{module} #{index}", f"canary.istio.{module}": args, "register": f"canary_result_{index}"}
        if refused:
            task["ignore_errors"] = True
        play_tasks.append(task)
    play_tasks.append({"name": "Every registered result", "ansible.builtin.debug": {
        "msg": "{{ [" + ", ".join(f"canary_result_{i}" for i in range(len(tasks))) + "] }}"}})
    return [{"name": "Modules at -vvv", "hosts": "localhost", "connection": "local", "gather_facts": False,
             "tasks": play_tasks}]


def test_module_runs_at_vvv_show_neither_key_nor_token(admin, namespace, endpoints, release_kubeconfig, release_cluster,
                                                       tmp_path):
    """Every module given the token and the key as options, at -vvv, with refused calls: neither shows"""
    deploy_app(admin, namespace, APP, ("v1",))
    create(admin, namespace, bookinfo_object("networking/destination-rule-all.yaml", "DestinationRule", APP))
    create(admin, namespace, {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": APP},
                              "spec": {"hosts": [APP], "http": [{"route": [{"destination": {"host": APP, "subset": "v1"}}]}]}})
    plays = tmp_path / "modules.yml"
    plays.write_text(yaml.safe_dump(module_playbook(namespace, release_kubeconfig, release_cluster, endpoints),
                                    sort_keys=False))
    secrets_file = tmp_path / "secrets.json"  # as AWX hands credentials over: an extra-vars file
    secrets_file.write_text(json.dumps({"canary_token": release_cluster["token"], "canary_guance_key": endpoints["guance_api_key"]}))
    proc = playbook(str(plays), "-vvv", "-e", f"@{secrets_file}")
    output = proc.stdout + proc.stderr
    secrets = secret_spellings(endpoints, release_cluster)
    key = endpoints["guance_api_key"]
    broken = key[:6] + "\n" + key[6:]
    secrets.update({f"the key with its line break (spelling {n})": form for n, form in enumerate(secret_forms(broken))})
    secrets["the key after its line break"] = key[6:]
    found = leaks({"output": output}, secrets)
    recap = next((line for line in output.splitlines() if line.startswith("localhost ") and "ok=" in line), "")
    results = task_results(output)
    refusals = [result.get("msg", "")[:160] for status, result in results if status == "fatal"]
    assert proc.returncode == 0, output[-4000:]
    # Each call ran (every module, and the debug of all results); the refused ones were refused for
    # their own reasons, not for the credentials.
    tasks = len(module_playbook(namespace, release_kubeconfig, release_cluster, endpoints)[0]["tasks"])
    assert f"ok={tasks} " in recap and "failed=0" in recap and "ignored=4" in recap, recap
    expected = ("canary: subset 'v9' is not defined", "querying Guance: ", "api_key (or GUANCE_API_KEY) holds a line break",
                "analysis of reviews v1 ")
    assert len(refusals) == 4 and all(m.startswith(e) for m, e in zip(refusals, expected)), refusals
    assert not found, found
