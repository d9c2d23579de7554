import datetime as dt

import pytest

from kubetune.core.round_plan import plan_round
from kubetune.core.settings import resolve

from .factories import finished, round_, study, trial

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def test_a_new_round_fills_its_parallelism_with_deterministic_names():
    plan = plan_round(study(), round_(), [], NOW)
    assert [t.metadata.name for t in plan.create] == ["r-0", "r-1"]
    assert plan.status.phase == "Running" and plan.status.progress == "0/6"
    # the same inputs give the same trials (restart safety rests on this)
    again = plan_round(study(), round_(), [], NOW)
    assert [t.spec.parameters for t in again.create] == [t.spec.parameters for t in plan.create]


def test_trials_carry_baseline_fixed_and_sampled_values_and_labels():
    plan = plan_round(study(), round_(fixed={"optimizer": "adam", "layers": 2}), [], NOW)
    params = plan.create[0].spec.parameters
    assert params["optimizer"] == "adam" and params["layers"] == 2 and 1e-4 <= params["learning_rate"] <= 1.0
    assert plan.create[0].metadata.labels["kubetune.io/round"] == "r"


def test_a_rounds_max_steps_reaches_the_training_process():
    from kubetune.workload import trial_env

    s = study()  # maxSteps 20
    overridden = plan_round(s, round_(maxSteps=7), [], NOW).create[0]
    assert trial_env(s, overridden)["KUBETUNE_MAX_STEPS"] == "7"
    inherited = plan_round(s, round_(), [], NOW).create[0]
    assert trial_env(s, inherited)["KUBETUNE_MAX_STEPS"] == "20"


def test_no_more_than_parallelism_active_and_no_more_than_max_trials():
    trials = [trial(0, {"learning_rate": 0.1}, "Running"), trial(1, {"learning_rate": 0.2}, "Pending")]
    assert plan_round(study(), round_(), trials, NOW).create == []
    done = [trial(i, {"learning_rate": 0.1}, "Succeeded", 0.5) for i in range(6)]
    plan = plan_round(study(), round_(), done, NOW)
    assert plan.create == [] and plan.status.phase == "Succeeded"
    assert plan.status.progress == "6/6" and plan.status.completion_time


def test_new_trials_skip_names_that_other_trials_hold():
    # a Trial made by hand (or another Round's) already holds the name r-1
    plan = plan_round(study(), round_(), [], NOW, taken={"r-1"})
    assert [(t.metadata.name, t.spec.number) for t in plan.create] == [("r-0", 0), ("r-2", 2)]
    # one made by hand in this Round, numbered 0 but named like the Round's second trial
    hand = trial(0, {"learning_rate": 0.1}, "Running")
    hand.metadata.name = "r-1"
    plan = plan_round(study(), round_(), [hand], NOW, taken={"r-3"})
    assert [t.metadata.name for t in plan.create] == ["r-2"]
    later = [hand, *plan.create]
    assert [t.metadata.name for t in plan_round(study(), round_(budget={"maxTrials": 6, "parallelism": 3}),
                                                later, NOW, taken={"r-3"}).create] == ["r-4"]


def test_failures_end_the_round_and_stop_running_trials():
    trials = [trial(0, {}, "Failed"), trial(1, {}, "Failed"), trial(2, {}, "Running")]
    plan = plan_round(study(), round_(), trials, NOW)
    assert plan.status.phase == "Failed" and plan.create == []
    assert [name for name, _ in plan.stop] == ["r-2"]
    assert "2 trials failed" in plan.stop[0][1]


def test_infeasible_trials_do_not_count_as_failures():
    trials = [trial(i, {"learning_rate": 1.0}, "Infeasible") for i in range(3)]
    plan = plan_round(study(), round_(), trials, NOW)
    assert plan.status.phase == "Running" and len(plan.create) == 2


def test_best_trial_follows_the_goal():
    trials = [trial(0, {"learning_rate": 0.1}, "Succeeded", 0.3), trial(1, {"learning_rate": 0.2}, "Succeeded", 0.7),
              trial(2, {"learning_rate": 0.3}, "EarlyStopped", 0.1)]
    assert plan_round(study(), round_(), trials, NOW).status.best_trial.name == "r-0"
    maxi = study(objective={"metric": "val_loss", "goal": "maximize"})
    assert plan_round(maxi, round_(), trials, NOW).status.best_trial.name == "r-1"


def test_reruns_repeat_the_top_configurations_and_the_baseline_with_new_seeds():
    rnd = round_(reruns={"topK": 1, "seeds": 2})
    trials = [trial(i, {"learning_rate": 0.1 * (i + 1), "optimizer": "sgd"}, "Succeeded", float(i)) for i in range(6)]
    plan = plan_round(study(), rnd, trials, NOW)
    assert [(t.spec.purpose, t.spec.rerun_of) for t in plan.create] == [("rerun", "r-0"), ("rerun", "r-0")]
    assert plan.create[0].spec.parameters == trials[0].spec.parameters
    assert plan.create[0].spec.seed != plan.create[1].spec.seed
    later = trials + [t.model_copy(deep=True) for t in plan.create]
    for t in later[6:]:
        t.status.phase, t.status.objective = "Succeeded", 0.1
    plan2 = plan_round(study(), rnd, later, NOW)
    assert [t.spec.rerun_of for t in plan2.create] == ["baseline", "baseline"]
    assert plan2.create[0].spec.parameters == {"learning_rate": 0.1, "optimizer": "sgd"}
    assert plan2.status.progress == "8/11"


@pytest.mark.parametrize("algorithm", ["sobol", "random", "grid", "tpe", "gp", "cmaes"])
def test_every_algorithm_suggests_in_domain_values(algorithm):
    rnd = round_(algorithm={"name": algorithm, "seed": 3, "startupTrials": 2},
                 nuisance=[{"name": "learning_rate", "type": "float", "min": 1e-4, "max": 1.0, "log": True},
                           {"name": "width", "type": "int", "min": 8, "max": 64}],
                 budget={"maxTrials": 12, "parallelism": 4})
    trials = [trial(i, {"learning_rate": 10 ** -(i % 4), "width": 8 + i}, "Succeeded", 1.0 / (i + 1)) for i in range(5)]
    trials.append(trial(5, {"learning_rate": 0.5, "width": 20}, "Failed"))
    plan = plan_round(study(), rnd, trials, NOW)
    assert len(plan.create) == 4
    for t in plan.create:
        assert 1e-4 <= t.spec.parameters["learning_rate"] <= 1.0
        assert 8 <= t.spec.parameters["width"] <= 64 and isinstance(t.spec.parameters["width"], int)
    assert resolve(study(), rnd).algorithm == algorithm


def test_scientific_values_get_even_coverage_under_bayesian_search():
    rnd = round_(algorithm={"name": "tpe", "seed": 1, "startupTrials": 4},
                 scientific=[{"name": "optimizer", "type": "categorical", "choices": ["sgd", "adam"]}],
                 budget={"maxTrials": 16, "parallelism": 1})
    trials = []
    for n in range(16):
        plan = plan_round(study(), rnd, trials, NOW)
        (t,) = plan.create
        # sgd always looks better: a plain Bayesian sampler would starve adam
        obj = 0.1 if t.spec.parameters["optimizer"] == "sgd" else 0.9
        trials.append(trial(n, t.spec.parameters, "Succeeded", obj))
    counts = {o: sum(t.spec.parameters["optimizer"] == o for t in trials) for o in ("sgd", "adam")}
    assert counts == {"sgd": 8, "adam": 8}


def test_conditional_parameters_exist_only_with_their_parent_value():
    rnd = round_(scientific=[{"name": "optimizer", "type": "categorical", "choices": ["sgd", "adam"]}],
                 nuisance=[{"name": "momentum", "type": "float", "min": 0.5, "max": 0.99,
                            "when": {"parameter": "optimizer", "values": ["sgd"]}},
                           {"name": "learning_rate", "type": "float", "min": 1e-4, "max": 1.0, "log": True}],
                 budget={"maxTrials": 8, "parallelism": 8})
    for t in plan_round(study(), rnd, [], NOW).create:
        assert ("momentum" in t.spec.parameters) == (t.spec.parameters["optimizer"] == "sgd")


def test_gp_without_pytorch_says_what_to_install(monkeypatch):
    import sys

    from kubetune.sampling import AlgorithmUnavailable

    monkeypatch.setitem(sys.modules, "torch", None)  # as if PyTorch were not installed
    rnd = round_(algorithm={"name": "gp", "seed": 1, "startupTrials": 2}, budget={"maxTrials": 8, "parallelism": 1})
    trials = [trial(i, {"learning_rate": 10 ** -(i + 1)}, "Succeeded", float(i)) for i in range(3)]
    with pytest.raises(AlgorithmUnavailable, match=r"kubetune\[gp\]"):
        plan_round(study(), rnd, trials, NOW)


def test_a_round_that_spells_a_baseline_parameter_in_another_case_creates_nothing():
    from kubetune.space import ParameterNameClash, name_clashes

    # the baseline says learning_rate and optimizer; the Round searches LEARNING_RATE and fixes Optimizer:
    # each trial would carry the baseline's values under the baseline's names in KUBETUNE_PARAMS
    rnd = round_(nuisance=[{"name": "LEARNING_RATE", "type": "float", "min": 1e-4, "max": 1.0, "log": True}],
                 fixed={"Optimizer": "adam"})
    found = name_clashes(study(), rnd.spec)
    assert len(found) == 2 and "'LEARNING_RATE'" in found[0] and "'learning_rate'" in found[0]
    assert "KUBETUNE_PARAM_OPTIMIZER" in found[1]
    with pytest.raises(ParameterNameClash, match="differ only in case"):
        plan_round(study(), rnd, [], NOW)
    # the same names spelled alike override the baseline, as documented
    assert name_clashes(study(), round_(fixed={"optimizer": "adam"}).spec) == []
    # the baseline in force counts, adopted values included
    adopted = study(baseline={})
    adopted.status.baseline = {"Dropout": 0.1}
    assert name_clashes(adopted, round_(fixed={"dropout": 0.2}).spec)
    assert name_clashes(study(baseline={}), round_(fixed={"dropout": 0.2}).spec) == []


def test_trials_waiting_for_kueue_count_against_parallelism_and_are_counted_as_queued():
    queued = [trial(i, {"learning_rate": 0.1}, "Pending") for i in range(2)]
    for t in queued:
        t.status.reason = "Queued"
    plan = plan_round(study(), round_(), queued, NOW)
    assert plan.create == []  # parallelism 2: two trials in the queue are the Round's share
    assert (plan.status.counts.pending, plan.status.counts.queued) == (2, 2)
    ready = next(c for c in plan.status.conditions if c.type == "Ready")
    assert "2 pending (2 queued in Kueue)" in ready.message


def test_a_round_lets_go_of_its_sampler_once_it_will_suggest_nothing_more():
    """A long-running operator holds every Round that exists; a Round's kept sampler holds
    each trial's parameters and value. Once the search budget is created it is let go, and
    a Round whose maxTrials is raised later goes on with the trials a restarted operator
    would give it."""
    from kubetune.core.round_plan import forget_round, remembers_round

    tpe = {"name": "tpe", "seed": 1, "startupTrials": 2}
    rnd = round_("keep", algorithm=tpe, budget={"maxTrials": 6, "parallelism": 2, "maxFailedTrials": 2})
    forget_round("ns", "keep")
    trials: list = []
    held = []
    while len(trials) < 6:
        plan = plan_round(study(), rnd, trials, NOW)
        trials = [finished(t, "Succeeded", t.spec.parameters["learning_rate"]) for t in trials + plan.create]
        held.append(remembers_round("ns", "keep"))
    assert held == [True, True, False]  # the pass that created the last search trials let it go
    done = plan_round(study(), rnd, trials, NOW)
    assert done.status.phase == "Succeeded" and not remembers_round("ns", "keep")

    more = round_("keep", algorithm=tpe, budget={"maxTrials": 10, "parallelism": 2, "maxFailedTrials": 2})
    went_on = plan_round(study(), more, trials, NOW).create
    assert [t.spec.number for t in went_on] == [6, 7] and remembers_round("ns", "keep")
    forget_round("ns", "keep")  # as after a restart
    assert [t.spec.parameters for t in plan_round(study(), more, trials, NOW).create] == \
        [t.spec.parameters for t in went_on]
