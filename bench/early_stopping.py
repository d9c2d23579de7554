"""Early-stopping benchmark, leave one task out: replay real learning curves of several
tasks asynchronously, and score every rule on each task with nothing about that task
used to choose it.

The tasks are curve sets from bench/generate_curves.py (bench/data/*.json.gz): MLPs,
a CNN, a linear model and boosted trees, on data that ships with scikit-learn or is
generated; constant learning rates and schedules with warm-up, step decay and cosine
(late bloomers, plateaus and jumps); losses, an MSE and accuracies. Each replay takes
one random order of a task's configurations and W parallel workers; every running
trial advances one step per tick, and after each step the rule decides whether to stop
it. All rules see the same curves, orders and worker counts, in the same run.

Curve fitting is run at each of a few settings (CANDIDATES). For each held-out task,
"kubetune curvefit (LOTO)" is the setting chosen on the *other* tasks only: the cheapest
eligible one (curve fitting can stop from the eighth finished trial on) that never
stopped the pool's best and kept regret <= 0.1% on all of them at every worker count and
order (if none did, the one that stopped the best least often). It is then scored on
the held-out task as it is.

Columns:
  compute   steps trained, % of training every configuration to the end
  regret    (best value found - best value in the pool) / |best in the pool|, mean over orders
  best hit  in how many orders the pool's single best configuration was stopped
  top-5     true top-5 configurations stopped, mean over orders
  ms/dec    mean decision time (p95 in brackets); two processes share two busy cores

The timing section at the end measures one decision at 1,000 finished trials (curve
fitting, and the median rule beside optuna's MedianPruner on the same trials).

    nice python bench/early_stopping.py                       # all tasks, W 1 8 32, 3 orders (~10 min on 2 cores)
    python bench/early_stopping.py --tasks digits cancer --workers 8 --orders 2
    python bench/early_stopping.py --timing-only
Results of a run are remembered in --cache (one line per replay), so an interrupted run
picks up where it stopped; a changed rule setting is a new key.
"""
from __future__ import annotations

import argparse
import gzip
import json
import logging
import math
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import optuna

from kubetune.stopping import CurveFitRule, MedianRule

optuna.logging.set_verbosity(optuna.logging.ERROR)
try:  # NNI's assessors, where nni is installed (`pip install nni==3.0`, e.g. in a venv made with --system-site-packages)
    from nni.algorithms.hpo.medianstop_assessor import MedianstopAssessor
    from nni.assessor import AssessResult
    logging.getLogger("medianstop_Assessor").setLevel(logging.ERROR)  # a trial that ended before start_step: a warning
except ImportError:
    MedianstopAssessor = None
DATA = Path(__file__).with_name("data")

# name: (curve file, metric); the first three were the only ones the rules were tuned on before
TASKS = {
    "digits": ("digits_curves.json.gz", "val_loss"),
    "boosting": ("boosting_curves.json.gz", "val_mse"),
    "cancer": ("cancer_curves.json.gz", "val_loss"),
    "cnn": ("cnn_curves.json.gz", "val_loss"),
    "linear": ("linear_curves.json.gz", "val_accuracy"),
    "checkerboard": ("checkerboard_curves.json.gz", "val_accuracy"),
    "friedman": ("friedman_curves.json.gz", "val_mse"),
}

# curve fitting's settings (CurveFitRule keywords), each given in full: "careful" is the
# default before the rule gained the median rule's gate, lucky draws and a least number of
# look-alikes (it stopped the best of four held-out tasks); the "gated" ones stop as the
# median rule does (unless finished look-alikes say the trial may bloom late) and add
# curve fitting's stops among the better trials. Each is eligible as a default only if
# curve fitting can stop from the eighth finished trial on (min_look_alikes <= 8): one
# that waits for ten look-alikes (about 25 finished trials) stops nothing of its own in
# a Round of 20. "gated-wait" is such a setting, shown beside them, never chosen.
_OLD = dict(better_half=1.0, count_look_alikes=True, uncalibrated="keep", median_probability=0.0)
_GATED = dict(_OLD, lucky_draws=True, running_lift=0.05)
CANDIDATES = {
    "careful": dict(_OLD, probability=0.003, leader_probability=0.0005, lucky_draws=False, min_look_alikes=5,
                    running_quantile=0.0),
    "gated-median": dict(_GATED, probability=0.003, leader_probability=0.0005, min_look_alikes=8,
                         running_quantile=0.5),
    "gated": dict(_GATED, probability=0.003, leader_probability=0.0005, min_look_alikes=8, running_quantile=0.45),
    "gated-wait": dict(_GATED, probability=0.0125, leader_probability=0.0015, min_look_alikes=10,
                       running_quantile=0.45),
}
EARLIEST = 8  # look-alikes curve fitting calibrates on at the least (calibration.NEIGHBOURS)
SAFE_REGRET = 0.001


def load(task: str, limit: int | None) -> tuple[list[np.ndarray], int, str, str]:
    """A task's curves oriented so that lower is better (a maximized metric is negated) for
    the bookkeeping here, its number of steps, the metric's goal and the task's name: every
    rule sees the metric as it is, with its goal, the way a Round hands it over."""
    name, metric = TASKS[task]
    with gzip.open(DATA / name, "rt") as f:
        doc = json.load(f)
    goal = doc.get("metrics", {}).get(metric, doc.get("goal", "minimize"))
    sign = -1.0 if goal == "maximize" else 1.0
    curves = [sign * np.array([np.nan if v is None else v for v in r[metric]], float) for r in doc["runs"]]
    return (curves[:limit] if limit else curves), int(doc["steps"]), goal, f"{doc.get('task', task)}, {metric}"


def objective(c: np.ndarray) -> float:
    """A (partial) curve's objective: its best value (inf when it has none)."""
    finite = c[np.isfinite(c)]
    return float(finite.min()) if finite.size else math.inf


def regret(found: float, best: float) -> float:
    """Relative regret; for negated accuracies this is relative to the best accuracy."""
    return (found - best) / abs(best)


@dataclass
class Run:
    idx: int
    steps: int = 0
    state: str = "running"  # running, complete, stopped, diverged
    handle: object = None


@dataclass
class Result:
    compute: float
    regret: float
    best_stopped: bool
    top5_stopped: int
    ms: list[float] = field(default_factory=list)


class Policy:
    name = "none"
    goal = "minimize"

    @property
    def sign(self) -> float:
        """From the bookkeeping's lower-is-better values to the metric's own, and back."""
        return -1.0 if self.goal == "maximize" else 1.0

    def reset(self) -> None: ...
    def start(self, run: Run) -> None: ...
    def step(self, run: Run, value: float, runs: list[Run]) -> bool:
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

    def step(self, run, value, runs) -> bool:
        run.handle.report(self.sign * value, run.steps)
        return run.handle.should_prune()

    def finish(self, run: Run, curves) -> None:
        state = {"complete": optuna.trial.TrialState.COMPLETE, "stopped": optuna.trial.TrialState.PRUNED,
                 "diverged": optuna.trial.TrialState.FAIL}[run.state]
        value = objective(curves[run.idx][: run.steps]) if state == optuna.trial.TrialState.COMPLETE else None
        if value is not None and not math.isfinite(value):
            state, value = optuna.trial.TrialState.FAIL, None
        self.study.tell(run.handle, None if value is None else self.sign * value, state=state)


class NNIPolicy(Policy):
    """An NNI assessor, driven as NNI's dispatcher drives it: assess_trial with the trial's
    whole history of intermediate values at every report, trial_end when it ends. (NNI's
    Curvefitting assessor takes 1-2.6 s a decision at 10-30 points here and assesses
    accuracies only: too slow for these replays; its row is left out.)"""

    def __init__(self, name: str, factory):
        self.name, self.factory = name, factory

    def reset(self) -> None:
        self.assessor = self.factory(self.goal)

    def start(self, run: Run) -> None:
        run.handle = {"history": []}

    def step(self, run, value, runs) -> bool:
        run.handle["history"].append(self.sign * value)
        return self.assessor.assess_trial(run.idx, list(run.handle["history"])) == AssessResult.Bad

    def finish(self, run: Run, curves) -> None:
        if run.state == "complete":  # the last report is assessed too (its verdict no longer matters)
            run.handle["history"].append(self.sign * float(curves[run.idx][run.steps - 1]))
            self.assessor.assess_trial(run.idx, list(run.handle["history"]))
        self.assessor.trial_end(run.idx, run.state == "complete")


class KubetunePolicy(Policy):
    """A kubetune rule, handed the curves the way the operator hands them over: each trial's
    curve one list of (step, value) in the metric's own orientation, grown as it reports."""

    def __init__(self, name: str, rule):
        self.name, self.rule = name, rule

    def start(self, run: Run) -> None:
        run.handle = []

    def step(self, run, value, runs) -> bool:
        run.handle.append((run.steps, self.sign * value))
        others = [r.handle for r in runs if r is not run and r.handle]
        if isinstance(self.rule, CurveFitRule):
            finished = [r.handle for r in runs if r.state == "complete" and r.handle]
            stopped = [r.handle for r in runs if r.state == "stopped" and r.handle]
            return self.rule.decide(run.handle, others, self.goal, finished, stopped) is not None
        return self.rule.decide(run.handle, others, self.goal) is not None


def replay(curves: list[np.ndarray], steps: int, order: list[int], workers: int, policy: Policy) -> Result:
    policy.reset()
    queue = list(order)
    runs: list[Run] = []
    active: list[Run] = []
    ms: list[float] = []
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
                if isinstance(r.handle, list):
                    r.handle.append((r.steps, policy.sign * value))
            else:
                t0 = time.perf_counter()
                stop = policy.step(r, value, runs)
                ms.append(1000 * (time.perf_counter() - t0))
                if stop:
                    r.state = "stopped"
            if r.state != "running":
                policy.finish(r, curves)
                active.remove(r)
    truth = [objective(c) for c in curves]
    found = min(objective(curves[r.idx][: r.steps]) for r in runs)
    ranked = sorted(range(len(curves)), key=lambda i: truth[i])
    stopped = {r.idx for r in runs if r.state == "stopped"}
    return Result(
        compute=sum(r.steps for r in runs) / (len(curves) * steps),
        regret=regret(found, truth[ranked[0]]),
        best_stopped=ranked[0] in stopped,
        top5_stopped=len(set(ranked[:5]) & stopped),
        ms=ms,
    )


def policies(steps: int, goal: str) -> list[Policy]:
    warm = max(1, steps // 10)
    rows: list[Policy] = [
        Policy(),
        OptunaPolicy("optuna MedianPruner", lambda: optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warm)),
        OptunaPolicy("optuna PercentilePruner(25)",
                     lambda: optuna.pruners.PercentilePruner(25.0, n_startup_trials=5, n_warmup_steps=warm)),
        OptunaPolicy("optuna SuccessiveHalving", lambda: optuna.pruners.SuccessiveHalvingPruner()),
        OptunaPolicy("optuna Hyperband", lambda: optuna.pruners.HyperbandPruner(min_resource=1, max_resource=steps)),
        KubetunePolicy("kubetune median", MedianRule(start_step=warm, min_trials=3)),
    ]
    if MedianstopAssessor is not None:
        rows.append(NNIPolicy("NNI Medianstop", lambda goal: MedianstopAssessor(optimize_mode=goal, start_step=warm)))
    for name, kw in CANDIDATES.items():
        rows.append(KubetunePolicy(f"curvefit {name}", CurveFitRule(final_step=steps, start_step=warm, min_trials=3, **kw)))
    for p in rows:
        p.goal = goal
    return rows


_LOADED: dict[tuple[str, int | None], tuple] = {}


def job(args: tuple[str, int | None, int, str, int, int]) -> tuple[str, dict]:
    """One replay (run in a worker process): task, limit, workers, rule, order index, seed."""
    task, limit, workers, rule, k, seed = args
    if (task, limit) not in _LOADED:
        _LOADED[(task, limit)] = load(task, limit)
    curves, steps, goal, _ = _LOADED[(task, limit)]
    order = [int(i) for i in np.random.default_rng([seed, k]).permutation(len(curves))]
    policy = next(p for p in policies(steps, goal) if p.name == rule)
    r = replay(curves, steps, order, workers, policy)
    ms = r.ms or [0.0]
    summary = dict(compute=r.compute, regret=r.regret, best_stopped=r.best_stopped, top5_stopped=r.top5_stopped,
                   ms_mean=statistics.fmean(ms), ms_p95=float(np.percentile(ms, 95)), decisions=len(r.ms))
    return key(*args), summary


def key(task, limit, workers, rule, k, seed) -> str:
    params = CANDIDATES.get(rule.removeprefix("curvefit "), {})
    return json.dumps([task, limit, workers, rule, k, seed, sorted(params.items())])


@dataclass
class Cell:
    """One rule on one task at one worker count, over the orders."""

    rows: list[dict]

    @property
    def compute(self) -> float:
        return statistics.fmean(r["compute"] for r in self.rows)

    @property
    def regret(self) -> float:
        return statistics.fmean(r["regret"] for r in self.rows)

    @property
    def hits(self) -> int:
        return sum(r["best_stopped"] for r in self.rows)

    @property
    def safe(self) -> bool:
        return self.hits == 0 and all(r["regret"] <= SAFE_REGRET for r in self.rows)

    def text(self, name: str, workers: int) -> str:
        ms = sum(r["ms_mean"] * r["decisions"] for r in self.rows) / max(1, sum(r["decisions"] for r in self.rows))
        p95 = max(r["ms_p95"] for r in self.rows)
        return (f"{name:34} {workers:>3} {self.compute:>7.1%} {self.regret:>8.2%} {self.hits:>3}/{len(self.rows):<4} "
                f"{statistics.fmean(r['top5_stopped'] for r in self.rows):>6.1f} {ms:>6.2f} ({p95:>5.1f})")


def choose(results: dict, held_out: str, tasks: list[str], workers: list[int]) -> str:
    """Curve fitting's setting for `held_out`, chosen on the other tasks only: the cheapest
    eligible one (see CANDIDATES) that was safe on all of them (never stopped the best,
    regret <= 0.1%, every worker count and order); if none was, the one that stopped the
    best least often."""
    scored = []
    for name in CANDIDATES:
        if CANDIDATES[name].get("min_look_alikes", 5) > EARLIEST:
            continue  # its own stops wait for about 25 finished trials: not eligible
        cells = [results[(t, w, f"curvefit {name}")] for t in tasks if t != held_out for w in workers]
        safe = all(c.safe for c in cells)
        scored.append((not safe, sum(c.hits for c in cells) if not safe else 0,
                       statistics.fmean(c.compute for c in cells), name))
    return min(scored)[3]


def timing(trials: int = 1000, repeats: int = 30) -> list[str]:
    """One decision at `trials` finished trials: curve fitting; the median rule beside
    optuna's MedianPruner deciding on the same trials."""
    curves, steps, goal, _ = load("digits", None)
    rng = np.random.default_rng(3)
    pool = [curves[i] for i in rng.integers(0, len(curves), trials)]
    # each finished trial its own curve (a little jitter: no two share a fit in the cache)
    native = [[(s + 1, float(v) * (1 + 1e-4 * rng.normal())) for s, v in enumerate(c) if math.isfinite(v)]
              for c in pool]
    running = [(s + 1, float(v) * 1.3) for s, v in enumerate(curves[0][: steps // 2])]
    out = []
    rule = CurveFitRule(final_step=steps, start_step=steps // 10, min_trials=3)

    def timed(call) -> tuple[float, float]:
        """Wall and CPU milliseconds of one call (the CPU time leaves out waiting for a core
        on a busy machine)."""
        w0, c0 = time.perf_counter(), time.process_time()
        call()
        return 1000 * (time.perf_counter() - w0), 1000 * (time.process_time() - c0)

    cold = timed(lambda: rule.decide(running[: steps // 4], native, goal, native, []))
    first, later = [], []
    for k in range(steps // 4 + 1, steps // 2):  # a new step: its look-alikes are cut and fitted there once
        mine = running[:k]
        first.append(timed(lambda: rule.decide(mine, native, goal, native, [])))
        for shift in (1.01, 1.02):  # other trials deciding at the same step
            other = [(s, v * shift) for s, v in mine]
            later.append(timed(lambda: rule.decide(other, native, goal, native, [])))

    def ms(rows: list[tuple[float, float]]) -> str:
        return (f"median {statistics.median(w for w, _ in rows):.1f} ms, max {max(w for w, _ in rows):.1f} ms "
                f"(CPU {statistics.median(c for _, c in rows):.1f} / {max(c for _, c in rows):.1f})")

    out.append(f"curvefit at {trials} finished trials: the first decision at a step {ms(first)}; "
               f"the others at that step {ms(later)}; the Round's very first {cold[0]:.0f} ms "
               f"(CPU {cold[1]:.0f}: it reads each finished curve once)")
    median = MedianRule(start_step=steps // 10, min_trials=3)
    study = optuna.create_study(direction=goal, pruner=optuna.pruners.MedianPruner(n_startup_trials=5,
                                                                                   n_warmup_steps=steps // 10))
    for c in native:
        t = optuna.trial.create_trial(value=min(v for _, v in c), intermediate_values=dict(c),
                                      distributions={}, params={})
        study.add_trial(t)
    ours, theirs = [], []
    for i in range(repeats):
        mine = running[: steps // 4 + i % (steps // 4)]
        t0 = time.perf_counter()
        median.decide(mine, native, goal)
        ours.append(1000 * (time.perf_counter() - t0))
        trial = study.ask()
        for s, v in mine[:-1]:
            trial.report(v, s)
        t0 = time.perf_counter()  # one decision, as in the replays: the step's report, then should_prune
        trial.report(mine[-1][1], mine[-1][0])
        trial.should_prune()
        theirs.append(1000 * (time.perf_counter() - t0))
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    m_ours, m_theirs = statistics.median(ours), statistics.median(theirs)
    out.append(f"median rule at {trials} finished trials: kubetune {m_ours:.2f} ms, optuna MedianPruner "
               f"{m_theirs:.2f} ms (report the step, then should_prune), "
               f"{m_ours / m_theirs:.1f}x")
    return out


def run_replays(job, todo, done, cache, processes, every=25):
    """Run the replays not cached yet in a process pool, appending each result to the cache as it lands."""
    started = time.time()
    if not todo:
        return
    with ProcessPoolExecutor(processes) as pool, cache.open("a") as f:
        for n, (k, v) in enumerate(pool.map(job, todo, chunksize=1), 1):
            done[k] = v
            f.write(json.dumps([k, v]) + "\n")
            f.flush()
            if n % every == 0:
                print(f"  {n}/{len(todo)} replays, {time.time() - started:.0f}s", file=sys.stderr, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--orders", type=int, default=3, help="random orders per task and worker count")
    ap.add_argument("--limit", type=int, default=120, help="the first N curves of each task (0: all)")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/kubetune_early_stopping_cache.jsonl"))
    ap.add_argument("--only", nargs="*", help="substrings of rule names to run")
    ap.add_argument("--timing-only", action="store_true")
    a = ap.parse_args()
    if not a.timing_only:
        table(a)
    print("\ntiming")
    for line in timing():
        print("  " + line, flush=True)


def table(a) -> None:
    limit = a.limit or None
    infos = {t: load(t, limit) for t in a.tasks}
    names = [p.name for p in policies(10, "minimize")]
    if a.only:
        names = [n for n in names if any(s in n for s in a.only)]
    done: dict[str, dict] = {}
    if a.cache.exists():
        for line in a.cache.read_text().splitlines():
            k, v = json.loads(line)
            done[k] = v
    jobs = [(t, limit, w, n, k, 7) for t in a.tasks for w in a.workers for n in names for k in range(a.orders)]
    todo = [j for j in jobs if key(*j) not in done]
    # the slowest first, so the two processes end together
    todo.sort(key=lambda j: (not j[3].startswith(("curvefit", "kubetune")), -j[2]))
    run_replays(job, todo, done, a.cache, a.processes)
    results = {(t, w, n): Cell([done[key(t, limit, w, n, k, 7)] for k in range(a.orders)])
               for t in a.tasks for w in a.workers for n in names}
    header = f"{'rule':34} {'W':>3} {'compute':>8} {'regret':>8} {'best hit':>8} {'top-5':>6} {'ms/dec':>14}"
    loto = {}
    for t in a.tasks:
        curves, steps, goal, what = infos[t]
        diverged = sum(1 for c in curves if not np.isfinite(c).all())
        chosen = choose(results, t, a.tasks, a.workers) if all(f"curvefit {c}" in names for c in CANDIDATES) else None
        loto[t] = chosen
        print(f"\n== {t}: {len(curves)} curves of {steps} steps ({what}, {goal}d; {diverged} diverge); "
              f"orders={a.orders}; curvefit (LOTO) = {chosen}, chosen on the other tasks")
        print(header)
        print("-" * len(header))
        for w in a.workers:
            for n in names:
                print(results[(t, w, n)].text(n, w))
            if chosen:
                print(results[(t, w, f"curvefit {chosen}")].text("kubetune curvefit (LOTO)", w))
    if not all(loto.values()):
        return
    print("\n== leave one task out: curvefit at the setting chosen without the task, beside optuna's MedianPruner "
          "and kubetune's median rule (compute, regret, orders in which the pool's best was stopped)")
    print(f"{'held-out task':13} {'curvefit setting':21} {'W':>3} | {'curvefit (LOTO)':>23} | "
          f"{'optuna MedianPruner':>23} | {'kubetune median':>23} | safe  cheaper")
    cell = lambda c: f"{c.compute:>7.1%} {c.regret:>6.2%} {c.hits:>3}/{len(c.rows):<3}"  # noqa: E731
    for t in a.tasks:
        for w in a.workers:
            c, m = results[(t, w, f"curvefit {loto[t]}")], results.get((t, w, "optuna MedianPruner"))
            k = results.get((t, w, "kubetune median"))
            if m is None or k is None:
                continue
            cheaper = c.compute < m.compute and c.regret <= m.regret
            print(f"{t:13} {loto[t]:21} {w:>3} | {cell(c):>23} | {cell(m):>23} | {cell(k):>23} | "
                  f"{'yes' if c.safe else 'NO':>4}  {'yes' if cheaper else 'no':>7}")
    for name, rule in (("curvefit (LOTO)", None), ("optuna MedianPruner", "optuna MedianPruner"),
                       ("kubetune median", "kubetune median"), ("NNI Medianstop", "NNI Medianstop")):
        if rule is not None and rule not in names:
            continue
        cells = [results[(t, w, rule or f"curvefit {loto[t]}")] for t in a.tasks for w in a.workers]
        print(f"{name}: mean compute {statistics.fmean(c.compute for c in cells):.1%} of no stopping over "
              f"{len(cells)} task x worker cells; pool's best stopped in {sum(c.hits for c in cells)} of "
              f"{sum(len(c.rows) for c in cells)} replays; safe in {sum(c.safe for c in cells)} of {len(cells)} cells")
    final = choose(results, "", a.tasks, a.workers)
    print(f"chosen on all tasks (what ships as CurveFitRule's defaults): {final}")

if __name__ == "__main__":
    main()
