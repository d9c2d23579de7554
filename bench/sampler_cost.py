"""Sampler cost at scale (issue #24): what one suggestion costs kubetune next to a bare
optuna `ask()`, at 1,000 completed trials, for every algorithm the API accepts, measured
in one run, the two interleaved (each rep times one bare ask, then one kubetune
suggestion), so a busy machine slows both alike.

Per algorithm, both sides run the same protocol from the same 1,000 completed trials:
the trial suggested last is running while the next is suggested, and finishes just after.
- bare ask ms: optuna alone: a study holding the trials, the sampler kubetune uses with
  the same settings, and (as kubetune asks optuna) the scientific value fixed to the
  Sobol point's (PartialFixedSampler; sobol and grid: QMCSampler, GridSampler); one
  `ask()` plus the parameters suggested from it (median of the reps);
- bare tell ms: the `tell()` of the trial that finished (median);
- kubetune ms: `Suggester.suggest` for the next trial number, the Suggester kept as the
  operator keeps it per Round, the Round's history (finished trials and the running one)
  handed over as the operator does; it tells the study what changed (the trial that
  finished), then asks;
- ratio: kubetune / (bare tell + bare ask), like with like (target <= 1.2); ask only:
  kubetune / bare ask;
- cold s: an operator restart: from 1,000 Trial objects (200-point curves) to the first
  suggestion with a new Suggester;
- rebuild s: cold s less the first ask of the bare study (the sampler's own cost of a first
  ask: gp fits its kernel from scratch then, where a kept GPSampler starts from the last
  fit): what the restart itself costs (target <= 2 s).

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
REPS = {"gp": 5, "tpe": 15, "cmaes": 100}
DEFAULT_REPS = 400
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


class Bare:
    """optuna alone, asked as kubetune asks it."""

    def __init__(self, algorithm: str, space: SearchSpace, done: list[Trial]) -> None:
        self.dists = space.distributions()
        self.fix = algorithm not in ("sobol", "grid")
        self.sampler = bare_sampler(algorithm, space)
        self.study = optuna.create_study(direction=DIRECTION, sampler=self.sampler)
        self.study.add_trials([optuna.trial.create_trial(params=dict(t.spec.parameters), distributions=self.dists,
                                                         value=t.status.objective) for t in done])
        self.running: tuple[optuna.Trial, dict] | None = None

    def step(self, scientific: dict) -> tuple[float, float]:
        """Seconds for one ask (and its parameters), and for the tell of the previous trial,
        which finishes then."""
        if self.fix:
            self.study.sampler = optuna.samplers.PartialFixedSampler(scientific, self.sampler)
        t0 = time.perf_counter()
        trial = self.study.ask()
        values = {name: _suggest(trial, name, d) for name, d in self.dists.items()}
        asked = time.perf_counter() - t0
        t0 = time.perf_counter()
        if self.running:
            self.study.tell(self.running[0], objective(self.running[1]))
        told = time.perf_counter() - t0
        self.running = (trial, values)
        return asked, told


def measure(algorithm: str, space: SearchSpace, done: list[Trial], reps: int) -> tuple[float, float, float, float, float]:
    """(bare ask ms, bare tell ms, kubetune ms, cold s, bare first ask s), interleaved."""
    Suggester(space, algorithm, SEED, DIRECTION).suggest(20, observations(done[:20]))  # imports, paid once at start
    Bare(algorithm, space, done[:20]).step({})
    bare = Bare(algorithm, space, done)
    t0 = time.perf_counter()
    suggester = Suggester(space, algorithm, SEED, DIRECTION, startup_trials=10)
    history = observations(done)
    number = len(done)
    params = suggester.suggest(number, history)
    cold = time.perf_counter() - t0
    quasi = Suggester(space, "sobol", SEED, DIRECTION)  # the scientific values the bare side fixes, as kubetune does
    first, _ = bare.step({k: v for k, v in params.items() if k in space.scientific})  # and warms optuna's caches
    asks, tells, ours = [], [], []
    for _ in range(reps):
        history.append(Observation(number, params, "running"))
        point = quasi.sobol_point(number + 1)
        asked, told = bare.step({k: v for k, v in point.items() if k in space.scientific})
        asks.append(asked)
        tells.append(told)
        t0 = time.perf_counter()
        nxt = suggester.suggest(number + 1, history)
        ours.append(time.perf_counter() - t0)
        history[-1] = Observation(number, params, "complete", objective(params))  # the previous one finished
        number, params = number + 1, nxt
    ms = [1000 * statistics.median(x) for x in (asks, tells, ours)]
    return ms[0], ms[1], ms[2], cold, first


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
             f"{'algorithm':<10}{'bare ask ms':>12}{'bare tell ms':>13}{'kubetune ms':>13}{'ratio':>7}"
             f"{'ask only':>10}{'cold s':>8}{'rebuild s':>11}  target",
             "-" * 96]
    print("\n".join(lines), flush=True)
    for alg in args.algorithms.split(","):
        reps = REPS.get(alg, DEFAULT_REPS)
        ask, tell, warm, cold, first = measure(alg, space, done, reps)
        ratio = warm / (ask + tell)
        rebuild = max(0.0, cold - first)
        ok = "ok" if ratio <= TARGET_RATIO and rebuild <= TARGET_COLD_S else "MISSED"
        line = (f"{alg:<10}{ask:>12.2f}{tell:>13.2f}{warm:>13.2f}{ratio:>7.2f}{warm / ask:>10.2f}{cold:>8.2f}"
                f"{rebuild:>11.2f}  {ok}")
        lines.append(line)
        print(line, flush=True)
    lines.append(f"targets: kubetune <= {TARGET_RATIO}x bare tell + ask, rebuild after a restart <= {TARGET_COLD_S} s "
                 f"(medians; reps: {', '.join(f'{a} {REPS.get(a, DEFAULT_REPS)}' for a in args.algorithms.split(','))})")
    print(lines[-1])
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
