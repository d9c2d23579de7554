"""A Round whose trials run as batch/v1 Jobs on a real cluster (the operator installed by Helm,
with workloads.job enabled, the default): every trial succeeds through the real Job
controller and kubelet, each Job is owned by its Trial, and deleting the Study removes the
Jobs and their pods. Skips, saying why, without a cluster or without the operator."""
from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest
import yaml

from .conftest import apply_and_finish
from .test_cluster import crds_installed  # noqa: F401 - the fixture, applied once per module

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(os.environ.get("KUBETUNE_E2E_OPERATOR") != "1",
                    reason="set KUBETUNE_E2E_OPERATOR=1 after `helm install` of the operator (README, cluster quickstart)")
def test_a_job_round_runs_on_the_cluster_and_deleting_the_study_removes_the_jobs(k8s, crds_installed):  # noqa: F811
    if k8s.envtest:
        pytest.skip("envtest is an API server only: no Job controller or nodes run the trial image")
    kubernetes = pytest.importorskip("kubernetes")
    custom = kubernetes.client.CustomObjectsApi(crds_installed)
    batch = kubernetes.client.BatchV1Api(crds_installed)
    core = kubernetes.client.CoreV1Api(crds_installed)
    ns = os.environ.get("KUBETUNE_E2E_NAMESPACE", "default")
    suffix = uuid.uuid4().hex[:6]
    study, rnd = yaml.safe_load_all((ROOT / "examples" / "workloads" / "job-study.yaml").read_text())
    study["metadata"]["name"] = f"e2e-job-{suffix}"
    rnd["metadata"]["name"] = f"e2e-job-{suffix}"
    rnd["spec"]["studyRef"]["name"] = study["metadata"]["name"]
    rnd["spec"]["budget"] = {"maxTrials": 2, "parallelism": 2}
    image = os.environ.get("KUBETUNE_E2E_TRIAL_IMAGE")
    if image:
        study["spec"]["workload"]["spec"]["template"]["spec"]["containers"][0]["image"] = image
    label = f"kubetune.io/round={rnd['metadata']['name']}"
    obj = apply_and_finish(custom, ns, study, rnd)
    assert (obj.get("status") or {}).get("phase") == "Succeeded", obj.get("status")
    trials = {t["metadata"]["name"]: t for t in custom.list_namespaced_custom_object(
        "kubetune.io", "v1alpha1", ns, "trials", label_selector=label)["items"]}
    jobs = batch.list_namespaced_job(ns, label_selector=label).items
    assert len(jobs) == 2
    for job in jobs:
        trial = trials[job.metadata.labels["kubetune.io/trial"]]
        assert job.metadata.owner_references[0].uid == trial["metadata"]["uid"]
        assert trial["status"]["phase"] == "Succeeded" and trial["status"]["final"]
    custom.delete_namespaced_custom_object("kubetune.io", "v1alpha1", ns, "studies", study["metadata"]["name"])
    for _ in range(120):
        left = (batch.list_namespaced_job(ns, label_selector=label).items,
                core.list_namespaced_pod(ns, label_selector=label).items)
        if not any(left):
            break
        time.sleep(2)
    assert not any(left), "the garbage collector did not follow the owner references to the Jobs and their pods"
