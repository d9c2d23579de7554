"""The chart grants RBAC for exactly the workload kinds enabled in values.yaml, and tells the
operator the same kinds (KUBETUNE_WORKLOAD_KINDS)."""
from __future__ import annotations

import pytest

from kubetune.controller.workload_handlers import WatchedKind, enabled_kinds

from .helm import allows, render

KINDS = {"job": ("batch", "jobs"), "jobSet": ("jobset.x-k8s.io", "jobsets"), "pyTorchJob": ("kubeflow.org", "pytorchjobs")}


def _role_and_kinds(*values: str):
    docs = render(*values)
    roles = [d for d in docs if d["kind"] in ("Role", "ClusterRole")]
    (dep,) = [d for d in docs if d["kind"] == "Deployment"]
    env = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    return roles, enabled_kinds({"KUBETUNE_WORKLOAD_KINDS": env["KUBETUNE_WORKLOAD_KINDS"]})


@pytest.mark.parametrize("enabled", [(), ("job",), ("jobSet", "pyTorchJob"), ("job", "jobSet", "pyTorchJob")])
def test_rbac_and_the_operators_kinds_follow_the_values(enabled):
    values = [f"workloads.{k}={'true' if k in enabled else 'false'}" for k in KINDS]
    roles, kinds = _role_and_kinds(*values)
    assert {k.plural for k in kinds} == {KINDS[k][1] for k in enabled}
    for role in roles:
        for key, (group, plural) in KINDS.items():
            for verb in ("get", "list", "watch", "create", "patch", "delete"):
                assert allows(role["rules"], group, plural, verb) == (key in enabled), (key, verb)
            assert not allows(role["rules"], group, plural, "update")


def test_by_default_only_jobs_and_other_kinds_by_name():
    roles, kinds = _role_and_kinds()
    assert kinds == (WatchedKind("batch/v1", "Job", "jobs"),)
    roles, kinds = _role_and_kinds("workloads.other[0].apiVersion=ray.io/v1", "workloads.other[0].kind=RayJob",
                                   "workloads.other[0].plural=rayjobs", "watch.clusterWide=true")
    assert WatchedKind("ray.io/v1", "RayJob", "rayjobs") in kinds
    (role,) = roles
    assert role["kind"] == "ClusterRole" and allows(role["rules"], "ray.io", "rayjobs", "create")
    assert not allows(role["rules"], "ray.io", "rayclusters", "create")


def test_the_pod_monitor_scrapes_pod_trials_and_primary_replicas_only():
    (pm,) = [d for d in render("trials.podMonitor=true") if d["kind"] == "PodMonitor"]
    exprs = pm["spec"]["selector"]["matchExpressions"]
    assert {"key": "kubetune.io/trial", "operator": "Exists"} in exprs
    assert {"key": "kubetune.io/role", "operator": "NotIn", "values": ["replica"]} in exprs
