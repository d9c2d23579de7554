"""Do the best trials crowd an edge of the search space? Then the range is too narrow."""
from __future__ import annotations

from ..api import Parameter, Trial
from ..space import position
from .model import BoundaryWarning

EDGE = 0.1  # the outer 10% of the domain (in log space for log domains)
MIN_TRIALS = 5  # fewer succeeded trials than this and the check is skipped


def top_share(n_finished: int) -> int:
    """How many trials count as 'the best': 20% of the finished ones, at least 3, at most 10."""
    return max(3, min(10, round(0.2 * n_finished)))


def boundary_warnings(params: list[Parameter], ranked: list[Trial]) -> list[BoundaryWarning]:
    """`ranked`: finished trials with an objective, best first."""
    if len(ranked) < MIN_TRIALS:
        return []
    top = ranked[: top_share(len(ranked))]
    out = []
    for p in params:
        if p.type == "categorical":
            continue
        pos = [position(p, t.spec.parameters.get(p.name)) for t in top if p.name in t.spec.parameters]
        pos = [x for x in pos if x is not None]
        if len(pos) < 3:
            continue
        for side, hits in (("upper", sum(x >= 1 - EDGE for x in pos)), ("lower", sum(x <= EDGE for x in pos))):
            if hits * 2 >= len(pos) and hits >= 2:
                scale = " (log scale)" if p.log else ""
                direction = "upward" if side == "upper" else "downward"
                out.append(BoundaryWarning(
                    parameter=p.name, side=side, crowded=hits, of=len(pos),
                    message=(f"{p.name}: {hits} of the {len(pos)} best trials lie in the {'top' if side == 'upper' else 'bottom'} "
                             f"10% of [{p.min:g}, {p.max:g}]{scale}; widen the range {direction}"),
                ))
    return out


def boundary_skipped(ranked: list[Trial]) -> str | None:
    """Why the boundary check said nothing, when it is for lack of trials."""
    if len(ranked) >= MIN_TRIALS:
        return None
    return f"boundary check skipped: {len(ranked)} succeeded trials, it needs {MIN_TRIALS}"
