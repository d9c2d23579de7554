"""The per-Round sampler state is kept between suggestions (issue #24), and a kept
Suggester suggests what one rebuilt from the same trials (after a restart) would."""
from __future__ import annotations

import math

import pytest

from kubetune.sampling import Observation, Suggester
from kubetune.space import SearchSpace

from .factories import round_


def space(**spec) -> SearchSpace:
    return SearchSpace.of(round_(**spec).spec)


def history(n: int) -> list[Observation]:
    out = []
    for i in range(n):
        lr = 10 ** (-4 + 4 * ((i * 0.618) % 1))
        state = "pruned" if i % 7 == 3 else "fail" if i % 11 == 5 else "complete"
        out.append(Observation(i, {"learning_rate": lr, "optimizer": "sgd"}, state,
                               (math.log10(lr) + 2) ** 2 if state == "complete" else None,
                               ((10, 0.5), (20, 0.4)) if state == "pruned" else ()))
    return out


@pytest.mark.parametrize("algorithm", ["tpe", "cmaes", "random"])
def test_a_kept_suggester_suggests_what_a_rebuilt_one_would(algorithm):
    sp = space()
    kept = Suggester(sp, algorithm, 3, "minimize", startup_trials=5)
    h = history(30)
    for number in range(30, 36):
        got = kept.suggest(number, h)
        if algorithm != "cmaes":  # CMA-ES learns from the trials it asked itself: a rebuilt one starts anew
            assert got == Suggester(sp, algorithm, 3, "minimize", startup_trials=5).suggest(number, h)
        h = h + [Observation(number, got, "running")]
        h[-2] = Observation(h[-2].number, h[-2].params, "complete", 1.0) if h[-2].state == "running" else h[-2]


def test_the_kept_study_is_told_only_what_changed():
    sp = space()
    s = Suggester(sp, "tpe", 3, "minimize", startup_trials=5)
    h = history(20)
    asked = s.suggest(20, h)
    study = s._kept[()].study
    s.suggest(21, h + [Observation(20, {**asked, "optimizer": "sgd"}, "running")])
    assert s._kept[()].study is study  # not rebuilt
    assert len(study.get_trials(deepcopy=False)) == 22  # 20 told once, 2 asked


def test_a_finished_trial_that_changed_rebuilds_the_study():
    sp = space()
    s = Suggester(sp, "tpe", 3, "minimize", startup_trials=5)
    h = history(20)
    s.suggest(20, h)
    study = s._kept[()].study
    h[0] = Observation(0, h[0].params, "complete", 123.0)
    s.suggest(20, h)
    assert s._kept[()].study is not study


def test_a_suggestion_that_was_never_created_is_forgotten():
    """The pass that asked for trial 20 did not create it (an API error): the study no longer
    counts it as running, and trial 20 is asked for again."""
    sp = space()
    s = Suggester(sp, "tpe", 3, "minimize", startup_trials=5)
    h = history(20)
    first = s.suggest(20, h)
    assert s.suggest(20, h) == first
    states = [t.state.name for t in s._kept[()].study.get_trials(deepcopy=False)]
    assert states.count("RUNNING") == 1


def test_an_early_stopped_trial_is_told_by_its_last_point():
    from kubetune.sampling import build_study
    sp = space()
    study = build_study([Observation(0, {"learning_rate": 0.1}, "pruned", None, ((10, 0.5), (30, 0.2), (40, math.nan)))],
                        sp.distributions(), "minimize", None)  # type: ignore[arg-type]
    assert study.trials[0].intermediate_values == {30: 0.2}
