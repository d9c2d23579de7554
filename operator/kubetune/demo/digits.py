"""A real training run: an MLP on scikit-learn's bundled handwritten digits (8x8 images).

Runs on a GPU when one is visible and on the CPU otherwise; reads its configuration
from kubetune and reports validation loss and accuracy every epoch (one epoch = one
step). The dataset ships inside scikit-learn, so it needs no download.

Parameters (all optional, defaults in DEFAULTS): learning_rate, optimizer
(sgd | adam | adamw), momentum (sgd), beta1 (adam/adamw), weight_decay, hidden_units,
layers, dropout, batch_size, label_smoothing. `step_seconds` paces each epoch to at
least that long, so the short demo can be watched; leave it out for real work.
"""
from __future__ import annotations

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
}


def train(params: dict, seed: int, steps: int, on_step: Callable[[int, dict[str, float]], bool]) -> None:
    """Train for `steps` epochs; after each, call on_step(step, metrics). Stop early when it
    returns False (or when the loss diverges). Used by the trial image and by the benchmark."""
    import numpy as np
    import torch
    from sklearn.datasets import load_digits

    p = {**DEFAULTS, **params}
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    device = "cuda" if torch.cuda.is_available() else "cpu"

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    order = np.random.default_rng(12345).permutation(len(x))  # fixed split, seed-independent
    x, y = x[order], y[order]
    n_val = len(x) // 4
    xt, yt = torch.tensor(x[n_val:], device=device), torch.tensor(y[n_val:], device=device)
    xv, yv = torch.tensor(x[:n_val], device=device), torch.tensor(y[:n_val], device=device)

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
        pause = float(p["step_seconds"]) - (time.monotonic() - started)
        if pause > 0:
            time.sleep(pause)


def main() -> None:
    import torch

    last: dict[str, float] = {}

    def report(step: int, metrics: dict[str, float]) -> bool:
        sdk.report(step, **metrics)
        last.update(metrics, step=step)
        if not math.isfinite(metrics["val_loss"]):
            print(f"diverged at step {step}", flush=True)
        return True

    train(sdk.params(), sdk.seed(), sdk.max_steps(30), report)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"done: {last} device={device}", flush=True)


if __name__ == "__main__":
    main()
