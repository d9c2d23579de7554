"""Generate real learning curves for the early-stopping benchmark.

Seven tasks, so the rules' defaults are checked on more than one kind of curve:

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

- cnn, linear, checkerboard, friedman (issue 25): small torch models trained with a
  learning-rate schedule drawn per configuration (constant, step decay, warm-up then
  cosine, warm-up then step decay): a CNN on the digits images, a linear model on a
  generated 5-class problem (accuracy), an MLP on a generated checkerboard that sits on
  a plateau before it jumps (accuracy), an MLP regression on Friedman's function (MSE).
  Late bloomers, plateaus and jumps; generated after the earlier defaults were chosen.

    python bench/generate_curves.py --configs 300 --steps 50     # ~5 minutes on 2 cores
    python bench/generate_curves.py --task boosting               # ~2 minutes
    python bench/generate_curves.py --task cancer                 # ~1 minute
    nice python bench/generate_curves.py --task checkerboard --configs 200 --steps 40   # 5-10 minutes
    nice python bench/generate_curves.py --task linear --configs 200 --steps 40         # 5-10 minutes
    nice python bench/generate_curves.py --task friedman --configs 200 --steps 40       # 5-15 minutes
    nice python bench/generate_curves.py --task cnn --configs 64 --steps 40             # ~10 minutes
(times on two cores shared with other work)
"""
from __future__ import annotations

import argparse
import functools
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
    "cnn": DATA / "cnn_curves.json.gz",
    "linear": DATA / "linear_curves.json.gz",
    "checkerboard": DATA / "checkerboard_curves.json.gz",
    "friedman": DATA / "friedman_curves.json.gz",
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


# ---- tasks with learning-rate schedules (warm-up, step decay, cosine): late bloomers ----
# Added for issue 25, after the rules' defaults had been chosen on the three tasks above:
# curves whose best configuration is mediocre early and overtakes late (a step decay
# makes a plateau and a jump; a long warm-up or a cosine annealing makes the last third
# the steepest), from other model families (a CNN, a linear model, an MLP on a
# generated problem that sits on a plateau before it learns) and other metrics.

SCHEDULES = ["constant", "step", "warmup_cosine", "warmup_step"]


def lr_factor(schedule: str, epoch: int, epochs: int, warmup: float) -> float:
    """The learning rate's multiplier in `epoch` (0-based) of `epochs`: step decay divides
    it by 10 at half and three quarters of training; the warm-up rises linearly over the
    first `warmup` share of it; cosine anneals to 0 at the end."""
    w = max(1, int(round(warmup * epochs))) if schedule.startswith("warmup") else 0
    if epoch < w:
        return (epoch + 1) / w
    if schedule in ("step", "warmup_step"):
        return 1.0 if epoch < epochs // 2 else 0.1 if epoch < (3 * epochs) // 4 else 0.01
    if schedule == "warmup_cosine":
        return 0.5 * (1.0 + math.cos(math.pi * (epoch - w) / max(1, epochs - w)))
    return 1.0


def scheduled_config(u) -> dict:
    opt = "sgd" if u[0] < 0.6 else "adam"
    lo, hi = (1e-3, 1.0) if opt == "sgd" else (1e-4, 0.03)
    return {
        "optimizer": opt,
        "learning_rate": log_uniform(u[1], lo, hi),
        "schedule": SCHEDULES[min(3, int(u[2] * 4))],
        "warmup": round(0.05 + 0.35 * float(u[3]), 3),
        "width": int(round(log_uniform(u[4], 8, 128))),
        "weight_decay": log_uniform(u[5], 1e-6, 1e-2),
        "batch_size": [16, 32, 64, 128][min(3, int(u[6] * 4))],
    }


def _dataset(name: str):
    """(x_train, y_train, x_val, y_val) as float32 / int64 or float32 targets, a fixed split:
    data that ships with scikit-learn or is generated."""
    import numpy as np
    from sklearn import datasets
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    if name == "digits-images":
        x, y = datasets.load_digits(return_X_y=True)
        x = (x / 16.0).reshape(-1, 1, 8, 8)
    elif name == "classification":  # many weak, redundant and noisy features; 5 classes
        x, y = datasets.make_classification(n_samples=4000, n_features=40, n_informative=12, n_redundant=8,
                                            n_classes=5, n_clusters_per_class=2, class_sep=0.8, flip_y=0.05,
                                            random_state=0)
        x = StandardScaler().fit_transform(x)
    elif name == "checkerboard":  # 4x4 checkerboard in 2-D plus noise dimensions: a plateau, then a jump
        p = rng.uniform(-1, 1, size=(3000, 2))
        y = ((np.floor(p[:, 0] * 2) + np.floor(p[:, 1] * 2)) % 2).astype(int)
        x = np.hstack([p * 2, rng.normal(size=(3000, 6)) * 0.5])
    else:  # "friedman": regression, y = 10 sin(pi x1 x2) + 20 (x3 - 0.5)^2 + 10 x4 + 5 x5 + noise
        x, y = datasets.make_friedman1(n_samples=3000, n_features=10, noise=1.0, random_state=0)
        x = StandardScaler().fit_transform(x)
        y = (y - y.mean()) / y.std()
    order = rng.permutation(len(x))
    x, y = x[order].astype(np.float32), y[order]
    n_val = len(x) // 4
    y = y.astype(np.float32 if name == "friedman" else np.int64)
    return x[n_val:], y[n_val:], x[:n_val], y[:n_val]


def _model(task: str, width: int, d_in: int, classes: int):
    import torch.nn as nn

    if task == "digits-images":  # a small CNN
        return nn.Sequential(nn.Conv2d(1, width // 4 + 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(width // 4 + 4, width // 2 + 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear((width // 2 + 4) * 4, classes))
    if task == "classification":  # a linear model (multinomial logistic regression)
        return nn.Linear(d_in, classes)
    return nn.Sequential(nn.Linear(d_in, width), nn.Tanh() if task == "checkerboard" else nn.ReLU(),
                         nn.Linear(width, width), nn.ReLU(), nn.Linear(width, classes))


def run_scheduled(args: tuple[int, dict, int], data: str) -> dict:
    """Validation loss and accuracy (MSE for regression) after every epoch (a "step") of a
    small torch model trained with a learning-rate schedule."""
    import torch
    import torch.nn.functional as F

    i, params, steps = args
    torch.set_num_threads(1)
    torch.manual_seed(i)
    xt, yt, xv, yv = (torch.from_numpy(a) for a in _dataset(data))
    regression = data == "friedman"
    classes = 1 if regression else int(yt.max()) + 1
    model = _model(data, params["width"], xt.shape[1] if xt.dim() == 2 else 0, classes)
    base = params["learning_rate"]
    if params["optimizer"] == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=base, momentum=0.9, weight_decay=params["weight_decay"])
    else:
        opt = torch.optim.Adam(model.parameters(), lr=base, weight_decay=params["weight_decay"])
    batch = params["batch_size"] * (2 if data == "digits-images" else 1)  # the CNN is the slow one
    gen = torch.Generator().manual_seed(i)
    out: dict[str, list[float | None]] = {"val_mse": []} if regression else {"val_loss": [], "val_accuracy": []}
    dead = False
    for epoch in range(steps):
        for g in opt.param_groups:
            g["lr"] = base * lr_factor(params["schedule"], epoch, steps, params["warmup"])
        if not dead:
            model.train()
            perm = torch.randperm(len(xt), generator=gen)
            for k in range(0, len(xt), batch):
                idx = perm[k:k + batch]
                pred = model(xt[idx])
                loss = F.mse_loss(pred[:, 0], yt[idx]) if regression else F.cross_entropy(pred, yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            model.eval()
            with torch.no_grad():
                pred = model(xv)
                if regression:
                    values = {"val_mse": float(F.mse_loss(pred[:, 0], yv))}
                else:
                    values = {"val_loss": float(F.cross_entropy(pred, yv)),
                              "val_accuracy": float((pred.argmax(1) == yv).float().mean())}
            dead = not all(math.isfinite(v) and v < 1e6 for v in values.values())
        for name, curve in out.items():
            curve.append(None if dead else float(f"{values[name]:.5g}"))
    return {"config": params, **out}


TASKS = {
    "digits": (config, run, "digits-mlp", {"val_loss": "minimize", "val_accuracy": "maximize"}),
    "boosting": (boosting_config, run_boosting, "diabetes-boosting", {"val_mse": "minimize"}),
    "cancer": (cancer_config, run_cancer, "breast-cancer-mlp", {"val_loss": "minimize"}),
    "cnn": (scheduled_config, functools.partial(run_scheduled, data="digits-images"), "digits-cnn-schedules",
            {"val_loss": "minimize", "val_accuracy": "maximize"}),
    "linear": (scheduled_config, functools.partial(run_scheduled, data="classification"),
               "classification-linear-schedules", {"val_loss": "minimize", "val_accuracy": "maximize"}),
    "checkerboard": (scheduled_config, functools.partial(run_scheduled, data="checkerboard"),
                     "checkerboard-mlp-schedules", {"val_loss": "minimize", "val_accuracy": "maximize"}),
    "friedman": (scheduled_config, functools.partial(run_scheduled, data="friedman"),
                 "friedman-mlp-schedules", {"val_mse": "minimize"}),
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
