"""Trials that run as a Job, JobSet, PyTorchJob or another kind: the API's checks, the
workload kubetune builds, and how the core reads a workload's state."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from kubetune.api.validation import problems
from kubetune.api.workload import Workload, evaluate
from kubetune.controller.pods import primary_pod, workload_view
from kubetune.core.trial_plan import plan_trial
from kubetune.workload import queue_name, render_pod, render_workload, training_container, trial_workload

from .factories import round_, study, trial

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "workloads"


def _examples() -> dict[str, dict]:
    out = {}
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            out[f"{path.stem}/{doc['kind']}"] = doc
    return out


def test_the_workload_examples_are_valid_and_cover_each_kind():
    docs = _examples()
    assert all(problems(d) == [] for d in docs.values()), {k: problems(d) for k, d in docs.items()}
    kinds = {d["spec"]["workload"]["kind"] for d in docs.values() if d["kind"] == "Study"}
    assert kinds == {"Job", "JobSet", "PyTorchJob"}
    pt = docs["pytorchjob-study/Study"]["spec"]["workload"]["spec"]["pytorchReplicaSpecs"]
    assert set(pt) == {"Master", "Worker"}
    for replica in pt.values():  # a 2-node job: torchrun in each, a GPU per worker
        c = replica["template"]["spec"]["containers"][0]
        assert c["command"][0] == "torchrun" and "--nnodes=2" in c["command"]
        assert c["resources"]["limits"]["nvidia.com/gpu"] == 1


def _wl(kind: str = "PyTorchJob") -> dict:
    return copy.deepcopy({
        "PyTorchJob": _examples()["pytorchjob-study/Study"],
        "JobSet": _examples()["jobset-study/Study"],
        "Job": _examples()["job-study/Study"],
    }[kind]["spec"]["workload"])


def _study(kind: str = "PyTorchJob", **spec):
    return study(template=None, workload=_wl(kind), **spec)


def test_parameters_reach_every_container_of_every_replica_never_through_a_shell():
    s = _study()
    t = trial(2, {"learning_rate": 0.01, "cmd": "$(id)"})
    body = render_workload(s, t, s.spec.workload, "r-2-a1", 1)
    assert body["apiVersion"] == "kubeflow.org/v1" and body["kind"] == "PyTorchJob"
    assert body["metadata"]["ownerReferences"][0]["kind"] == "Trial"
    assert body["metadata"]["ownerReferences"][0]["controller"] is True
    replicas = body["spec"]["pytorchReplicaSpecs"]
    for name, replica in replicas.items():
        meta = replica["template"]["metadata"]
        assert meta["labels"]["kubetune.io/trial"] == "r-2" and meta["labels"]["kubetune.io/attempt"] == "1"
        assert meta["labels"]["kubetune.io/role"] == ("primary" if name == "Master" else "replica")
        for c in replica["template"]["spec"]["containers"]:
            env = {e["name"]: e["value"] for e in c["env"]}
            assert json.loads(env["KUBETUNE_PARAMS"])["cmd"] == "$(id)"
            assert env["KUBETUNE_PARAM_LEARNING_RATE"] == "0.01" and env["KUBETUNE_SEED"] == "2"
            assert env["KUBETUNE_MAX_STEPS"] == "20"
            assert c["command"][0] == "torchrun"  # untouched
    master = replicas["Master"]["template"]
    assert master["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert "annotations" not in replicas["Worker"]["template"]["metadata"]
    assert s.spec.workload.spec["pytorchReplicaSpecs"]["Master"]["template"].get("metadata") is None  # a copy


def test_a_queue_name_labels_and_suspends_the_workload_for_kueue():
    for kind, path in (("Job", ("suspend",)), ("JobSet", ("suspend",)), ("PyTorchJob", ("runPolicy", "suspend"))):
        s = _study(kind)
        body = render_workload(s, trial(0, {}), s.spec.workload, "w", 1, queue="team-a")
        assert body["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
        node = body["spec"]
        for key in path:
            node = node[key]
        assert node is True, kind
        plain = render_workload(s, trial(0, {}), s.spec.workload, "w", 1)
        assert "kueue.x-k8s.io/queue-name" not in plain["metadata"]["labels"]
    pod = render_pod(study(queueName="team-b"), trial(0, {}), "p", 1, queue="team-b")
    assert pod["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-b"


def test_a_rounds_workload_and_queue_replace_the_studys():
    s = _study("PyTorchJob", queueName="team-a")
    r = round_(workload=_wl("Job"), queueName="team-b")
    assert trial_workload(s, r).kind == "Job" and queue_name(s, r) == "team-b"
    assert trial_workload(s, round_()).kind == "PyTorchJob" and queue_name(s, round_()) == "team-a"
    assert trial_workload(study(), round_()) is None
    assert training_container(s, r) == "train" and training_container(s) == "pytorch"


def test_other_kinds_need_their_conditions_and_they_must_be_cel():
    ray = {"apiVersion": "ray.io/v1", "kind": "RayJob",
           "spec": {"rayClusterSpec": {"headGroupSpec": {"template": {"spec": {"containers": [
               {"name": "head", "image": "ray"}]}}}}},
           "successCondition": 'object.status.jobStatus == "SUCCEEDED"',
           "failureCondition": 'object.status.jobStatus == "FAILED"'}
    wl = Workload.model_validate(ray)
    assert evaluate(wl.success(), {"status": {"jobStatus": "SUCCEEDED"}})
    assert not evaluate(wl.failure(), {"status": {"jobStatus": "SUCCEEDED"}})
    assert not evaluate(wl.success(), {"status": {}})  # not written yet: not true
    with pytest.raises(ValueError, match="failureCondition"):
        Workload.model_validate({k: v for k, v in ray.items() if k != "failureCondition"})
    with pytest.raises(ValueError, match="successCondition: not a valid CEL expression"):
        Workload.model_validate({**ray, "successCondition": "object.status.jobStatus =="})


def _job(conditions=(), suspend=False, name="w"):
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "labels": {"kubetune.io/attempt": "1"}},
            "spec": {"suspend": suspend},
            "status": {"conditions": [{"type": t, "status": "True", "reason": r, "message": m}
                                      for t, r, m in conditions]}}


def _pod(name, phase, labels=None, term=None, created="2026-01-01T00:00:00Z"):
    state = {"terminated": {"exitCode": 0 if phase == "Succeeded" else 1, "message": term}} if term else {}
    return {"metadata": {"name": name, "creationTimestamp": created,
                         "labels": {"kubetune.io/role": "primary", "kubetune.io/attempt": "1", **(labels or {})}},
            "status": {"phase": phase, "startTime": "2026-01-01T00:00:05Z",
                       "containerStatuses": [{"name": "train", "state": state}]}}


def test_a_job_is_queued_while_suspended_then_running_then_done_from_its_conditions():
    wl = Workload.model_validate(_wl("Job"))
    queued = workload_view(_job(suspend=True), [], wl, "train")
    assert queued.phase == "Pending" and queued.queued
    plan = plan_trial(trial(0, {}, ), queued, metric="val_loss", direction="minimize", strategy="best",
                      max_retries=1, now=__import__("datetime").datetime(2026, 1, 1))
    assert plan.status.phase == "Pending" and plan.status.reason == "Queued" and "Kueue" in plan.status.message
    assert workload_view(_job(), [_pod("w-x", "Pending")], wl, "train").phase == "Pending"
    assert workload_view(_job(), [_pod("w-x", "Running")], wl, "train").phase == "Running"
    done = json.dumps({"min": {"val_loss": 0.5}, "last": {"val_loss": 0.6}, "step": 10})
    view = workload_view(_job([("Complete", "", "")]),
                         [_pod("w-a", "Failed", created="2026-01-01T00:00:00Z"),
                          _pod("w-b", "Succeeded", term=done, created="2026-01-01T00:01:00Z")], wl, "train")
    assert view.phase == "Succeeded" and view.termination_message == done
    failed = workload_view(_job([("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")]),
                           [_pod("w-a", "Failed")], wl, "train")
    assert failed.phase == "Failed" and "backoff limit" in failed.message and failed.reason == "BackoffLimitExceeded"


def test_the_primary_pod_is_index_0_of_the_primary_replica():
    pods = [_pod("m-1", "Running", {"training.kubeflow.org/replica-index": "1"}),
            _pod("m-0", "Running", {"training.kubeflow.org/replica-index": "0"}),
            {**_pod("w-0", "Running"), "metadata": {"name": "w-0", "labels": {"kubetune.io/role": "replica"}}}]
    assert primary_pod(pods)["metadata"]["name"] == "m-0"
    jobset = [_pod("j-0-1", "Running", {"jobset.sigs.k8s.io/job-index": "0", "batch.kubernetes.io/job-completion-index": "1"}),
              _pod("j-0-0", "Running", {"jobset.sigs.k8s.io/job-index": "0", "batch.kubernetes.io/job-completion-index": "0"})]
    assert primary_pod(jobset)["metadata"]["name"] == "j-0-0"


def test_one_replicas_eviction_is_not_a_trial_failure():
    """The workload's controller restarts what it restarts; only its conditions end the trial."""
    wl = Workload.model_validate(_wl("JobSet"))
    obj = {"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "metadata": {"name": "w"}, "spec": {},
           "status": {"restarts": 1, "conditions": []}}
    evicted = {**_pod("w-0", "Failed"), "status": {"phase": "Failed", "reason": "Evicted"}}
    view = workload_view(obj, [evicted, _pod("w-1", "Running", created="2026-01-01T00:02:00Z")], wl, "trainer")
    assert view.phase == "Running" and not view.disrupted


def test_a_pod_gated_by_kueue_is_queued():
    from kubetune.controller.pods import pod_view

    pod = {"metadata": {"name": "p"}, "spec": {"schedulingGates": [{"name": "kueue.x-k8s.io/admission"}]},
           "status": {"phase": "Pending"}}
    assert pod_view(pod, "train").queued
    assert not pod_view({**pod, "spec": {}}, "train").queued


def test_the_kinds_the_operator_watches_come_from_the_environment():
    from kubetune.controller.workload_handlers import DEFAULT_KINDS, WatchedKind, enabled_kinds

    assert enabled_kinds({}) == DEFAULT_KINDS and {k.kind for k in DEFAULT_KINDS} == {"Job", "JobSet", "PyTorchJob"}
    kinds = enabled_kinds({"KUBETUNE_WORKLOAD_KINDS": '[{"apiVersion": "ray.io/v1", "kind": "RayJob", "plural": "rayjobs"}]'})
    assert kinds == (WatchedKind("ray.io/v1", "RayJob", "rayjobs"),) and kinds[0].group == "ray.io"
    with pytest.raises(SystemExit, match="KUBETUNE_WORKLOAD_KINDS"):
        enabled_kinds({"KUBETUNE_WORKLOAD_KINDS": "jobs"})


def test_a_workload_kueue_preempts_goes_back_to_queued_without_a_failure():
    import datetime as dt

    wl = Workload.model_validate(_wl("Job"))
    t = trial(0, {})
    t.status.phase, t.status.pod_name, t.status.attempts = "Running", "w", 1
    plan = plan_trial(t, workload_view(_job(suspend=True), [], wl, "train"), metric="val_loss",
                      direction="minimize", strategy="best", max_retries=0, now=dt.datetime(2026, 1, 1))
    assert (plan.status.phase, plan.status.reason, plan.status.attempts) == ("Pending", "Queued", 1)
    assert plan.create_pod is None and plan.delete_pod is None


def test_kubectl_get_shows_why_a_trial_is_pending():
    from kubetune.api.crdgen import crd_by_kind

    columns = {c["name"]: c for c in crd_by_kind()["Trial"]["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert columns["Reason"]["jsonPath"] == ".status.reason" and "priority" not in columns["Reason"]
