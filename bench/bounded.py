"""Bounded objects and flat memory over a 10,000-trial Round (issue #24).

A Round grows to 10,000 finished trials in steps. The trials are held as the operator
holds them: the trial index keeps a finished Trial parsed, its curve packed, instead of
its body (controller.trial_models.settle). After each step the operator's Round pass
runs PASSES times as the operator runs it (`plan_round`, suggesting the next trials with
the Round's kept Suggester, TPE here), then the Round's analysis once through the
operator's AnalysisCache (the operator recomputes a running Round's analysis at most
every 10 s, and no sooner than 20 times what the last one took; the analysis of a step is
what one of those runs costs). Per step it prints:

- RSS: the process's resident memory;
- trials MB: what the trials themselves take (as the index holds them), summed over the
  steps: RSS after the step's trials arrived less RSS before;
- kept MB: what the operator keeps besides the trials, summed over the steps: RSS after
  the passes and the analysis less RSS before them (sampler studies, caches);
- pass s: one Round pass (the median of the step's passes), analysis s: one analysis;
- the largest Trial and the Round's status as JSON (targets: 20 KB and 200 KB).

    python bench/bounded.py
    python bench/bounded.py --trials 10000 --step 1000 --out bench/results/bounded.txt
    python bench/bounded.py --rounds 20 --trials 500    # a long-running operator: Rounds that ended and stay
"""
from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import math
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

from kubetune.analysis.cache import AnalysisCache  # noqa: E402
from kubetune.api import Round, Study, Trial  # noqa: E402
from kubetune.api.common import set_condition  # noqa: E402
from kubetune.api.trial import CURVE_LIMIT, CurvePoint  # noqa: E402
from kubetune.controller.trial_index import TrialIndex  # noqa: E402
from kubetune.controller.trial_models import TrialModels  # noqa: E402
from kubetune.core.round_plan import plan_round  # noqa: E402

NOW = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
TRIAL_TARGET, ROUND_TARGET = 20_000, 200_000
PASSES = 3


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def served(body: dict, version: int, round_name: str = "r", round_uid: str = "u-r") -> dict:
    """A Trial's body as the API server returns it: what it sets, and the Round as its owner."""
    body["metadata"].update(
        resourceVersion=str(version), uid=f"{version:08x}-0000-4000-8000-000000000000", generation=1,
        creationTimestamp="2024-01-01T00:00:00Z",
        ownerReferences=[{"apiVersion": "kubetune.io/v1alpha1", "kind": "Round", "name": round_name, "uid": round_uid,
                          "controller": True, "blockOwnerDeletion": True}])
    return body


def size(body: dict) -> int:
    return len(json.dumps(body, separators=(",", ":")))


def objects(max_trials: int) -> tuple[Study, Round]:
    study = Study.model_validate({
        "metadata": {"name": "s", "namespace": "ns", "uid": "u-s"},
        "spec": {"objective": {"metric": "val_loss", "goal": "minimize"}, "maxSteps": 1000,
                 "baseline": {"learning_rate": 0.1, "optimizer": "sgd"},
                 "template": {"spec": {"containers": [{"name": "train", "image": "img"}]}}},
    })
    rnd = Round.model_validate({
        "metadata": {"name": "r", "namespace": "ns", "uid": "u-r", "generation": 1},
        "spec": {"studyRef": {"name": "s"}, "goal": "bench",
                 "scientific": [{"name": "batch_size", "type": "categorical", "choices": [32, 64, 128, 256]}],
                 "nuisance": [{"name": "learning_rate", "type": "float", "min": 1e-5, "max": 1.0, "log": True},
                              {"name": "weight_decay", "type": "float", "min": 1e-6, "max": 1e-2, "log": True}],
                 "algorithm": {"name": "tpe", "seed": 1},
                 "budget": {"maxTrials": max_trials, "parallelism": 4, "maxFailedTrials": max_trials},
                 "reruns": {"topK": 20, "seeds": 50}},
    })
    return study, rnd


def finished(t: Trial, rng: random.Random) -> Trial:
    """The trial as the operator leaves it: a full downsampled curve, conditions, final metrics."""
    y = rng.random()
    phase = rng.choice(["Succeeded"] * 6 + ["EarlyStopped", "Failed", "Infeasible"])
    t.status.phase = phase  # type: ignore[assignment]
    t.status.objective = y if phase in ("Succeeded", "EarlyStopped") else None
    t.status.curve = [CurvePoint(step=5 * s, value=y + rng.random() / (s + 1)) for s in range(CURVE_LIMIT)]
    for kind in ("Ready", "Reconciling", "Stalled", "MetricsAvailable"):
        t.status.conditions = set_condition(t.status.conditions, kind, True, "Reason", "a message " * 30, NOW, 1)
    t.status.final = {f"metric_{k}": rng.random() for k in range(20)}
    return t


def made(number: int, rng: random.Random) -> Trial:
    return Trial.model_validate({
        "metadata": {"name": f"r-{number}", "namespace": "ns",
                     "labels": {"kubetune.io/study": "s", "kubetune.io/round": "r", "kubetune.io/trial": f"r-{number}"},
                     "annotations": {"kubetune.io/max-steps": "1000"}},
        "spec": {"studyRef": {"name": "s"}, "roundRef": {"name": "r"}, "number": number, "seed": number,
                 "parameters": {"batch_size": rng.choice([32, 64, 128, 256]), "learning_rate": 10 ** rng.uniform(-5, 0),
                                "weight_decay": 10 ** rng.uniform(-6, -2), "optimizer": "sgd"}},
    })


def many_rounds(rounds: int, per_round: int, parallel: int) -> list[str]:
    """Rounds run one after the other to their end, as a long-running operator sees them: each
    Round's passes suggest its trials with TPE (its kept Suggester), each pass's trials finish
    before the next pass, and the finished Rounds stay (nobody deletes them). Prints, after
    each Round, the RSS, what it grew by, and how many Rounds the operator still keeps a
    sampler for."""
    from kubetune.core.round_plan import remembers_round

    study, _ = objects(per_round)
    models, rng = TrialModels(), random.Random(0)
    index = TrialIndex(models)  # every Round's Trials, as the operator's watch keeps them: finished ones settled
    held = 0
    lines = [f"{rounds} Rounds of {per_round} trials (TPE, {parallel} at a time) run to their end one after the "
             "other; the finished Rounds stay",
             f"{'rounds':>7}{'trials':>8}{'RSS MB':>8}{'MB this Round':>15}{'samplers kept':>15}{'pass s':>8}",
             "-" * 61]
    print("\n".join(lines), flush=True)
    gc.collect()
    start = last = rss_mb()
    for r in range(rounds):
        _, rnd = objects(per_round)
        rnd.metadata.name, rnd.metadata.uid = f"r{r}", f"u-r{r}"
        rnd.spec.budget.parallelism = parallel  # type: ignore[union-attr]
        rnd.spec.reruns = None  # the search alone: re-runs take no sampler
        passes = []
        while True:
            t0 = time.perf_counter()
            plan = plan_round(study, rnd, models.of(index.get(("ns", rnd.metadata.name))), NOW)
            passes.append(time.perf_counter() - t0)
            if not plan.create:
                break
            for t in plan.create:  # the pass's trials run and finish before the next pass
                y = sum(math.log10(v) ** 2 if isinstance(v, float) else 0.0 for v in t.spec.parameters.values())
                held += 1
                body = served(finished(t, rng).wire(), held, rnd.metadata.name, rnd.metadata.uid)
                body["status"]["objective"] = y / 10 + rng.random() / 100
                index.put(body)
        del plan
        gc.collect()
        now = rss_mb()
        kept = sum(remembers_round("ns", f"r{k}") for k in range(r + 1))
        line = (f"{r + 1:>7}{held:>8}{now:>8.0f}{now - last:>15.1f}{kept:>15}"
                f"{statistics.median(passes):>8.2f}")
        last = now
        lines.append(line)
        print(line, flush=True)
    lines.append(f"RSS at start {start:.0f} MB")
    print(lines[-1])
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=10_000)
    ap.add_argument("--step", type=int, default=1_000)
    ap.add_argument("--rounds", type=int, default=0,
                    help="instead: this many Rounds of --trials trials each, run to their end one after the other")
    ap.add_argument("--parallel", type=int, default=20, help="with --rounds: trials a pass suggests")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.rounds:
        lines = many_rounds(args.rounds, args.trials, args.parallel)
        if args.out:
            args.out.write_text("\n".join(lines) + "\n")
        return
    study, rnd = objects(args.trials)
    analyses, models = AnalysisCache(), TrialModels()
    index = TrialIndex(models)  # as the operator's watch keeps the Round's Trials: finished ones settled
    rng = random.Random(0)
    bodies: tuple = ()
    lines = [f"bounded objects and memory over a {args.trials}-trial Round ({PASSES} plan_round passes with TPE "
             "and one analysis per step)",
             f"{'trials':>7}{'RSS MB':>8}{'trials MB':>11}{'kept MB':>9}{'pass s':>8}{'analysis s':>12}"
             f"{'max Trial KB':>14}{'Round KB':>10}",
             "-" * 79]
    print("\n".join(lines), flush=True)
    gc.collect()
    start = rss_mb()
    own = kept = 0.0
    biggest = 0
    while len(bodies) < args.trials:
        # trials the Round created and that finished (random points: suggesting all of them
        # with TPE would take hours; the measured passes below suggest with TPE)
        before = rss_mb()
        target = min(args.trials, len(bodies) + args.step)
        for number in range(len(bodies), target):
            body = served(finished(made(number, rng), rng).wire(), number + 1)
            biggest = max(biggest, size(body))
            index.put(body)
        bodies = index.get(("ns", "r"))
        gc.collect()
        own += rss_mb() - before
        before = rss_mb()
        passes = []
        for _ in range(PASSES):
            t0 = time.perf_counter()
            plan = plan_round(study, rnd, models.of(bodies), NOW)
            passes.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        plan.status.analysis = analyses.of(study, rnd, models.of(bodies))
        analysis = time.perf_counter() - t0
        body = plan.status.wire()
        del plan
        gc.collect()
        kept += rss_mb() - before
        line = (f"{len(bodies):>7}{rss_mb():>8.0f}{own:>11.0f}{kept:>9.0f}{statistics.median(passes):>8.2f}"
                f"{analysis:>12.2f}{biggest / 1000:>14.1f}{size(body) / 1000:>10.1f}")
        lines.append(line)
        print(line, flush=True)
    lines.append(f"RSS at start {start:.0f} MB; targets: each Trial < {TRIAL_TARGET // 1000} KB, "
                 f"the Round < {ROUND_TARGET // 1000} KB, kept MB flat")
    print(lines[-1])
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
