"""Trials that run as Jobs, JobSets and PyTorchJobs, against a real API server with the real
Job controller and garbage collector (kube-controller-manager), stand-ins for the JobSet,
PyTorchJob and Kueue controllers (workload_controllers.py) and the kubelet stand-in."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any, AsyncIterator

import kubernetes
import pytest

from kubetune.api.trial import CurvePoint, StopReason

from ..envtest import CRDS, ApiServer
from .conftest import NS, TRAINER, Api, create, live, round_manifest, serving, start_operator, study_manifest, wait_for
from .kubelet import Kubelet
from .workload_controllers import JobSetController, Kueue, PyTorchJobController

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "crds"
WORKER = ["python", "-c", "import time; time.sleep(120)"]  # a replica that trains but does not report


@pytest.fixture()
async def wworld(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """A real API server with kubetune's, JobSet's and PyTorchJob's CRDs and the Job controller
    running; the kubelet, JobSet, PyTorchJob and Kueue stand-ins; all stopped afterwards."""
    crds = tmp_path / "crds"
    crds.mkdir()
    for path in [*CRDS.glob("*.yaml"), *FIXTURES.glob("*.yaml")]:
        shutil.copy(path, crds / path.name)
    monkeypatch.setenv("ENVTEST_KCM_CONTROLLERS", "garbagecollector,namespace,serviceaccount,serviceaccount-token,job")
    logging.getLogger("kopf").setLevel(logging.WARNING)
    with serving(ApiServer(crds=crds), monkeypatch) as server:
        api = Api(server)
        (tmp_path / "targets.json").write_text("[]")
        kubelet = Kubelet(api.client, NS, tmp_path, targets_file=tmp_path / "targets.json").start()
        kueue = Kueue(api.client, NS, capacity=1)
        loops = [JobSetController(api.client, NS).start(), PyTorchJobController(api.client, NS).start(), kueue.start()]
        world: dict[str, Any] = {"api": api, "kubelet": kubelet, "operators": [], "tmp": tmp_path, "server": server,
                                 "kueue": kueue, "jobsets": loops[0], "loops": loops}
        try:
            yield world
        finally:
            for op in world["operators"]:
                await op.stop()
            for loop in loops:
                loop.stop()
            kubelet.stop()


def _objects(api: Api, group: str, version: str, plural: str) -> dict[str, dict]:
    custom = kubernetes.client.CustomObjectsApi(api.client)
    return {o["metadata"]["name"]: o for o in
            custom.list_namespaced_custom_object(group, version, NS, plural, _request_timeout=10)["items"]}


def _trials(api: Api) -> dict[str, dict]:
    return live(api, "trials")


def _phases(api: Api) -> dict[str, Any]:
    return {n: ((t.get("status") or {}).get("phase"), (t.get("status") or {}).get("reason"),
                (t.get("status") or {}).get("message")) for n, t in _trials(api).items()}


def _job_workload(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "container": "train", "spec": {
        "backoffLimit": 0,
        "template": {"spec": {"restartPolicy": "Never", "containers": [
            {"name": "train", "image": "kubetune/trial:test", "command": ["python", TRAINER]},
            {"name": "sidecar", "image": "busybox", "command": ["sleep", "1"]}]}}, **spec}}


async def test_a_job_round_queued_through_kueue_runs_every_trial_and_cleans_up(wworld):
    """Jobs are created suspended with the queue label; a trial waiting for Kueue is
    Pending/Queued; no more than `parallelism` workloads exist and `capacity` are admitted;
    the results come from each Job's pod; deleting the Study removes Jobs and pods."""
    api, kueue = wworld["api"], wworld["kueue"]
    await start_operator(wworld)
    study = study_manifest(max_steps=10, queueName="team-a", workload=_job_workload())
    del study["spec"]["template"]
    await create(api, study)
    await create(api, round_manifest(max_trials=3, parallelism=2))

    seen_queued: set[str] = set()
    peak_jobs = 0

    def done() -> bool:
        nonlocal peak_jobs
        for name, (phase, reason, _) in _phases(api).items():
            ready = next((c for c in (_trials(api)[name].get("status") or {}).get("conditions") or []
                          if c.get("type") == "Ready"), {})
            if phase == "Pending" and reason == "Queued" and ready.get("reason") == "Queued":  # kubectl wait, Argo see it too
                seen_queued.add(name)
        jobs = _objects(api, "batch", "v1", "jobs")
        peak_jobs = max(peak_jobs, sum(1 for j in jobs.values() if not any(
            c["type"] in ("Complete", "Failed") and c["status"] == "True"
            for c in (j.get("status") or {}).get("conditions") or [])))
        rnd = live(api, "rounds").get("r1") or {}
        return (rnd.get("status") or {}).get("phase") == "Succeeded"

    await wait_for(done, 120, "the Round to succeed", detail=lambda: (_phases(api), kueue.errors, wworld["kubelet"].errors))
    trials = _trials(api)
    assert sorted(trials) == ["r1-0", "r1-1", "r1-2"]
    assert all(t["status"]["phase"] == "Succeeded" and t["status"]["final"]["val_loss"] > 0 for t in trials.values())
    assert all(0 < t["status"]["objective"] <= t["status"]["final"]["val_loss"] for t in trials.values())
    assert seen_queued, "no trial was ever Pending with reason Queued"
    assert kueue.peak == 1 and peak_jobs <= 2 and len(kueue.admissions) == 3
    jobs = _objects(api, "batch", "v1", "jobs")
    assert len(jobs) == 3
    for job in jobs.values():
        trial = trials[job["metadata"]["labels"]["kubetune.io/trial"]]
        assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
        ref = job["metadata"]["ownerReferences"][0]
        assert ref["uid"] == trial["metadata"]["uid"] and ref["controller"] is True
        assert trial["status"]["podName"] == job["metadata"]["name"]
    pods = live(api, "pods")
    assert len(pods) == 3
    for pod in pods.values():
        trial = trials[pod["metadata"]["labels"]["kubetune.io/trial"]]
        assert pod["metadata"]["labels"]["kubetune.io/role"] == "primary"
        for c in pod["spec"]["containers"]:  # every container gets the parameters
            env = {e["name"]: e["value"] for e in c["env"]}
            assert json.loads(env["KUBETUNE_PARAMS"]) == trial["spec"]["parameters"]

    resp = await api.delete(f"/apis/kubetune.io/v1alpha1/namespaces/{NS}/studies/demo")
    assert resp.status == 200

    def left() -> dict[str, list[str]]:
        out = {"trials": sorted(_trials(api)), "jobs": sorted(_objects(api, "batch", "v1", "jobs")),
               "pods": sorted(live(api, "pods"))}
        return {k: v for k, v in out.items() if v}

    await wait_for(lambda: not left(), 60, "the garbage collector to remove Trials, Jobs and pods", detail=left)


def _pytorchjob(workers: int = 2) -> dict[str, Any]:
    def replica(command: list[str], n: int) -> dict[str, Any]:
        return {"replicas": n, "restartPolicy": "OnFailure", "template": {"spec": {"containers": [
            {"name": "pytorch", "image": "kubetune/trial:test", "command": command,
             "resources": {"limits": {"nvidia.com/gpu": 1}}}]}}}
    return {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "container": "pytorch",
            "spec": {"pytorchReplicaSpecs": {"Master": replica(["python", TRAINER], 1), "Worker": replica(WORKER, workers)}}}


class _Curves:
    """Stands in for Prometheus: a curve for every running trial, so the stopping rule runs."""

    def observe(self, namespace, round_name, trial, metric, start, end):
        return [CurvePoint(step=1, value=1.0), CurvePoint(step=2, value=0.9)], None

    def forget_round(self, namespace, round_name):
        pass

    def done(self, namespace, trial):
        pass


async def test_a_multi_replica_pytorchjob_reports_from_its_master_and_early_stop_removes_every_replica(
        wworld, monkeypatch):
    """A Round of two 3-replica PyTorchJobs: the one the stopping rule stops loses every replica
    (and the PyTorchJob); the other's result comes from the Master's termination message."""
    from kubetune.controller import handlers

    replicas_0 = {f"r1-0-a1-{r}" for r in ("master-0", "worker-0", "worker-1")}

    def stop_r1_0(s, trial, curve, peers):
        # once every replica runs: the stop must end processes of all three (the Trial is
        # Running as soon as its Master runs, and a stop before the workers started raced them)
        if trial.metadata.name != "r1-0" or not replicas_0 <= set(wworld["kubelet"].started):
            return None
        return StopReason(rule="median", step=2, message="r1-0 is worse than the median at step 2",
                          evidence={"median": 0.5, "value": 0.9})

    monkeypatch.setattr(handlers, "stop_decision", stop_r1_0)
    api = wworld["api"]
    op = await start_operator(wworld)
    op.cfg.curves = _Curves()
    study = study_manifest(max_steps=40, workload=_pytorchjob(), queueName="team-a")  # Kueue admits one at a time
    del study["spec"]["template"]
    study["spec"]["baseline"]["step_seconds"] = 0.1
    await create(api, study)
    await create(api, round_manifest(max_trials=2, parallelism=2))

    def pods_of(trial: str) -> list[str]:
        return [n for n, p in live(api, "pods").items() if p["metadata"]["labels"].get("kubetune.io/trial") == trial]

    queued: set[str] = set()

    def stopped() -> bool:
        phases = _phases(api)
        queued.update(n for n, (phase, reason, _) in phases.items() if (phase, reason) == ("Pending", "Queued"))
        return phases.get("r1-0", (None,))[0] == "EarlyStopped"

    await wait_for(stopped, 90, "r1-0 to stop early",
                   detail=lambda: (_phases(api), [loop.errors for loop in wworld["loops"]]))
    t0 = _trials(api)["r1-0"]
    assert t0["status"]["stopReason"]["evidence"] == {"median": 0.5, "value": 0.9}
    await wait_for(lambda: not pods_of("r1-0") and "r1-0-a1" not in _objects(api, "kubeflow.org", "v1", "pytorchjobs"),
                   60, "every replica of r1-0 and its PyTorchJob to go", detail=lambda: pods_of("r1-0"))
    kubelet = wworld["kubelet"]
    await wait_for(lambda: not [n for n, p in list(kubelet.procs.items()) if n.startswith("r1-0") and p[0].poll() is None],
                   20, "every replica's process of r1-0 to end")

    await wait_for(lambda: _phases(api).get("r1-1", (None,))[0] == "Succeeded", 90, "r1-1 to succeed",
                   detail=lambda: _phases(api))
    t1 = _trials(api)["r1-1"]
    assert t1["status"]["final"]["val_loss"] > 0 and t1["status"]["lastStep"] == 40
    # suspended (runPolicy.suspend), queued while the other held the quota, then admitted
    assert queued and wworld["kueue"].peak == 1 and sorted(wworld["kueue"].admissions) == ["r1-0-a1", "r1-1-a1"]
    assert sorted(wworld["kubelet"].started) == sorted(
        f"r1-{i}-a1-{r}" for i in (0, 1) for r in ("master-0", "worker-0", "worker-1"))
    master = live(api, "pods")["r1-1-a1-master-0"]
    assert master["metadata"]["labels"]["kubetune.io/role"] == "primary"
    assert master["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    job = _objects(api, "kubeflow.org", "v1", "pytorchjobs")["r1-1-a1"]
    for replica in job["spec"]["pytorchReplicaSpecs"].values():
        env = {e["name"] for e in replica["template"]["spec"]["containers"][0]["env"]}
        assert {"KUBETUNE_PARAMS", "KUBETUNE_PARAM_LEARNING_RATE", "KUBETUNE_SEED", "KUBETUNE_MAX_STEPS"} <= env


async def test_a_jobset_restart_after_an_eviction_is_not_a_trial_failure(wworld):
    """One pod of a 2-pod JobSet is evicted: its Job fails, the JobSet restarts (new Jobs), and
    the trial goes on to succeed with the result of the new index-0 pod."""
    api, kubelet = wworld["api"], wworld["kubelet"]
    await start_operator(wworld)
    workload = {"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "spec": {
        "failurePolicy": {"maxRestarts": 2},
        "replicatedJobs": [{"name": "trainer", "replicas": 1, "template": {"spec": {
            "parallelism": 2, "completions": 2, "completionMode": "Indexed", "backoffLimit": 0,
            "template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "trainer", "image": "kubetune/trial:test", "command": ["python", TRAINER]}]}}}}}]}}
    study = study_manifest(max_steps=30, workload=workload)
    del study["spec"]["template"]
    study["spec"]["baseline"]["step_seconds"] = 0.1
    await create(api, study)
    await create(api, round_manifest(max_trials=1, parallelism=1))

    def running_index(index: str) -> str | None:
        for name, pod in live(api, "pods").items():
            labels = pod["metadata"]["labels"]
            if labels.get("batch.kubernetes.io/job-completion-index") == index and name in kubelet.procs \
                    and kubelet.procs[name][0].poll() is None:
                return name
        return None

    await wait_for(lambda: running_index("1") is not None and _phases(api).get("r1-0", (None,))[0] == "Running",
                   60, "the JobSet's pods to run", detail=lambda: (_phases(api), wworld["jobsets"].errors))
    kubelet.evict(running_index("1"))
    await wait_for(lambda: wworld["jobsets"].restarted, 60, "the JobSet to restart", detail=lambda: wworld["jobsets"].errors)
    await wait_for(lambda: _phases(api)["r1-0"][0] in ("Succeeded", "Failed"), 90, "the trial to end",
                   detail=lambda: _phases(api))
    t = _trials(api)["r1-0"]
    assert t["status"]["phase"] == "Succeeded", t["status"]
    assert t["status"]["attempts"] == 1 and t["status"]["final"]["val_loss"] > 0
    js = _objects(api, "jobset.x-k8s.io", "v1alpha2", "jobsets")["r1-0-a1"]
    assert js["status"]["restarts"] == 1


async def test_a_workload_kind_that_is_not_installed_is_said_on_the_trial(wworld, monkeypatch, caplog):
    api = wworld["api"]
    monkeypatch.setenv("KUBETUNE_WORKLOAD_KINDS", json.dumps([
        {"apiVersion": "batch/v1", "kind": "Job", "plural": "jobs"},
        {"apiVersion": "ray.io/v1", "kind": "RayJob", "plural": "rayjobs"}]))
    caplog.set_level(logging.WARNING, logger="kubetune")
    await start_operator(wworld)
    workload = {"apiVersion": "ray.io/v1", "kind": "RayJob",
                "successCondition": 'object.status.jobStatus == "SUCCEEDED"',
                "failureCondition": 'object.status.jobStatus == "FAILED"',
                "spec": {"rayClusterSpec": {"headGroupSpec": {"template": {"spec": {"containers": [
                    {"name": "head", "image": "rayproject/ray", "command": ["python", TRAINER]}]}}}}}}
    study = study_manifest(workload=workload)
    del study["spec"]["template"]
    await create(api, study)
    await create(api, round_manifest(max_trials=1, parallelism=1))

    def ready() -> dict[str, Any]:
        t = _trials(api).get("r1-0") or {}
        return {c["type"]: c for c in (t.get("status") or {}).get("conditions") or []}.get("Ready") or {}

    await wait_for(lambda: ready().get("reason") == "WorkloadKindNotInstalled", 60, "Ready=False on the trial",
                   detail=lambda: (_phases(api), ready()))
    assert ready()["status"] == "False" and "install its CRD" in ready()["message"]
    assert any("RayJob" in r.getMessage() and "not installed" in r.getMessage() for r in caplog.records)
    # and a kind the operator does not watch (not enabled in values.yaml) is said too
    pt = _pytorchjob(workers=1)
    rnd = round_manifest(name="r2", max_trials=1, parallelism=1, workload=pt)
    await create(api, rnd)

    def ready2() -> dict[str, Any]:
        t = _trials(api).get("r2-0") or {}
        return {c["type"]: c for c in (t.get("status") or {}).get("conditions") or []}.get("Ready") or {}

    await wait_for(lambda: ready2().get("reason") == "WorkloadKindNotEnabled", 60, "Ready=False on r2-0",
                   detail=lambda: (_phases(api), ready2()))
    assert "values.yaml" in ready2()["message"]
    assert not _objects(api, "kubeflow.org", "v1", "pytorchjobs")


async def test_early_stop_suspends_then_deletes_a_job_and_a_job_the_api_server_refuses_fails_its_trial(
        wworld, monkeypatch):
    from kubetune.controller import handlers

    def stop_all(s, trial, curve, peers):
        return StopReason(rule="median", step=2, message="worse than the median", evidence={"median": 0.5})

    monkeypatch.setattr(handlers, "stop_decision", stop_all)
    api = wworld["api"]
    op = await start_operator(wworld)
    op.cfg.curves = _Curves()
    patches: list[tuple[str, dict]] = []
    real_patch = op.cfg.kube.patch_object

    def recording_patch(api_version, plural, namespace, name, patch):
        patches.append((name, patch))
        return real_patch(api_version, plural, namespace, name, patch)

    op.cfg.kube.patch_object = recording_patch  # type: ignore[method-assign]
    study = study_manifest(max_steps=200, workload=_job_workload())
    del study["spec"]["template"]
    await create(api, study)
    await create(api, round_manifest(max_trials=1, parallelism=1))
    await wait_for(lambda: _phases(api).get("r1-0", (None,))[0] == "EarlyStopped", 60, "r1-0 to stop early",
                   detail=lambda: _phases(api))
    assert patches == [("r1-0-a1", {"spec": {"suspend": True}})]  # suspended first, then deleted
    await wait_for(lambda: not _objects(api, "batch", "v1", "jobs") and not live(api, "pods"), 60,
                   "the Job and its pod to go", detail=lambda: (list(_objects(api, "batch", "v1", "jobs")), list(live(api, "pods"))))

    # a Round whose Job the API server refuses (a Job's pods may not restart Always): the trial fails, saying why
    bad = _job_workload()
    bad["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    await create(api, round_manifest(name="r2", max_trials=1, parallelism=1, workload=bad))
    await wait_for(lambda: _phases(api).get("r2-0", (None,))[0] == "Failed", 60, "r2-0 to fail",
                   detail=lambda: _phases(api))
    message = _trials(api)["r2-0"]["status"]["message"]
    assert message.startswith("the API server refused the Job") and "restartPolicy" in message, message


async def test_a_kind_kubetune_does_not_know_runs_by_its_cel_conditions(wworld, monkeypatch):
    """example.com/v1 TrainJob (a made-up kind with no conditions): the Study's CEL rules over
    status.state say when it succeeded or failed; the pod templates are found in its spec."""
    from .workload_controllers import TrainJobController

    monkeypatch.setenv("KUBETUNE_WORKLOAD_KINDS", json.dumps([
        {"apiVersion": "example.com/v1", "kind": "TrainJob", "plural": "trainjobs"}]))
    controller = TrainJobController(wworld["api"].client, NS).start()
    wworld["loops"].append(controller)
    api = wworld["api"]
    await start_operator(wworld)
    workload = {"apiVersion": "example.com/v1", "kind": "TrainJob",
                "successCondition": 'has(object.status) && has(object.status.state) && object.status.state == "Done"',
                "failureCondition": 'has(object.status) && has(object.status.state) && object.status.state == "Error"',
                "spec": {"worker": {"replicas": 1, "template": {"spec": {"containers": [
                    {"name": "train", "image": "kubetune/trial:test", "command": ["python", TRAINER]}]}}}}}
    study = study_manifest(max_steps=8, workload=workload)
    del study["spec"]["template"]
    await create(api, study)
    await create(api, round_manifest(max_trials=2, parallelism=2, fixed={"crash": False}))
    await wait_for(lambda: len(_phases(api)) == 2 and all(p[0] in ("Succeeded", "Failed") for p in _phases(api).values()),
                   90, "both trials to end", detail=lambda: (_phases(api), controller.errors))
    trials = _trials(api)
    assert all(t["status"]["phase"] == "Succeeded" and t["status"]["final"]["val_loss"] > 0 for t in trials.values()), \
        _phases(api)
    jobs = _objects(api, "example.com", "v1", "trainjobs")
    assert sorted(jobs) == ["r1-0-a1", "r1-1-a1"]
    assert all(j["metadata"]["ownerReferences"][0]["kind"] == "Trial" for j in jobs.values())
    # a crash: the failureCondition fails the trial, saying why
    await create(api, round_manifest(name="r2", max_trials=1, parallelism=1, fixed={"crash": True}))
    await wait_for(lambda: _phases(api).get("r2-0", (None,))[0] == "Failed", 60, "r2-0 to fail",
                   detail=lambda: _phases(api))
    message = _trials(api)["r2-0"]["status"]["message"]
    assert "simulated crash" in message or "TrainJob" in message, message


async def test_a_round_that_ends_removes_the_workloads_of_its_running_trials(wworld):
    """Too many failures end the Round: its still-running trial's Job goes, with its pod."""
    api = wworld["api"]
    await start_operator(wworld)
    study = study_manifest(max_steps=3000, workload=_job_workload())
    del study["spec"]["template"]
    await create(api, study)
    rnd = round_manifest(max_trials=2, parallelism=2,
                         scientific=[{"name": "crash", "type": "categorical", "choices": [True, False]}])
    rnd["spec"]["budget"]["maxFailedTrials"] = 0
    await create(api, rnd)
    await wait_for(lambda: ((live(api, "rounds").get("r1") or {}).get("status") or {}).get("phase") == "Failed", 90,
                   "the Round to fail", detail=lambda: _phases(api))
    phases = _phases(api)
    assert sorted(p[0] for p in phases.values()) == ["Failed", "Failed"], phases
    survivor = next(n for n, t in _trials(api).items() if not t["spec"]["parameters"]["crash"])
    assert "the Round has ended" in phases[survivor][2]
    await wait_for(lambda: f"{survivor}-a1" not in _objects(api, "batch", "v1", "jobs")
                   and not [p for p in live(api, "pods").values()
                            if p["metadata"]["labels"].get("kubetune.io/trial") == survivor
                            and (p.get("status") or {}).get("phase") in ("Pending", "Running")],
                   60, "the running trial's Job and pod to go",
                   detail=lambda: (list(_objects(api, "batch", "v1", "jobs")), list(live(api, "pods"))))


async def test_the_primary_replicas_curve_reaches_the_trial_through_prometheus(wworld, prometheus):
    """A 2-replica PyTorchJob: the Master reports through the SDK, the Worker does not; the
    Trial's curve, read from a real Prometheus, is the Master's."""
    import math

    from kubetune.metrics.prometheus import PrometheusClient

    api = wworld["api"]
    await start_operator(wworld, prometheus=PrometheusClient(prometheus.url, timeout=2, retries=1))
    study = study_manifest(max_steps=10, workload=_pytorchjob(workers=1))
    del study["spec"]["template"]
    study["spec"]["baseline"]["step_seconds"] = 1.3
    await create(api, study)
    await create(api, round_manifest(max_trials=1, parallelism=1))
    await wait_for(lambda: _phases(api).get("r1-0", (None,))[0] == "Succeeded", 90, "the trial to succeed",
                   detail=lambda: _phases(api))
    t = _trials(api)["r1-0"]
    lr = t["spec"]["parameters"]["learning_rate"]
    curve = t["status"]["curve"]
    assert len(curve) >= 5, curve
    for point in curve:  # the trainer's curve (tests/integration/trainer.py)
        assert point["value"] == pytest.approx(0.05 + (math.log10(lr) + 2.0) ** 2 * 0.1 + 1.0 / math.sqrt(point["step"]))
    assert {c["type"]: c for c in t["status"]["conditions"]}["MetricsAvailable"]["status"] == "True"
