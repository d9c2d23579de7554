"""The shape of Round.status.analysis."""
from __future__ import annotations

from typing import Any

from pydantic import Field

from ..api.common import Model


class RankedTrial(Model):
    name: str
    value: float
    parameters: dict[str, Any] = Field(default_factory=dict)


class BoundaryWarning(Model):
    parameter: str
    side: str  # lower | upper
    crowded: int
    of: int
    message: str


class InfeasibleRegion(Model):
    parameter: str
    message: str


class Infeasibility(Model):
    count: int = 0
    total: int = 0
    fraction: float = 0.0
    regions: list[InfeasibleRegion] = Field(default_factory=list)


class CurveFinding(Model):
    trial: str
    finding: str  # overfitting | noisy | stillImproving | saturatedEarly | stepsBeyondMaxSteps | endedBeforeMaxSteps
    #              | likelyLateBloomer (stopped early while its interval still reached the best)
    message: str


class CurveSummary(Model):
    """One curve problem over the whole Round: how many trials show it, and where they lie."""

    finding: str  # overfitting | stillImproving | noisy
    count: int
    of: int
    regions: list[str] = Field(default_factory=list)
    message: str


class IsolationPoint(Model):
    parameter: str
    value: str
    best: float | None = None
    trial: str | None = None
    trials: int = 0  # search trials with a value at this scientific value
    early_stopped: int = 0  # of which early-stopped (counted with their value so far)


class RerunGroup(Model):
    configuration: str  # trial name or "baseline"
    n: int
    mean: float | None = None
    std: float | None = None
    values: list[float] = Field(default_factory=list)


class RerunStatistics(Model):
    groups: list[RerunGroup] = Field(default_factory=list)
    winner: str | None = None
    p_value: float | None = None
    difference: float | None = None  # winner better than the baseline by this much (> 0: better)
    interval: list[float] | None = None  # 95% confidence interval of the difference
    min_improvement: float | None = None  # the smallest difference worth adopting
    reruns_needed: int | None = None  # gatherMoreEvidence: runs per configuration that would likely tell
    recommendation: str | None = None  # adopt | keepBaseline | gatherMoreEvidence
    message: str = ""


class Analysis(Model):
    best_trials: list[RankedTrial] = Field(default_factory=list)
    boundaries: list[BoundaryWarning] = Field(default_factory=list)
    infeasible: Infeasibility = Field(default_factory=Infeasibility)
    curves: list[CurveFinding] = Field(default_factory=list)
    curve_summary: list[CurveSummary] = Field(default_factory=list)
    importance: dict[str, float] = Field(default_factory=dict)
    importance_basis: str = ""  # on how many trials (and at which common step) importance rests
    isolation: list[IsolationPoint] = Field(default_factory=list)
    reruns: RerunStatistics | None = None
    skipped: list[str] = Field(default_factory=list)  # checks that had too little data, one line each
    messages: list[str] = Field(default_factory=list)
