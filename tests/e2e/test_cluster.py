"""The cluster path of the README: CRDs on a real API server, the operator installed by Helm."""
from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml

from kubetune.api.crdgen import crd_by_kind
from kubetune.api.validation import _schemas, extension_problems

ROOT = Path(__file__).resolve().parents[2]


def _schema_level(doc: dict) -> bool:
    """Would the CRD schema or its CEL rules refuse this manifest (not only the models)?"""
    schema, validator = _schemas(doc["kind"])
    body = {k: v for k, v in doc.items() if k != "status"}
    return bool(list(validator.iter_errors(body)) or extension_problems(schema, body))


@pytest.fixture(scope="module")
def crds_installed(k8s):
    kubernetes = pytest.importorskip("kubernetes")
    client, _ = k8s
    api = kubernetes.client.ApiextensionsV1Api(client)
    for crd in crd_by_kind().values():
        try:
            api.create_custom_resource_definition(crd)
        except kubernetes.client.rest.ApiException as e:
            if e.status != 409:
                raise
            api.patch_custom_resource_definition(crd["metadata"]["name"], crd)
    time.sleep(3)
    return client


def test_the_api_server_refuses_the_invalid_corpus(crds_installed, tmp_path):
    kubernetes = pytest.importorskip("kubernetes")
    custom = kubernetes.client.CustomObjectsApi(crds_installed)
    checked = 0
    for path in sorted((ROOT / "tests" / "invalid").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        if doc.get("apiVersion") != "kubetune.io/v1alpha1" or not doc.get("metadata", {}).get("name"):
            continue
        if not _schema_level(doc):
            continue  # refused by the operator (Ready=False), not by the schema
        plural = {"Study": "studies", "Round": "rounds"}[doc["kind"]]
        expected = re.search(r"# expect: (\S+)", path.read_text()).group(1)
        with pytest.raises(kubernetes.client.rest.ApiException) as err:
            custom.create_namespaced_custom_object("kubetune.io", "v1alpha1", "default", plural, doc,
                                                   dry_run="All", field_validation="Strict")
        assert err.value.status in (400, 422), path.name
        assert expected.split(".")[-1].split("[")[0] in err.value.body, (path.name, err.value.body)
        checked += 1
    assert checked >= 25


def test_the_examples_are_accepted(crds_installed):
    kubernetes = pytest.importorskip("kubernetes")
    custom = kubernetes.client.CustomObjectsApi(crds_installed)
    for path in sorted((ROOT / "examples").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            plural = {"Study": "studies", "Round": "rounds"}[doc["kind"]]
            custom.create_namespaced_custom_object("kubetune.io", "v1alpha1", "default", plural, doc,
                                                   dry_run="All", field_validation="Strict")


@pytest.mark.skipif(os.environ.get("KUBETUNE_E2E_OPERATOR") != "1",
                    reason="set KUBETUNE_E2E_OPERATOR=1 after `helm install` of the operator (README, cluster quickstart)")
def test_a_round_runs_on_the_cluster_and_deleting_the_study_cleans_up(crds_installed):
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
    custom.create_namespaced_custom_object("kubetune.io", "v1alpha1", ns, "studies", study)
    custom.create_namespaced_custom_object("kubetune.io", "v1alpha1", ns, "rounds", rnd)
    deadline = time.time() + 900
    phase = None
    while time.time() < deadline:
        obj = custom.get_namespaced_custom_object("kubetune.io", "v1alpha1", ns, "rounds", rnd["metadata"]["name"])
        phase = (obj.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            break
        time.sleep(5)
    assert phase == "Succeeded", obj.get("status")
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
