"""Trial: one configuration, run as one pod or one workload (Job, JobSet, PyTorchJob, ...)."""
from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from .common import CONDITIONS_EXTRA, Condition, Model, ObjectMeta, ObjectRef
from .parameters import check_scalar_map

TrialPhase = Literal["Pending", "Running", "Succeeded", "Failed", "EarlyStopped", "Infeasible"]
FINISHED = ("Succeeded", "Failed", "EarlyStopped", "Infeasible")
CURVE_LIMIT = 200


class TrialSpec(Model):
    """The configuration to train, as the Round created it."""

    study_ref: ObjectRef = Field(description="The Study.")
    round_ref: ObjectRef = Field(description="The Round that created this Trial.")
    number: int = Field(ge=0, description="Position of the Trial in its Round, from 0.")
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Effective parameters: Study baseline, overridden by Round fixed values, overridden by sampled values.",
        json_schema_extra={"additionalProperties": {"x-kubernetes-preserve-unknown-fields": True}},
    )
    seed: int = Field(ge=0, description="Seed the training code should use (KUBETUNE_SEED).")
    purpose: Literal["search", "rerun"] = Field(
        default="search", description="search (suggested by the algorithm) or rerun (a repeat with a new seed)."
    )
    rerun_of: str | None = Field(
        default=None, description="For re-runs: the Trial (or 'baseline') whose configuration is repeated."
    )

    @field_validator("parameters")
    @classmethod
    def _scalars(cls, v: dict[str, Any]) -> dict[str, Any]:
        return check_scalar_map(v, "parameters")


class CurvePoint(Model):
    """One point of a learning curve."""

    step: int = Field(description="Training step.")
    value: float = Field(description="Objective value at that step.")


class StopReason(Model):
    """An early-stopping decision and its evidence."""

    rule: str = Field(description="The rule that stopped the trial: median or curvefit.")
    step: int = Field(description="Step at which it decided.")
    message: str = Field(description="The decision, written for a person.")
    evidence: dict[str, float] = Field(
        default_factory=dict,
        description="Numbers behind the decision (median and trial value, or predicted final value and interval).",
        json_schema_extra={"additionalProperties": {"type": "number"}},
    )


class TrialStatus(Model):
    """What the operator observed about the Trial."""

    observed_generation: int | None = Field(default=None, description="The generation this status describes.")
    phase: TrialPhase | None = Field(default=None, description="Pending, Running, Succeeded, Failed, EarlyStopped or Infeasible.")
    pod_name: str | None = Field(
        default=None, description="Name of the pod (or the workload: Job, JobSet, ...) running the trial now."
    )
    reason: str | None = Field(
        default=None,
        description="Why the trial is in its phase, when the phase alone does not say: Queued (Pending: its "
                    "workload waits for Kueue to admit it).",
    )
    attempts: int = Field(default=0, description="Pods started for this trial (evictions start another).")
    start_time: str | None = Field(default=None, description="When the trial's first pod started.")
    completion_time: str | None = Field(default=None, description="When the trial finished.")
    last_step: int | None = Field(default=None, description="Last step reported.")
    objective: float | None = Field(
        default=None,
        description=(
            "Final objective value: the best or the last value reported, as the Study says "
            "(for stopped trials: so far)."
        ),
    )
    final: dict[str, float] = Field(
        default_factory=dict,
        description="Final metrics reported by the trial.",
        json_schema_extra={"additionalProperties": {"type": "number"}},
    )
    curve: list[CurvePoint] = Field(
        default_factory=list,
        max_length=CURVE_LIMIT,
        description="Objective curve, downsampled to at most 200 points (first, last and best kept).",
    )
    stop_reason: StopReason | None = Field(default=None, description="Why the early-stopping rule stopped the trial.")
    message: str = Field(default="", description="What happened last, for a person.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description=("Observations: Ready (True with a result, Unknown while running, False when failed), "
                     "Reconciling, Stalled, MetricsAvailable."),
        json_schema_extra=CONDITIONS_EXTRA,
    )


class Trial(Model):
    KIND: ClassVar[str] = "Trial"
    PLURAL: ClassVar[str] = "trials"
    SHORT_NAMES: ClassVar[list[str]] = ["ktt"]
    PRINTER_COLUMNS: ClassVar[list[dict[str, Any]]] = [
        {"name": "Round", "type": "string", "jsonPath": ".spec.roundRef.name"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Step", "type": "integer", "jsonPath": ".status.lastStep"},
        {"name": "Objective", "type": "number", "jsonPath": ".status.objective"},
        {"name": "Reason", "type": "string", "jsonPath": ".status.reason"},
        {"name": "Pod", "type": "string", "jsonPath": ".status.podName", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    DESCRIPTION: ClassVar[str] = "A Trial is one configuration of a Round, trained in one pod or one workload (Job, JobSet, ...)."

    api_version: str = "kubetune.io/v1alpha1"
    kind: str = "Trial"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: TrialSpec = Field(description="The configuration to train.")
    status: TrialStatus = Field(default_factory=TrialStatus, description="Written by the operator.")
