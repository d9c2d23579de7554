"""Apply the Round's early-stopping rule to one running trial."""
from __future__ import annotations

import weakref
from typing import Any, Sequence

from ..api import Trial
from ..api.trial import CurvePoint, PackedCurve, StopReason, TrialStatus
from ..stopping import CurveFitRule, MedianRule
from .settings import RoundSettings


def _points(curve: list[CurvePoint]) -> list[tuple[int, float]]:
    return [(p.step, p.value) for p in curve]


_CONVERTED: dict[int, tuple[Any, list[CurvePoint], int, list[tuple[int, float]]]] = {}
"""A peer's curve as the rules take it, per Trial status object. Every decision reads
every peer of its Round, and the operator hands over the same parsed Trials while they
are unchanged (trial_models), so each curve is converted once per version instead of
once per decision (a sixth of a decision at 3000 finished trials). An entry goes with
its status object. Curves are replaced, never edited in place (trial_plan merges into a
new list); an entry is also rebuilt when its list is another or has another length."""


def _peer_points(status: TrialStatus) -> Sequence[tuple[int, float]]:
    key, curve = id(status), status.curve
    if isinstance(curve, PackedCurve):  # a parsed Trial's: (step, value) pairs already
        return curve
    hit = _CONVERTED.get(key)
    if hit is not None and hit[0]() is status and hit[1] is curve and hit[2] == len(curve):
        return hit[3]
    points = _points(curve)
    gone = weakref.ref(status, lambda _, key=key: _CONVERTED.pop(key, None))
    _CONVERTED[key] = (gone, curve, len(curve), points)
    return points


def stop_decision(s: RoundSettings, trial: Trial, curve: list[CurvePoint], peers: list[Trial]) -> StopReason | None:
    """Should this running trial stop now? Re-runs are never stopped: they measure variance.
    Nor is a trial that has reached its last step: stopping it saves nothing and would call
    a finished trial EarlyStopped."""
    rule = s.stopping
    if rule.rule == "none" or trial.spec.purpose != "search" or not curve or curve[-1].step >= s.max_steps:
        return None
    others = [t for t in peers if t.metadata.name != trial.metadata.name and t.spec.purpose == "search"]
    points = {t.metadata.name: _peer_points(t.status) for t in others if t.status.curve}
    other_curves = list(points.values())
    if rule.rule == "median":
        decision = MedianRule(rule.start_step, rule.min_trials, rule.interval, objective=s.strategy).decide(
            _points(curve), other_curves, s.direction
        )
    else:
        finished = [points[t.metadata.name] for t in others if t.status.phase == "Succeeded" and t.status.curve]
        stopped = [points[t.metadata.name] for t in others if t.status.phase == "EarlyStopped" and t.status.curve]
        decision = CurveFitRule(
            final_step=s.max_steps, probability=rule.probability, margin=rule.margin,
            start_step=rule.start_step, min_trials=rule.min_trials, interval=rule.interval,
            median_probability=rule.median_probability, leader_probability=rule.leader_probability,
            min_look_alikes=rule.min_look_alikes, running_quantile=rule.running_quantile,
            running_lift=rule.running_lift, lucky_draws=rule.lucky_draws, objective=s.strategy,
        ).decide(_points(curve), other_curves, s.direction, finished, stopped)
    if decision is None:
        return None
    return StopReason(rule=decision.rule, step=decision.step, message=decision.message, evidence=decision.evidence)
