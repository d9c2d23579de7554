"""Round: one round of experiments with a written goal."""
from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from .common import CONDITIONS_EXTRA, Condition, Model, ObjectMeta, ObjectRef
from .parameters import Parameter, check_env_name, check_env_names, check_scalar_map
from .settings import Algorithm, Budget, EarlyStopping, Reruns
from .workload import QUEUE_NAME_FIELD, Workload

PARAMETER_LIST_EXTRA: dict[str, Any] = {
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["name"],
}

ROUND_RULES = [
    {
        "rule": "(has(self.scientific) && size(self.scientific) > 0) || (has(self.nuisance) && size(self.nuisance) > 0)",
        "message": "a Round needs at least one scientific or nuisance parameter to search",
        "fieldPath": ".scientific",
        "reason": "FieldValueRequired",
    },
    {
        "rule": "!has(self.scientific) || !has(self.nuisance) || self.scientific.all(p, self.nuisance.all(q, q.name != p.name))",
        "message": "a parameter can be scientific or nuisance, not both",
        "fieldPath": ".nuisance",
        "reason": "FieldValueDuplicate",
    },
]


def _unchanged(field: str, what: str) -> dict[str, str]:
    """A transition rule: `field` keeps the value it had when the Round was created. Trials
    already sampled under the old value would be compared with trials sampled under the new
    one, so the message sends the user to a new Round. Equality reads whole values, the
    untyped ones (choices, fixed values) included: a real API server compares them although
    a rule cannot name them (`self.fixed.lr` does not compile)."""
    return {
        "rule": f"has(self.{field}) == has(oldSelf.{field}) && (!has(self.{field}) || self.{field} == oldSelf.{field})",
        "message": f"{what} cannot change once the Round exists (its trials were sampled under the old one); "
                   "create a new Round with a new name instead",
        "fieldPath": f".{field}",
        "reason": "FieldValueForbidden",
    }


IMMUTABLE_FIELDS = {
    "studyRef": "studyRef",
    "scientific": "the search space (scientific)",
    "nuisance": "the search space (nuisance)",
    "fixed": "the search space (fixed)",
    "algorithm": "the algorithm",
}
"""Fields of a Round's spec the API server refuses to change (CEL transition rules). The
others may change while the Round runs and take effect on the next pass: budget
(parallelism, maxTrials, maxFailedTrials, maxRetries), earlyStopping, reruns, maxSteps, goal."""

ROUND_RULES += [_unchanged(field, what) for field, what in IMMUTABLE_FIELDS.items()]

# Rules over `fixed` live in the model (RoundSpec._searched_not_fixed): its values may be
# strings, numbers or booleans, a schema without a type, which a real API server hides
# from CEL (see parameters.py).
SCIENTIFIC_FIXED = "a scientific parameter cannot also be fixed"
NUISANCE_FIXED = "a nuisance parameter cannot also be fixed"

PHASES = ("Pending", "Running", "Succeeded", "Failed")


def _any_values_object(schema: dict[str, Any]) -> None:
    """`fixed`: a map of scalars of any type. Declared as an object that preserves unknown
    fields (not as additionalProperties without a type): a real API server gives such an
    object a CEL type, so a transition rule can compare it as a whole."""
    schema.pop("additionalProperties", None)
    schema.update({"type": "object", "x-kubernetes-preserve-unknown-fields": True, "maxProperties": 64})


class RoundSpec(Model):
    """The Round as the user wrote it: goal, parameters, algorithm, budget."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": ROUND_RULES})

    study_ref: ObjectRef = Field(description="The Study this Round belongs to.")
    goal: str = Field(
        min_length=1,
        max_length=2048,
        description="What this Round is meant to find out, in a sentence (e.g. 'Which optimizer is best?').",
    )
    scientific: list[Parameter] = Field(
        default_factory=list,
        max_length=16,
        description="Parameters whose effect the Round measures; sampled evenly across their values.",
        json_schema_extra=PARAMETER_LIST_EXTRA,
    )
    nuisance: list[Parameter] = Field(
        default_factory=list,
        max_length=32,
        description="Parameters optimized over so that scientific values are compared fairly.",
        json_schema_extra=PARAMETER_LIST_EXTRA,
    )
    fixed: dict[str, Any] = Field(
        default_factory=dict,
        description="Parameters held at these values for the whole Round (overriding the Study baseline).",
        json_schema_extra=_any_values_object,
    )
    algorithm: Algorithm | None = Field(default=None, description="Search algorithm (default from the Study).")
    budget: Budget | None = Field(default=None, description="Budget (default from the Study).")
    early_stopping: EarlyStopping | None = Field(
        default=None, description="Early-stopping rule (default from the Study)."
    )
    reruns: Reruns | None = Field(
        default=None,
        description="After the search, re-run the top configurations with new seeds to measure variance.",
    )
    max_steps: int | None = Field(
        default=None, ge=1, description="Override the Study's maxSteps for this Round."
    )
    workload: Workload | None = Field(
        default=None,
        description="What this Round's trials run, replacing the Study's template or workload entirely.",
    )
    queue_name: str | None = Field(
        default=None, description="Kueue LocalQueue for this Round's trials (overrides the Study's queueName).",
        **QUEUE_NAME_FIELD,
    )

    @field_validator("fixed")
    @classmethod
    def _fixed_scalars(cls, v: dict[str, Any]) -> dict[str, Any]:
        return check_env_names(check_scalar_map(v, "fixed"))

    @model_validator(mode="after")
    def _searched_not_fixed(self) -> "RoundSpec":
        for group, message in (("scientific", SCIENTIFIC_FIXED), ("nuisance", NUISANCE_FIXED)):
            for p in getattr(self, group):
                if p.name in self.fixed:
                    raise ValueError(f"fixed.{p.name}: {message}")
        return self

    @model_validator(mode="after")
    def _env_names_distinct(self) -> "RoundSpec":
        seen: list[str] = list(self.fixed)  # fixed names are checked among themselves already
        for group in ("scientific", "nuisance"):
            for i, p in enumerate(getattr(self, group)):
                check_env_name(p.name, seen, f"{group}[{i}].name")
                seen.append(p.name)
        return self

    @model_validator(mode="after")
    def _conditions_refer_to_known_values(self) -> "RoundSpec":
        searched = {p.name: p for p in [*self.scientific, *self.nuisance]}
        for group in ("scientific", "nuisance"):
            for i, p in enumerate(getattr(self, group)):
                if p.when is None:
                    continue
                parent = searched.get(p.when.parameter)
                where = f"{group}[{i}].when.parameter"
                if p.when.parameter == p.name:
                    raise ValueError(f"{where}: a parameter cannot depend on itself")
                if parent is None:
                    if p.when.parameter in self.fixed:
                        continue
                    raise ValueError(
                        f"{where}: '{p.when.parameter}' is not a scientific, nuisance or fixed parameter of this Round"
                    )
                if parent.type != "categorical":
                    raise ValueError(f"{where}: '{parent.name}' must be categorical to condition on its values")
                unknown = [v for v in p.when.values if v not in (parent.choices or [])]
                if unknown:
                    raise ValueError(f"{group}[{i}].when.values: {unknown} are not choices of '{parent.name}'")
                if parent.when is not None:
                    raise ValueError(f"{where}: conditions may be one level deep; '{parent.name}' is itself conditional")
        return self


class TrialCounts(Model):
    """How many trials are in each phase."""

    pending: int = Field(default=0, description="Trials waiting for their pod to start (queued ones included).")
    queued: int = Field(default=0, description="Of the pending trials, those whose workload waits for Kueue to admit it.")
    running: int = Field(default=0, description="Trials training now.")
    succeeded: int = Field(default=0, description="Trials that finished with a result.")
    early_stopped: int = Field(default=0, description="Trials stopped by the early-stopping rule.")
    failed: int = Field(default=0, description="Trials that failed (crash, bad exit, retries exhausted).")
    infeasible: int = Field(default=0, description="Trials whose objective diverged (NaN/inf) or that flagged themselves infeasible.")


class BestTrial(Model):
    """The best trial so far."""

    name: str = Field(description="Trial name.")
    value: float = Field(description="Its objective value.")
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Its parameters.",
        json_schema_extra={"additionalProperties": {"x-kubernetes-preserve-unknown-fields": True}},
    )


class ArchiveState(Model):
    """Where the Round's results are kept beyond its own life, and how current that copy is."""

    study: str = Field(description="The Study whose status.archive holds the Round's results.")
    trials: int = Field(default=0, description="Trials in the archive.")
    phase: str = Field(default="", description="The Round's phase when it was archived last.")
    time: str = Field(description="When the archive was written last.")
    message: str = Field(default="", description="A problem with the archive, for a person (e.g. it did not fit).")


class RoundStatus(Model):
    """What the operator observed about the Round."""

    observed_generation: int | None = Field(default=None, description="The generation this status describes.")
    phase: Literal["Pending", "Running", "Succeeded", "Failed"] | None = Field(
        default=None, description="Pending, Running, Succeeded or Failed (derived from the conditions)."
    )
    trials_created: int = Field(default=0, description="Trials created so far (search and re-runs).")
    progress: str = Field(default="", description="Finished trials / planned trials, e.g. 5/20.")
    counts: TrialCounts = Field(default_factory=TrialCounts, description="Trials per phase.")
    best_trial: BestTrial | None = Field(default=None, description="The best trial so far.")
    best_value: float | None = Field(default=None, description="Objective value of the best trial.")
    start_time: str | None = Field(default=None, description="When the Round started.")
    completion_time: str | None = Field(default=None, description="When the Round ended.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description=(
            "Observations: Ready (True once the Round is complete, Unknown while it runs, False when it "
            "cannot go on), Reconciling (trials running), Stalled (why it cannot go on), Complete, Failed."
        ),
        json_schema_extra=CONDITIONS_EXTRA,
    )
    archive: ArchiveState | None = Field(
        default=None, description="Where the Round's results are kept once the Round is deleted (its Study's status)."
    )
    analysis: dict[str, Any] | None = Field(
        default=None,
        description="What the tuning playbook asks a person to check, computed from the Round's trials.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True, "type": "object"},
    )


class Round(Model):
    KIND: ClassVar[str] = "Round"
    PLURAL: ClassVar[str] = "rounds"
    SHORT_NAMES: ClassVar[list[str]] = ["ktr"]
    PRINTER_COLUMNS: ClassVar[list[dict[str, Any]]] = [
        {"name": "Study", "type": "string", "jsonPath": ".spec.studyRef.name"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Trials", "type": "string", "jsonPath": ".status.progress"},
        {"name": "Best", "type": "number", "jsonPath": ".status.bestValue"},
        {"name": "Goal", "type": "string", "jsonPath": ".spec.goal", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    DESCRIPTION: ClassVar[str] = (
        "A Round is one round of experiments with a written goal: scientific, nuisance and fixed "
        "hyperparameters, an algorithm, a budget and an early-stopping rule."
    )

    api_version: str = "kubetune.io/v1alpha1"
    kind: str = "Round"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: RoundSpec = Field(description="The Round as the user wrote it.")
    status: RoundStatus = Field(default_factory=RoundStatus, description="Written by the operator.")
