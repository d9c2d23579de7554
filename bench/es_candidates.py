"""Research candidates for issue #25 (early stopping), bench-local: new stopping rules
replayed with bench/early_stopping.py's replay() on the same tasks, orders and worker
counts, scored leave one task out (LOTO) the way early_stopping.choose() scores curve
fitting. Nothing here ships; results in bench/results/es_candidates.txt.

Rules (all causal: at a decision they see only what the replay has shown so far; values
are the bookkeeping's lower-is-better ones, the objective is a trial's best value so far):

  peer-bound (idea 1): at step s, with >= n_min finished peers, each finished peer j has
    b_j(s) (its best value up to s) and its final objective f_j, so it made the gain
    g_j = b_j(s) - f_j after step s. The running trial x is stopped when even the
    largest gain among its K nearest finished peers (nearest in b(s)), inflated by
    `inflate`, cannot take it to the best value seen so far anywhere:
        b_x(s) - inflate * max_{j in N_K(x)} g_j  >  best so far.
    Late bloomers among the finished peers make the gains large and protect their kind.
  winner-rank (idea 2): the finished peers that ended in the top `top` fraction (at least
    one) stood, at step s, at most at quantile Q* of the finished peers' b(s); x is
    stopped when its quantile among the finished peers at s is above Q* + margin (and it
    is not the best so far).
  combinations with curvefit gated (idea 3): "and" stops when both stop, "or" when
    either does, "fallback" uses gated only while fewer than n_min peers have finished.

    nice -n 19 python3 bench/es_candidates.py --cache /tmp/es_helper/cache.jsonl
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import early_stopping as es  # noqa: E402
from early_stopping import Cell, Policy, Run, load, replay  # noqa: E402

SEED = 7


class PeerPolicy(Policy):
    """Bookkeeping shared by the peer rules: finished peers' best-so-far curves and
    finals, and the best value observed anywhere so far."""

    def __init__(self, name: str, steps: int, start: int, n_min: int, protect: int = 0, every: int = 0):
        self.name, self.steps, self.first, self.n_min = name, steps, start, n_min
        # protect > 0: the first `protect` trials started (and every `every`-th one after) are
        # never stopped, and only they calibrate the rule: an unbiased sample of the pool
        # (stopped late bloomers never finish, so all finished trials are survivors)
        self.protect, self.every = protect, every
        if protect:
            self.name += f" cal{protect}" + (f"e{every}" if every else "")

    def reset(self) -> None:
        self.fin_b: list[np.ndarray] = []  # finished peers' best-so-far curves
        self.fin_f: list[float] = []
        self.mat = None
        self.best = math.inf
        self.started = 0

    def start(self, run: Run) -> None:
        i = self.started
        self.started += 1
        prot = bool(self.protect) and (i < self.protect or (self.every > 0 and i % self.every == 0))
        run.handle = {"b": math.inf, "prot": prot, "c": []}  # c: the trial's values so far

    def step(self, run, value, runs) -> bool:
        h = run.handle
        h["c"].append(value)
        h["b"] = min(h["b"], value)
        self.best = min(self.best, value)
        s = run.steps
        if h["prot"]:
            return False
        if s < self.first or len(self.fin_f) < self.n_min:
            return self.uncalibrated(run, value, runs)
        if self.mat is None:
            self.mat = np.array(self.fin_b)
            self.f = np.array(self.fin_f)
        return self.decide(run, s, h["b"], runs)

    def uncalibrated(self, run, value, runs) -> bool:
        return False

    def finish(self, run: Run, curves) -> None:
        c = curves[run.idx][: run.steps]
        c = np.where(np.isfinite(c), c, np.inf)
        if c.size:
            self.best = min(self.best, float(c.min()))
        if run.state == "complete" and (not self.protect or run.handle["prot"]):
            b = np.minimum.accumulate(c)
            self.fin_b.append(b)
            self.fin_f.append(float(b[-1]))
            self.mat = None


class PeerBound(PeerPolicy):
    def __init__(self, steps, start, n_min=8, k=0, inflate=1.5, protect=0, every=0, z=0.0):
        super().__init__(f"peer-bound k{k} x{inflate} n{n_min}" + (f" z{z}" if z else ""), steps, start, n_min,
                         protect, every)
        self.k, self.inflate, self.z = k, inflate, z

    def noise(self, run) -> float:
        """x's measurement noise: the spread of its last ten step-to-step changes / sqrt 2
        (a lucky draw among its remaining measurements can beat its trend by z of these)."""
        c = run.handle["c"][-11:]
        return float(np.std(np.diff(c)) / math.sqrt(2)) if len(c) >= 4 else 0.0

    def decide(self, run, s, bx, runs) -> bool:
        if bx <= self.best:
            return False
        col = self.mat[:, s - 1]
        gain = col - self.f
        if self.k and self.k < len(col):
            near = np.argpartition(np.abs(col - bx), self.k - 1)[: self.k]
            g = gain[near].max()
        else:
            g = gain.max()
        if self.z:
            # the lucky draw is measured from x's latest value, not its best so far
            return min(bx - self.inflate * g, run.handle["c"][-1] - self.z * self.noise(run)) > self.best
        return bx - self.inflate * g > self.best


class ShapeBound(PeerPolicy):
    """peer-bound over look-alikes only: the finished peers whose curves up to s lie within
    `radius` of x's (RMS over the steps so far, each step scaled by the finished peers'
    interquartile range there). With fewer than `m` look-alikes x is kept (a shape no
    finished peer had may be a late bloomer; it then finishes and protects its kind);
    otherwise it is stopped when the largest gain after s among them, times `inflate`,
    cannot take it to the best value so far."""

    def __init__(self, steps, start, n_min=8, radius=0.5, m=3, inflate=1.0, protect=0, every=0):
        super().__init__(f"shape-bound r{radius} m{m} x{inflate} n{n_min}", steps, start, n_min, protect, every)
        self.radius, self.m, self.inflate = radius, m, inflate

    def finish(self, run, curves):
        super().finish(run, curves)
        if run.state == "complete" and (not self.protect or run.handle["prot"]):
            c = curves[run.idx][: run.steps]
            self.fin_c.append(np.where(np.isfinite(c), c, np.nan))

    def reset(self):
        super().reset()
        self.fin_c = []

    def decide(self, run, s, bx, runs) -> bool:
        if bx <= self.best:
            return False
        if getattr(self, "_cn", -1) != len(self.fin_c):
            self.cmat = np.array(self.fin_c)
            q75, q25 = np.nanpercentile(self.cmat, [75, 25], axis=0)
            self.scale = np.maximum(q75 - q25, 1e-12)
            self._cn = len(self.fin_c)
        x = np.asarray(run.handle["c"][:s])
        d = np.sqrt(np.nanmean(((self.cmat[:, :s] - x) / self.scale[:s]) ** 2, axis=1))
        near = d <= self.radius
        if near.sum() < self.m:
            return False
        g = (self.mat[near, s - 1] - self.f[near]).max()
        return bx - self.inflate * g > self.best


class WinnerRank(PeerPolicy):
    def __init__(self, steps, start, n_min=8, top=0.1, margin=0.1, protect=0, every=0):
        super().__init__(f"winner-rank top{top} m{margin} n{n_min}", steps, start, n_min, protect, every)
        self.top, self.margin = top, margin

    def decide(self, run, s, bx, runs) -> bool:
        if bx <= self.best:
            return False
        col = self.mat[:, s - 1]
        n = len(col)
        k = max(1, int(round(self.top * n)))
        winners = np.argpartition(self.f, k - 1)[:k] if k < n else np.arange(n)
        srt = np.sort(col)
        qw = np.searchsorted(srt, col[winners], side="left").max() / n
        qx = np.searchsorted(srt, bx, side="left") / n
        return qx > qw + self.margin


class Combo(Policy):
    """A peer rule with curvefit gated: mode "and", "or", or "fallback" (gated while the
    peer rule has too few finished peers)."""

    def __init__(self, peer: PeerPolicy, gated: Policy, mode: str):
        self.peer, self.gated, self.mode = peer, gated, mode
        self.name = f"{mode}({peer.name})"

    def reset(self):
        self.peer.reset()
        self.gated.reset()

    def start(self, run):
        self.peer.start(run)
        run.peer = run.handle
        self.gated.start(run)

    def step(self, run, value, runs) -> bool:
        g = self.gated.step(run, value, runs)  # grows the kubetune handle (the curve)
        handle, run.handle = run.handle, run.peer
        try:
            enough = len(self.peer.fin_f) >= self.peer.n_min and run.steps >= self.peer.first
            p = self.peer.step(run, value, runs)
        finally:
            run.handle = handle
        if run.peer["prot"]:
            return False  # the peer rule's unbiased calibration sample runs to the end
        if self.mode == "and":
            return g and p
        if self.mode == "or":
            return g or p
        return p if enough else g  # fallback

    def finish(self, run, curves):
        self.gated.finish(run, curves)
        handle, run.handle = run.handle, run.peer
        try:
            self.peer.finish(run, curves)
        finally:
            run.handle = handle


def families(steps: int, goal: str) -> dict[str, list]:
    """Rule family -> list of (setting name, factory)."""
    warm = max(1, steps // 10)
    fam: dict[str, list] = {"peer-bound": [], "winner-rank": []}
    for n_min in (8,):
        for k in (0, 10, 20):
            for inflate in (1.0, 1.25, 1.5, 2.0, 3.0):
                fam["peer-bound"].append(lambda k=k, i=inflate, n=n_min: PeerBound(steps, warm, n, k, i))
        for top in (0.05, 0.1, 0.2):
            for margin in (0.0, 0.1, 0.2, 0.3):
                fam["winner-rank"].append(lambda t=top, m=margin, n=n_min: WinnerRank(steps, warm, n, t, m))
    fam["wr-cal"] = []
    for protect in (12, 20):
        for every in (0, 10):
            for top in (0.1, 0.25):
                for margin in (0.05, 0.15):
                    fam["wr-cal"].append(lambda p=protect, e=every, t=top, m=margin:
                                         WinnerRank(steps, warm, p, t, m, p, e))
    fam["shape-bound"] = []
    for radius in (0.25, 0.5, 1.0):
        for m in (2, 4):
            for inflate in (1.0, 1.5):
                fam["shape-bound"].append(lambda r=radius, m=m, i=inflate: ShapeBound(steps, warm, 8, r, m, i))
    fam["pb-noise"] = []
    for k in (0, 10):
        for inflate in (1.0, 1.5, 2.0):
            for z in (2.0, 3.0):
                fam["pb-noise"].append(lambda k=k, i=inflate, z=z: PeerBound(steps, warm, 8, k, i, 0, 0, z))
    fam["pb-cal"] = []
    for protect in (12, 20):
        for k in (0, 8):
            for inflate in (1.0, 1.5):
                fam["pb-cal"].append(lambda p=protect, k=k, i=inflate: PeerBound(steps, warm, p, k, i, p, 0))
    return fam


def baseline(steps: int, goal: str, name: str) -> Policy:
    return next(p for p in es.policies(steps, goal) if p.name == name)


def make(task_info, name: str) -> Policy:
    curves, steps, goal, _ = task_info
    if name in ("optuna MedianPruner", "curvefit gated", "kubetune median", "none"):
        p = baseline(steps, goal, name)
    else:
        fam = families(steps, goal)
        table = {f().name: f for fs in fam.values() for f in fs}
        if name.startswith(("and(", "or(", "fallback(")):
            mode, inner = name.split("(", 1)
            p = Combo(table[inner[:-1]](), baseline(steps, goal, "curvefit gated"), mode)
        else:
            p = table[name]()
    p.goal = goal
    if isinstance(p, Combo):
        p.gated.goal = p.peer.goal = goal
    return p


def run_all(tasks, workers, orders, names, cache: Path, limit=120) -> dict:
    done = {}
    if cache.exists():
        for line in cache.read_text().splitlines():
            k, v = json.loads(line)
            done[k] = v
    infos = {t: load(t, limit) for t in tasks}
    started, n = time.time(), 0
    with cache.open("a") as f:
        for name in names:
            for t in tasks:
                for w in workers:
                    for k in range(orders):
                        key = json.dumps([t, limit, w, name, k, SEED])
                        if key in done:
                            continue
                        curves, steps, goal, _ = infos[t]
                        order = [int(i) for i in np.random.default_rng([SEED, k]).permutation(len(curves))]
                        r = replay(curves, steps, order, w, make(infos[t], name))
                        ms = r.ms or [0.0]
                        v = dict(compute=r.compute, regret=r.regret, best_stopped=r.best_stopped,
                                 top5_stopped=r.top5_stopped, ms_mean=statistics.fmean(ms),
                                 ms_p95=float(np.percentile(ms, 95)), decisions=len(r.ms))
                        done[key] = v
                        f.write(json.dumps([key, v]) + "\n")
                        f.flush()
                        n += 1
            print(f"  {name}: done ({n} new replays, {time.time() - started:.0f}s)", flush=True)
    return {(t, w, nm): Cell([done[json.dumps([t, limit, w, nm, k, SEED])] for k in range(orders)])
            for t in tasks for w in workers for nm in names}


def choose(results, held_out, tasks, workers, settings) -> tuple[str, bool]:
    scored = []
    for name in settings:
        cells = [results[(t, w, name)] for t in tasks if t != held_out for w in workers] or \
            [results[(t, w, name)] for t in tasks for w in workers]
        safe = all(c.safe for c in cells)
        scored.append((not safe, 0 if safe else sum(c.hits for c in cells),
                       statistics.fmean(c.compute for c in cells), name))
    best = min(scored)
    return best[3], not best[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", nargs="+", default=list(es.TASKS))
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--orders", type=int, default=3)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/es_helper/cache.jsonl"))
    ap.add_argument("--families", nargs="*", default=["peer-bound", "winner-rank"])
    ap.add_argument("--extra", nargs="*", default=[], help="more rule names (combos) to run as their own family")
    ap.add_argument("--baselines", nargs="*", default=["optuna MedianPruner", "curvefit gated"])
    a = ap.parse_args()
    fam = families(50, "minimize")
    groups = {f: [g().name for g in fam[f]] for f in a.families}
    if a.extra:
        for e in a.extra:
            groups.setdefault(e.split("(")[0], []).append(e)
    names = list(a.baselines) + [n for g in groups.values() for n in g]
    res = run_all(a.tasks, a.workers, a.orders, names, a.cache)
    report(res, a.tasks, a.workers, groups, a.baselines)


def report(res, tasks, workers, groups, baselines):
    cellfmt = lambda c: f"{c.compute:>6.1%} {c.regret:>6.2%} {c.hits}/{len(c.rows)} {statistics.fmean(r['top5_stopped'] for r in c.rows):>4.1f}"  # noqa: E731
    for fname, settings in groups.items():
        print(f"\n=== family {fname}: {len(settings)} settings; all-task safe settings and mean compute:")
        for s in settings:
            cells = [res[(t, w, s)] for t in tasks for w in workers]
            unsafe = [f"{t}W{w}" for t in tasks for w in workers if not res[(t, w, s)].safe]
            print(f"  {s:44} {statistics.fmean(c.compute for c in cells):6.1%}  hits {sum(c.hits for c in cells):2}  "
                  f"unsafe: {' '.join(unsafe) or '-'}")
        print(f"\n  LOTO ({fname}) | columns: compute regret besthit top5")
        print(f"  {'task':13} {'setting (chosen on others)':44} {'W':>3} | {fname:>22} | "
              + " | ".join(f"{b:>22}" for b in baselines))
        loto = []
        for t in tasks:
            chosen, ok = choose(res, t, tasks, workers, settings)
            for w in workers:
                c = res[(t, w, chosen)]
                loto.append(c)
                print(f"  {t:13} {chosen + ('' if ok else ' (none safe)'):44} {w:>3} | {cellfmt(c):>22} | "
                      + " | ".join(f"{cellfmt(res[(t, w, b)]):>22}" for b in baselines))
        print(f"  LOTO {fname}: mean compute {statistics.fmean(c.compute for c in loto):.1%}; best stopped in "
              f"{sum(c.hits for c in loto)} of {sum(len(c.rows) for c in loto)}; safe cells {sum(c.safe for c in loto)}"
              f"/{len(loto)}; per W: " + ", ".join(
                  f"W{w} {statistics.fmean(c.compute for c, (t, ww) in zip(loto, [(t, ww) for t in tasks for ww in workers]) if ww == w):.1%}"
                  for w in workers))
    for b in baselines:
        cells = [res[(t, w, b)] for t in tasks for w in workers]
        print(f"{b}: mean compute {statistics.fmean(c.compute for c in cells):.1%}; best stopped in "
              f"{sum(c.hits for c in cells)} of {sum(len(c.rows) for c in cells)}; per W: " + ", ".join(
                  f"W{w} {statistics.fmean(res[(t, w, b)].compute for t in tasks):.1%}" for w in workers))


if __name__ == "__main__":
    main()
