"""The cluster path of the README: CRDs on a real API server, the operator installed by Helm."""
from __future__ import annotations

import os

import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml

from kubetune.api.crdgen import crd_by_kind
from kubetune.api.validation import _schemas, extension_problems, foreign, problems

from .conftest import apply_and_finish

ROOT = Path(__file__).resolve().parents[2]


def _server_side(doc: dict) -> list[str]:
    """What `kubetune validate` finds that the API server itself must refuse: our kinds
    under another apiVersion, no name, and the CRD schema with its CEL rules. Everything
    else it finds is checked by the operator (a Ready=False condition)."""
    if doc.get("apiVersion") != "kubetune.io/v1alpha1":
        return ["apiVersion"]
    if not (doc.get("metadata") or {}).get("name"):
        return ["metadata.name"]
    schema, validator = _schemas(doc["kind"])
    body = {k: v for k, v in doc.items() if k != "status"}
    return [".".join(map(str, e.absolute_path)) for e in validator.iter_errors(body)] + [
        p.path for p in extension_problems(schema, body)]


@pytest.fixture(scope="module")
def crds_installed(k8s):
    """Apply crds/ as a user would and wait until the API server serves them."""
    kubernetes = pytest.importorskip("kubernetes")
    api = kubernetes.client.ApiextensionsV1Api(k8s.client)
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        try:
            api.create_custom_resource_definition(crd)
        except kubernetes.client.rest.ApiException as e:
            if e.status != 409:
                raise AssertionError(f"the API server refused {path.name}: {e.body}") from None
            api.patch_custom_resource_definition(crd["metadata"]["name"], crd)
    deadline = time.time() + 60
    for crd in crd_by_kind().values():
        while True:
            conds = api.read_custom_resource_definition(crd["metadata"]["name"]).status.conditions or []
            if any(c.type == "Established" and c.status == "True" for c in conds):
                break
            assert time.time() < deadline, f"{crd['metadata']['name']} is not Established: {conds}"
            time.sleep(0.2)
    return k8s.client


def _dry_run(client, doc: dict) -> tuple[int, str]:
    """Send one manifest to the API server (server-side dry run, strict field validation):
    0 when it is accepted, else the HTTP status and the server's message."""
    kubernetes = pytest.importorskip("kubernetes")
    custom = kubernetes.client.CustomObjectsApi(client)
    group, _, version = str(doc.get("apiVersion", "")).partition("/")
    plural = {"Study": "studies", "Round": "rounds", "Trial": "trials"}[doc["kind"]]
    try:
        custom.create_namespaced_custom_object(group, version, "default", plural, doc,
                                               dry_run="All", field_validation="Strict")
        return 0, ""
    except kubernetes.client.rest.ApiException as e:
        return e.status, e.body or ""


MANIFESTS = sorted((ROOT / "tests" / "invalid").glob("*.yaml")) + sorted((ROOT / "examples").rglob("*.yaml"))


def test_the_api_server_and_kubetune_validate_agree_on_every_manifest(crds_installed):
    """Each manifest of tests/invalid/ and examples/ goes to the real API server; it refuses
    exactly those whose refusal `kubetune validate` attributes to the schema or CEL, naming the
    same field, and accepts the rest, which the models refuse (the operator's side)."""
    disagree, server_side, operator_side = [], [], []
    for path in MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text()):
            if foreign(doc):  # examples/gitops: a Flux Kustomization, an Argo CD Application
                continue
            offline = [str(p) for p in problems(doc)]
            expected = _server_side(doc)
            status, message = _dry_run(crds_installed, doc)
            where = path.relative_to(ROOT)
            if bool(status) != bool(expected):
                disagree.append(f"{where}: server {status or 'accepted'} {message[:300]}; offline {expected or offline}")
            elif status:
                assert status in (400, 404, 422), (where, status, message)
                field = expected[0].split("[")[0].rsplit(".", 1)[-1]
                if status == 422 and field not in message:
                    disagree.append(f"{where}: the server's message does not name {field}: {message[:300]}")
                server_side.append(where)
            elif offline:
                operator_side.append(where)
            if path.parent.name == "invalid":
                assert offline, f"{where}: kubetune validate accepts an invalid manifest"
            else:
                assert not offline and not status, f"{where}: an example is refused: {offline or message}"
    assert not disagree, "\n".join(disagree)
    print("server-side:", len(server_side), "operator-side:", [str(p) for p in operator_side])
    assert len(server_side) >= 30 and len(operator_side) >= 5, (server_side, operator_side)


@pytest.mark.skipif(os.environ.get("KUBETUNE_E2E_OPERATOR") != "1",
                    reason="set KUBETUNE_E2E_OPERATOR=1 after `helm install` of the operator (README, cluster quickstart)")
def test_a_round_runs_on_the_cluster_and_deleting_the_study_cleans_up(k8s, crds_installed):
    if k8s.envtest:
        pytest.skip("envtest is an API server only: no nodes run the trial image")
    kubernetes = pytest.importorskip("kubernetes")
    custom = kubernetes.client.CustomObjectsApi(crds_installed)
    core = kubernetes.client.CoreV1Api(crds_installed)
    ns = os.environ.get("KUBETUNE_E2E_NAMESPACE", "default")
    suffix = uuid.uuid4().hex[:6]
    study = yaml.safe_load((ROOT / "examples" / "quickstart" / "study.yaml").read_text())
    rnd = yaml.safe_load((ROOT / "examples" / "quickstart" / "round.yaml").read_text())
    study["metadata"]["name"] = f"e2e-{suffix}"
    rnd["metadata"]["name"] = f"e2e-{suffix}"
    rnd["spec"]["studyRef"]["name"] = study["metadata"]["name"]
    rnd["spec"]["budget"] = {"maxTrials": 4, "parallelism": 2}
    rnd["spec"].pop("reruns", None)
    obj = apply_and_finish(custom, ns, study, rnd)
    assert (obj.get("status") or {}).get("phase") == "Succeeded", obj.get("status")
    out = subprocess.run(["kubectl", "get", "tuning", "-n", ns], capture_output=True, text=True)
    assert rnd["metadata"]["name"] in out.stdout
    custom.delete_namespaced_custom_object("kubetune.io", "v1alpha1", ns, "studies", study["metadata"]["name"])
    label = f"kubetune.io/round={rnd['metadata']['name']}"
    for _ in range(120):
        trials = custom.list_namespaced_custom_object("kubetune.io", "v1alpha1", ns, "trials", label_selector=label)
        pods = core.list_namespaced_pod(ns, label_selector=label)
        if not trials["items"] and not pods.items:
            break
        time.sleep(2)
    assert not trials["items"] and not pods.items, "the garbage collector did not follow the owner references"
