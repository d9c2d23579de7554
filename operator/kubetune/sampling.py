"""Choosing configurations: quasi-random, random, grid and optuna's Bayesian samplers.

Every suggestion is a function of the Round and its trials (the sampler is seeded
from the trial number), so the sampler state is simply rebuilt from the Trial
objects after an operator restart; in between, a Round's studies are kept and told
only what changed (the random algorithm reads no history and keeps no study), so a
suggestion costs what optuna's own tell and ask do (bench/sampler_cost.py).

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

import copy
import datetime
import math
import operator
import warnings
import zlib
from dataclasses import dataclass, field
from itertools import compress
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers._lazy_random_state import LazyRandomState
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
    curve: tuple[tuple[int, float], ...] = ()  # only the last finite point counts (see _last_point)


@dataclass
class Suggester:
    """Suggests configurations for one Round. Keep one per Round (see core.round_plan.suggester_for):
    it keeps the optuna studies and samplers between suggestions and tells them only what
    changed, so a suggestion costs about what optuna's own `ask()` does."""

    space: SearchSpace
    algorithm: str
    seed: int
    direction: str  # "minimize" | "maximize"
    startup_trials: int = DEFAULT_STARTUP
    _sobol_dims: int = field(init=False)
    _dists: dict[str, BaseDistribution] = field(init=False)
    _grid: list[dict[str, Scalar]] | None = field(init=False, default=None)
    _sobol: tuple[Any, int] = field(init=False, default=(None, 0))  # the engine, and the point it draws next
    _block: tuple[int, Any] = field(init=False, default=(0, None))  # the first number of the drawn points, the points
    _random: optuna.samplers.RandomSampler | None = field(init=False, default=None)
    _kept: dict[tuple, _KeptStudy] = field(init=False, default_factory=dict)
    _read: _Read = field(init=False, default_factory=lambda: _Read())

    def __post_init__(self) -> None:
        self._sobol_dims = max(1, len(self.space.parameters))
        self._dists = _Dists(self.space.distributions())

    # ---- quasi-random -------------------------------------------------
    def sobol_point(self, number: int) -> dict[str, Scalar]:
        """The n-th point of the scrambled Sobol sequence, mapped onto the domains."""
        first, points = self._block
        if points is None or not first <= number < first + len(points):
            first, points = self._block = (number, self._draw(number, SOBOL_BLOCK))
        u = points[number - first]
        values: dict[str, Scalar] = {}
        for i, p in enumerate(self.space.parameters):
            if self.space.active(p, values):
                values[p.name] = from_unit(p, float(u[i]))
        return values

    def _draw(self, number: int, n: int) -> Any:
        """Points number .. number+n-1 of the sequence (drawn together: the same points as one by one)."""
        engine, at = self._sobol
        if engine is None:
            engine = qmc.Sobol(d=self._sobol_dims, scramble=True, seed=self.seed)
        elif number < at:
            engine.reset()
            at = 0
        if number > at:
            engine.fast_forward(number - at)
        self._sobol = (engine, number + n)
        return engine.random(n)

    # ---- everything ---------------------------------------------------
    def suggest(self, number: int, history: list[Observation]) -> dict[str, Scalar]:
        """The sampled values of trial `number`, given what earlier trials showed."""
        if self.algorithm == "grid":
            if self._grid is None:
                self._grid = self.space.grid()
            return dict(self._grid[number % len(self._grid)])
        quasi = self.sobol_point(number)
        if self.algorithm == "sobol":
            return quasi
        scientific = {k: v for k, v in quasi.items() if k in self.space.scientific}
        if self.algorithm == "random":
            return self._independent(number, scientific)
        if self.algorithm in BAYESIAN:
            self._tell(history)
            key = self._key(scientific)
            kept = self._kept.get(key)
            if kept is None:
                peers = history if not key else [o for o in history if _member(o, scientific)]
                if sum(1 for o in peers if o.state in FINISHED) < self.startup_trials:
                    return quasi
                kept = _KeptStudy(build_study(peers, self._dists, self.direction, self._bayesian()),
                                  scientific if key else {})
                kept.remember(peers, self._dists)
                if self._read.unique:
                    self._kept[key] = kept
            elif len(kept.finished) < self.startup_trials:
                return quasi
            return self._ask(kept, number, scientific)
        raise ValueError(f"unknown algorithm {self.algorithm!r}")

    def _seed(self, number: int) -> int:
        return zlib.crc32(f"{self.seed}:{number}".encode())

    def _independent(self, number: int, scientific: dict[str, Scalar]) -> dict[str, Scalar]:
        """What optuna's RandomSampler, reseeded for trial `number`, suggests with the scientific
        values fixed (PartialFixedSampler), exactly as `study.ask()` would have it: the random
        sampler reads no history, so no study is kept for it."""
        if self._random is None:
            self._random = optuna.samplers.RandomSampler(seed=self.seed)
        sampler = self._random
        _reseed(sampler, self._seed(number))
        values: dict[str, Scalar] = {}
        for p in self.space.parameters:
            if self.space.active(p, values):
                dist = self._dists[p.name]
                if dist.single():
                    value = optuna.distributions._get_single_value(dist)
                elif p.name in scientific:
                    value = scientific[p.name]
                else:
                    value = sampler.sample_independent(None, None, p.name, dist)  # type: ignore[arg-type]
                dist.to_internal_repr(value)  # optuna's check (a NaN raises)
                values[p.name] = int(value) if isinstance(dist, optuna.distributions.IntDistribution) else value
        return values

    def _bayesian(self) -> optuna.samplers.BaseSampler:
        """The Round's sampler; reseeded for each trial number (see _ask)."""
        if self.algorithm == "tpe":
            return optuna.samplers.TPESampler(seed=self.seed, n_startup_trials=0, multivariate=True, group=True,
                                              constant_liar=True)
        if self.algorithm == "gp":
            try:
                import torch  # noqa: F401  (GPSampler's requirement, checked here to say so clearly)
            except ImportError:
                raise AlgorithmUnavailable(
                    "algorithm gp needs PyTorch where kubetune runs (pip install 'kubetune[gp]'); "
                    "use tpe, or an operator image with torch"
                ) from None
            return optuna.samplers.GPSampler(seed=self.seed, n_startup_trials=0)
        return optuna.samplers.CmaEsSampler(seed=self.seed, n_startup_trials=0, warn_independent_sampling=False)

    def _key(self, scientific: dict[str, Scalar]) -> tuple:
        """The key of the sub-study of trials that share the scientific values (when those values
        are discrete; with a continuous one, or none, the whole Round: key ())."""
        if not scientific or any(self.space.by_name(k).type == "float" for k in scientific):
            return ()
        return tuple(sorted((k, repr(v)) for k, v in scientific.items()))

    def _tell(self, history: list[Observation]) -> None:
        """Tell every kept study what changed in the history since the last suggestion; a study
        that cannot follow (a finished trial changed or went away, a trial appeared out of
        order) is dropped, to be rebuilt from the history when next needed."""
        changed, gone = self._read.changes(history)
        if not self._read.unique:
            self._kept.clear()  # two trials with one number: no study is kept (each is built afresh)
            return
        for key, kept in list(self._kept.items()):
            if not kept.update(changed, gone, self._read.seen, self._dists):
                del self._kept[key]

    def _ask(self, kept: _KeptStudy, number: int, scientific: dict[str, Scalar]) -> dict[str, Scalar]:
        """Ask the kept study for trial `number`. The sampler is reseeded from the trial number
        first, so trial n gets the same values from the same trials, kept or rebuilt."""
        _reseed(kept.sampler, self._seed(number))
        kept.study.sampler = optuna.samplers.PartialFixedSampler(scientific, kept.sampler)
        trial = kept.study.ask()
        values: dict[str, Scalar] = {}
        for p in self.space.parameters:
            if self.space.active(p, values):
                values[p.name] = _suggest(trial, p.name, self._dists[p.name])
        kept.asked_as(number, trial._trial_id, values, self._dists)
        return values


SOBOL_BLOCK = 64
"""Sobol points drawn at a time (and kept): drawing them one by one costs as much as a cheap suggestion."""
FINISHED = ("complete", "pruned")

_STATES = {
    "complete": TrialState.COMPLETE,
    "pruned": TrialState.PRUNED,
    "fail": TrialState.FAIL,
    "running": TrialState.RUNNING,
}


def _member(o: Observation, scientific: dict[str, Scalar]) -> bool:
    """Does the trial belong to the sub-study of these scientific values?"""
    return all(o.params.get(k) == v for k, v in scientific.items())


def _reseed(sampler: optuna.samplers.BaseSampler, seed: int) -> None:
    """Seed every random state of a sampler (and of the samplers it holds) as its constructor
    would with `seed`: a kept sampler then suggests what a new one would."""
    for value in vars(sampler).values():
        if isinstance(value, LazyRandomState):
            value.rng.seed(seed)
        elif isinstance(value, optuna.samplers.BaseSampler):
            _reseed(value, seed)


def _told(o: Observation, dists: dict[str, BaseDistribution]) -> tuple:
    """What a study is told of an observation: state, value, last curve point, parameters.

    The last point only of an early-stopped trial: optuna's samplers read intermediate
    values of PRUNED trials alone (TPE ranks them by their last step, CMA-ES may use the
    value there). Told for every trial, each point a running trial reached stayed in the
    kept study after it finished (44 points, 4.5 KB, after 50 passes)."""
    params = tuple(sorted((k, v) for k, v in o.params.items() if k in dists and _contains(dists[k], v)))
    state = o.state
    value = o.value if state == "complete" else None
    if state == "complete" and (value is None or not math.isfinite(value)):
        state, value = "fail", None
    last = _last_point(o.curve) if state == "pruned" else None
    return state, value, last, params


def _last_point(curve: tuple[tuple[int, float], ...]) -> tuple[int, float] | None:
    """The last finite point of a curve: all optuna's samplers read of an early-stopped trial's
    curve (TPE ranks pruned trials by their last step, then the value there)."""
    finite = {s: v for s, v in curve if math.isfinite(v)}
    if not finite:
        return None
    step = max(finite)
    return step, finite[step]


class _Read:
    """What a Suggester last read of its Round's history, to find what changed since: the
    observations by trial number, and the history list as it was. Between the suggestions of
    one pass the history only grows (and a trial may finish in place), so unchanged entries
    are skipped by identity, in C; a new pass's equal observations are compared once."""

    def __init__(self) -> None:
        self.seen: dict[int, Observation] = {}
        self.order: list[Observation] = []
        self.unique = True  # no two observations share a trial number

    def changes(self, history: list[Observation]) -> tuple[list[Observation], list[int]]:
        """(observations new or changed since the last read, trial numbers gone)."""
        order, seen = self.order, self.seen
        fresh = list(compress(history, map(operator.is_not, history, order)))  # (zip stops at the shorter)
        fresh += history[len(order):]
        changed = []
        for o in fresh:
            prev = seen.get(o.number)
            if prev is not o and prev != o:
                changed.append(o)
            seen[o.number] = o
        gone: list[int] = []
        self.unique = True
        if len(seen) != len(history):
            numbers = {o.number for o in history}
            gone = [k for k in seen if k not in numbers]
            for k in gone:
                del seen[k]
            self.unique = len(numbers) == len(history)
            if not self.unique:  # start over on the next read
                seen.clear()
                history = []
        self.order = list(history)
        return changed, gone


@dataclass
class _KeptStudy:
    """An optuna study kept between suggestions, and what it was told of each trial number."""

    study: optuna.Study
    scientific: dict[str, Scalar]  # the scientific values its trials share ({}: the whole Round)
    told: dict[int, tuple[int, tuple]] = field(default_factory=dict)  # number -> (optuna trial id, _told)
    finished: set[int] = field(default_factory=set)  # numbers of its complete or early-stopped trials
    asked: set[int] = field(default_factory=set)  # numbers asked for and not yet seen in the history
    top: int = -1  # the highest trial number told
    sampler: optuna.samplers.BaseSampler = field(init=False)

    def __post_init__(self) -> None:
        self.sampler = self.study.sampler  # the study's own is wrapped anew for each ask (PartialFixedSampler)

    def remember(self, history: list[Observation], dists: dict[str, BaseDistribution]) -> None:
        """After build_study: the study's trials are the history's, in order."""
        for trial, o in zip(self.study.get_trials(deepcopy=False), history):
            self.told[o.number] = (trial._trial_id, _told(o, dists))
            if o.state in FINISHED:
                self.finished.add(o.number)
            self.top = max(self.top, o.number)

    def asked_as(self, number: int, trial_id: int, values: dict[str, Scalar], dists: dict[str, BaseDistribution]) -> None:
        params = tuple(sorted((k, v) for k, v in values.items() if k in dists))
        self.told[number] = (trial_id, ("running", None, None, params))
        self.asked.add(number)
        self.top = max(self.top, number)

    def update(self, changed: list[Observation], gone: list[int], seen: dict[int, Observation],
               dists: dict[str, BaseDistribution]) -> bool:
        """Tell the study what changed: new trials, running trials that finished, trials asked
        for and never created. False when the study must be rebuilt instead (a finished trial
        changed or went away, or a trial appeared out of order), so a kept study always holds
        what build_study would, in the same order."""
        storage, study_id = self.study._storage, self.study._study_id
        for o in changed:
            if self.scientific and not _member(o, self.scientific):
                if o.number in self.told and not self._forget(o.number):  # its scientific values changed
                    return False
                continue
            told = _told(o, dists)
            had = self.told.get(o.number)
            if had is None:
                if o.number < self.top:
                    return False
                frozen = _frozen(told, dists)
                frozen._validate()
                self.told[o.number] = (storage.create_new_trial(study_id, template_trial=frozen), told)
                self.top = o.number
            elif had[1] != told:
                if had[1][0] != "running" or had[1][3] != told[3]:
                    return False
                _finish(storage, had[0], told)
                self.told[o.number] = (had[0], told)
            if o.state in FINISHED:
                self.finished.add(o.number)
            else:
                self.finished.discard(o.number)
        for number in gone:
            if number in self.told and not self._forget(number):
                return False
        if self.asked:
            for number in [n for n in self.asked if n not in seen]:
                self._forget(number)
            self.asked.clear()
        return True

    def _forget(self, number: int) -> bool:
        """A trial that left the history: a running one was asked for and never created (the
        samplers ignore it once FAIL); a finished one changes the study (False: rebuild)."""
        trial_id, told = self.told.pop(number)
        self.finished.discard(number)
        if told[0] != "running":
            return False
        self.study._storage.set_trial_state_values(trial_id, TrialState.FAIL)
        return True


class _Dists(dict):
    """The Suggester's distributions, and the part of them each trial holds: one dict per set
    of parameter names, shared by every trial of that set (a dict of its own per trial was
    0.4 KB of the 2.5 KB a kept study held per trial, for trials of four parameters)."""

    def __init__(self, dists: dict[str, BaseDistribution]) -> None:
        super().__init__(dists)
        self._of: dict[tuple[str, ...], dict[str, BaseDistribution]] = {}

    def of(self, names: tuple[str, ...]) -> dict[str, BaseDistribution]:
        found = self._of.get(names)
        if found is None:
            found = self._of[names] = {k: self[k] for k in names}
        return found


class _Held(optuna.trial.FrozenTrial):
    """A trial as a kept study holds it, sharing what it can with its peers. optuna's in-memory
    storage deep-copies each trial it is given (1.9 of the 2.5 KB a kept study held per trial)
    and copies a trial it holds before it changes it (set_trial_state_values,
    set_trial_intermediate_value, ...: copy on write), so a shallow copy does: the copy shares
    its parameters, distributions, empty attributes and times with the trial given, which
    nothing changes in place. A copy of a study's trials (get_trials(deepcopy=True)) is
    shallow too."""

    def __deepcopy__(self, memo: dict) -> "_Held":
        return copy.copy(self)


_NOTHING: dict = {}  # the user and system attributes of every held trial: none, never changed in place
_WHEN = datetime.datetime(2000, 1, 1)  # when a held trial started and ended: no sampler reads it


def _frozen(told: tuple, dists: dict[str, BaseDistribution]) -> optuna.trial.FrozenTrial:
    state, value, last, params = told
    names = tuple(k for k, _ in params)
    trial = optuna.trial.create_trial(
        params=dict(params),
        distributions={k: dists[k] for k in names},
        value=value,
        state=_STATES[state],
        intermediate_values=dict([last]) if last else _NOTHING,
    )
    trial.__class__ = _Held
    if isinstance(dists, _Dists):
        trial.distributions = dists.of(names)  # create_trial builds a dict of its own
    trial.user_attrs = trial.system_attrs = _NOTHING
    trial.datetime_start = _WHEN
    if trial.datetime_complete is not None:
        trial.datetime_complete = _WHEN
    return trial


def _finish(storage: optuna.storages.BaseStorage, trial_id: int, told: tuple) -> None:
    state, value, last, _ = told
    if last is not None:
        storage.set_trial_intermediate_value(trial_id, last[0], last[1])
    if state != "running":
        storage.set_trial_state_values(trial_id, _STATES[state], [value] if value is not None else None)


def build_study(
    history: list[Observation], dists: dict[str, BaseDistribution], direction: str, sampler: optuna.samplers.BaseSampler
) -> optuna.Study:
    """An in-memory optuna study holding what the Round's trials showed.

    Failed and infeasible trials are told as FAIL (optuna's samplers ignore them
    rather than treat them as good or bad values); early-stopped ones as PRUNED with
    the last point of their curve (all a sampler reads of it); running ones as RUNNING,
    so TPE's constant liar avoids them."""
    study = optuna.create_study(direction=direction, sampler=sampler)
    study.add_trials([_frozen(_told(o, dists), dists) for o in history])
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


_BELOW_ONE = float(np.nextafter(1.0, 0.0))


def from_unit(p: Parameter, u: float) -> Scalar:
    """Map u in [0, 1) onto a parameter's domain (log-uniform for log domains)."""
    u = min(max(u, 0.0), _BELOW_ONE)
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

