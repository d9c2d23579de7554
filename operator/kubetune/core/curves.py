"""Learning curves: best values, downsampling that keeps what matters."""
from __future__ import annotations

import math

from ..api.trial import CURVE_LIMIT, CurvePoint


def best_value(curve: list[CurvePoint], direction: str) -> float | None:
    values = [p.value for p in curve if math.isfinite(p.value)]
    if not values:
        return None
    return min(values) if direction == "minimize" else max(values)


def objective_value(curve: list[CurvePoint], direction: str, strategy: str) -> float | None:
    """A curve's objective: its best value, or (strategy "last") its last finite one."""
    if strategy == "best":
        return best_value(curve, direction)
    values = [p.value for p in sorted(curve, key=lambda p: p.step) if math.isfinite(p.value)]
    return values[-1] if values else None


def downsample(curve: list[CurvePoint], direction: str, limit: int = CURVE_LIMIT) -> list[CurvePoint]:
    """At most `limit` points, evenly spread over the steps, always keeping the first,
    the last and the best point, in step order."""
    points = sorted({p.step: p for p in curve if math.isfinite(p.value)}.values(), key=lambda p: p.step)
    if len(points) <= limit:
        return points
    best = best_value(points, direction)
    keep = {0, len(points) - 1}
    keep.add(next(i for i, p in enumerate(points) if p.value == best))
    slots = limit - len(keep)
    for k in range(slots):
        keep.add(round(k * (len(points) - 1) / max(1, slots - 1)))
        if len(keep) >= limit:
            break
    return [points[i] for i in sorted(keep)][:limit]


def merge(old: list[CurvePoint], new: list[CurvePoint]) -> list[CurvePoint]:
    """New points win at the same step."""
    by_step = {p.step: p for p in old}
    by_step.update({p.step: p for p in new})
    return [by_step[s] for s in sorted(by_step)]
