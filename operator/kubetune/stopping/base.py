"""What every stopping rule shares: curves, orientation, decisions."""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Literal, Sequence

Curve = Sequence[tuple[int, float]]
Strategy = Literal["best", "last"]  # which reported value is a trial's objective
STRATEGIES: tuple[Strategy, ...] = ("best", "last")
RECENT = 3  # with the last value as objective, a curve stands at the median of its latest values


@dataclass(frozen=True)
class Decision:
    """Stop this trial, and why (the evidence is written to Trial.status.stopReason)."""

    rule: str
    step: int
    message: str
    evidence: dict[str, float] = field(default_factory=dict)


def oriented(curve: Curve, direction: str) -> list[tuple[int, float]]:
    """The finite points of a curve, sorted by step, negated when maximizing, so lower is
    always better inside the rules."""
    sign = 1.0 if direction == "minimize" else -1.0
    by_step = {int(s): sign * float(v) for s, v in curve if math.isfinite(v)}
    return sorted(by_step.items())


def best_so_far(curve: list[tuple[int, float]], step: int) -> float | None:
    values = [v for s, v in curve if s <= step]
    return min(values) if values else None


def check_strategy(strategy: str) -> None:
    """Refuse an objective that is neither the best nor the last value, naming both."""
    if strategy not in STRATEGIES:
        raise ValueError(f"objective must be one of {', '.join(STRATEGIES)}, not {strategy!r}")


def level(curve: list[tuple[int, float]], step: int, strategy: Strategy = "best") -> float | None:
    """Where an oriented curve stands at `step` on the objective (lower is better): its
    best value so far, or, when the objective is the last value, the median of its latest
    RECENT values up to the step (one spike or one lucky draw is not where it stands)."""
    if strategy == "best":
        return best_so_far(curve, step)
    values = [v for s, v in curve if s <= step]
    return statistics.median(values[-RECENT:]) if values else None


def final(curve: list[tuple[int, float]], strategy: Strategy = "best") -> float:
    """A finished oriented curve's objective: its best value, or its last."""
    return min(v for _, v in curve) if strategy == "best" else curve[-1][1]
