"""Generate real learning curves for the early-stopping benchmark.

Runs the trial image's own training code (kubetune.demo.digits.train: an MLP on
scikit-learn's bundled digits) over N quasi-randomly sampled configurations on the
CPU and stores every validation-loss and validation-accuracy curve, compactly, in
bench/data/. The accuracy curves are a second shape (bounded, quantized, maximized)
to check that the rules' defaults are not tuned to one curve family.

    python bench/generate_curves.py --configs 300 --steps 50     # ~5 minutes on 2 cores
"""
from __future__ import annotations

import argparse
import gzip
import json
import math
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from scipy.stats import qmc

OUT = Path(__file__).with_name("data") / "digits_curves.json.gz"
BATCHES = [16, 32, 64, 128, 256]


def config(u) -> dict:
    opt = "sgd" if u[0] < 0.5 else "adam"
    lo, hi = (math.log(1e-4), math.log(3.0)) if opt == "sgd" else (math.log(1e-5), math.log(0.3))
    c = {
        "optimizer": opt,
        "learning_rate": float(math.exp(lo + u[1] * (hi - lo))),
        "hidden_units": int(round(math.exp(math.log(16) + u[2] * (math.log(256) - math.log(16))))),
        "dropout": round(float(0.6 * u[3]), 3),
        "weight_decay": float(math.exp(math.log(1e-6) + u[4] * (math.log(1e-2) - math.log(1e-6)))),
        "batch_size": BATCHES[min(4, int(u[5] * 5))],
    }
    if opt == "sgd":
        c["momentum"] = round(float(0.95 * u[6]), 3)
    return c


def run(args: tuple[int, dict, int]) -> dict:
    from kubetune.demo.digits import train

    i, params, steps = args
    curves: dict[str, list[float | None]] = {"val_loss": [], "val_accuracy": []}

    def on_step(step: int, m: dict[str, float]) -> bool:
        for name, curve in curves.items():
            v = m[name]
            curve.append(float(f"{v:.5g}") if math.isfinite(v) else None)
        return True

    train(params, seed=i, steps=steps, on_step=on_step)
    for curve in curves.values():
        curve += [None] * (steps - len(curve))  # a diverged run stops early: the rest is NaN
    return {"config": params, **curves}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", type=int, default=300)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    points = qmc.Sobol(d=7, scramble=True, seed=2026).random(a.configs)
    jobs = [(i, config(u), a.steps) for i, u in enumerate(points)]
    started = time.time()
    with ProcessPoolExecutor(a.workers) as pool:
        runs = list(pool.map(run, jobs, chunksize=4))
    OUT.parent.mkdir(exist_ok=True)
    doc = {"task": "digits-mlp", "metrics": {"val_loss": "minimize", "val_accuracy": "maximize"},
           "steps": a.steps, "runs": runs}
    with gzip.open(OUT, "wt") as f:
        json.dump(doc, f, separators=(",", ":"))
    print(f"wrote {len(runs)} curves of {a.steps} steps to {OUT} ({OUT.stat().st_size // 1024} KiB) "
          f"in {time.time() - started:.0f}s")


if __name__ == "__main__":
    main()
