"""A fast, deterministic stand-in for a training script, reporting through the real SDK.

val_loss(step) = floor + scale / step**0.5, where the floor depends on the parameters,
so the Round has a clear best region. `crash` makes it fail; `nan_at` makes it diverge
(and stop, unless `train_on_nan`: training code that never checks sdk.diverged());
`overfit_from` makes it get worse by 0.1 a step after that step."""
import math
import os
import sys
import time

from kubetune import sdk

p = sdk.params()
steps = sdk.max_steps()
lr = float(p.get("learning_rate", 0.1))
floor = 0.05 + (math.log10(lr) + 2.0) ** 2 * 0.1 + float(p.get("width_penalty", 0.0))
delay = float(os.environ.get("TRAINER_STEP_SECONDS", p.get("step_seconds", 0.05)))
for step in range(1, steps + 1):
    value = floor + 1.0 / math.sqrt(step)
    if p.get("overfit_from") and step > int(p["overfit_from"]):
        value = floor + 1.0 / math.sqrt(int(p["overfit_from"])) + 0.1 * (step - int(p["overfit_from"]))
    if p.get("nan_at") and step >= int(p["nan_at"]):
        value = float("nan")
    sdk.report(step, val_loss=value, val_accuracy=1.0 - value / 3)
    if sdk.diverged() and not p.get("train_on_nan"):
        break
    if p.get("crash") and step >= 3:
        raise RuntimeError("simulated crash in the training loop")
    time.sleep(delay)
sys.exit(0)
