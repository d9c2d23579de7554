"""Scale benchmark: what a Round of thousands of trials costs the operator, against optuna.

Two tables, each measured in the same run as its peer:

1. Importance. Every Round pass recomputes the analysis while trials report, and
   importance is its only costly part. Per number of finished trials and parameters:
   the seconds optuna's default FanovaImportanceEvaluator (64 trees grown to purity)
   takes, beside kubetune's bounded forest (kubetune.analysis.importance), the next
   pass with nothing newly finished, and how far apart their importances are. The
   trials are planted: the objective depends strongly on the first parameter (log
   scale), weakly on the second, with an interaction and noise.
2. Stop decisions. Per number of finished trials (50-step curves): milliseconds for
   one decision on a running trial at a step not seen before (curve fitting then fits
   its look-alikes) and at a step seen before, for kubetune's curvefit and median
   rules, and for optuna's MedianPruner on an optuna study holding the same curves.

    python bench/scale.py                         # 100..3000 trials
    python bench/scale.py --trials 300 --params 3
    python bench/scale.py --default-up-to 300     # optuna's default fANOVA is slow beyond
"""
from __future__ import annotations

import argparse
import math
import time
import warnings

import numpy as np
import optuna

from kubetune.analysis.importance import _fanova, importance
from kubetune.stopping import CurveFitRule, MedianRule, calibration
from kubetune.api import Round, Trial
from kubetune.space import SearchSpace

warnings.simplefilter("ignore")
optuna.logging.set_verbosity(optuna.logging.WARNING)


def planted(n: int, params: int, seed: int = 0) -> tuple[SearchSpace, list[Trial]]:
    names = ["learning_rate", "momentum", *(f"x{i}" for i in range(params - 2))]
    space = [{"name": "learning_rate", "type": "float", "min": 1e-4, "max": 1.0, "log": True}]
    space += [{"name": k, "type": "float", "min": 0.0, "max": 1.0} for k in names[1:]]
    rnd = Round.model_validate({
        "metadata": {"name": "bench"},
        "spec": {"studyRef": {"name": "s"}, "goal": "bench", "nuisance": space,
                 "budget": {"maxTrials": n, "parallelism": 1}},
    })
    rng = np.random.default_rng(seed)
    trials = []
    for i in range(n):
        p = {k: float(rng.uniform(0, 1)) for k in names}
        p["learning_rate"] = float(10 ** rng.uniform(-4, 0))
        lr = math.log10(p["learning_rate"]) + 2
        value = lr * lr + 0.3 * p["momentum"] + 0.2 * lr * p["momentum"] + float(rng.normal(0, 0.05))
        trials.append(Trial.model_validate({
            "metadata": {"name": f"bench-{i}"},
            "spec": {"studyRef": {"name": "s"}, "roundRef": {"name": "bench"}, "number": i, "seed": i, "parameters": p},
            "status": {"phase": "Succeeded", "objective": value},
        }))
    return SearchSpace.of(rnd.spec), trials


def optuna_default(space: SearchSpace, trials: list[Trial]) -> dict[str, float]:
    dists = space.distributions()
    study = optuna.create_study()
    study.add_trials([optuna.trial.create_trial(params=dict(t.spec.parameters), distributions=dists,
                                                value=t.status.objective) for t in trials])
    got = optuna.importance.get_param_importances(study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    return {k: float(v) for k, v in got.items()}


def curves(n: int, steps: int = 50, seed: int = 0) -> list[list[tuple[int, float]]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a, b, c = rng.uniform(0.1, 1), rng.uniform(0.05, 0.5), rng.uniform(0.05, 0.5)
        out.append([(s, float(c + a * math.exp(-b * s) + rng.normal(0, 0.01))) for s in range(steps)])
    return out


def ms(fn, repeat: int = 3) -> float:
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat * 1000


def optuna_median_ms(finished: list[list[tuple[int, float]]], mine: list[tuple[int, float]]) -> float:
    study = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=5))
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    study.add_trials([optuna.trial.create_trial(params={"x": 0.5}, distributions=dist, value=min(v for _, v in c),
                                                intermediate_values=dict(c)) for c in finished])
    trial = study.ask()
    for s, v in mine:
        trial.report(v, s)
    return ms(trial.should_prune)


def importance_table(a: argparse.Namespace) -> None:
    print(f"{'trials':>6} {'params':>6} {'optuna default':>15} {'kubetune':>9} {'again':>7}  max |diff|  top parameter")
    for params in a.params:
        for n in a.trials:
            space, trials = planted(n, params)
            _fanova.cache_clear()
            t0 = time.perf_counter()
            ours = importance(space, trials, "minimize")
            t1 = time.perf_counter()
            importance(space, trials, "minimize")  # the next pass, nothing finished meanwhile
            t2 = time.perf_counter()
            if n <= a.default_up_to:
                d0 = time.perf_counter()
                theirs = optuna_default(space, trials)
                default = f"{time.perf_counter() - d0:13.2f} s"
                diff = f"{max(abs(ours[k] - theirs[k]) for k in theirs):10.3f}"
            else:
                default, diff = f"{'(skipped)':>15}", f"{'':>10}"
            print(f"{n:6d} {params:6d} {default} {t1 - t0:7.2f} s {t2 - t1:5.3f} s  {diff}  {max(ours, key=ours.get)}",
                  flush=True)


def decision_table(a: argparse.Namespace) -> None:
    print(f"{'trials':>6}  {'curvefit new step':>17} {'seen step':>9}  {'median':>7}  "
          f"{'optuna MedianPruner':>19}   (ms)")
    for n in a.trials:
        finished = curves(n)
        mine = curves(1, seed=n + 1)[0][:15]
        curvefit, median = CurveFitRule(final_step=49), MedianRule()
        calibration._fits.clear()
        new = ms(lambda: curvefit.assess(mine, finished, "minimize", finished), repeat=1)
        seen = ms(lambda: curvefit.assess(mine, finished, "minimize", finished))
        med = ms(lambda: median.decide(mine, finished, "minimize"))
        theirs = optuna_median_ms(finished, mine)
        print(f"{n:6d}  {new:17.1f} {seen:9.1f}  {med:7.1f}  {theirs:19.1f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, nargs="+", default=[100, 300, 1000, 3000])
    ap.add_argument("--params", type=int, nargs="+", default=[3, 8])
    ap.add_argument("--default-up-to", type=int, default=1000, help="largest trial count given optuna's default fANOVA")
    a = ap.parse_args()
    importance_table(a)
    print()
    decision_table(a)


if __name__ == "__main__":
    main()
