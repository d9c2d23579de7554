"""Numbers that agree with the pictures: importance and isolation rest on every search trial
with a value, early-stopped ones included, and say on how many."""
import math

import numpy as np

from kubetune.analysis import analyze_round
from kubetune.analysis.evidence import gather, value_at
from kubetune.analysis.importance import importance
from kubetune.space import SearchSpace

from .factories import round_, study, trial

STEPS = 20


def curve(final: float, until: int = STEPS) -> list[tuple[int, float]]:
    """A loss curve falling towards `final` (its value at STEPS), cut at `until`."""
    return [(s, final + 2.0 / s) for s in range(1, until + 1)]


def planted():
    """Learning rate dominates (a U in log space); momentum barely matters. Early stopping cut
    every trial with a poor learning rate at step 5, so among the succeeded trials only
    good learning rates remain, and there momentum's small effect is all that varies."""
    rnd = round_(
        scientific=[{"name": "optimizer", "type": "categorical", "choices": ["sgd", "adam"]}],
        nuisance=[{"name": "learning_rate", "type": "float", "min": 1e-4, "max": 1.0, "log": True},
                  {"name": "momentum", "type": "float", "min": 0.0, "max": 0.99}],
        budget={"maxTrials": 30, "parallelism": 2})
    rng = np.random.default_rng(7)
    ts = []
    for i in range(24):
        lr, mom = float(10 ** rng.uniform(-4, 0)), float(rng.uniform(0, 0.99))
        final = (math.log10(lr) + 2) ** 2 + 0.3 * mom
        params = {"optimizer": ["sgd", "adam"][i % 2], "learning_rate": lr, "momentum": mom}
        if abs(math.log10(lr) + 2) > 0.5:  # a poor learning rate: stopped early
            c = curve(final, 5)
            ts.append(trial(i, params, "EarlyStopped", min(v for _, v in c), c))
        else:
            c = curve(final)
            ts.append(trial(i, params, "Succeeded", min(v for _, v in c), c))
    return rnd, ts


def test_importance_counts_early_stopped_trials_at_a_common_step():
    rnd, ts = planted()
    space = SearchSpace.of(rnd.spec)
    stopped = [t for t in ts if t.status.phase == "EarlyStopped"]
    succeeded = [t for t in ts if t.status.phase == "Succeeded"]
    assert len(stopped) >= 8 and len(succeeded) >= 6
    # the succeeded trials alone tell the wrong story: that is what the analysis did before
    alone = importance(space, succeeded, "minimize")
    assert max(alone, key=alone.get) != "learning_rate", alone
    a = analyze_round(study(), rnd, ts)
    assert max(a.importance, key=a.importance.get) == "learning_rate", a.importance
    assert a.importance["learning_rate"] > 0.7, a.importance
    assert a.importance_basis == (f"24 trials ({len(succeeded)} succeeded, {len(stopped)} early-stopped), "
                                  "each at its value at step 5, the earliest stop")


def test_isolation_counts_every_trial_with_a_value():
    rnd, ts = planted()
    a = analyze_round(study(), rnd, ts)
    iso = {p.value: p for p in a.isolation}
    assert iso["sgd"].trials + iso["adam"].trials == 24
    assert iso["sgd"].early_stopped + iso["adam"].early_stopped == sum(t.status.phase == "EarlyStopped" for t in ts)
    best = min(ts, key=lambda t: t.status.objective)
    assert best.metadata.name in (iso["sgd"].trial, iso["adam"].trial)


def test_the_common_step_is_the_earliest_stop_and_values_are_taken_there():
    done = trial(0, {"learning_rate": 0.1}, "Succeeded", 0.1, curve(0.0))
    early = trial(1, {"learning_rate": 0.1}, "EarlyStopped", 0.9, [(1, 1.5), (2, 0.9), (3, 1.0)])
    late = trial(2, {"learning_rate": 0.1}, "EarlyStopped", 0.5, curve(0.4, 8))
    broken = trial(3, {"learning_rate": 0.1}, "Infeasible", None)
    ev = gather([done, early, late, broken], "minimize")
    assert ev.step == 3 and (ev.succeeded, ev.early_stopped) == (1, 2)
    values = {t.metadata.name: v for t, v in ev.values}
    assert values == {"r-0": 2.0 / 3, "r-1": 0.9, "r-2": 0.4 + 2.0 / 3}
    assert value_at(late, 3, "minimize", "last") == 0.4 + 2.0 / 3 and value_at(early, 2, "maximize") == 1.5
    assert value_at(early, 5, "minimize") == 0.9  # ended before the step: its objective
    # without early stopping every trial counts with its objective
    assert gather([done, broken], "minimize").values == ((done, 0.1),)
    assert gather([done], "minimize").describe() == "1 succeeded trial"
