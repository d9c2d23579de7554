"""The median stopping rule (Golovin et al. 2017, Google Vizier)."""
from __future__ import annotations

import statistics
from dataclasses import dataclass

from .base import Curve, Decision, Strategy, check_strategy, level, oriented, running_averages


@dataclass(frozen=True)
class MedianRule:
    """Stop a trial at step s when its best value so far is worse than the median of the
    other trials' running averages up to s.

    Other trials count when they have reached step s, finished or still running, so
    the rule keeps its savings when many trials run in parallel.

    start_step: no trial is stopped before it reports this step.
    min_trials: how many other trials must have reached step s.
    interval: decide only every this many steps.
    objective: which reported value is a trial's objective: its best ("best", Vizier's
        rule), or its last ("last"): then the trial's value is the median of its latest
        three, so a trial that got worse since its best is judged where it is now.
    """

    start_step: int = 5
    min_trials: int = 3
    interval: int = 1
    objective: Strategy = "best"

    def __post_init__(self) -> None:
        check_strategy(self.objective)

    def decide(self, curve: Curve, others: list[Curve], direction: str) -> Decision | None:
        mine = oriented(curve, direction)
        if not mine:
            return None
        step = mine[-1][0]
        if step < self.start_step or (step - self.start_step) % self.interval:
            return None
        value = level(mine, step, self.objective)
        averages = running_averages(others, direction, step)
        if len(averages) < self.min_trials or value is None:
            return None
        median = statistics.median(averages)
        if value <= median:
            return None
        sign = 1.0 if direction == "minimize" else -1.0
        return Decision(
            rule="median",
            step=step,
            message=(
                f"at step {step} its {'best' if self.objective == 'best' else 'recent'} value {sign * value:.6g} "
                f"is worse than the median {sign * median:.6g} of {len(averages)} other trials' running averages"
            ),
            evidence={"value": sign * value, "median": sign * median, "peers": float(len(averages))},
        )
