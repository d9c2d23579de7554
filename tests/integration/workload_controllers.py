"""Stand-ins for the controllers of JobSet (jobset.x-k8s.io), PyTorchJob (Kubeflow's
training operator) and Kueue, for tests against a real API server. Like the kubelet
stand-in they are API clients in a thread: they only create children and flip status the
way the real controllers do (as far as kubetune reads it). Jobs are run by the real Job
controller of kube-controller-manager; pods by the kubelet stand-in.

- JobSet: one child Job per replicatedJob replica (labels jobset.sigs.k8s.io/*), the
  JobSet's suspend passed down; Completed when every child Job is Complete; a failed child
  Job restarts the whole JobSet (status.restarts + 1, new Jobs) up to
  failurePolicy.maxRestarts, then Failed.
- PyTorchJob: one pod per replica (labels training.kubeflow.org/*, env RANK); Succeeded
  when the Master (or, without one, Worker 0) succeeds, then the running pods are deleted
  (cleanPodPolicy Running); Failed when it fails; no pods while runPolicy.suspend.
- Kueue: admits suspended workloads labelled kueue.x-k8s.io/queue-name, at most
  `capacity` at once, by unsuspending them; a finished or deleted one frees its quota.
"""
from __future__ import annotations

import copy
import threading
from typing import Any

import kubernetes

JOBSET = ("jobset.x-k8s.io", "v1alpha2", "jobsets")
PYTORCHJOB = ("kubeflow.org", "v1", "pytorchjobs")
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"


def _true(obj: dict[str, Any], *types: str) -> bool:
    return any(c.get("type") in types and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def _owner(obj: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def _condition(type: str, reason: str, message: str = "") -> dict[str, Any]:
    return {"type": type, "status": "True", "reason": reason, "message": message,
            "lastTransitionTime": "2026-01-01T00:00:00Z"}


class Loop:
    """A stand-in controller: its `_sync` called every `interval` seconds in a thread, with the
    clients it needs for `namespace`; errors are recorded."""

    def __init__(self, client: Any, namespace: str, interval: float = 0.2):
        self.custom = kubernetes.client.CustomObjectsApi(client)
        self.core = kubernetes.client.CoreV1Api(client)
        self.batch = kubernetes.client.BatchV1Api(client)
        self.namespace, self.interval = namespace, interval
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "Loop":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._sync()
            except kubernetes.client.ApiException as e:
                if e.status not in (404, 409):  # raced with a delete or another write: next pass
                    self._error(f"{e.status} {str(e.body)[:300]}")
            except Exception as e:  # noqa: BLE001 - recorded for the test's message
                self._error(f"{type(e).__name__}: {str(e)[:300]}")
            self._stop.wait(self.interval)

    def _sync(self) -> None:
        raise NotImplementedError

    def _error(self, text: str) -> None:
        if text not in self.errors[-3:]:
            self.errors.append(text)


class JobSetController(Loop):
    def __init__(self, client: Any, namespace: str):
        super().__init__(client, namespace)
        self.restarted: list[str] = []

    def _sync(self) -> None:
        for js in self.custom.list_namespaced_custom_object(*JOBSET[:2], self.namespace, JOBSET[2])["items"]:
            if not js["metadata"].get("deletionTimestamp") and not _true(js, "Completed", "Failed"):
                self._one(js)

    def _one(self, js: dict[str, Any]) -> None:
        name, spec = js["metadata"]["name"], js.get("spec") or {}
        status = js.get("status") or {}
        restarts = int(status.get("restarts") or 0)
        suspend = bool(spec.get("suspend"))
        jobs = {j.metadata.name: j for j in self.batch.list_namespaced_job(
            self.namespace, label_selector=f"jobset.sigs.k8s.io/jobset-name={name}").items}
        current = [j for j in jobs.values()
                   if (j.metadata.labels or {}).get("jobset.sigs.k8s.io/restart-attempt") == str(restarts)]
        if any(any(c.type == "Failed" and c.status == "True" for c in (j.status.conditions or [])) for j in current):
            if restarts < int((spec.get("failurePolicy") or {}).get("maxRestarts") or 0):
                for j in current:  # restart the whole JobSet: new Jobs for every replicatedJob
                    self.batch.delete_namespaced_job(j.metadata.name, self.namespace, propagation_policy="Background")
                self._status(name, {"restarts": restarts + 1})
                self.restarted.append(name)
            else:
                self._status(name, {"conditions": [_condition("Failed", "FailedJobs", "jobset failed")]})
            return
        wanted = 0
        for rj in spec.get("replicatedJobs") or []:
            for i in range(int(rj.get("replicas") or 1)):
                wanted += 1
                job_name = f"{name}-{rj['name']}-{i}"
                existing = jobs.get(job_name)
                if existing is None:
                    self._create_job(js, rj, i, job_name, restarts, suspend)
                elif existing in current and bool(existing.spec.suspend) != suspend:
                    self.batch.patch_namespaced_job(job_name, self.namespace, {"spec": {"suspend": suspend}})
        done = [j for j in current if any(c.type == "Complete" and c.status == "True" for c in (j.status.conditions or []))]
        if wanted and len(done) == wanted:
            self._status(name, {"conditions": [_condition("Completed", "AllJobsCompleted", "jobset completed")]})

    def _create_job(self, js: dict[str, Any], rj: dict[str, Any], index: int, job_name: str, restarts: int,
                    suspend: bool) -> None:
        labels = {"jobset.sigs.k8s.io/jobset-name": js["metadata"]["name"],
                  "jobset.sigs.k8s.io/replicatedjob-name": rj["name"],
                  "jobset.sigs.k8s.io/job-index": str(index),
                  "jobset.sigs.k8s.io/restart-attempt": str(restarts)}
        spec = copy.deepcopy((rj.get("template") or {}).get("spec") or {})
        spec["suspend"] = suspend
        pod_meta = spec.setdefault("template", {}).setdefault("metadata", {})
        pod_meta["labels"] = {**(pod_meta.get("labels") or {}), **labels}
        body = {"apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": job_name, "labels": labels, "ownerReferences": [_owner(js)]}, "spec": spec}
        self.batch.create_namespaced_job(self.namespace, body)

    def _status(self, name: str, status: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object_status(*JOBSET[:2], self.namespace, JOBSET[2], name,
                                                          {"status": status})


class PyTorchJobController(Loop):
    def _sync(self) -> None:
        for pj in self.custom.list_namespaced_custom_object(*PYTORCHJOB[:2], self.namespace, PYTORCHJOB[2])["items"]:
            if not pj["metadata"].get("deletionTimestamp") and not _true(pj, "Succeeded", "Failed"):
                self._one(pj)

    def _one(self, pj: dict[str, Any]) -> None:
        name, spec = pj["metadata"]["name"], pj.get("spec") or {}
        pods = {p.metadata.name: p for p in self.core.list_namespaced_pod(
            self.namespace, label_selector=f"training.kubeflow.org/job-name={name}").items}
        if (spec.get("runPolicy") or {}).get("suspend"):
            for p in pods:
                self.core.delete_namespaced_pod(p, self.namespace)
            if not _true(pj, "Suspended"):
                self._status(name, [_condition("Suspended", "PyTorchJobSuspended")])
            return
        replicas = spec.get("pytorchReplicaSpecs") or {}
        rank = 0
        for rtype in sorted(replicas, key=lambda r: (r != "Master", r)):
            for i in range(int(replicas[rtype].get("replicas") or 1)):
                pod_name = f"{name}-{rtype.lower()}-{i}"
                if pod_name not in pods:
                    self._create_pod(pj, rtype, i, rank, pod_name)
                rank += 1
        primary = pods.get(f"{name}-master-0") or pods.get(f"{name}-worker-0")
        phase = primary.status.phase if primary is not None and primary.status else None
        if phase == "Succeeded":
            for p in pods.values():  # cleanPodPolicy Running: the pods still running are deleted
                if p.status and p.status.phase in ("Pending", "Running"):
                    self.core.delete_namespaced_pod(p.metadata.name, self.namespace)
            self._status(name, [_condition("Succeeded", "PyTorchJobSucceeded", f"PyTorchJob {name} is successfully completed.")])
        elif phase == "Failed":
            self._status(name, [_condition("Failed", "PyTorchJobFailed", f"PyTorchJob {name} has failed.")])
        elif pods and all(p.status and p.status.phase == "Running" for p in pods.values()) and not _true(pj, "Running"):
            self._status(name, [_condition("Running", "PyTorchJobRunning")])

    def _create_pod(self, pj: dict[str, Any], rtype: str, index: int, rank: int, pod_name: str) -> None:
        template = copy.deepcopy(pj["spec"]["pytorchReplicaSpecs"][rtype]["template"])
        meta = template.get("metadata") or {}
        labels = {**(meta.get("labels") or {}), "training.kubeflow.org/job-name": pj["metadata"]["name"],
                  "training.kubeflow.org/replica-type": rtype.lower(),
                  "training.kubeflow.org/replica-index": str(index), "training.kubeflow.org/operator-name": "pytorchjob-controller"}
        spec = template["spec"]
        spec["restartPolicy"] = "Never"
        for c in spec["containers"]:
            for key in ("limits", "requests"):  # Go's resource.Quantity: the typed client wants strings
                if isinstance((c.get("resources") or {}).get(key), dict):
                    c["resources"][key] = {k: str(v) for k, v in c["resources"][key].items()}
            c["env"] = [*(c.get("env") or []), {"name": "RANK", "value": str(rank)},
                        {"name": "MASTER_ADDR", "value": f"{pj['metadata']['name']}-master-0"}]
        body = {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": pod_name, "labels": labels, "annotations": meta.get("annotations") or {},
                             "ownerReferences": [_owner(pj)]}, "spec": spec}
        self.core.create_namespaced_pod(self.namespace, body)

    def _status(self, name: str, conditions: list[dict[str, Any]]) -> None:
        self.custom.patch_namespaced_custom_object_status(*PYTORCHJOB[:2], self.namespace, PYTORCHJOB[2], name,
                                                          {"status": {"conditions": conditions}})


class Kueue(Loop):
    """Admits at most `capacity` queued workloads at once (the quota of one ClusterQueue)."""

    KINDS = {"Job": ("batch", "v1", "jobs", ("suspend",)), "JobSet": (*JOBSET, ("suspend",)),
             "PyTorchJob": (*PYTORCHJOB, ("runPolicy", "suspend"))}

    def __init__(self, client: Any, namespace: str, capacity: int = 1):
        super().__init__(client, namespace)
        self.capacity = capacity
        self.admitted: dict[tuple[str, str], bool] = {}  # (kind, name) -> still holds quota
        self.admissions: list[str] = []
        self.peak = 0

    def _sync(self) -> None:
        live: dict[tuple[str, str], dict[str, Any]] = {}
        for kind, (group, version, plural, _) in self.KINDS.items():
            for obj in self.custom.list_namespaced_custom_object(group, version, self.namespace, plural,
                                                                 label_selector=QUEUE_LABEL)["items"]:
                live[(kind, obj["metadata"]["name"])] = obj
        for key in list(self.admitted):  # quota comes back when a workload ends or goes
            obj = live.get(key)
            if obj is None or obj["metadata"].get("deletionTimestamp") or _true(
                    obj, "Complete", "Completed", "Succeeded", "Failed"):
                del self.admitted[key]
        for key, obj in sorted(live.items(), key=lambda kv: kv[1]["metadata"]["creationTimestamp"]):
            if key in self.admitted or len(self.admitted) >= self.capacity or obj["metadata"].get("deletionTimestamp"):
                continue
            group, version, plural, path = self.KINDS[key[0]]
            node: Any = obj.get("spec") or {}
            for p in path:
                node = (node or {}).get(p)
            if node is True:
                patch: dict[str, Any] = False  # type: ignore[assignment]
                for p in reversed(path):
                    patch = {p: patch}
                self.custom.patch_namespaced_custom_object(group, version, self.namespace, plural, key[1], {"spec": patch})
                self.admitted[key] = True
                self.admissions.append(key[1])
        self.peak = max(self.peak, len(self.admitted))


TRAINJOB = ("example.com", "v1", "trainjobs")


class TrainJobController(Loop):
    """A made-up kind's controller: `spec.worker.replicas` pods from `spec.worker.template`;
    status.state Running, then Done when pod 0 succeeds or Error when it fails (no
    conditions: kubetune reads it through the Study's CEL rules)."""

    def _sync(self) -> None:
        for tj in self.custom.list_namespaced_custom_object(*TRAINJOB[:2], self.namespace, TRAINJOB[2])["items"]:
            state = (tj.get("status") or {}).get("state")
            if tj["metadata"].get("deletionTimestamp") or state in ("Done", "Error"):
                continue
            name, worker = tj["metadata"]["name"], tj["spec"]["worker"]
            pods = {p.metadata.name: p for p in self.core.list_namespaced_pod(
                self.namespace, label_selector=f"example.com/trainjob={name}").items}
            for i in range(int(worker.get("replicas") or 1)):
                if f"{name}-{i}" not in pods:
                    template = copy.deepcopy(worker["template"])
                    meta = template.get("metadata") or {}
                    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {
                        "name": f"{name}-{i}", "annotations": meta.get("annotations") or {},
                        "labels": {**(meta.get("labels") or {}), "example.com/trainjob": name, "example.com/index": str(i)},
                        "ownerReferences": [_owner(tj)]}, "spec": {**template["spec"], "restartPolicy": "Never"}}
                    self.core.create_namespaced_pod(self.namespace, body)
            first = pods.get(f"{name}-0")
            phase = first.status.phase if first is not None and first.status else None
            new = {"Succeeded": "Done", "Failed": "Error", "Running": "Running"}.get(phase or "")
            if new and new != state:
                self.custom.patch_namespaced_custom_object_status(*TRAINJOB[:2], self.namespace, TRAINJOB[2], name,
                                                                  {"status": {"state": new}})
