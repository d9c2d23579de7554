"""What a Trial needs next, given what its pod (or local process) is doing.

Pure: the caller observes the pod and the curve, and carries out the plan.
"""
from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from typing import Any

from ..api import FINISHED, Trial, TrialStatus
from ..api.common import rfc3339
from ..api.trial import CurvePoint, StopReason
from .curves import downsample, merge, objective_value

DISRUPTION_REASONS = frozenset(
    {"Evicted", "Preempted", "Preempting", "NodeLost", "NodeShutdown", "Shutdown", "Terminated",
     "UnexpectedAdmissionError", "OutOfcpu", "OutOfmemory"}
)


CANNOT_START = frozenset(
    {"CreateContainerConfigError", "CreateContainerError", "InvalidImageName", "ErrImageNeverPull",
     "ImagePullBackOff"}
)
"""Waiting reasons that do not fix themselves: a trial would stay Pending forever."""


@dataclass(frozen=True)
class PodView:
    """The facts kubetune reads from a pod (or a local process)."""

    name: str
    phase: str  # Pending, Running, Succeeded, Failed, Unknown
    reason: str | None = None
    exit_code: int | None = None
    termination_message: str | None = None
    started_at: str | None = None
    disrupted: bool = False  # DisruptionTarget condition, eviction, preemption, node loss
    message: str | None = None
    waiting_reason: str | None = None  # why the training container has not started
    waiting_message: str | None = None
    queued: bool = False  # waits for Kueue to admit it (a suspended workload, a gated pod)


@dataclass
class TrialPlan:
    create_pod: str | None = None
    delete_pod: str | None = None
    status: TrialStatus = field(default_factory=TrialStatus)


def pod_name(trial_name: str, attempt: int) -> str:
    return f"{trial_name}-a{attempt}"


@dataclass(frozen=True)
class Outcome:
    phase: str
    objective: float | None
    final: dict[str, float]
    last_step: int | None
    message: str


def read_termination(text: str | None) -> dict[str, Any]:
    """The SDK's termination message, or {} when the pod wrote none (or its log tail)."""
    if not text:
        return {}
    try:
        doc = json.loads(text)
    except (ValueError, TypeError):
        return {}
    return doc if isinstance(doc, dict) else {}


def outcome(
    pod: PodView, metric: str, direction: str, curve: list[CurvePoint], strategy: str
) -> Outcome:
    """The result of a pod that has ended, from its termination message and the curve.
    The termination message wins: it has every step, the scraped curve may miss the last
    ones or the best one."""
    doc = read_termination(pod.termination_message)
    last = {k: v for k, v in (doc.get("last") or {}).items() if isinstance(v, (int, float)) and math.isfinite(v)}
    from_curve = objective_value(curve, direction, strategy)
    if strategy == "last":
        objective = last.get(metric, from_curve)
    else:
        side = doc.get("min" if direction == "minimize" else "max") or {}
        candidates = [v for v in [side.get(metric), from_curve] if isinstance(v, (int, float))]
        objective = (min if direction == "minimize" else max)(candidates) if candidates else None
    step = doc.get("step") if isinstance(doc.get("step"), int) else (curve[-1].step if curve else None)
    if doc.get("infeasible"):
        return Outcome("Infeasible", objective, last, step, f"the trial declared itself infeasible: {doc['infeasible']}")
    if doc.get("diverged"):
        at = doc.get("divergedStep")
        when = f"at step {at}" if isinstance(at, int) else f"by step {step}"
        return Outcome("Infeasible", objective, last, step, f"{metric} diverged (NaN or infinite) {when}")
    if pod.phase == "Succeeded":
        if objective is None:
            return Outcome("Failed", None, last, step, f"the trial exited successfully but never reported {metric}")
        return Outcome("Succeeded", objective, last, step, f"finished at step {step} with {metric}={objective:.6g}")
    error = doc.get("error") or pod.message or pod.reason or "the pod failed"
    code = f" (exit code {pod.exit_code})" if pod.exit_code is not None else ""
    return Outcome("Failed", objective, last, step, f"{error}{code}"[:1000])


def plan_trial(
    trial: Trial,
    pod: PodView | None,
    *,
    metric: str,
    direction: str,
    strategy: str,
    max_retries: int,
    now: dt.datetime,
    curve: list[CurvePoint] | None = None,
    stop: StopReason | None = None,
    end: str | None = None,
    diverged_step: int | None = None,
) -> TrialPlan:
    """Decide the Trial's next step.

    `curve` is the freshest curve read from metrics (None: none read this time);
    `stop` an early-stopping decision; `end` a reason to end the trial because its
    Round has ended; `diverged_step` the step at which the trial reported a NaN or
    infinite objective (it ends Infeasible, even if its code trains on)."""
    status = trial.status.model_copy(deep=True)
    status.observed_generation = trial.metadata.generation
    plan = TrialPlan(status=status)
    if curve:
        status.curve = downsample(merge(status.curve, curve), direction)
        status.last_step = curve[-1].step

    if (status.phase or "Pending") in FINISHED:
        if pod is not None and pod.phase in ("Pending", "Running"):
            plan.delete_pod = pod.name
        return plan

    if end is not None:
        end_trial(status, end, now)
        if pod is not None and pod.phase in ("Pending", "Running"):
            plan.delete_pod = pod.name
        return plan

    if diverged_step is not None and status.phase == "Running":
        status.phase = "Infeasible"
        status.message = f"{metric} diverged (NaN or infinite) at step {diverged_step}"
        status.objective = objective_value(status.curve, direction, strategy)
        status.completion_time = rfc3339(now)
        if pod is not None:
            plan.delete_pod = pod.name
        return plan

    if stop is not None and status.phase == "Running":
        status.phase = "EarlyStopped"
        status.stop_reason = stop
        status.message = stop.message
        status.objective = objective_value(status.curve, direction, strategy)
        status.completion_time = rfc3339(now)
        if pod is not None:
            plan.delete_pod = pod.name
        return plan

    if pod is None:
        if status.phase == "Running":  # the pod vanished under a running trial: node loss, manual delete
            return _retry(plan, trial, max_retries, now, "its pod disappeared while running")
        status.attempts = max(status.attempts, 1)
        status.phase = "Pending"
        status.reason = None
        status.pod_name = pod_name(trial.metadata.name, status.attempts)
        plan.create_pod = status.pod_name
        return plan

    # a pod exists, so its first attempt has begun: the operator may have stopped between
    # creating it and writing the Trial's first status
    status.attempts = max(status.attempts, 1)
    if pod.phase == "Pending" and pod.waiting_reason in CANNOT_START:
        status.phase = "Failed"
        status.message = f"the pod cannot start: {pod.waiting_reason}: {pod.waiting_message or ''}".strip()[:1000]
        status.completion_time = rfc3339(now)
        plan.delete_pod = pod.name
        return plan
    if pod.phase == "Pending":
        # queued: waits for Kueue (again, when Kueue preempted a running workload by suspending it)
        status.phase = "Pending" if pod.queued else (status.phase or "Pending")
        status.pod_name = pod.name
        status.reason = "Queued" if pod.queued else None
        if pod.queued and pod.message:
            status.message = pod.message
        return plan
    status.reason = None
    if pod.phase == "Running":
        status.phase = "Running"
        status.pod_name = pod.name
        status.start_time = status.start_time or pod.started_at or rfc3339(now)
        return plan
    if pod.phase == "Failed" and (pod.disrupted or pod.reason in DISRUPTION_REASONS):
        plan.delete_pod = pod.name
        return _retry(plan, trial, max_retries, now, f"its pod was {pod.reason or 'disrupted'}")
    if pod.phase in ("Succeeded", "Failed"):
        out = outcome(pod, metric, direction, status.curve, strategy)
        status.phase = out.phase  # type: ignore[assignment]
        status.objective = out.objective
        status.final = out.final
        status.last_step = out.last_step if out.last_step is not None else status.last_step
        status.message = out.message
        status.start_time = status.start_time or pod.started_at
        status.completion_time = rfc3339(now)
        return plan
    return plan  # Unknown: wait for the node to report


def end_trial(status: TrialStatus, why: str, now: dt.datetime) -> TrialStatus:
    """A trial ended from outside (its Round has ended): Failed, saying why."""
    status.phase = "Failed"
    status.reason = None
    status.message = why
    status.completion_time = rfc3339(now)
    return status


def _retry(plan: TrialPlan, trial: Trial, max_retries: int, now: dt.datetime, why: str) -> TrialPlan:
    status = plan.status
    if status.attempts > max_retries:
        status.phase = "Failed"
        status.message = f"{why}; gave up after {status.attempts} attempts (maxRetries {max_retries})"
        status.completion_time = rfc3339(now)
        return plan
    status.attempts += 1
    status.phase = "Pending"
    status.pod_name = pod_name(trial.metadata.name, status.attempts)
    status.message = f"{why}; starting attempt {status.attempts} (does not count as a failure)"
    plan.create_pod = status.pod_name
    return plan
