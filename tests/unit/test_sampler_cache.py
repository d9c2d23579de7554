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


def test_random_suggests_what_optuna_asked_with_the_scientific_values_fixed_would():
    """The random algorithm keeps no study: its values are optuna's RandomSampler's, reseeded
    for the trial number, exactly as `study.ask()` with PartialFixedSampler gives them."""
    import optuna

    sp = space(scientific=[{"name": "batch_size", "type": "categorical", "choices": [32, 64]}],
               nuisance=[{"name": "learning_rate", "type": "float", "min": 1e-4, "max": 1.0, "log": True},
                         {"name": "optimizer", "type": "categorical", "choices": ["sgd", "adam"]},
                         {"name": "momentum", "type": "float", "min": 0.0, "max": 0.99,
                          "when": {"parameter": "optimizer", "values": ["sgd"]}},
                         {"name": "layers", "type": "int", "min": 1, "max": 8},
                         {"name": "fixed", "type": "float", "min": 0.5, "max": 0.5}])
    s = Suggester(sp, "random", 3, "minimize")
    dists = sp.distributions()
    for number in range(40):
        scientific = {"batch_size": s.sobol_point(number)["batch_size"]}
        study = optuna.create_study(sampler=optuna.samplers.PartialFixedSampler(
            scientific, optuna.samplers.RandomSampler(seed=s._seed(number))))
        trial = study.ask()
        want: dict = {}
        for p in sp.parameters:
            if sp.active(p, want):
                want[p.name] = trial._suggest(p.name, dists[p.name])
        assert s.suggest(number, []) == want


def test_sobol_points_drawn_together_are_the_points_drawn_one_by_one():
    sp = space(nuisance=[{"name": "learning_rate", "type": "float", "min": 1e-4, "max": 1.0, "log": True},
                         {"name": "dropout", "type": "float", "min": 0.0, "max": 0.5}])
    kept = Suggester(sp, "sobol", 3, "minimize")
    for number in [*range(0, 150), 7, 300, 299, 0]:
        assert kept.sobol_point(number) == Suggester(sp, "sobol", 3, "minimize").sobol_point(number)


def test_a_pass_that_hands_over_new_objects_for_the_same_trials_tells_nothing():
    """Each Round pass builds the history afresh (core.round_plan.observations): equal
    observations change nothing in the kept study."""
    sp = space()
    s = Suggester(sp, "tpe", 3, "minimize", startup_trials=5)
    h = history(20)
    asked = s.suggest(20, h)
    study = s._kept[()].study
    again = [Observation(o.number, dict(o.params), o.state, o.value, o.curve) for o in h]
    again.append(Observation(20, dict(asked), "running"))
    s.suggest(21, again)
    assert s._kept[()].study is study
    assert [t.state.name for t in study.get_trials(deepcopy=False)].count("RUNNING") == 2  # 20 and 21


def test_a_trial_that_finished_in_place_is_told():
    """The same history list, its running trial replaced by the finished one."""
    sp = space()
    s = Suggester(sp, "tpe", 3, "minimize", startup_trials=5)
    h = history(20)
    asked = s.suggest(20, h)
    h.append(Observation(20, asked, "running"))
    s.suggest(21, h)
    h[-1] = Observation(20, asked, "complete", 0.5)
    s.suggest(22, h)
    study = s._kept[()].study
    assert study.get_trials(deepcopy=False)[20].state.name == "COMPLETE"
    assert study.get_trials(deepcopy=False)[20].value == 0.5


def test_each_scientific_value_keeps_its_own_study_told_only_its_trials():
    sp = space(scientific=[{"name": "optimizer", "type": "categorical", "choices": ["sgd", "adam"]}])
    s = Suggester(sp, "tpe", 3, "minimize", startup_trials=3)
    h = []
    for i in range(20):
        lr = 10 ** (-4 + 4 * ((i * 0.618) % 1))
        h.append(Observation(i, {"learning_rate": lr, "optimizer": ["sgd", "adam"][i % 2]}, "complete", lr))
    for number in range(20, 26):
        got = s.suggest(number, h)
        assert got == Suggester(sp, "tpe", 3, "minimize", startup_trials=3).suggest(number, h)
        h = h + [Observation(number, got, "complete", got["learning_rate"])]
    for key, kept in s._kept.items():
        value = dict(key)["optimizer"].strip("'")
        told = kept.study.get_trials(deepcopy=False)
        assert all(t.params["optimizer"] == value for t in told)
        # the trials of the history it last read, and the one it was asked for last
        assert len(told) == sum(1 for o in h[:-1] if o.params["optimizer"] == value) + (h[-1].params["optimizer"] == value)


def test_a_kept_study_holds_one_copy_of_each_distribution_not_one_per_trial():
    """optuna's in-memory storage deep-copies every trial it is told, distributions and all
    (~0.7 KB a trial of a Round of three parameters, 7 MB over 10,000 trials): a kept study's
    trials share the Suggester's distributions, and a copy of the study's trials still reads
    them."""
    sp = space()
    s = Suggester(sp, "tpe", 3, "minimize", startup_trials=5)
    h = history(20)
    asked = s.suggest(20, h)
    s.suggest(21, h + [Observation(20, {**asked, "optimizer": "sgd"}, "complete", 0.5)])
    study = s._kept[()].study
    told = study.get_trials(deepcopy=False)
    assert len(told) == 22
    for t in told:
        for name, dist in t.distributions.items():
            assert dist is s._dists[name], (t.number, name)
    copied = study.get_trials(deepcopy=True)
    assert [t.distributions for t in copied] == [t.distributions for t in told]


def test_a_kept_study_holds_a_trial_in_about_a_kilobyte_sharing_what_nothing_changes():
    """A 10,000-trial Round keeps its study while it suggests: optuna's in-memory storage
    deep-copied every trial it was told (parameters, distributions, attributes, times), 2.4 KB
    a trial with the Suggester's own record of it. Its trials now share what nothing changes."""
    import gc
    import tracemalloc

    sp = space()
    Suggester(sp, "tpe", 3, "minimize", startup_trials=5).suggest(20, history(20))  # the Sobol tables, once
    h = history(2000)
    s = Suggester(sp, "tpe", 3, "minimize", startup_trials=5)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        s.suggest(2000, h)
        gc.collect()
        per_trial = (tracemalloc.get_traced_memory()[0] - before) / len(h)
    finally:
        tracemalloc.stop()
    assert per_trial < 1400, per_trial  # 1.1 KB here; 1.8 KB before (Observations held by the test)
    kept = s._kept[()].study
    copied = kept.get_trials(deepcopy=True)  # a copy still reads as the trials told
    assert [(t.params, t.state, t.value, t.intermediate_values) for t in copied] == \
           [(t.params, t.state, t.value, t.intermediate_values) for t in kept.get_trials(deepcopy=False)]


@pytest.mark.parametrize("ending", ["complete", "pruned"])
def test_a_running_trial_s_curve_leaves_no_trace_in_the_kept_study(ending):
    """A running trial reports a point before each of 30 passes, then ends: the kept study
    holds what one rebuilt from the same history holds (the last point of an early-stopped
    trial, nothing of a completed one), not every point the running trial reached."""
    from kubetune.sampling import build_study

    sp = space()
    s = Suggester(sp, "tpe", 3, "minimize", startup_trials=5)
    h = history(20)
    asked = s.suggest(20, h)
    curve: tuple = ()
    for step in range(1, 31):
        curve += ((step, 1.0 / step),)
        s.suggest(21, h + [Observation(20, asked, "running", None, curve)])
    h = h + [Observation(20, asked, ending, 0.05 if ending == "complete" else None, curve)]
    s.suggest(21, h)
    kept = s._kept[()].study.get_trials(deepcopy=False)[:21]
    rebuilt = build_study(h, sp.distributions(), "minimize", None).get_trials(deepcopy=False)  # type: ignore[arg-type]
    assert [(t.state, t.value, t.params, t.intermediate_values) for t in kept] == \
           [(t.state, t.value, t.params, t.intermediate_values) for t in rebuilt]
    assert kept[20].intermediate_values == ({30: 1 / 30} if ending == "pruned" else {})
