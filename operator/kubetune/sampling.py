"""Choosing configurations: quasi-random, random, grid and optuna's Bayesian samplers.

Everything here is a pure function of the Round and its trials, so the sampler
state is simply rebuilt from the Trial objects after an operator restart.

How scientific parameters stay fair under Bayesian search (the playbook's point:
compare scientific values on equal terms):
- scientific values always come from the quasi-random (Sobol) sequence, indexed
  by the trial number, so every value gets its even share of the budget whatever
  the algorithm, and the n-th trial gets the same values after a restart;
- nuisance values are then suggested by the algorithm from a sub-study holding
  only the trials with the same scientific values (categorical and int scientific
  parameters), so each scientific value gets its own optimized nuisance
  parameters. With a continuous scientific parameter the sub-study is the whole
  Round, with the scientific values fixed for the suggestion.
"""
from __future__ import annotations

import math
import warnings
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import TrialState
from scipy.stats import qmc

from .api import Parameter
from .api.common import Scalar
from .space import SearchSpace

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

BAYESIAN = ("tpe", "gp", "cmaes")


class AlgorithmUnavailable(RuntimeError):
    """The Round's algorithm needs a library this installation lacks."""
DEFAULT_STARTUP = 10


@dataclass(frozen=True)
class Observation:
    """What a sampler learns from one trial."""

    number: int
    params: dict[str, Scalar]
    state: str  # "complete", "pruned", "fail", "running"
    value: float | None = None
    curve: tuple[tuple[int, float], ...] = ()


@dataclass
class Suggester:
    """Suggests configurations for one Round. Keep one per Round (see core.round_plan.suggester_for)."""

    space: SearchSpace
    algorithm: str
    seed: int
    direction: str  # "minimize" | "maximize"
    startup_trials: int = DEFAULT_STARTUP
    _sobol_dims: int = field(init=False)

    def __post_init__(self) -> None:
        self._sobol_dims = max(1, len(self.space.parameters))

    # ---- quasi-random -------------------------------------------------
    def sobol_point(self, number: int) -> dict[str, Scalar]:
        """The n-th point of the scrambled Sobol sequence, mapped onto the domains."""
        engine = qmc.Sobol(d=self._sobol_dims, scramble=True, seed=self.seed)
        if number:
            engine.fast_forward(number)
        u = engine.random(1)[0]
        values: dict[str, Scalar] = {}
        for i, p in enumerate(self.space.parameters):
            if self.space.active(p, values):
                values[p.name] = from_unit(p, float(u[i]))
        return values

    # ---- everything ---------------------------------------------------
    def suggest(self, number: int, history: list[Observation]) -> dict[str, Scalar]:
        """The sampled values of trial `number`, given what earlier trials showed."""
        if self.algorithm == "grid":
            grid = self.space.grid()
            return dict(grid[number % len(grid)])
        quasi = self.sobol_point(number)
        if self.algorithm == "sobol":
            return quasi
        scientific = {k: v for k, v in quasi.items() if k in self.space.scientific}
        if self.algorithm == "random":
            return self._optuna(number, history, scientific, optuna.samplers.RandomSampler(seed=self._seed(number)))
        if self.algorithm in BAYESIAN:
            peers = self._peers(history, scientific)
            finished = [o for o in peers if o.state in ("complete", "pruned")]
            if len(finished) < self.startup_trials:
                return quasi
            return self._optuna(number, peers, scientific, self._bayesian(number))
        raise ValueError(f"unknown algorithm {self.algorithm!r}")

    def _seed(self, number: int) -> int:
        return zlib.crc32(f"{self.seed}:{number}".encode())

    def _bayesian(self, number: int) -> optuna.samplers.BaseSampler:
        seed = self._seed(number)
        if self.algorithm == "tpe":
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=0, multivariate=True, group=True,
                                              constant_liar=True)
        if self.algorithm == "gp":
            try:
                import torch  # noqa: F401  (GPSampler's requirement, checked here to say so clearly)
            except ImportError:
                raise AlgorithmUnavailable(
                    "algorithm gp needs PyTorch where kubetune runs (pip install 'kubetune[gp]'); "
                    "use tpe, or an operator image with torch"
                ) from None
            return optuna.samplers.GPSampler(seed=seed, n_startup_trials=0)
        return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=0, warn_independent_sampling=False)

    def _peers(self, history: list[Observation], scientific: dict[str, Scalar]) -> list[Observation]:
        """Trials that share the scientific values (when those values are discrete)."""
        discrete = all(self.space.by_name(k).type != "float" for k in scientific)
        if not scientific or not discrete:
            return history
        return [o for o in history if all(o.params.get(k) == v for k, v in scientific.items())]

    def _optuna(
        self, number: int, history: list[Observation], scientific: dict[str, Scalar], sampler: optuna.samplers.BaseSampler
    ) -> dict[str, Scalar]:
        dists = self.space.distributions()
        study = build_study(history, dists, self.direction, optuna.samplers.PartialFixedSampler(scientific, sampler))
        trial = study.ask()
        values: dict[str, Scalar] = {}
        for p in self.space.parameters:
            if self.space.active(p, values):
                values[p.name] = _suggest(trial, p.name, dists[p.name])
        return values


def build_study(
    history: list[Observation], dists: dict[str, BaseDistribution], direction: str, sampler: optuna.samplers.BaseSampler
) -> optuna.Study:
    """An in-memory optuna study holding what the Round's trials showed.

    Failed and infeasible trials are told as FAIL (optuna's samplers ignore them
    rather than treat them as good or bad values); early-stopped ones as PRUNED with
    their curve; running ones as RUNNING, so TPE's constant liar avoids them."""
    study = optuna.create_study(direction=direction, sampler=sampler)
    for o in history:
        params = {k: v for k, v in o.params.items() if k in dists and _contains(dists[k], v)}
        used = {k: dists[k] for k in params}
        state = {
            "complete": TrialState.COMPLETE,
            "pruned": TrialState.PRUNED,
            "fail": TrialState.FAIL,
            "running": TrialState.RUNNING,
        }[o.state]
        value = o.value if state == TrialState.COMPLETE else None
        if state == TrialState.COMPLETE and (value is None or not math.isfinite(value)):
            state = TrialState.FAIL
        study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions=used,
                value=value,
                state=state,
                intermediate_values={s: v for s, v in o.curve if math.isfinite(v)},
            )
        )
    return study


def _contains(dist: BaseDistribution, value: Any) -> bool:
    try:
        return bool(dist._contains(dist.to_internal_repr(value)))
    except (ValueError, TypeError):
        return False


def _suggest(trial: optuna.Trial, name: str, dist: BaseDistribution) -> Scalar:
    value = trial._suggest(name, dist)
    if isinstance(dist, optuna.distributions.IntDistribution):
        return int(value)
    return value  # type: ignore[no-any-return]


def from_unit(p: Parameter, u: float) -> Scalar:
    """Map u in [0, 1) onto a parameter's domain (log-uniform for log domains)."""
    u = min(max(u, 0.0), np.nextafter(1.0, 0.0))
    if p.type == "categorical":
        choices = list(p.choices or [])
        return choices[int(u * len(choices))]
    assert p.min is not None and p.max is not None
    if p.log:
        x = math.exp(math.log(p.min) + u * (math.log(p.max) - math.log(p.min)))
    else:
        x = p.min + u * (p.max - p.min)
    if p.type == "int":
        step = int(p.step or 1)
        lo, hi = int(p.min), int(p.max)
        if p.log:
            return int(min(hi, max(lo, round(x))))
        n = (hi - lo) // step
        return lo + step * min(n, int(u * (n + 1)))
    if p.step:
        n = math.floor((p.max - p.min) / p.step + 1e-9)
        return float(p.min + p.step * min(n, int(u * (n + 1))))
    return float(min(p.max, max(p.min, x)))

