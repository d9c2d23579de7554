import math

import optuna.distributions as od
import pytest
import yaml

from kubetune.api import Parameter, Round, Study
from kubetune.space import SearchSpace, distribution, effective_parameters, parameter_from, position


def P(**kw):
    return Parameter.model_validate(kw)


@pytest.mark.parametrize(
    "p",
    [
        P(name="lr", type="float", min=1e-5, max=1e-1, log=True),
        P(name="dropout", type="float", min=0.0, max=0.5, step=0.1),
        P(name="width", type="int", min=16, max=256, log=True),
        P(name="layers", type="int", min=1, max=9, step=2),
        P(name="opt", type="categorical", choices=["sgd", "adam"]),
    ],
)
def test_distribution_round_trip(p):
    d = distribution(p)
    back = parameter_from(p.name, d)
    assert distribution(back) == d


def test_int_and_log_distributions():
    d = distribution(P(name="w", type="int", min=16, max=256, log=True))
    assert isinstance(d, od.IntDistribution) and d.log and (d.low, d.high) == (16, 256)


def test_position_is_measured_in_log_space_for_log_domains():
    lr = P(name="lr", type="float", min=1e-5, max=1e-1, log=True)
    assert position(lr, 1e-3) == pytest.approx(0.5)
    assert position(lr, 1e-1) == pytest.approx(1.0)
    lin = P(name="d", type="float", min=0.0, max=0.5)
    assert position(lin, 0.125) == pytest.approx(0.25)
    assert position(P(name="o", type="categorical", choices=["a"]), "a") is None


ROUND = """
apiVersion: kubetune.io/v1alpha1
kind: Round
metadata: {name: r}
spec:
  studyRef: {name: s}
  goal: compare optimizers
  scientific:
    - {name: optimizer, type: categorical, choices: [sgd, adam]}
  nuisance:
    - {name: momentum, type: float, min: 0.5, max: 0.99, when: {parameter: optimizer, values: [sgd]}}
    - {name: learning_rate, type: float, min: 0.0001, max: 1.0, log: true}
  fixed: {hidden_units: 128}
"""
STUDY = """
apiVersion: kubetune.io/v1alpha1
kind: Study
metadata: {name: s}
spec:
  objective: {metric: val_loss, goal: minimize}
  maxSteps: 10
  baseline: {optimizer: sgd, learning_rate: 0.1, momentum: 0.9, hidden_units: 64, dropout: 0.1}
  template: {spec: {containers: [{name: t, image: x}]}}
"""


def test_effective_parameters_layer_baseline_fixed_sampled():
    study = Study.model_validate(yaml.safe_load(STUDY))
    rnd = Round.model_validate(yaml.safe_load(ROUND))
    got = effective_parameters(study.spec, rnd.spec, {"optimizer": "sgd", "learning_rate": 0.01, "momentum": 0.6})
    assert got == {"optimizer": "sgd", "learning_rate": 0.01, "momentum": 0.6, "hidden_units": 128, "dropout": 0.1}


def test_inactive_conditional_parameter_is_left_out_even_from_the_baseline():
    study = Study.model_validate(yaml.safe_load(STUDY))
    rnd = Round.model_validate(yaml.safe_load(ROUND))
    got = effective_parameters(study.spec, rnd.spec, {"optimizer": "adam", "learning_rate": 0.01})
    assert "momentum" not in got and got["optimizer"] == "adam"


def test_search_space_orders_parents_first_and_builds_a_conditional_grid():
    rnd = Round.model_validate(yaml.safe_load(ROUND))
    space = SearchSpace.of(rnd.spec)
    names = [p.name for p in space.parameters]
    assert names.index("optimizer") < names.index("momentum")
    grid = space.grid(points_per_axis=3)
    assert len(grid) == 3 * 3 + 3  # sgd: momentum x lr; adam: lr only
    assert all(("momentum" in g) == (g["optimizer"] == "sgd") for g in grid)
    assert all(1e-4 <= g["learning_rate"] <= 1.0 + 1e-9 for g in grid)
    lrs = sorted({g["learning_rate"] for g in grid})
    assert math.log10(lrs[1]) == pytest.approx(-2.0)  # midpoint in log space
