"""Hyperparameter importance, from optuna's fANOVA evaluator.

The analysis runs on every Round pass while trials report (their curves change the
Round's other findings), but importance depends only on the finished trials: it is
computed once per set of finished trials (`_fanova` is memoized on them).

The forest is bounded (16 trees of depth at most 8) instead of optuna's default of
64 trees grown to purity: the default's cost grows about quadratically with the
trials (here, 3 parameters: ~6 s at 300 trials, ~50 s at 1000, blocking the Round's
reconcile pass), the bounded one stays near a second at thousands of trials. On
planted objectives (additive, interacting, a valley; 50 and 200 trials, 6
parameters) the importances differ from the default's by at most 0.011.

optuna's fANOVA grows its forest with scikit-learn, a dependency of kubetune; an
environment without it gets a message instead of importances, never an error that
stops the Round.

It rests on every search trial with a value, early-stopped ones included, each at the
common step of `evidence.gather` (succeeded trials alone leave out the regions early
stopping cut short, and with them the parameter that matters most); `importance_basis`
says on how many trials and at which step. Past SAMPLE trials the forest is grown on an
even sample of them by trial number (the cost of fANOVA, and of the study it reads,
would otherwise grow with every trial of a 10,000-trial Round).
"""
from __future__ import annotations

import hashlib
import importlib.util
import warnings
from functools import lru_cache
from typing import Any

import optuna
from optuna.distributions import BaseDistribution

from ..api import Trial
from ..sampling import Observation, build_study
from ..space import SearchSpace
from .evidence import Evidence, gather

TREES, DEPTH = 16, 8
MIN_TRIALS = 6  # fewer trials with a value than this and importance is skipped
SAMPLE = 2000  # more trials with a value than this and fANOVA reads an even sample of this many


def importance(space: SearchSpace, trials: list[Trial], direction: str, strategy: str = "best") -> dict[str, float]:
    """fANOVA importance of each searched parameter over the Round's search trials with a
    value, each at the common step (empty with too few trials or only one parameter)."""
    ev = gather(trials, direction, strategy)
    if importance_skipped(space, trials, direction, strategy) or len(space.parameters) < 2:
        return {}
    rows = sorted((t.spec.number, tuple(sorted(t.spec.parameters.items())), v) for t, v in ev.values)
    if len(rows) > SAMPLE:
        rows = [rows[i * len(rows) // SAMPLE] for i in range(SAMPLE)]
    return dict(_fanova(tuple(sorted(space.distributions().items())), _Rows(tuple(rows)), direction))


def importance_basis(space: SearchSpace, trials: list[Trial], direction: str, strategy: str = "best") -> str:
    """On what the importances rest, for a person: "16 trials (9 succeeded, 7 early-stopped), ..."."""
    if len(space.parameters) < 2:
        return ""
    ev = gather(trials, direction, strategy)
    sample = f"; fANOVA on an even sample of {SAMPLE} of them" if len(ev.values) > SAMPLE else ""
    return ev.describe() + sample


def importance_skipped(space: SearchSpace, trials: list[Trial], direction: str = "minimize",
                       strategy: str = "best") -> str | None:
    """Why importance is missing, when it is for lack of trials or of scikit-learn
    (with a single searched parameter there is nothing to compare: no message)."""
    if len(space.parameters) < 2:
        return None
    ev: Evidence = gather(trials, direction, strategy)
    if len(ev.values) < MIN_TRIALS:
        what = "succeeded or early-stopped" if ev.early_stopped else "succeeded"
        return f"importance skipped: {len(ev.values)} {what} trials, it needs {MIN_TRIALS}"
    if importlib.util.find_spec("sklearn") is None:
        return "importance skipped: fANOVA needs scikit-learn (pip install scikit-learn)"
    return None


class _Rows:
    """The rows fANOVA reads, hashed and compared by a digest alone: the cache below keeps the
    digest (the rows are dropped once read), not ~0.4 KB per trial for each of its entries."""

    __slots__ = ("digest", "rows")

    def __init__(self, rows: tuple[tuple[int, tuple[tuple[str, Any], ...], float | None], ...]) -> None:
        self.rows: tuple | None = rows
        self.digest = hashlib.blake2b(repr(rows).encode(), digest_size=16).digest()

    def __hash__(self) -> int:
        return hash(self.digest)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Rows) and other.digest == self.digest


@lru_cache(maxsize=64)  # a Round needs its latest entry
def _fanova(
    distributions: tuple[tuple[str, BaseDistribution], ...],
    rows: _Rows,
    direction: str,
) -> tuple[tuple[str, float], ...]:
    data, rows.rows = rows.rows or (), None
    obs = [Observation(number, dict(params), "complete", value) for number, params, value in data]
    study = build_study(obs, dict(distributions), direction, optuna.samplers.RandomSampler(seed=0))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.FanovaImportanceEvaluator(n_trees=TREES, max_depth=DEPTH, seed=0)
            )
    except (RuntimeError, ValueError, ImportError):
        return ()
    finally:
        _release_trees()
    return tuple((k, round(float(v), 4)) for k, v in got.items())


def _release_trees() -> None:
    """Let the forest just grown go. optuna's fANOVA trees memoize their methods in caches
    on the class, without bound (`lru_cache(maxsize=None)` on methods, keyed by the tree):
    every tree ever grown would stay alive, ~0.14 MB per analysis, for the operator's life."""
    try:
        from optuna.importance._fanova._tree import _FanovaTree
    except ImportError:  # another optuna: nothing of this to release
        return
    for member in vars(_FanovaTree).values():
        clear = getattr(member, "cache_clear", None)
        if callable(clear):
            clear()
