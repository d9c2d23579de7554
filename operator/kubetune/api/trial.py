"""Trial: one configuration, run as one pod or one workload (Job, JobSet, PyTorchJob, ...)."""
from __future__ import annotations

from array import array
from functools import partial
from typing import Annotated, Any, ClassVar, Iterable, Iterator, Literal, Mapping, NamedTuple, Sequence, overload

from pydantic import Field, PlainSerializer, WrapValidator, field_validator

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


class Point(NamedTuple):
    """A curve point as a parsed Trial holds it: read like a CurvePoint (.step, .value),
    and a (step, value) pair where the stopping rules take one."""

    step: int
    value: float

    def wire(self) -> dict[str, Any]:
        return {"step": self.step, "value": self.value}


def _step_array(steps: list[int]) -> array:
    """Steps in 4 bytes each while they fit in 32 bits (practically always), else 8."""
    try:
        return array("i", steps)
    except OverflowError:
        return array("q", steps)


class PackedCurve(Sequence[Point]):
    """A parsed Trial's curve: its steps and values in two arrays, 12 bytes a point.

    The operator holds every Trial of its Rounds for as long as they exist; a finished
    Trial's 200 points as CurvePoint models took ~50 KB of the ~65 KB of its parse, so
    memory grew with every finished trial. Read-only: code that changes a curve builds a
    new list (curves.merge, downsample) and assigns it, which the model serializes alike."""

    __slots__ = ("_steps", "_values")

    def __init__(self, points: Iterable[Any] = ()) -> None:
        points = list(points)
        self._steps = _step_array([p.step for p in points])
        self._values = array("d", [p.value for p in points])

    @classmethod
    def from_wire(cls, items: list[dict[str, Any]]) -> "PackedCurve":
        curve = cls()
        curve._steps = _step_array([p["step"] for p in items])
        curve._values = array("d", [p["value"] for p in items])
        return curve

    def __len__(self) -> int:
        return len(self._steps)

    def __iter__(self) -> Iterator[Point]:
        return map(_point, zip(self._steps, self._values))

    def pairs(self) -> Iterator[tuple[int, float]]:
        return zip(self._steps, self._values)

    @property
    def steps(self) -> Sequence[int]:
        return self._steps

    @overload
    def __getitem__(self, i: int) -> Point: ...
    @overload
    def __getitem__(self, i: slice) -> "PackedCurve": ...
    def __getitem__(self, i: int | slice) -> "Point | PackedCurve":
        if isinstance(i, slice):
            part = PackedCurve()
            part._steps, part._values = self._steps[i], self._values[i]
            return part
        return Point(self._steps[i], self._values[i])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PackedCurve):
            return self._steps == other._steps and self._values == other._values
        if isinstance(other, (list, tuple)):
            return len(other) == len(self) and all(
                p.step == s and p.value == v for p, s, v in zip(other, self._steps, self._values))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PackedCurve({list(self)!r})"


_point = partial(tuple.__new__, Point)  # Point((step, value)) without a Python-level __new__ per point


def curve_pairs(curve: Iterable[Any]) -> Iterable[tuple[int, float]]:
    """A curve's (step, value) pairs: a packed curve's without a point object per point
    (the analysis reads every point of every trial)."""
    return curve.pairs() if isinstance(curve, PackedCurve) else ((p.step, p.value) for p in curve)


def last_step(status: "TrialStatus") -> int:
    """The last step a trial reached: its curve's or the one it reported last (0: none)."""
    steps = status.curve.steps if isinstance(status.curve, PackedCurve) else [p.step for p in status.curve]
    return max(max(steps, default=0), status.last_step or 0)


def _is_wire_point(p: Any) -> bool:
    return type(p) is dict and len(p) == 2 and type(p.get("step")) is int and type(p.get("value")) in (float, int)


def _pack(value: Any, handler: Any) -> PackedCurve:
    """Curve points from the API server (dicts of an int step and a number) are packed
    directly; anything else goes through CurvePoint's validation first, errors and all."""
    if isinstance(value, PackedCurve):
        return value
    if type(value) is list and len(value) <= CURVE_LIMIT and all(map(_is_wire_point, value)):
        return PackedCurve.from_wire(value)
    return PackedCurve(handler(value))


def _unpack(curve: Iterable[Any]) -> list[dict[str, Any]]:
    return [{"step": p.step, "value": p.value} for p in curve]


StoredCurve = Annotated[
    list[CurvePoint],
    WrapValidator(_pack),
    PlainSerializer(_unpack, return_type=list[dict[str, Any]]),
]
"""TrialStatus.curve: a list of CurvePoint on the wire and in the CRD schema, a PackedCurve
once parsed (a plain list where a pass assigned one)."""


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
    curve: StoredCurve = Field(
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


def round_name(body: Mapping[str, Any]) -> str | None:
    """The Round a Trial names, read from its body as the API server gives it (unparsed:
    the operator's watch, the report's and the export's lists, the dashboard)."""
    spec = body.get("spec")
    ref = spec.get("roundRef") if isinstance(spec, Mapping) else None
    return ref.get("name") if isinstance(ref, Mapping) else None
