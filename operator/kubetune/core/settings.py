"""A Round's settings with the Study's defaults and kubetune's defaults filled in."""
from __future__ import annotations

from dataclasses import dataclass

from ..api import Round, Study
from ..stopping import CurveFitRule

DEFAULT_MAX_TRIALS = 20
DEFAULT_PARALLELISM = 2
DEFAULT_MAX_FAILED = 3
DEFAULT_MAX_RETRIES = 3


@dataclass(frozen=True)
class StoppingSettings:
    rule: str
    start_step: int
    min_trials: int
    interval: int
    probability: float
    margin: float
    median_probability: float
    leader_probability: float
    min_look_alikes: int
    running_quantile: float
    running_lift: float
    lucky_draws: bool


@dataclass(frozen=True)
class RoundSettings:
    algorithm: str
    seed: int
    startup_trials: int
    max_trials: int
    parallelism: int
    max_failed: int
    max_retries: int
    stopping: StoppingSettings
    max_steps: int
    direction: str
    metric: str
    strategy: str  # the objective: a trial's best value, or its last
    rerun_top_k: int
    rerun_seeds: int
    rerun_baseline: bool


def _pick(field: str, *sources: object, default: object) -> object:
    for s in sources:
        if s is not None and getattr(s, field, None) is not None:
            return getattr(s, field)
    return default


def resolve(study: Study, rnd: Round) -> RoundSettings:
    d, r = study.spec.round_defaults, rnd.spec
    max_steps = r.max_steps or study.spec.max_steps
    alg = [r.algorithm, d.algorithm]
    bud = [r.budget, d.budget]
    es = [r.early_stopping, d.early_stopping]
    max_trials = int(_pick("max_trials", *bud, default=DEFAULT_MAX_TRIALS))  # type: ignore[arg-type]
    parallelism = int(_pick("parallelism", *bud, default=DEFAULT_PARALLELISM))  # type: ignore[arg-type]
    return RoundSettings(
        algorithm=str(_pick("name", *alg, default="sobol")),
        seed=int(_pick("seed", *alg, default=0)),  # type: ignore[arg-type]
        startup_trials=int(_pick("startup_trials", *alg, default=10)),  # type: ignore[arg-type]
        max_trials=max_trials,
        parallelism=min(parallelism, max_trials),
        max_failed=int(_pick("max_failed_trials", *bud, default=DEFAULT_MAX_FAILED)),  # type: ignore[arg-type]
        max_retries=int(_pick("max_retries", *bud, default=DEFAULT_MAX_RETRIES)),  # type: ignore[arg-type]
        stopping=StoppingSettings(
            rule=str(_pick("rule", *es, default="none")),
            start_step=int(_pick("start_step", *es, default=max(1, max_steps // 10))),  # type: ignore[arg-type]
            min_trials=int(_pick("min_trials", *es, default=3)),  # type: ignore[arg-type]
            interval=int(_pick("interval", *es, default=1)),  # type: ignore[arg-type]
            probability=float(_pick("probability", *es, default=CurveFitRule.probability)),  # type: ignore[arg-type]
            margin=float(_pick("margin", *es, default=0.0)),  # type: ignore[arg-type]
            median_probability=float(_pick("median_probability", *es, default=CurveFitRule.median_probability)),  # type: ignore[arg-type]
            leader_probability=float(_pick("leader_probability", *es, default=CurveFitRule.leader_probability)),  # type: ignore[arg-type]
            min_look_alikes=int(_pick("min_look_alikes", *es, default=CurveFitRule.min_look_alikes)),  # type: ignore[arg-type]
            running_quantile=float(_pick("running_quantile", *es, default=CurveFitRule.running_quantile)),  # type: ignore[arg-type]
            running_lift=float(_pick("running_lift", *es, default=CurveFitRule.running_lift)),  # type: ignore[arg-type]
            lucky_draws=bool(_pick("lucky_draws", *es, default=CurveFitRule.lucky_draws)),
        ),
        max_steps=max_steps,
        direction=study.spec.objective.goal,
        metric=study.spec.objective.metric,
        strategy=study.spec.objective.strategy,
        rerun_top_k=r.reruns.top_k if r.reruns else 0,
        rerun_seeds=r.reruns.seeds if r.reruns else 0,
        rerun_baseline=bool(r.reruns and r.reruns.include_baseline),
    )
