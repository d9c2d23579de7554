"""A real training run: an MLP on scikit-learn's bundled handwritten digits (8x8 images).

Two backends train the same network on the same fixed split:
- scikit-learn's MLPClassifier, one `partial_fit` pass per epoch, on the CPU: what the
  quickstart and `kubetune run` use, so trying kubetune needs no PyTorch (whose PyPI
  wheels for Linux are the CUDA build, gigabytes of them);
- PyTorch, used when a CUDA GPU is visible and torch is installed (the trial image has
  it), or when asked for with the parameter backend=torch.
It reads its configuration from kubetune and reports validation loss and accuracy every
epoch (one epoch = one step). The dataset ships inside scikit-learn: no download.

Parameters (all optional, defaults in DEFAULTS): learning_rate, optimizer
(sgd | adam | adamw), momentum (sgd), beta1 (adam/adamw), weight_decay, hidden_units,
layers, dropout, batch_size, label_smoothing, backend (auto | sklearn | torch).
`step_seconds` paces each epoch to at least that long, so the short demo can be
watched; leave it out for real work. scikit-learn has no dropout or label smoothing:
that backend says so in the trial's log when they are given, and trains without them;
its adamw is Adam with the weight decay as an L2 penalty.
"""
from __future__ import annotations

import glob
import importlib.util
import math
import time
from collections.abc import Callable

from kubetune import sdk

DEFAULTS = {
    "learning_rate": 0.05,
    "optimizer": "sgd",
    "momentum": 0.9,
    "beta1": 0.9,
    "weight_decay": 1e-4,
    "hidden_units": 64,
    "layers": 1,
    "dropout": 0.1,
    "batch_size": 64,
    "label_smoothing": 0.0,
    "step_seconds": 0.0,
    "backend": "auto",
}


def _split():
    """The digits as float32 in [0, 1], split 3:1 the same way for every trial and seed."""
    import numpy as np
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    order = np.random.default_rng(12345).permutation(len(x))  # fixed split, seed-independent
    x, y = x[order], y[order]
    n_val = len(x) // 4
    return x[n_val:], y[n_val:], x[:n_val], y[:n_val]


def backend_for(params: dict) -> str:
    """sklearn or torch: the one asked for, else torch only where a CUDA GPU is visible
    (looked for without importing torch, which alone takes seconds)."""
    asked = str(params.get("backend", "auto"))
    if asked in ("sklearn", "torch"):
        return asked
    if asked != "auto":
        raise SystemExit(f"unknown backend {asked!r}; use auto, sklearn or torch")
    if importlib.util.find_spec("torch") is None or not glob.glob("/dev/nvidia[0-9]*"):
        return "sklearn"
    import torch

    return "torch" if torch.cuda.is_available() else "sklearn"


def train(params: dict, seed: int, steps: int, on_step: Callable[[int, dict[str, float]], bool]) -> str:
    """Train for `steps` epochs; after each, call on_step(step, metrics). Stop early when it
    returns False (or when the loss diverges). Returns the backend used. Used by the
    trial image, `kubetune run` and the benchmark (pass backend=torch there to reproduce
    curves made with PyTorch)."""
    p = {**DEFAULTS, **params}
    if p["optimizer"] not in ("sgd", "adam", "adamw"):
        raise SystemExit(f"unknown optimizer {p['optimizer']!r}; use sgd, adam or adamw")
    backend = backend_for(p)
    if backend == "torch":
        _train_torch(p, seed, steps, on_step)
    else:
        _train_sklearn(p, seed, steps, on_step, given=set(params))
    return backend


def _pace(p: dict, started: float) -> None:
    pause = float(p["step_seconds"]) - (time.monotonic() - started)
    if pause > 0:
        time.sleep(pause)


def _train_sklearn(p: dict, seed: int, steps: int, on_step: Callable[[int, dict[str, float]], bool],
                   given: set[str]) -> None:
    import warnings

    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    for name in ("dropout", "label_smoothing"):
        if name in given and float(p[name]):
            print(f"note: {name}={p[name]} has no effect with scikit-learn (backend=torch has it)", flush=True)
    xt, yt, xv, yv = _split()
    batch = int(p["batch_size"])
    model = MLPClassifier(
        hidden_layer_sizes=(int(p["hidden_units"]),) * int(p["layers"]),
        solver="sgd" if p["optimizer"] == "sgd" else "adam",
        learning_rate_init=float(p["learning_rate"]),
        momentum=float(p.get("momentum", 0.0)), nesterovs_momentum=False,
        beta_1=float(p.get("beta1", 0.9)),
        # sklearn divides the L2 gradient alpha*W by the batch size; torch's weight_decay adds wd*W
        alpha=float(p["weight_decay"]) * batch,
        batch_size=batch, random_state=seed, shuffle=True,
    )
    classes = np.arange(10)
    for step in range(1, steps + 1):
        started = time.monotonic()
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                model.partial_fit(xt, yt, classes=classes)  # one pass over the training set
                finite = all(np.isfinite(w).all() for w in model.coefs_ + model.intercepts_)
            except ValueError:  # "Solver produced non-finite parameter weights"
                finite = False
            if finite:
                proba = model.predict_proba(xv)
                val_loss = float(-np.mean(np.log(np.clip(proba[np.arange(len(yv)), yv], 1e-12, None))))
                val_acc = float((proba.argmax(1) == yv).mean())
                train_loss = float(model.loss_)
            else:
                val_loss = val_acc = train_loss = float("nan")
        metrics = {"val_loss": val_loss, "val_accuracy": val_acc, "train_loss": train_loss}
        if not on_step(step, metrics) or not math.isfinite(val_loss):
            break
        _pace(p, started)


def _train_torch(p: dict, seed: int, steps: int, on_step: Callable[[int, dict[str, float]], bool]) -> None:
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    device = "cuda" if torch.cuda.is_available() else "cpu"

    xt, yt, xv, yv = (torch.tensor(a, device=device) for a in _split())

    layers: list[torch.nn.Module] = []
    width_in = 64
    for _ in range(int(p["layers"])):
        layers += [torch.nn.Linear(width_in, int(p["hidden_units"])), torch.nn.ReLU(), torch.nn.Dropout(float(p["dropout"]))]
        width_in = int(p["hidden_units"])
    model = torch.nn.Sequential(*layers, torch.nn.Linear(width_in, 10)).to(device)

    lr, wd = float(p["learning_rate"]), float(p["weight_decay"])
    if p["optimizer"] == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=float(p.get("momentum", 0.0)), weight_decay=wd)
    elif p["optimizer"] in ("adam", "adamw"):
        cls = torch.optim.Adam if p["optimizer"] == "adam" else torch.optim.AdamW
        opt = cls(model.parameters(), lr=lr, betas=(float(p.get("beta1", 0.9)), 0.999), weight_decay=wd)
    else:
        raise SystemExit(f"unknown optimizer {p['optimizer']!r}; use sgd, adam or adamw")

    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=float(p["label_smoothing"]))
    gen = torch.Generator(device="cpu").manual_seed(seed)
    batch = int(p["batch_size"])
    for step in range(1, steps + 1):
        started = time.monotonic()
        model.train()
        perm = torch.randperm(len(xt), generator=gen).to(device)
        for i in range(0, len(xt), batch):
            idx = perm[i : i + batch]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            logits = model(xv)
            val_loss = float(torch.nn.functional.cross_entropy(logits, yv))
            val_acc = float((logits.argmax(1) == yv).float().mean())
        metrics = {"val_loss": val_loss, "val_accuracy": val_acc, "train_loss": float(loss.detach())}
        if not on_step(step, metrics) or not math.isfinite(val_loss):
            break
        _pace(p, started)


def main() -> None:
    last: dict[str, float] = {}

    def report(step: int, metrics: dict[str, float]) -> bool:
        sdk.report(step, **metrics)
        last.update(metrics, step=step)
        if not math.isfinite(metrics["val_loss"]):
            print(f"diverged at step {step}", flush=True)
        return True

    backend = train(sdk.params(), sdk.seed(), sdk.max_steps(30), report)
    print(f"done: {last} backend={backend}", flush=True)


if __name__ == "__main__":
    main()
