"""Generate real learning curves for the early-stopping benchmark.

Three tasks, so the rules' defaults are checked on more than one kind of curve:

- digits (default): the trial image's own training code (kubetune.demo.digits.train:
  an MLP on scikit-learn's bundled digits) over N quasi-randomly sampled configurations,
  storing every validation-loss and validation-accuracy curve. The accuracy curves are a
  second shape (bounded, quantized, maximized).
- boosting: gradient-boosted trees (scikit-learn) on the bundled diabetes regression
  data, validation MSE after every 4 boosting rounds: small noisy data, curves that
  overfit and turn back up, from another kind of learner altogether.
- cancer: scikit-learn's MLPClassifier on the bundled breast-cancer data, validation log
  loss after every epoch (partial_fit): a small validation set (171 cases), so noisy
  curves, many of which overfit. Added after the rules' thresholds were chosen, as a check
  on curves they were not tuned on.

    python bench/generate_curves.py --configs 300 --steps 50     # ~5 minutes on 2 cores
    python bench/generate_curves.py --task boosting               # ~2 minutes
    python bench/generate_curves.py --task cancer                 # ~1 minute
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

DATA = Path(__file__).with_name("data")
OUTPUTS = {
    "digits": DATA / "digits_curves.json.gz",
    "boosting": DATA / "boosting_curves.json.gz",
    "cancer": DATA / "cancer_curves.json.gz",
}
BATCHES = [16, 32, 64, 128, 256]


def log_uniform(u: float, low: float, high: float) -> float:
    """The point at fraction u of [low, high] on a log scale."""
    return float(math.exp(math.log(low) + u * (math.log(high) - math.log(low))))


def config(u) -> dict:
    opt = "sgd" if u[0] < 0.5 else "adam"
    lo, hi = (1e-4, 3.0) if opt == "sgd" else (1e-5, 0.3)
    c = {
        "optimizer": opt,
        "learning_rate": log_uniform(u[1], lo, hi),
        "hidden_units": int(round(log_uniform(u[2], 16, 256))),
        "dropout": round(float(0.6 * u[3]), 3),
        "weight_decay": log_uniform(u[4], 1e-6, 1e-2),
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

    # the stored digits curves were made with PyTorch (the trial image's trainer), not the
    # quickstart's scikit-learn fallback: keep regenerating them the same way
    train({"backend": "torch", **params}, seed=i, steps=steps, on_step=on_step)
    for curve in curves.values():
        curve += [None] * (steps - len(curve))  # a diverged run stops early: the rest is NaN
    return {"config": params, **curves}


def boosting_config(u) -> dict:
    return {
        "learning_rate": log_uniform(u[0], 0.003, 0.5),
        "max_depth": 1 + int(u[1] * 6),
        "subsample": round(0.3 + 0.7 * float(u[2]), 3),
        "min_samples_leaf": 1 + int(u[3] * 40),
        "max_features": round(0.2 + 0.8 * float(u[4]), 3),
    }


def run_boosting(args: tuple[int, dict, int]) -> dict:
    """Validation MSE of gradient boosting on diabetes after every 4 rounds (a "step")."""
    import numpy as np
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.model_selection import train_test_split

    i, params, steps = args
    x, y = load_diabetes(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.3, random_state=0)  # one split for all
    model = GradientBoostingRegressor(n_estimators=4 * steps, random_state=i, **params).fit(x_train, y_train)
    mse = [float(np.mean((p - y_val) ** 2)) for p in model.staged_predict(x_val)]
    return {"config": params, "val_mse": [float(f"{v:.5g}") for v in mse[3::4]]}


def cancer_config(u) -> dict:
    solver = "sgd" if u[0] < 0.5 else "adam"
    lo, hi = (1e-4, 1.0) if solver == "sgd" else (1e-5, 0.1)
    c = {
        "solver": solver,
        "learning_rate_init": log_uniform(u[1], lo, hi),
        "hidden_layer_sizes": [int(round(log_uniform(u[2], 4, 256)))],
        "alpha": log_uniform(u[3], 1e-6, 1.0),
        "batch_size": [8, 16, 32, 64, 128][min(4, int(u[4] * 5))],
    }
    if solver == "sgd":
        c["momentum"] = round(float(0.95 * u[5]), 3)
    return c


def run_cancer(args: tuple[int, dict, int]) -> dict:
    """Validation log loss of an MLP on breast cancer after every epoch (a "step")."""
    import warnings

    import numpy as np
    from sklearn.datasets import load_breast_cancer
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    i, params, steps = args
    x, y = load_breast_cancer(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    scaler = StandardScaler().fit(x_train)
    x_train, x_val = scaler.transform(x_train), scaler.transform(x_val)
    kw = dict(params, hidden_layer_sizes=tuple(params["hidden_layer_sizes"]))
    model = MLPClassifier(random_state=i, **kw)
    losses: list[float | None] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(steps):
            model.partial_fit(x_train, y_train, classes=[0, 1])  # one epoch of shuffled minibatches
            p = np.clip(model.predict_proba(x_val)[:, 1], 1e-15, 1 - 1e-15)
            v = float(-np.mean(y_val * np.log(p) + (1 - y_val) * np.log(1 - p)))
            losses.append(float(f"{v:.5g}") if math.isfinite(v) else None)
    return {"config": params, "val_loss": losses}


TASKS = {
    "digits": (config, run, "digits-mlp", {"val_loss": "minimize", "val_accuracy": "maximize"}),
    "boosting": (boosting_config, run_boosting, "diabetes-boosting", {"val_mse": "minimize"}),
    "cancer": (cancer_config, run_cancer, "breast-cancer-mlp", {"val_loss": "minimize"}),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", type=int, default=300)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--task", choices=sorted(OUTPUTS), default="digits")
    a = ap.parse_args()
    points = qmc.Sobol(d=7, scramble=True, seed=2026).random(a.configs)
    make, train, task, metrics = TASKS[a.task]
    jobs = [(i, make(u), a.steps) for i, u in enumerate(points)]
    started = time.time()
    with ProcessPoolExecutor(a.workers) as pool:
        runs = list(pool.map(train, jobs, chunksize=4))
    OUT = OUTPUTS[a.task]
    OUT.parent.mkdir(exist_ok=True)
    doc = {"task": task, "metrics": metrics, "steps": a.steps, "runs": runs}
    with gzip.open(OUT, "wt") as f:
        json.dump(doc, f, separators=(",", ":"))
    print(f"wrote {len(runs)} curves of {a.steps} steps to {OUT} ({OUT.stat().st_size // 1024} KiB) "
          f"in {time.time() - started:.0f}s")


if __name__ == "__main__":
    main()
