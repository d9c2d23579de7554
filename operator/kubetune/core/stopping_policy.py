"""Apply the Round's early-stopping rule to one running trial."""
from __future__ import annotations

from ..api import Trial
from ..api.trial import CurvePoint, StopReason
from ..stopping import CurveFitRule, MedianRule
from .settings import RoundSettings


def _points(curve: list[CurvePoint]) -> list[tuple[int, float]]:
    return [(p.step, p.value) for p in curve]


def stop_decision(s: RoundSettings, trial: Trial, curve: list[CurvePoint], peers: list[Trial]) -> StopReason | None:
    """Should this running trial stop now? Re-runs are never stopped: they measure variance."""
    rule = s.stopping
    if rule.rule == "none" or trial.spec.purpose != "search" or not curve:
        return None
    others = [t for t in peers if t.metadata.name != trial.metadata.name and t.spec.purpose == "search"]
    points = {t.metadata.name: _points(t.status.curve) for t in others if t.status.curve}
    other_curves = list(points.values())
    if rule.rule == "median":
        decision = MedianRule(rule.start_step, rule.min_trials, rule.interval, objective=s.strategy).decide(
            _points(curve), other_curves, s.direction
        )
    else:
        finished = [points[t.metadata.name] for t in others if t.status.phase == "Succeeded" and t.status.curve]
        decision = CurveFitRule(
            final_step=s.max_steps, probability=rule.probability, margin=rule.margin,
            start_step=rule.start_step, min_trials=rule.min_trials, interval=rule.interval,
            median_probability=rule.median_probability, leader_probability=rule.leader_probability,
            objective=s.strategy,
        ).decide(_points(curve), other_curves, s.direction, finished)
    if decision is None:
        return None
    return StopReason(rule=decision.rule, step=decision.step, message=decision.message, evidence=decision.evidence)
