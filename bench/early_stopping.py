"""Early-stopping benchmark: replay real learning curves asynchronously and compare rules.

The curves (bench/data/digits_curves.json.gz, from bench/generate_curves.py) are the
trial image's own training code over hundreds of sampled configurations. Each
replay takes one random order of the configurations and W parallel workers; every
running trial advances one step per tick, and after each step the rule decides
whether to stop it. All rules see the same curves, orders and worker counts, in the
same run.

Columns:
  compute   steps trained, % of training every configuration to the end
  regret    (best value found - best value in the pool) / |best in the pool|, mean over orders
  best hit  in how many orders the pool's single best configuration was stopped
  top-5     true top-5 configurations stopped, mean over orders
  ms/dec    mean decision time (p95 in brackets)
Coverage of curvefit's 90% intervals (true final objective inside the predicted
interval) is measured at every assessment and printed next to its row, with the two ways
an interval missed (the true value better than its lower end, worse than its upper end)
and how often the upper end was the trial's best so far: with the best value as the
objective a trial cannot end worse than that, so the interval is cut there, and a
calibrated 90% interval cut so holds 95%; the row says what a calibrated model would
reach given the cuts. With --chances,
the calibration of its chance to beat the best is printed under the row too: at every
assessment, the chance it gave and whether the trial's true objective (from its whole
curve, stopped or not) did beat the best value seen then, by band (below the median of
the trials at the step, among the best tenth, the others) and by chance.

    python bench/early_stopping.py                      # workers 1, 8, 32; 10 orders (~30 min)
    python bench/early_stopping.py --orders 3           # quicker, but too few to tell 1 in 10
    python bench/early_stopping.py --workers 8 --orders 5 --limit 200
    python bench/early_stopping.py --metric val_accuracy             # the same runs, maximized
    python bench/early_stopping.py --data bench/data/boosting_curves.json.gz --metric val_mse
    python bench/early_stopping.py --objective last      # a trial's objective is its last value
    python bench/early_stopping.py --only curvefit --workers 1 8 --chances

With `--objective last` every trial (the pool's, the found ones, stopped ones too) counts
with the last value it reported instead of its best, and kubetune's rules are told so.
"""
from __future__ import annotations

import argparse
import gzip
import json
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import optuna

from kubetune.stopping import CurveFitRule, MedianRule

optuna.logging.set_verbosity(optuna.logging.ERROR)
DATA = Path(__file__).with_name("data") / "digits_curves.json.gz"


def load(limit: int | None, metric: str = "val_loss", path: Path = DATA) -> tuple[list[np.ndarray], int, str]:
    """Curves oriented so that lower is better (a maximized metric is negated) for the
    bookkeeping here, and the metric's goal: every rule sees the metric as it is, with its
    goal, the way a Round hands it over."""
    with gzip.open(path, "rt") as f:
        doc = json.load(f)
    goal = doc.get("metrics", {}).get(metric, doc.get("goal", "minimize"))
    sign = -1.0 if goal == "maximize" else 1.0
    curves = [sign * np.array([np.nan if v is None else v for v in r[metric]], float) for r in doc["runs"]]
    return curves[:limit] if limit else curves, int(doc["steps"]), goal


def objective(c: np.ndarray, strategy: str = "best") -> float:
    """A (partial) curve's objective: its best value, or its last (inf once diverged)."""
    finite = c[np.isfinite(c)]
    if not finite.size or (strategy == "last" and not math.isfinite(c[-1])):
        return math.inf
    return float(finite.min() if strategy == "best" else finite[-1])


def regret(found: float, best: float) -> float:
    """Relative regret; for negated accuracies this is relative to the best accuracy."""
    return (found - best) / abs(best)


@dataclass
class Run:
    idx: int
    steps: int = 0
    state: str = "running"  # running, complete, stopped, diverged
    handle: object = None

    def curve(self, curves: list[np.ndarray]) -> list[tuple[int, float]]:
        c = curves[self.idx][: self.steps]
        return [(i + 1, float(v)) for i, v in enumerate(c) if math.isfinite(v)]


@dataclass(frozen=True)
class Cover:
    """Where a trial's true final objective fell against a 90% interval predicted for it:
    inside, better than its lower end, worse than its upper end; and whether the upper end
    was the trial's best so far (a best value cannot get worse, so the interval is cut
    there: the model's upper 5% then lies beyond it, and a calibrated interval holds 95%)."""

    side: str
    capped: bool


def coverage_text(cover: list[Cover]) -> str:
    """Coverage, the two ways an interval missed, and how often it was cut at the trial's
    best so far; what a calibrated model would hold given those cuts."""
    n = len(cover)
    share = {s: sum(c.side == s for c in cover) / n for s in ("inside", "better", "worse")}
    capped = sum(c.capped for c in cover) / n
    return (f"90% interval coverage {share['inside']:.0%} of {n} (missed: better {share['better']:.1%}, "
            f"worse {share['worse']:.1%}; {capped:.0%} cut at the best so far, so calibrated: {0.9 + 0.05 * capped:.0%})")


@dataclass
class Result:
    compute: float
    regret: float
    best_stopped: bool
    top5_stopped: int
    decisions: list[float] = field(default_factory=list)
    coverage: list[Cover] = field(default_factory=list)
    chances: list[tuple[str, float, bool]] = field(default_factory=list)  # (band, chance, did beat)


class Policy:
    name = "none"
    goal = "minimize"
    strategy = "best"

    @property
    def sign(self) -> float:
        """From the bookkeeping's lower-is-better values to the metric's own, and back."""
        return -1.0 if self.goal == "maximize" else 1.0

    def start(self, run: Run) -> None: ...
    def step(self, run: Run, value: float, runs: list[Run], curves: list[np.ndarray], steps: int) -> bool:
        return False
    def finish(self, run: Run, curves: list[np.ndarray]) -> None: ...


class OptunaPolicy(Policy):
    def __init__(self, name: str, pruner_factory):
        self.name, self.factory = name, pruner_factory

    def reset(self) -> None:
        self.study = optuna.create_study(direction=self.goal, pruner=self.factory(),
                                         sampler=optuna.samplers.RandomSampler(seed=0))

    def start(self, run: Run) -> None:
        run.handle = self.study.ask()

    def step(self, run, value, runs, curves, steps) -> bool:
        if not math.isfinite(value):
            return False
        run.handle.report(self.sign * value, run.steps)
        return run.handle.should_prune()

    def finish(self, run: Run, curves) -> None:
        state = {"complete": optuna.trial.TrialState.COMPLETE, "stopped": optuna.trial.TrialState.PRUNED,
                 "diverged": optuna.trial.TrialState.FAIL}[run.state]
        complete = state == optuna.trial.TrialState.COMPLETE
        value = objective(curves[run.idx][: run.steps], self.strategy) if complete else None
        if value is not None and not math.isfinite(value):
            state, value = optuna.trial.TrialState.FAIL, None
        self.study.tell(run.handle, None if value is None else self.sign * value, state=state)


class KubetunePolicy(Policy):
    def __init__(self, name: str, rule, check_coverage: bool = False):
        self.name, self.rule, self.check_coverage = name, rule, check_coverage
        self.coverage: list[Cover] = []
        self.chances: list[tuple[str, float, bool]] = []

    def reset(self) -> None:
        self.coverage, self.chances = [], []

    def native(self, run: Run, curves) -> list[tuple[int, float]]:
        return [(s, self.sign * v) for s, v in run.curve(curves)]

    def step(self, run, value, runs, curves, steps) -> bool:
        mine = self.native(run, curves)
        others = [self.native(r, curves) for r in runs if r is not run and r.steps]
        if isinstance(self.rule, CurveFitRule):
            finished = [self.native(r, curves) for r in runs if r.state == "complete"]
            stopped = [self.native(r, curves) for r in runs if r.state == "stopped"]
            a = self.rule.assess(mine, others, self.goal, finished, stopped)
            if a is None:
                return False
            if self.check_coverage:
                lo, hi = a.interval()  # lower-is-better, like the bookkeeping here
                truth = objective(curves[run.idx], self.strategy)
                side = "better" if truth < lo else "worse" if truth > hi else "inside"
                now = objective(curves[run.idx][: run.steps], self.strategy)  # where the trial stands
                self.coverage.append(Cover(side, capped=self.strategy == "best" and hi >= now))
                band = "below median" if a.median is not None else "best tenth" if a.leader else "others"
                self.chances.append((band, a.p_beat, truth <= a.best))  # a tie counts, as in the rule
            return a.stop
        return self.rule.decide(mine, others, self.goal) is not None


class NNIPolicy(Policy):
    """NNI's CurvefittingAssessor, driven as NNI's dispatcher drives it. It models
    accuracy-like (rising) curves only, so it sees exp(-val_loss); it is slow (MCMC), so
    it judges every `gap` steps."""

    def __init__(self, steps: int, gap: int):
        from nni.algorithms.hpo.curvefitting_assessor import CurvefittingAssessor

        self.cls, self.steps, self.gap = CurvefittingAssessor, steps, gap
        self.name = f"NNI curvefitting (gap {gap})"

    def reset(self) -> None:
        import warnings

        warnings.filterwarnings("ignore")  # its curve functions warn on every overflow
        self.assessor = self.cls(epoch_num=self.steps, start_step=max(6, self.steps // 10), threshold=0.95, gap=self.gap)

    def _history(self, run: Run, curves) -> list[float]:
        if self.goal == "maximize":
            return [-v for _, v in run.curve(curves)]  # accuracy as it is
        return [math.exp(-v) for _, v in run.curve(curves)]  # loss -> a rising score in (0, 1]

    def step(self, run, value, runs, curves, steps) -> bool:
        from nni.assessor import AssessResult

        return self.assessor.assess_trial(str(run.idx), self._history(run, curves)) == AssessResult.Bad

    def finish(self, run: Run, curves) -> None:
        self.assessor.trial_history = self._history(run, curves)  # what its dispatcher last showed it
        if self.assessor.trial_history:
            self.assessor.trial_end(str(run.idx), run.state == "complete")


def nni_available() -> bool:
    try:
        import nni.algorithms.hpo.curvefitting_assessor  # noqa: F401
    except Exception:  # noqa: BLE001 - not installed, or its dependencies are not
        return False
    return True


def replay(curves: list[np.ndarray], steps: int, order: list[int], workers: int, policy: Policy) -> Result:
    if hasattr(policy, "reset"):
        policy.reset()
    queue = list(order)
    runs: list[Run] = []
    active: list[Run] = []
    decisions: list[float] = []
    while queue or active:
        while queue and len(active) < workers:
            r = Run(queue.pop(0))
            policy.start(r)
            runs.append(r)
            active.append(r)
        for r in list(active):
            r.steps += 1
            value = curves[r.idx][r.steps - 1]
            if not math.isfinite(value):
                r.state = "diverged"
            elif r.steps >= steps:
                r.state = "complete"
            else:
                t0 = time.perf_counter()
                stop = policy.step(r, value, runs, curves, steps)
                decisions.append(time.perf_counter() - t0)
                if stop:
                    r.state = "stopped"
            if r.state != "running":
                policy.finish(r, curves)
                active.remove(r)
    truth = [objective(c, policy.strategy) for c in curves]
    pool_best = min(truth)
    found = min(objective(curves[r.idx][: r.steps], policy.strategy) for r in runs)
    ranked = sorted(range(len(curves)), key=lambda i: truth[i])
    stopped = {r.idx for r in runs if r.state == "stopped"}
    return Result(
        compute=sum(r.steps for r in runs) / (len(curves) * steps),
        regret=regret(found, pool_best),
        best_stopped=ranked[0] in stopped,
        top5_stopped=len(set(ranked[:5]) & stopped),
        decisions=decisions,
        coverage=list(getattr(policy, "coverage", [])),
        chances=list(getattr(policy, "chances", [])),
    )


CHANCE_BINS = ((0.0, 0.05), (0.05, 0.2), (0.2, 0.5), (0.5, 1.0001))


def chance_lines(chances: list[tuple[str, float, bool]]) -> list[str]:
    """Predicted chance to beat the best against how often it happened, by band."""
    out = []
    for band in ("below median", "others", "best tenth"):
        cells = []
        for lo, hi in CHANCE_BINS:
            got = [(p, hit) for b, p, hit in chances if b == band and lo <= p < hi]
            if got:
                cells.append(f"{lo:.2f}-{min(hi, 1):.2f}: {statistics.fmean(p for p, _ in got):.2f} -> "
                             f"{statistics.fmean(h for _, h in got):.2f} ({len(got)})")
        out.append(f"    chance to beat the best, {band:12}: " + ("; ".join(cells) or "none"))
    return out


def policies(steps: int, goal: str = "minimize", strategy: str = "best") -> list[Policy]:
    warm = max(1, steps // 10)
    rows = [
        Policy(),
        OptunaPolicy("optuna MedianPruner", lambda: optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warm)),
        OptunaPolicy("optuna PercentilePruner(25)",
                     lambda: optuna.pruners.PercentilePruner(25.0, n_startup_trials=5, n_warmup_steps=warm)),
        OptunaPolicy("optuna SuccessiveHalving", lambda: optuna.pruners.SuccessiveHalvingPruner()),
        KubetunePolicy("kubetune median", MedianRule(start_step=warm, min_trials=3, objective=strategy)),
        KubetunePolicy("kubetune curvefit",
                       CurveFitRule(final_step=steps, start_step=warm, min_trials=3, objective=strategy),
                       check_coverage=True),
    ]
    for p in rows:
        p.goal, p.strategy = goal, strategy
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--orders", type=int, default=10,
                    help="random orders per row; the target 'best stopped in at most 1 run in 10' needs 10")
    ap.add_argument("--limit", type=int, default=None, help="use the first N curves")
    ap.add_argument("--only", nargs="*", help="substrings of rule names to run")
    ap.add_argument("--data", type=Path, default=DATA, help="curves from bench/generate_curves.py")
    ap.add_argument("--metric", default="val_loss",
                    help="digits: val_loss (minimized) or val_accuracy (maximized); boosting: val_mse; cancer: val_loss")
    ap.add_argument("--objective", choices=["best", "last"], default="best",
                    help="a trial's objective: the best value it reported, or the last")
    ap.add_argument("--nni-gap", type=int, default=5, help="NNI's assessor judges every N steps (it is slow)")
    ap.add_argument("--nni-workers", type=int, nargs="*", default=[8], help="worker counts that get the NNI row")
    ap.add_argument("--chances", action="store_true",
                    help="under curvefit's rows: its chance to beat the best, predicted -> realized (count)")
    a = ap.parse_args()
    curves, steps, goal = load(a.limit, a.metric, a.data)
    diverged = sum(1 for c in curves if not np.isfinite(c).all())
    with gzip.open(a.data, "rt") as f:
        task = json.load(f).get("task", "?")
    print(f"{len(curves)} real curves of {steps} steps ({task}, {a.metric}, {goal}d; {diverged} diverge); "
          f"objective: the {a.objective} value; orders={a.orders}, workers={a.workers}")
    rng = np.random.default_rng(7)
    orders = [list(rng.permutation(len(curves))) for _ in range(a.orders)]
    if not nni_available():
        print("NNI's curve-fitting assessor is not importable here: its row is left out "
              "(pip install nni --no-deps plus json_tricks, psutil, 'typeguard<4.1.3', 'filelock<3.12')")
    header = f"{'rule':30} {'W':>3} {'compute':>8} {'regret':>8} {'best hit':>8} {'top-5':>6} {'ms/dec':>14}"
    print(header)
    print("-" * len(header))
    for workers in a.workers:
        rows = policies(steps, goal, a.objective)
        if nni_available() and workers in a.nni_workers:
            rows.append(NNIPolicy(steps, a.nni_gap))
            rows[-1].goal, rows[-1].strategy = goal, a.objective
        for policy in rows:
            if a.only and not any(s in policy.name for s in a.only):
                continue
            results = [replay(curves, steps, o, workers, policy) for o in orders]
            ms = [d * 1000 for r in results for d in r.decisions] or [0.0]
            cover = [c for r in results for c in r.coverage]
            print(f"{policy.name:30} {workers:>3} {statistics.fmean(r.compute for r in results):>7.1%} "
                  f"{statistics.fmean(r.regret for r in results):>8.2%} "
                  f"{sum(r.best_stopped for r in results):>3}/{len(results):<4} "
                  f"{statistics.fmean(r.top5_stopped for r in results):>6.1f} "
                  f"{statistics.fmean(ms):>6.2f} ({float(np.percentile(ms, 95)):>5.1f})"
                  + (f"  {coverage_text(cover)}" if cover else ""),
                  flush=True)
            if a.chances and cover:
                print("\n".join(chance_lines([c for r in results for c in r.chances])), flush=True)


if __name__ == "__main__":
    main()
