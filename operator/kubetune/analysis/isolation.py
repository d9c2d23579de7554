"""The isolation view: for each scientific value, the best objective with the nuisance
parameters optimized out, and the trial that reached it.

Every search trial with a value counts, early-stopped ones with their value so far (a
real observation, and a pessimistic one: it would only have improved), so each value's
count and spread are those the slice plots show; `trials` and `early_stopped` say on
how many it rests."""
from __future__ import annotations

import math

from ..api import Parameter, Trial
from ..core.round_plan import phase_of
from ..space import position
from .evidence import gather
from .model import IsolationPoint

BUCKETS = 5


def _label(p: Parameter, value: object) -> str:
    if p.type == "categorical" or (p.type == "int" and p.max is not None and p.min is not None and p.max - p.min < 10):
        return str(value)
    pos = position(p, value) or 0.0
    k = min(BUCKETS - 1, int(pos * BUCKETS))
    assert p.min is not None and p.max is not None
    lo, hi = (math.log(p.min), math.log(p.max)) if p.log else (p.min, p.max)
    edges = [lo + (hi - lo) * i / BUCKETS for i in (k, k + 1)]
    a, b = (math.exp(e) for e in edges) if p.log else edges
    return f"[{a:.3g}, {b:.3g})"


def isolation(scientific: list[Parameter], trials: list[Trial], direction: str) -> list[IsolationPoint]:
    """One point per scientific value: the best of its search trials with a value (succeeded
    or early-stopped, each at its objective)."""
    finished = gather(trials, direction).trials if scientific else []
    sign = 1.0 if direction == "minimize" else -1.0
    out = []
    for p in scientific:
        groups: dict[str, list[Trial]] = {}
        order: list[str] = []
        if p.type == "categorical":
            order = [str(c) for c in p.choices or []]
        for t in finished:
            if p.name in t.spec.parameters:
                groups.setdefault(_label(p, t.spec.parameters[p.name]), []).append(t)
        keys = order + sorted(k for k in groups if k not in order)
        for key in keys:
            group = groups.get(key, [])
            best = min(group, key=lambda t: sign * t.status.objective, default=None)  # type: ignore[operator]
            out.append(IsolationPoint(
                parameter=p.name, value=key, trials=len(group),
                early_stopped=sum(phase_of(t) == "EarlyStopped" for t in group),
                best=best.status.objective if best else None, trial=best.metadata.name if best else None,
            ))
    return out
