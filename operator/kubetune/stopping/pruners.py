"""kubetune's stopping rules as optuna pruners, to compare them with optuna's own."""
from __future__ import annotations

from typing import Any

import optuna
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial, TrialState

from .base import Strategy
from .curvefit import CurveFitRule
from .median import MedianRule


def _curve(t: FrozenTrial) -> list[tuple[int, float]]:
    return sorted(t.intermediate_values.items())


def _direction(study: optuna.Study) -> str:
    return "minimize" if study.direction == optuna.study.StudyDirection.MINIMIZE else "maximize"


class MedianStoppingPruner(BasePruner):
    """kubetune's median rule: compares with running averages of all other trials that
    reached the step (running ones included), not only completed ones. `objective="last"`
    when the objective function returns the last value it reported (the usual case in
    optuna) rather than the best."""

    def __init__(self, start_step: int = 5, min_trials: int = 3, interval: int = 1,
                 objective: Strategy = "best") -> None:
        self.rule = MedianRule(start_step=start_step, min_trials=min_trials, interval=interval, objective=objective)

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        others = [
            _curve(t) for t in study.get_trials(deepcopy=False)
            if t.number != trial.number and t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        ]
        return self.rule.decide(_curve(trial), others, _direction(study)) is not None


class CurveFitPruner(BasePruner):
    """kubetune's calibrated curve-fitting rule. `final_step` is where training ends;
    `objective="last"` when the objective function returns the last value it reported (the
    usual case in optuna) rather than the best. A trial worse than most others' running
    averages is pruned as the median rule would prune it (unless finished trials like it
    bloomed late); curve fitting's own prunes wait for eight finished look-alikes (see
    CurveFitRule). Any other CurveFitRule setting (min_look_alikes, running_quantile,
    running_lift, lucky_draws, ...) is passed by name; unset ones are its defaults."""

    def __init__(self, final_step: int, probability: float = CurveFitRule.probability, margin: float = 0.0,
                 start_step: int = 5, min_trials: int = 3, median_probability: float = CurveFitRule.median_probability,
                 leader_probability: float = CurveFitRule.leader_probability, objective: Strategy = "best",
                 uncalibrated: str = CurveFitRule.uncalibrated, **settings: Any) -> None:
        self.rule = CurveFitRule(final_step=final_step, probability=probability, margin=margin,
                                 start_step=start_step, min_trials=min_trials,
                                 median_probability=median_probability, leader_probability=leader_probability,
                                 objective=objective, uncalibrated=uncalibrated, **settings)

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        trials = study.get_trials(deepcopy=False)
        others = [_curve(t) for t in trials if t.number != trial.number and t.intermediate_values]
        finished = [_curve(t) for t in trials if t.state == TrialState.COMPLETE]
        stopped = [_curve(t) for t in trials if t.state == TrialState.PRUNED and t.intermediate_values]
        return self.rule.decide(_curve(trial), others, _direction(study), finished, stopped) is not None
