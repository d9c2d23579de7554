"""Study: one training pipeline tuned over many rounds."""
from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from .common import CONDITIONS_EXTRA, Condition, Model, ObjectMeta, Scalar
from .parameters import check_env_names, check_scalar_map
from .settings import RoundDefaults
from .workload import QUEUE_NAME_FIELD, Workload

METRIC_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]*$"


OBJECTIVE_RULES = [
    {
        "rule": "self.metric == oldSelf.metric && self.goal == oldSelf.goal"
                " && (has(self.strategy) ? self.strategy : 'best') == (has(oldSelf.strategy) ? oldSelf.strategy : 'best')",
        "message": "the objective (metric, goal, strategy) cannot change once the Study exists: its Rounds' "
                   "results are values of the old one; create a new Study with a new name instead "
                   "(additionalMetrics may change)",
        "reason": "FieldValueForbidden",
    }
]


class Objective(Model):
    """The metric the Study optimizes. metric, goal and strategy cannot change once the Study
    exists (the API server refuses it); additionalMetrics may."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": OBJECTIVE_RULES})

    metric: str = Field(
        pattern=METRIC_PATTERN,
        max_length=63,
        description="Name of the metric the trials report and the Round optimizes, e.g. val_loss.",
    )
    goal: Literal["minimize", "maximize"] = Field(description="minimize or maximize the metric.")
    strategy: Literal["best", "last"] = Field(
        default="best",
        description=(
            "Which of the values a trial reports is its objective: best (the best at any step, for "
            "training that keeps its best checkpoint) or last (the value at the last step, for training "
            "that keeps its final weights; on a noisy metric the best single value is partly luck). "
            "Early stopping judges trials by the same value."
        ),
    )
    additional_metrics: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="Other metrics to record for each trial (shown in status and the report).",
        json_schema_extra={"items": {"type": "string", "pattern": METRIC_PATTERN}},
    )


class TemplateMeta(Model):
    """Labels and annotations for trial pods."""

    labels: dict[str, str] = Field(default_factory=dict, description="Labels added to every trial pod.")
    annotations: dict[str, str] = Field(
        default_factory=dict, description="Annotations added to every trial pod (e.g. Kueue queue names)."
    )


class TrialTemplate(Model):
    """The pod every trial runs: parameters arrive as environment variables, never through a shell."""

    metadata: TemplateMeta = Field(default_factory=TemplateMeta, description="Labels and annotations of trial pods.")
    spec: dict[str, Any] = Field(
        description=(
            "A Kubernetes PodSpec, passed through untouched (resources such as nvidia.com/gpu, node "
            "selectors, tolerations, priority class). kubetune sets restartPolicy Never and adds env vars."
        ),
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True, "type": "object"},
    )
    container: str | None = Field(
        default=None, description="Name of the container that trains; default: the first container."
    )

    @field_validator("spec")
    @classmethod
    def _has_container(cls, spec: dict[str, Any]) -> dict[str, Any]:
        containers = spec.get("containers")
        if not isinstance(containers, list) or not containers:
            raise ValueError("containers: a trial template needs at least one container")
        for i, c in enumerate(containers):
            if not isinstance(c, dict) or not c.get("name") or not c.get("image"):
                raise ValueError(f"containers[{i}]: every container needs a name and an image")
        return spec

    @field_validator("container")
    @classmethod
    def _names_a_container(cls, name: str | None, info: ValidationInfo) -> str | None:
        spec = info.data.get("spec")  # absent when spec itself was refused: that error is enough
        if name is None or spec is None:
            return name
        names = [c["name"] for c in spec["containers"]]
        if name not in names:
            raise ValueError(f"{name!r} is not a container of the template (containers: {', '.join(names)})")
        return name


STUDY_SPEC_RULES = [
    {
        "rule": "has(self.template) != has(self.workload)",
        "message": "give exactly one of template (a trial is one pod) and workload (a trial is a Job, JobSet, "
                   "PyTorchJob or another kind)",
        "fieldPath": ".template",
        "reason": "FieldValueInvalid",
    },
]

QUEUE_NAME_DESCRIPTION = (
    "Kueue LocalQueue the trials are submitted to: the label kueue.x-k8s.io/queue-name on each trial's "
    "workload (on the pod for pod trials); workloads are created suspended and Kueue admits them. A trial "
    "waiting for admission is Pending with reason Queued."
)


class StudySpec(Model):
    """What is tuned and how each trial runs."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": STUDY_SPEC_RULES})

    objective: Objective = Field(description="The metric to optimize and its direction.")
    max_steps: int = Field(
        ge=1,
        description="The last step a training run reports; curve fitting extrapolates to it.",
    )
    template: TrialTemplate | None = Field(
        default=None,
        description="Pod template of every trial of the Study (give this or workload).",
    )
    workload: Workload | None = Field(
        default=None,
        description=(
            "What every trial runs when one pod is not enough: a Job, JobSet, PyTorchJob or another kind "
            "(give this or template). A Round's workload replaces it."
        ),
    )
    queue_name: str | None = Field(default=None, description=QUEUE_NAME_DESCRIPTION, **QUEUE_NAME_FIELD)
    baseline: dict[str, Any] = Field(
        default_factory=dict,
        description="The current best-known configuration: every parameter a Round does not tune takes this value.",
        json_schema_extra={"additionalProperties": {"x-kubernetes-preserve-unknown-fields": True}},
    )
    round_defaults: RoundDefaults = Field(
        default_factory=RoundDefaults, description="Defaults for the Study's Rounds."
    )
    auto_adopt: bool = Field(
        default=False,
        description="Adopt a Round's recommended configuration as the new baseline without a person deciding.",
    )

    @model_validator(mode="after")
    def _template_or_workload(self) -> "StudySpec":
        if (self.template is None) == (self.workload is None):
            raise ValueError("template: give exactly one of template and workload")
        return self

    @field_validator("baseline")
    @classmethod
    def _baseline_scalars(cls, v: dict[str, Any]) -> dict[str, Scalar]:
        return check_env_names(check_scalar_map(v, "baseline"))


class Adoption(Model):
    """A configuration adopted as the new baseline."""

    round: str = Field(description="Round whose result was adopted.")
    trial: str | None = Field(default=None, description="Trial whose configuration was adopted.")
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="The configuration adopted.",
        json_schema_extra={"additionalProperties": {"x-kubernetes-preserve-unknown-fields": True}},
    )
    evidence: str = Field(default="", description="Why: the recommendation and its statistics.")
    time: str = Field(description="When it was adopted.")


class RoundSummary(Model):
    """One Round of the Study at a glance."""

    name: str = Field(description="Round name.")
    phase: str = Field(default="", description="Round phase.")
    best_value: float | None = Field(default=None, description="Best objective value of the Round.")


class RoundArchive(Model):
    """The results of one Round, kept by its Study so that they outlive the Round: a Round
    pruned by Argo CD or Flux (or deleted by hand) takes its Trials with it."""

    round: str = Field(description="Round name.")
    uid: str = Field(default="", description="metadata.uid of the Round archived (a later Round may reuse the name).")
    goal: str = Field(default="", description="The Round's goal.")
    phase: str = Field(default="", description="The Round's phase when it was archived last.")
    best_trial: str | None = Field(default=None, description="Name of the Round's best trial.")
    best_value: float | None = Field(default=None, description="Objective value of the Round's best trial.")
    trials: int = Field(default=0, description="Trials in the archive.")
    curve_points: int = Field(
        default=0,
        description="Curve points kept per trial (fewer than the Trial had when the archive would not fit; 0: none).",
    )
    time: str = Field(description="When the archive was written last.")
    data: str = Field(
        description=(
            "The Round and its Trials (spec and status) as JSON, gzip-compressed and base64-encoded. "
            "`kubetune export ROUND` writes them out as YAML or CSV."
        ),
    )


class StudyStatus(Model):
    """What the operator observed about the Study."""

    observed_generation: int | None = Field(default=None, description="The generation this status describes.")
    baseline: dict[str, Any] = Field(
        default_factory=dict,
        description="The baseline in force: spec.baseline updated by adopted configurations.",
        json_schema_extra={"additionalProperties": {"x-kubernetes-preserve-unknown-fields": True}},
    )
    adopted: list[Adoption] = Field(default_factory=list, description="History of adopted configurations.")
    rounds: list[RoundSummary] = Field(default_factory=list, description="The Study's Rounds.")
    conditions: list[Condition] = Field(
        default_factory=list, description="Observations: Ready, Reconciling, Stalled.",
        json_schema_extra=CONDITIONS_EXTRA,
    )
    archive: list[RoundArchive] = Field(
        default_factory=list,
        description=(
            "The results of the Study's Rounds, written as their trials finish and before a Round is deleted "
            "(kubetune export ROUND reads them back). Deleted with the Study."
        ),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["round"]},
    )


class Study(Model):
    KIND: ClassVar[str] = "Study"
    PLURAL: ClassVar[str] = "studies"
    SHORT_NAMES: ClassVar[list[str]] = ["kts"]
    PRINTER_COLUMNS: ClassVar[list[dict[str, Any]]] = [
        {"name": "Metric", "type": "string", "jsonPath": ".spec.objective.metric"},
        {"name": "Goal", "type": "string", "jsonPath": ".spec.objective.goal"},
        {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Ready')].status"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    DESCRIPTION: ClassVar[str] = (
        "A Study is one training pipeline tuned over many Rounds: the objective, the trial pod "
        "template and the baseline configuration."
    )

    api_version: str = "kubetune.io/v1alpha1"
    kind: str = "Study"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: StudySpec = Field(description="What is tuned and how each trial runs.")
    status: StudyStatus = Field(default_factory=StudyStatus, description="Written by the operator.")
