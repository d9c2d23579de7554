"""The median stopping rule (Golovin et al. 2017, Google Vizier)."""
from __future__ import annotations

import statistics
from dataclasses import dataclass

from .base import Curve, Decision, best_so_far, oriented


@dataclass(frozen=True)
class MedianRule:
    """Stop a trial at step s when its best value so far is worse than the median of the
    other trials' running averages up to s.

    Other trials count when they have reached step s, finished or still running, so
    the rule keeps its savings when many trials run in parallel.

    start_step: no trial is stopped before it reports this step.
    min_trials: how many other trials must have reached step s.
    interval: decide only every this many steps.
    """

    start_step: int = 5
    min_trials: int = 3
    interval: int = 1

    def decide(self, curve: Curve, others: list[Curve], direction: str) -> Decision | None:
        mine = oriented(curve, direction)
        if not mine:
            return None
        step = mine[-1][0]
        if step < self.start_step or (step - self.start_step) % self.interval:
            return None
        best = best_so_far(mine, step)
        averages = []
        for other in others:
            pts = oriented(other, direction)
            if pts and pts[-1][0] >= step:
                upto = [v for s, v in pts if s <= step]
                if upto:
                    averages.append(sum(upto) / len(upto))
        if len(averages) < self.min_trials or best is None:
            return None
        median = statistics.median(averages)
        if best <= median:
            return None
        sign = 1.0 if direction == "minimize" else -1.0
        return Decision(
            rule="median",
            step=step,
            message=(
                f"at step {step} its best value {sign * best:.6g} is worse than the median "
                f"{sign * median:.6g} of {len(averages)} other trials' running averages"
            ),
            evidence={"value": sign * best, "median": sign * median, "peers": float(len(averages))},
        )
