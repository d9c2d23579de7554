"""Issue #25, why curve fitting ("gated") costs more than optuna's MedianPruner with one
worker (and eight), and whether one small change to the running-average gate closes it.

Two parts, both on bench/early_stopping.py's replays (its load, replay, policies, Cell,
choose and timing are imported, not copied; same tasks, 120 curves each, seed 7, orders
0-2, workers 1 8 32):

--diagnose: replays gated and optuna's MedianPruner(5, warm-up steps // 10) on the same
  order and records every trial's fate (stopped at which step, or ran to the end) and
  every one of gated's decisions: where the trial stood (its best so far), gated's
  yardstick (the 45% quantile of the other trials' running averages up to the step, over
  every trial that reached it), optuna's yardstick in the same state (the median of the
  *completed* trials' values at the step, once five have completed), the calibrated
  chance, the lucky-draw floor, the threshold and whether the 5% lift kept it. It prints
  per replay: where the extra compute goes (trials gated runs to the end that the
  MedianPruner stopped; trials both stop, gated later), at which steps each rule stops,
  and, for each of gated's decisions that kept a trial optuna's yardstick (in gated's
  own state) would have stopped, which mechanism kept it.

candidates (default): CurveFitRule with its shipped "gated" settings and one change, in a
  subclass here (the operator is not edited). The mechanism change is to the pool and the
  yardstick of the running-average gate (YardstickRule.yardstick; "all" is the shipped gate):
    went-on        the quantile is taken over the trials that went on past the step (as
                   `_standing`'s median already is, and optuna's and Vizier's median rules
                   are), not every trial that reached it; while fewer than MEDIAN_PEERS (5)
                   went on, over those that reached it, as now;
    value          the yardstick is each trial's best value up to the step (where it stood,
                   as optuna's MedianPruner reads the completed trials), not its running
                   average; every trial that reached the step;
    went-on-value  both (closest to optuna's MedianPruner at W=1), at the shipped quantile
                   0.45 and at 0.60 and 0.75 (looser);
  and one settings change, no mechanism: no-lift (running_lift=2.0: nothing lifts the
  gate); no-lucky (lucky_draws=False) as an ablation. went-on, value and no-lucky are
  replayed at W=1 only (which part of gated costs what there); went-on-value (3
  quantiles) and no-lift on all 7 tasks x W 1 8 32 x 3 orders, scored as
  bench/early_stopping.py scores curve fitting: per cell compute / regret / best stopped,
  in sample, and leave one task out: for each held-out task early_stopping.choose() picks
  among gated and the candidate(s) on the other six tasks ("careful" and "gated-median",
  the bench's other eligible settings, are left out: each is dearer than gated and never
  chosen). A candidate counts only if it never stops the pool's best (0 of 63) with
  regret <= 0.1% in every replay. With --timing, the decision time at 1,000 finished
  trials of each yardstick (early_stopping.timing() with its CurveFitRule swapped).

    nice -n 19 python3 bench/es_w1.py --diagnose --tasks digits boosting cnn checkerboard --workers 1 8
    nice -n 19 python3 bench/es_w1.py --tasks digits cancer        # part of the candidate replays (cached)
    nice -n 19 python3 bench/es_w1.py --timing                     # the tables from the cache, and the timing

Replays are cached in --cache (one line each, keyed by the rule's settings); --import
reads an early_stopping.py cache (e.g. one with keys written before settings were part
of them) for the baselines gated and optuna MedianPruner. Results: bench/results/es_w1.txt.
"""
from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import optuna

sys.path.insert(0, str(Path(__file__).parent))
import early_stopping as es  # noqa: E402
from kubetune.stopping import curvefit as cf  # noqa: E402
from kubetune.stopping.base import level, oriented, running_averages  # noqa: E402
from kubetune.stopping.calibration import MIN_CALIBRATION  # noqa: E402

SEED = 7
BASELINES = ("optuna MedianPruner", "curvefit gated")
YARDSTICKS = ("all", "went-on", "value", "went-on-value")  # timed; value-calibrated reads no more than value  # "all" is the shipped gate
CANDIDATES = {"went-on-value": dict(es.CANDIDATES["gated"], yardstick="went-on-value"),
              # looser quantiles of the same yardstick (run after the first stopped the best of 4 tasks)
              "went-on-value-q60": dict(es.CANDIDATES["gated"], yardstick="went-on-value", running_quantile=0.6),
              "went-on-value-q75": dict(es.CANDIDATES["gated"], yardstick="went-on-value", running_quantile=0.75),
              # a setting, no mechanism change: the shipped gate, nothing lifts it (running_lift above 1); added
              # after the W=1 ablation below found the lift keeps most of what gated spends more than optuna on boosting
              "no-lift": dict(es.CANDIDATES["gated"], yardstick="all", running_lift=2.0),
              # session 27: the value yardstick (optuna's reading of where a trial stands) with a lower lift. value
              # at the 5% lift stopped linear's and friedman's late bloomers, whose calibrated chance at the stop
              # was 3-8.5% with the lucky-draw floor: does a lift of 1-3% keep them and still stop what the
              # MedianPruner stops at W=1?
              "value-lift1": dict(es.CANDIDATES["gated"], yardstick="value", running_lift=0.01),
              "value-lift2": dict(es.CANDIDATES["gated"], yardstick="value", running_lift=0.02),
              "value-lift3": dict(es.CANDIDATES["gated"], yardstick="value", running_lift=0.03),
              "value-calibrated-lift2": dict(es.CANDIDATES["gated"], yardstick="value-calibrated", running_lift=0.02)}
# each half of the change alone, replayed at W=1 only (which half the saving comes from)
ABLATIONS = {"went-on": dict(es.CANDIDATES["gated"], yardstick="went-on"),
             "value": dict(es.CANDIDATES["gated"], yardstick="value"),
             # and two of gated's other keepers, as settings (the shipped gate): no lucky-draw floor; no lift
             "no-lucky": dict(es.CANDIDATES["gated"], yardstick="all", lucky_draws=False),
             # value, only once MIN_CALIBRATION trials have finished (the lift can be judged); else the shipped
             # yardstick: added after value stopped linear's and friedman's best with 3 trials finished
             "value-calibrated": dict(es.CANDIDATES["gated"], yardstick="value-calibrated")}

# --- the one mechanism change: the running-average gate's pool (and, for -value, its yardstick)

_MODE = ["all", 0]  # the yardstick, and the rule's final step
_shipped_running_quantile = cf._running_quantile


def _running_quantile(position, peers, step, q, least):
    """curvefit._running_quantile with the pool of `_MODE`: "all" is the shipped one."""
    mode, final_step = _MODE[0], _MODE[1]
    if mode == "value-calibrated":
        finished = sum(1 for p in peers if p and p.steps[-1] >= final_step)
        mode = "value" if finished >= MIN_CALIBRATION else "all"
    if mode == "all":
        return _shipped_running_quantile(position, peers, step, q, least)
    reached = [p for p in peers if p and p.steps[-1] >= step]
    went_on = [p for p in reached if p.steps[-1] > step]
    pool = reached if mode == "value" or len(went_on) < cf.MEDIAN_PEERS else went_on
    if mode == "went-on":
        values = running_averages(pool, "minimize", step)
    else:  # where each stood at the step: its best value up to it
        values = [v for p in pool if (v := level(p, step, "best")) is not None]
    if len(values) < least:
        return None
    v = float(np.quantile(values, q))
    return v if position > v else None


cf._running_quantile = _running_quantile  # read by CurveFitRule.assess and curvefit._gate at call time


@dataclass(frozen=True)
class YardstickRule(cf.CurveFitRule):
    """CurveFitRule whose running-average gate takes its quantile over `yardstick`'s pool."""

    yardstick: str = "all"

    def assess(self, *args, **kw):
        _MODE[:] = self.yardstick, self.final_step
        try:
            return super().assess(*args, **kw)
        finally:
            _MODE[0] = "all"

    def decide(self, *args, **kw):
        _MODE[:] = self.yardstick, self.final_step  # curvefit._gate, for a curve too short to extrapolate, reads it too
        try:
            return super().decide(*args, **kw)
        finally:
            _MODE[0] = "all"


def policy(name: str, steps: int, goal: str) -> es.Policy:
    if name in BASELINES:
        return next(p for p in es.policies(steps, goal) if p.name == name)
    p = es.KubetunePolicy(name, YardstickRule(final_step=steps, start_step=max(1, steps // 10), min_trials=3,
                                              **(CANDIDATES | ABLATIONS)[name.removeprefix("curvefit ")]))
    p.goal = goal
    return p


def key(task, workers, rule, k) -> str:
    params = (CANDIDATES | ABLATIONS | {"gated": es.CANDIDATES["gated"]}).get(rule.removeprefix("curvefit "), {})
    return json.dumps([task, 120, workers, rule, k, SEED, sorted(params.items())])


_LOADED: dict = {}


def job(args):
    task, workers, rule, k = args
    if task not in _LOADED:
        _LOADED[task] = es.load(task, 120)
    curves, steps, goal, _ = _LOADED[task]
    order = [int(i) for i in np.random.default_rng([SEED, k]).permutation(len(curves))]
    r = es.replay(curves, steps, order, workers, policy(rule, steps, goal))
    ms = r.ms or [0.0]
    return key(*args), dict(compute=r.compute, regret=r.regret, best_stopped=r.best_stopped,
                            top5_stopped=r.top5_stopped, ms_mean=statistics.fmean(ms),
                            ms_p95=float(np.percentile(ms, 95)), decisions=len(r.ms))


# --- diagnosis


class Fates(es.OptunaPolicy):
    """optuna's pruner, remembering each trial's fate."""

    def reset(self):
        super().reset()
        self.fate = {}

    def finish(self, run, curves):
        super().finish(run, curves)
        self.fate[run.idx] = (run.state, run.steps)


class Traced(es.KubetunePolicy):
    """gated, remembering each trial's fate and what every decision rested on (decide()
    as CurveFitRule.decide makes it: assess, or the gate alone for a short curve)."""

    def reset(self):
        self.fate, self.log = {}, []

    def finish(self, run, curves):
        self.fate[run.idx] = (run.state, run.steps)

    def step(self, run, value, runs):
        run.handle.append((run.steps, self.sign * value))
        others = [r.handle for r in runs if r is not run and r.handle]
        finished = [r.handle for r in runs if r.state == "complete" and r.handle]
        stopped = [r.handle for r in runs if r.state == "stopped" and r.handle]
        a = self.rule.assess(run.handle, others, self.goal, finished, stopped)
        stop = a.stop if a is not None else cf._gate(self.rule, run.handle, others, self.goal) is not None
        s = run.steps
        position = level(oriented(run.handle, self.goal), s, "best")
        done = [dict(oriented(h, self.goal)) for h in finished]
        at = [d[s] for d in done if s in d]
        opt = statistics.median(at) if len(done) >= 5 and at else None  # optuna's yardstick, this state
        avgs = running_averages([oriented(h, self.goal) for h in others], "minimize", s)
        q45 = float(np.quantile(avgs, 0.45)) if len(avgs) >= 3 else None
        self.log.append(dict(s=s, pos=position, stop=stop, opt=opt, q45=q45, peers=len(avgs), completed=len(done),
                             a=None if a is None else dict(running=a.running is not None, gated=a.gated, p=a.p_beat,
                                                          thr=a.threshold, n=a.calibration_trials, lucky=a.lucky)))
        return stop


def trace(args):
    task, workers, k = args
    curves, steps, goal, _ = es.load(task, 120)
    order = [int(i) for i in np.random.default_rng([SEED, k]).permutation(len(curves))]
    warm = max(1, steps // 10)
    m = Fates("m", lambda: optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warm))
    g = Traced("g", cf.CurveFitRule(final_step=steps, start_step=warm, min_trials=3, **es.CANDIDATES["gated"]))
    m.goal = g.goal = goal
    rm, rg = es.replay(curves, steps, order, workers, m), es.replay(curves, steps, order, workers, g)
    return dict(task=task, W=workers, k=k, steps=steps, warm=warm, n=len(curves), m=rm.compute, g=rg.compute,
                mfate=m.fate, gfate=g.fate, log=g.log)


def why(d) -> str | None:
    """Which mechanism kept a trial that optuna's yardstick would have stopped."""
    a = d["a"]
    if a is None:
        return "short curve: the gate alone, not worse than its yardstick"
    floor = "uncalibrated (threshold 0)" if a["thr"] == 0 else (
        "lucky-draw floor >= threshold" if a["lucky"] >= a["thr"] else "calibrated chance >= threshold")
    gate = "lifted: worse than the yardstick, calibrated chance >= 5%" if a["running"] else "not worse than the yardstick"
    return f"{gate}; then {floor}"


def diagnose(a) -> None:
    path = a.cache.with_name("diag.jsonl")
    done = {}
    if path.exists():
        for line in path.read_text().splitlines():
            r = json.loads(line)
            done[(r["task"], r["W"], r["k"])] = r
    todo = [(t, w, k) for t in a.tasks for w in a.workers for k in range(a.orders) if (t, w, k) not in done]
    if todo:
        with ProcessPoolExecutor(a.processes) as pool, path.open("a") as f:
            for r in pool.map(trace, todo):
                done[(r["task"], r["W"], r["k"])] = r
                f.write(json.dumps(r) + "\n")
                f.flush()
    print("== diagnosis: gated vs optuna MedianPruner, same orders (compute in points of full training)")
    for t in a.tasks:
        for w in a.workers:
            rows = [done[(t, w, k)] for k in range(a.orders)]
            agg = collections.Counter()
            kept = collections.Counter()
            ysticks = collections.defaultdict(list)
            firsts = collections.Counter()
            for r in rows:
                n, steps, warm = r["n"], r["steps"], r["warm"]
                mf = {int(i): v for i, v in r["mfate"].items()}
                gf = {int(i): v for i, v in r["gfate"].items()}
                full = n * steps
                agg["M"] += r["m"]
                agg["G"] += r["g"]
                agg["M complete"] += sum(v[0] == "complete" for v in mf.values())
                agg["G complete"] += sum(v[0] == "complete" for v in gf.values())
                gm = [i for i in gf if gf[i][0] == "complete" and mf[i][0] == "stopped"]
                agg["G to the end, M stopped"] += len(gm)
                agg["  their extra"] += sum(gf[i][1] - mf[i][1] for i in gm) / full
                both = [i for i in gf if gf[i][0] == "stopped" and mf[i][0] == "stopped"]
                agg["both stopped, G later by"] += sum(gf[i][1] - mf[i][1] for i in both) / full
                mg = [i for i in gf if gf[i][0] == "stopped" and mf[i][0] == "complete"]
                agg["G stopped, M to the end"] += len(mg)
                agg["  their saving"] += sum(mf[i][1] - gf[i][1] for i in mg) / full
                agg["M stops at warm-up step"] += sum(v[0] == "stopped" and v[1] == warm for v in mf.values())
                agg["G stops at warm-up step"] += sum(v[0] == "stopped" and v[1] == warm for v in gf.values())
                agg["M stops"] += sum(v[0] == "stopped" for v in mf.values())
                agg["G stops"] += sum(v[0] == "stopped" for v in gf.values())
                agg["M median stop step"] += statistics.median([v[1] for v in mf.values() if v[0] == "stopped"] or [0])
                agg["G median stop step"] += statistics.median([v[1] for v in gf.values() if v[0] == "stopped"] or [0])
                for d in r["log"]:
                    if d["s"] == warm and d["opt"] is not None:
                        firsts["decisions"] += 1
                        firsts["worse_g"] += d["q45"] is not None and d["pos"] > d["q45"]
                        firsts["worse_m"] += d["pos"] > d["opt"]
                        firsts["gated stops"] += d["stop"]
                        firsts["lifted"] += bool(d["a"] and d["a"]["running"] and not d["a"]["gated"])
                    if d["opt"] is not None and d["q45"] is not None:
                        frac = d["s"] / steps
                        ysticks["early" if frac < 0.25 else "mid" if frac < 0.6 else "late"].append(
                            (d["q45"], d["opt"], d["peers"], d["completed"]))
                    if d["s"] >= warm and not d["stop"] and d["opt"] is not None and d["pos"] > d["opt"]:
                        kept[why(d)] += 1 / full
            o = a.orders
            print(f"\n-- {t} W={w} (means over {o} orders)")
            print(f"  compute: MedianPruner {agg['M'] / o:.1%}, gated {agg['G'] / o:.1%} (+{(agg['G'] - agg['M']) / o:.1%})"
                  f"; of which trials gated ran to the end and the MedianPruner stopped: {agg['G to the end, M stopped'] / o:.1f}"
                  f" (+{agg['  their extra'] / o:.1%}); trials both stopped, gated later: +{agg['both stopped, G later by'] / o:.1%}"
                  f"; gated stopped, MedianPruner ran to the end: {agg['G stopped, M to the end'] / o:.1f}"
                  f" (-{agg['  their saving'] / o:.1%})")
            print(f"  ran to the end: MedianPruner {agg['M complete'] / o:.1f}, gated {agg['G complete'] / o:.1f}; "
                  f"stopped at the first decision step: MedianPruner {agg['M stops at warm-up step'] / o:.1f} of "
                  f"{agg['M stops'] / o:.1f} stops, gated {agg['G stops at warm-up step'] / o:.1f} of {agg['G stops'] / o:.1f}; "
                  f"median stop step MedianPruner {agg['M median stop step'] / o:.1f}, gated {agg['G median stop step'] / o:.1f}")
            if firsts["decisions"]:
                f = firsts
                print(f"  gated's first decision step (once 5 trials completed), {f['decisions'] / o:.0f} decisions: worse than "
                      f"gated's yardstick {f['worse_g'] / f['decisions']:.0%}, than optuna's "
                      f"{f['worse_m'] / f['decisions']:.0%}; lifted {f['lifted'] / o:.1f}; gated stops "
                      f"{f['gated stops'] / f['decisions']:.0%}")
            print("  yardsticks, mean over gated's decisions (gated: 45% quantile of running averages of all trials that "
                  "reached the step; optuna: median of completed trials' values at the step): " + "; ".join(
                      f"{b} {np.mean([x[0] for x in v]):.4g} vs {np.mean([x[1] for x in v]):.4g} "
                      f"(over {np.mean([x[2] for x in v]):.0f} vs {np.mean([x[3] for x in v]):.0f} trials)"
                      for b, v in ysticks.items()))
            total = sum(kept.values())
            print(f"  gated kept a trial optuna's yardstick (in gated's own state) would stop: {total / o:.1%} of full "
                  "training per replay; kept by:")
            for k, v in kept.most_common():
                print(f"    {v / o:>6.1%}  {k}")


# --- candidates


def candidates(a) -> None:
    global CANDIDATES
    if a.candidates:  # only these (the tables need every replay of each named one, not of the others)
        CANDIDATES = {c: CANDIDATES[c] for c in a.candidates}
    names = list(BASELINES) + [f"curvefit {c}" for c in CANDIDATES]
    done: dict[str, dict] = {}
    if a.cache.exists():
        for line in a.cache.read_text().splitlines():
            k, v = json.loads(line)
            done[k] = v
    if a.import_cache:  # baselines from an early_stopping.py cache, old keys (no settings) or new
        for line in a.import_cache.read_text().splitlines():
            k, v = json.loads(line)
            t, limit, w, rule, o, seed = json.loads(k)[:6]
            if rule in BASELINES and limit == 120 and seed == SEED:
                done.setdefault(key(t, w, rule, o), v)
    tasks = a.tasks
    todo = [(t, w, n, k) for t in tasks for w in a.workers for n in names for k in range(a.orders)
            if key(t, w, n, k) not in done]
    todo.sort(key=lambda j: -j[1])
    es.run_replays(job, todo, done, a.cache, a.processes, every=10)
    every = [(t, w, n, k) for t in es.TASKS for w in (1, 8, 32) for n in names for k in range(3)]
    if any(key(*j) not in done for j in every):
        missing = sorted({(t, n) for t, w, n, k in every if key(t, w, n, k) not in done})
        print(f"not all replays are cached yet ({len(missing)} task x rule missing, e.g. {missing[:3]}): no tables")
        return
    if a.import_cache:  # persist the imported baselines
        with a.cache.open("a") as f:
            have = set(json.loads(line)[0] for line in a.cache.read_text().splitlines())
            for j in every:
                if j[2] in BASELINES and key(*j) not in have:
                    f.write(json.dumps([key(*j), done[key(*j)]]) + "\n")
    tasks, workers = list(es.TASKS), [1, 8, 32]
    results = {(t, w, n): es.Cell([done[key(t, w, n, k)] for k in range(3)]) for t in tasks for w in workers for n in names}
    median = lambda t, w: results[(t, w, "optuna MedianPruner")]  # noqa: E731
    cell = lambda c: f"{c.compute:>6.1%} {c.regret:>6.2%} {c.hits}/3"  # noqa: E731

    def summary(label, pick):
        cells = [(t, w, results[(t, w, pick(t))]) for t in tasks for w in workers]
        hits = sum(c.hits for _, _, c in cells)
        worst = max(r["regret"] for _, _, c in cells for r in c.rows)
        cheaper = [(t, w) for t, w, c in cells if c.compute < median(t, w).compute and c.regret <= median(t, w).regret]
        per_w = ", ".join(f"W{w} {statistics.fmean(c.compute for _, ww, c in cells if ww == w):.1%}" for w in workers)
        print(f"{label}: mean compute {statistics.fmean(c.compute for _, _, c in cells):.1%} ({per_w}); best stopped "
              f"{hits}/63; max regret {worst:.2%}; safe cells {sum(c.safe for _, _, c in cells)}/21; cheaper than "
              f"MedianPruner at the same or lower regret in {len(cheaper)}/21 cells")
        return cells

    print("\n== candidates, every cell (compute, mean regret, orders in which the pool's best was stopped)")
    head = f"{'task':13} {'W':>3} | " + " | ".join(f"{n.removeprefix('curvefit '):>19}" for n in names)
    print(head)
    print("-" * len(head))
    for t in tasks:
        for w in workers:
            print(f"{t:13} {w:>3} | " + " | ".join(f"{cell(results[(t, w, n)]):>19}" for n in names))
    abl = [f"curvefit {n}" for n in ABLATIONS]
    if a.candidates:
        abl = []  # the ablation table reads the first candidates'
    todo = [(t, 1, n, k) for t in tasks for n in abl for k in range(3) if key(t, 1, n, k) not in done]
    es.run_replays(job, todo, done, a.cache, a.processes, every=10)
    if not a.candidates:
        _ablations(tasks, results, done, abl)
    _tail(a, tasks, workers, names, results, summary, median, cell)


def _ablations(tasks, results, done, abl) -> None:
    cell = lambda c: f"{c.compute:>6.1%} {c.regret:>6.2%} {c.hits}/3"  # noqa: E731
    print("\n== ablations at W=1: which half of the change saves, the pool alone (went-on: running averages of the "
          "trials that went on), the yardstick alone (value: best values of all that reached the step), both "
          "(went-on-value); and gated without its lucky-draw floor (no-lucky), without the 5% lift (no-lift)")
    cols = ["optuna MedianPruner", "curvefit gated", *abl[:2], "curvefit went-on-value", *abl[2:], "curvefit no-lift"]
    print(f"{'task':13} {'W':>3} | " + " | ".join(f"{n.removeprefix('curvefit '):>19}" for n in cols))
    for t in tasks:
        cs = [results[(t, 1, n)] if (t, 1, n) in results else es.Cell([done[key(t, 1, n, k)] for k in range(3)])
              for n in cols]
        print(f"{t:13} {1:>3} | " + " | ".join(f"{cell(c):>19}" for c in cs))
    for n in cols:
        cs = [es.Cell([done[key(t, 1, n, k)] for k in range(3)]) for t in tasks]
        print(f"  {n.removeprefix('curvefit '):20} W=1 mean compute {statistics.fmean(c.compute for c in cs):.1%}, best "
              f"stopped {sum(c.hits for c in cs)}/21, unsafe on: "
              + (", ".join(t for t, c in zip(tasks, cs) if not c.safe) or "-"))


def _tail(a, tasks, workers, names, results, summary, median, cell) -> None:
    print("\n== in sample (each setting on all 7 tasks, nothing chosen)")
    for n in names:
        summary(n, lambda t, n=n: n)
    shipped = es.CANDIDATES
    try:  # early_stopping.choose() over gated and the candidates (careful and gated-median were never cheaper)
        es.CANDIDATES = {"gated": shipped["gated"], **CANDIDATES}
        for offered in [[c] for c in CANDIDATES] + [list(CANDIDATES)]:
            es.CANDIDATES = {"gated": shipped["gated"], **{c: CANDIDATES[c] for c in offered}}
            loto = {t: es.choose(results, t, tasks, workers) for t in tasks}
            print(f"\n== leave one task out, choosing between gated and {', '.join(offered)} on the other six tasks: "
                  + ", ".join(f"{t} -> {s}" for t, s in loto.items()))
            print(f"{'held-out':13} {'setting':14} {'W':>3} | {'LOTO':>19} | {'optuna MedianPruner':>19} | "
                  f"{'gated':>19} | safe cheaper-than-MP")
            for t in tasks:
                for w in workers:
                    c, m, g = results[(t, w, f"curvefit {loto[t]}")], median(t, w), results[(t, w, "curvefit gated")]
                    cheaper = c.compute < m.compute and c.regret <= m.regret
                    print(f"{t:13} {loto[t]:14} {w:>3} | {cell(c):>19} | {cell(m):>19} | {cell(g):>19} | "
                          f"{'yes' if c.safe else 'NO':>4} {'yes' if cheaper else 'no':>7}")
            summary(f"LOTO ({'/'.join(['gated', *offered])})", lambda t: f"curvefit {loto[t]}")
    finally:
        es.CANDIDATES = shipped
    summary("optuna MedianPruner", lambda t: "optuna MedianPruner")


def timing() -> None:
    print("\n== decision time at 1,000 finished trials (early_stopping.timing(), CurveFitRule swapped; the fit and "
          "curve caches emptied before each)")
    from kubetune.stopping import base, calibration
    shipped = es.CurveFitRule
    try:
        for y in YARDSTICKS:
            calibration._fits.clear()
            base._ORIENTED.clear()
            es.CurveFitRule = partial(YardstickRule, yardstick=y)
            print(f"  {y}: {es.timing()[0]}", flush=True)
    finally:
        es.CurveFitRule = shipped


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=list(es.TASKS), choices=list(es.TASKS))
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--orders", type=int, default=3)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/es_w1/cache.jsonl"))
    ap.add_argument("--import", dest="import_cache", type=Path, help="an early_stopping.py cache for the baselines")
    ap.add_argument("--candidates", nargs="+", choices=list(CANDIDATES),
                    help="replay and score only these candidates (with the baselines), no ablations")
    ap.add_argument("--diagnose", action="store_true")
    ap.add_argument("--timing", action="store_true")
    a = ap.parse_args()
    a.cache.parent.mkdir(parents=True, exist_ok=True)
    if a.diagnose:
        diagnose(a)
        return
    candidates(a)
    if a.timing:
        timing()


if __name__ == "__main__":
    main()
