"""Hyperparameter importance, from optuna's evaluators."""
from __future__ import annotations

import warnings

import optuna

from ..api import Trial
from ..sampling import Observation, build_study
from ..space import SearchSpace


def importance(space: SearchSpace, finished: list[Trial], direction: str) -> dict[str, float]:
    """fANOVA importance of each searched parameter over the Round's finished trials
    (empty with too few trials or only one parameter)."""
    if len(finished) < 6 or len(space.parameters) < 2:
        return {}
    obs = [Observation(t.spec.number, dict(t.spec.parameters), "complete", t.status.objective) for t in finished]
    study = build_study(obs, space.distributions(), direction, optuna.samplers.RandomSampler(seed=0))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0)
            )
    except (RuntimeError, ValueError):
        return {}
    return {k: round(float(v), 4) for k, v in got.items()}
