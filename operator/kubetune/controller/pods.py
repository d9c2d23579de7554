"""Reading a pod's facts into the core's PodView."""
from __future__ import annotations

from typing import Any, Mapping

from ..core.trial_plan import PodView


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
    )
