"""Reading a pod's facts into the core's PodView."""
from __future__ import annotations

from typing import Any, Mapping

from ..api.workload import INDEX_LABELS, Kind, Workload, evaluate
from ..core.trial_plan import PodView
from ..workload import LABEL_QUEUE, LABEL_ROLE


_KEPT_META = ("name", "namespace", "uid", "labels", "creationTimestamp", "deletionTimestamp", "ownerReferences",
              "resourceVersion")


def kept(pod: Mapping[str, Any]) -> dict[str, Any]:
    """What the operator keeps of a trial pod (the pod index holds every trial pod until
    its Trial goes, finished ones included): what this module reads of it. The spec (its
    containers, env, volumes, the largest part) is left out but for its scheduling gates."""
    meta = pod.get("metadata") or {}
    out: dict[str, Any] = {"metadata": {k: meta[k] for k in _KEPT_META if k in meta}, "status": pod.get("status") or {}}
    gates = (pod.get("spec") or {}).get("schedulingGates")
    if gates:
        out["spec"] = {"schedulingGates": gates}
    return out


def pod_view(pod: Mapping[str, Any], container: str) -> PodView:
    status = pod.get("status") or {}
    meta = pod.get("metadata") or {}
    phase = status.get("phase") or "Pending"
    if meta.get("deletionTimestamp") and phase in ("Pending", "Running"):
        phase = "Running"  # still terminating: its final state comes later
    terminated: dict[str, Any] = {}
    waiting: dict[str, Any] = {}
    for cs in status.get("containerStatuses") or []:
        if cs.get("name") == container:
            terminated = (cs.get("state") or {}).get("terminated") or {}
            waiting = (cs.get("state") or {}).get("waiting") or {}
    disrupted = any(
        c.get("type") == "DisruptionTarget" and c.get("status") == "True" for c in status.get("conditions") or []
    )
    return PodView(
        name=meta.get("name", ""),
        phase=phase,
        reason=status.get("reason") or terminated.get("reason"),
        exit_code=terminated.get("exitCode"),
        termination_message=terminated.get("message"),
        started_at=status.get("startTime"),
        disrupted=disrupted,
        message=status.get("message"),
        waiting_reason=waiting.get("reason"),
        waiting_message=waiting.get("message"),
        queued=any(g.get("name", "").startswith("kueue.x-k8s.io/")
                   for g in (pod.get("spec") or {}).get("schedulingGates") or []),
    )


def _pod_key(pod: Mapping[str, Any], succeeded: bool) -> tuple[Any, ...]:
    """How the primary pod is picked among the primary replica's pods: the first of each
    index (every index label "0"), alive, the one that succeeded when the workload did,
    the newest (a retried index makes a new pod), then by name."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    first = all(labels.get(k) in (None, "0") for k in INDEX_LABELS)
    phase = (pod.get("status") or {}).get("phase")
    return (first, not meta.get("deletionTimestamp"), succeeded and phase == "Succeeded",
            meta.get("creationTimestamp") or "", meta.get("name", ""))


def primary_pod(pods: list[Mapping[str, Any]], succeeded: bool = False) -> Mapping[str, Any] | None:
    """The pod of a workload that reports metrics and whose termination message is the result."""
    mine = [p for p in pods if ((p.get("metadata") or {}).get("labels") or {}).get(LABEL_ROLE) == "primary"]
    return max(mine, key=lambda p: _pod_key(p, succeeded)) if mine else None


def _suspended(obj: Mapping[str, Any], kind: Kind | None) -> bool:
    if kind is None or kind.suspend is None:
        return False
    node: Any = obj.get("spec") or {}
    for key in kind.suspend:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node is True


def _condition_message(obj: Mapping[str, Any], types: tuple[str, ...]) -> tuple[str | None, str | None]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(c, Mapping) and c.get("type") in types and c.get("status") == "True":
            return c.get("reason"), c.get("message")
    return None, None


def workload_view(obj: Mapping[str, Any], pods: list[Mapping[str, Any]], workload: Workload,
                  container: str) -> PodView:
    """A workload's facts as the core reads a pod's: Succeeded or Failed from its conditions
    (or the CEL rules), Pending and queued while suspended (Kueue has not admitted it),
    Running once any of its pods runs; the result from the primary pod's training container.
    One replica's eviction is not a trial failure: the workload's own controller restarts it
    (and says Failed when its own policy gives up)."""
    meta = obj.get("metadata") or {}
    kind = workload.kind_info()
    plain = dict(obj)
    succeeded = evaluate(workload.success(), plain)
    failed = not succeeded and evaluate(workload.failure(), plain)
    pod = primary_pod(pods, succeeded)
    inner = pod_view(pod, container) if pod is not None else None
    name = meta.get("name", "")
    if succeeded or failed:
        reason, message = _condition_message(obj, ("Failed",) if failed else ("Complete", "Completed", "Succeeded"))
        if failed and not message:
            message = f"the {workload.kind}'s failureCondition is true"
        return PodView(
            name=name, phase="Succeeded" if succeeded else "Failed",
            reason=reason or (inner.reason if inner else None),
            exit_code=inner.exit_code if inner else None,
            termination_message=inner.termination_message if inner else None,
            started_at=inner.started_at if inner else None,
            message=f"{workload.kind} {name}: {message}" if failed else None,
        )
    if meta.get("deletionTimestamp"):
        return PodView(name=name, phase="Running")  # being deleted: gone soon, then it is missing
    alive = [p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")]
    running = [p for p in alive if (p.get("status") or {}).get("phase") == "Running"]
    if _suspended(obj, kind):
        queue = (meta.get("labels") or {}).get(LABEL_QUEUE)
        why = f" in queue {queue}" if queue else ""
        return PodView(name=name, phase="Pending", queued=True,
                       message=f"queued: {workload.kind} {name} waits for Kueue to admit it{why}")
    if running:
        starts = [s for s in ((p.get("status") or {}).get("startTime") for p in running) if s]
        return PodView(name=name, phase="Running", started_at=(inner.started_at if inner and inner.phase == "Running"
                                                              else min(starts, default=None)))
    return PodView(name=name, phase="Pending",
                   waiting_reason=inner.waiting_reason if inner else None,
                   waiting_message=inner.waiting_message if inner else None)
