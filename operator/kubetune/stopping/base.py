"""What every stopping rule shares: curves, orientation, decisions."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

Curve = Sequence[tuple[int, float]]


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
