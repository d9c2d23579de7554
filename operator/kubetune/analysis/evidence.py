"""Which search trials count as evidence about the search space, and with which value.

Succeeded trials alone are a biased sample: early stopping removes the bad regions
from them (on the quickstart, 7 of 16 trials, none with a poor learning rate), so an
analysis of them misses the parameter that matters most. Early-stopped trials are
evidence too, but their values come from earlier in training than the finished
trials' and are not comparable as they are.

So every trial is judged at one **common step**: the latest step every early-stopped
trial reached (the earliest stop). That is the comparison the stopping rule itself
made when it stopped the first of them. Each trial counts with its objective up to
that step (its best value so far, or its last, as the Study's objective strategy
says); a trial that ended at or before it counts with its objective. Without
early-stopped trials the common step is None and every trial counts with its
objective, as before. Failed and infeasible trials carry no value and are not counted
here (the infeasibility check counts them).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..api import Trial
from ..api.trial import curve_pairs
from ..api.trial import last_step as reached
from ..core.round_plan import phase_of

COUNTED = ("Succeeded", "EarlyStopped")


@dataclass(frozen=True)
class Evidence:
    """The trials an analysis rests on, each with its comparable value."""

    values: tuple[tuple[Trial, float], ...]  # (trial, value at the common step), in the given order
    step: int | None  # the common step; None: every trial at its objective
    succeeded: int
    early_stopped: int

    @property
    def trials(self) -> list[Trial]:
        return [t for t, _ in self.values]

    def describe(self) -> str:
        """"16 trials (9 succeeded, 7 early-stopped) at step 5, the earliest stop"."""
        n = len(self.values)
        what = f"{n} {'' if self.early_stopped else 'succeeded '}trial{'' if n == 1 else 's'}"
        if not self.early_stopped:
            return what
        return (f"{what} ({self.succeeded} succeeded, {self.early_stopped} early-stopped), each at its value "
                f"at step {self.step}, the earliest stop")


def last_step(t: Trial) -> int:
    return reached(t.status)


def value_at(t: Trial, step: int | None, direction: str, strategy: str = "best") -> float | None:
    """The trial's objective as it stood at `step` (None: its objective)."""
    obj = t.status.objective
    if step is None or last_step(t) <= step:
        return obj if obj is not None and math.isfinite(obj) else None
    pts = sorted((s, v) for s, v in curve_pairs(t.status.curve) if s <= step and math.isfinite(v))
    if not pts:
        return None
    if strategy == "last":
        return pts[-1][1]
    return min(v for _, v in pts) if direction == "minimize" else max(v for _, v in pts)


def gather(trials: list[Trial], direction: str, strategy: str = "best") -> Evidence:
    """The search trials with a value, each at the common step (see the module's docstring)."""
    candidates = [t for t in trials if t.spec.purpose == "search" and phase_of(t) in COUNTED
                  and t.status.objective is not None and math.isfinite(t.status.objective)]
    stops = [s for t in candidates if phase_of(t) == "EarlyStopped" and (s := last_step(t)) > 0]
    step = min(stops) if stops else None
    values = tuple((t, v) for t in candidates if (v := value_at(t, step, direction, strategy)) is not None)
    return Evidence(values=values, step=step,
                    succeeded=sum(phase_of(t) == "Succeeded" for t, _ in values),
                    early_stopped=sum(phase_of(t) == "EarlyStopped" for t, _ in values))
