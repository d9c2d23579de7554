"""Sampler cost at scale (issue #24): what one suggestion costs kubetune next to a bare
optuna `ask()`, at 1,000 completed trials, for every algorithm, measured in the same run.

Per algorithm:
- bare ask ms: an optuna study holding 1,000 completed trials, the same sampler with the
  same settings kubetune uses, one `ask()` plus the parameters suggested from the same
  distributions (median of several, each told afterwards);
- kubetune ms: `Suggester.suggest` for the next trial number, with the Round's 1,000
  finished trials (and the ones it just suggested, running) as history, the Suggester
  kept as the operator keeps it per Round (median of several; between two suggestions
  the previous one finishes, as in a Round);
- ratio: kubetune / bare (target <= 1.2);
- cold s: an operator restart: from 1,000 Trial objects (200-point curves) to the first
  suggestion with a new Suggester (target <= 2 s).

    python bench/sampler_cost.py                  # all algorithms, writes nothing
    python bench/sampler_cost.py --out bench/results/sampler_cost.txt
    python bench/sampler_cost.py --algorithms tpe,gp --trials 500
"""
from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

import optuna  # noqa: E402

from kubetune.api import Round, Trial  # noqa: E402
from kubetune.core.round_plan import observations  # noqa: E402
from kubetune.sampling import Observation, Suggester, _suggest  # noqa: E402
from kubetune.space import SearchSpace, axis_values  # noqa: E402

ALGORITHMS = ("sobol", "random", "grid", "tpe", "gp", "cmaes")
SEED = 7
DIRECTION = "minimize"
REPS = {"gp": 5}
DEFAULT_REPS = 15
TARGET_RATIO, TARGET_COLD_S = 1.2, 2.0


def the_round() -> Round:
    """One continuous scientific parameter (the Round's whole history is the sub-study) and
    four nuisance parameters, the shape of a typical Round."""
    return Round.model_validate({
        "metadata": {"name": "r", "namespace": "ns", "uid": "u"},
        "spec": {"studyRef": {"name": "s"}, "goal": "bench",
                 "scientific": [{"name": "width", "type": "float", "min": 0.5, "max": 4.0}],
                 "nuisance": [
                     {"name": "learning_rate", "type": "float", "min": 1e-5, "max": 1.0, "log": True},
                     {"name": "weight_decay", "type": "float", "min": 1e-6, "max": 1e-2, "log": True},
                     {"name": "dropout", "type": "float", "min": 0.0, "max": 0.5},
                     {"name": "optimizer", "type": "categorical", "choices": ["sgd", "adam", "adamw"]},
                 ]},
    })


def objective(p: dict) -> float:
    return ((math.log10(p["learning_rate"]) + 2.5) ** 2 + 0.1 * (math.log10(p["weight_decay"]) + 4) ** 2
            + p["dropout"] + {"sgd": 0.2, "adam": 0.0, "adamw": 0.05}[p["optimizer"]] + 0.05 * p["width"])


def trials(space: SearchSpace, n: int) -> list[Trial]:
    """n succeeded Trials at random points, each with a 200-point curve."""
    rng = random.Random(0)
    dists = space.distributions()
    out = []
    for i in range(n):
        p = {k: _random_value(rng, d) for k, d in dists.items()}
        y = objective(p)
        out.append(Trial.model_validate({
            "metadata": {"name": f"r-{i}", "namespace": "ns"},
            "spec": {"studyRef": {"name": "s"}, "roundRef": {"name": "r"}, "number": i, "parameters": p, "seed": i},
            "status": {"phase": "Succeeded", "objective": y,
                       "curve": [{"step": s, "value": y + 1.0 / (1 + s)} for s in range(0, 1000, 5)]},
        }))
    return out


def _random_value(rng: random.Random, d: optuna.distributions.BaseDistribution):
    if isinstance(d, optuna.distributions.CategoricalDistribution):
        return rng.choice(d.choices)
    if d.log:
        return math.exp(rng.uniform(math.log(d.low), math.log(d.high)))
    return rng.uniform(d.low, d.high)


def bare_sampler(algorithm: str, space: SearchSpace) -> optuna.samplers.BaseSampler:
    """The sampler kubetune uses for `algorithm`, with the same settings."""
    if algorithm == "sobol":
        return optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=SEED)
    if algorithm == "random":
        return optuna.samplers.RandomSampler(seed=SEED)
    if algorithm == "grid":
        return optuna.samplers.GridSampler({p.name: axis_values(p, 5) for p in space.parameters}, seed=SEED)
    if algorithm == "tpe":
        return optuna.samplers.TPESampler(seed=SEED, n_startup_trials=0, multivariate=True, group=True,
                                          constant_liar=True)
    if algorithm == "gp":
        return optuna.samplers.GPSampler(seed=SEED, n_startup_trials=0)
    return optuna.samplers.CmaEsSampler(seed=SEED, n_startup_trials=0, warn_independent_sampling=False)


def bare_ms(algorithm: str, space: SearchSpace, done: list[Trial], reps: int) -> float:
    dists = space.distributions()
    study = optuna.create_study(direction=DIRECTION, sampler=bare_sampler(algorithm, space))
    study.add_trials([optuna.trial.create_trial(params=dict(t.spec.parameters), distributions=dists,
                                                value=t.status.objective) for t in done])
    times = []
    for _ in range(reps + 1):
        t0 = time.perf_counter()
        trial = study.ask()
        values = {name: _suggest(trial, name, d) for name, d in dists.items()}
        times.append(time.perf_counter() - t0)
        study.tell(trial, objective(values))
    return 1000 * statistics.median(times[1:])  # the first ask warms optuna's caches


def kubetune_ms(algorithm: str, space: SearchSpace, done: list[Trial], reps: int) -> tuple[float, float]:
    """(cold rebuild seconds, warm suggestion milliseconds)."""
    t0 = time.perf_counter()
    suggester = Suggester(space, algorithm, SEED, DIRECTION, startup_trials=10)
    history = observations(done)
    number = len(done)
    params = suggester.suggest(number, history)
    cold = time.perf_counter() - t0
    times = []
    for _ in range(reps):
        history.append(Observation(number, params, "running"))
        t0 = time.perf_counter()
        nxt = suggester.suggest(number + 1, history)
        times.append(time.perf_counter() - t0)
        full = {**params, **{k: v for k, v in nxt.items() if k not in params}}
        history[-1] = Observation(number, params, "complete", objective(full))  # the previous one finished
        number, params = number + 1, nxt
    return cold, 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--algorithms", default=",".join(ALGORITHMS))
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    rnd = the_round()
    space = SearchSpace.of(rnd.spec)
    done = trials(space, args.trials)
    lines = [f"sampler cost at {args.trials} completed trials (5 parameters; python {sys.version.split()[0]}, "
             f"optuna {optuna.__version__})",
             f"{'algorithm':<10}{'bare ask ms':>12}{'kubetune ms':>13}{'ratio':>8}{'cold s':>8}  target",
             "-" * 66]
    print("\n".join(lines), flush=True)
    for alg in args.algorithms.split(","):
        reps = REPS.get(alg, DEFAULT_REPS)
        bare = bare_ms(alg, space, done, reps)
        cold, warm = kubetune_ms(alg, space, done, reps)
        ratio = warm / bare
        ok = "ok" if ratio <= TARGET_RATIO and cold <= TARGET_COLD_S else "MISSED"
        line = f"{alg:<10}{bare:>12.2f}{warm:>13.2f}{ratio:>8.2f}{cold:>8.2f}  {ok}"
        lines.append(line)
        print(line, flush=True)
    lines.append(f"targets: kubetune <= {TARGET_RATIO}x bare ask, cold rebuild <= {TARGET_COLD_S} s")
    print(lines[-1])
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
