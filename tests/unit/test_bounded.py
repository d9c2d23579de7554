"""Objects stay bounded (issue #24): a Round of 10,000 trials keeps each Trial under 20 KB
and the Round under 200 KB (etcd refuses objects over 1.5 MiB). Status lists are capped
and count what they leave out, so the sizes hold whatever the number of trials."""
from __future__ import annotations

import datetime as dt
import json
import random

import pytest

from kubetune.analysis import analyze_round
from kubetune.api.common import set_condition
from kubetune.api.trial import CURVE_LIMIT, CurvePoint, StopReason
from kubetune.core.curves import downsample
from kubetune.core.round_plan import plan_round

from .factories import round_, study, trial

NOW = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
TRIAL_LIMIT, ROUND_LIMIT = 20_000, 200_000
PHASES = ["Succeeded"] * 6 + ["EarlyStopped", "Failed", "Infeasible", "Running"]


def size(obj: object) -> int:
    return len(json.dumps(obj.wire() if hasattr(obj, "wire") else obj, separators=(",", ":")))


def big_round(n: int):
    """A Round of n trials as large as the spec lets them be: every scientific and nuisance
    kind, the longest curves (long steps, full-precision values), long condition and stop
    messages, many final metrics."""
    rnd = round_(
        scientific=[{"name": "batch_size", "type": "categorical", "choices": [32, 64, 128, 256]},
                    {"name": "width_multiplier", "type": "float", "min": 0.1, "max": 10.0}],
        nuisance=[{"name": "learning_rate", "type": "float", "min": 1e-5, "max": 1.0, "log": True},
                  {"name": "weight_decay", "type": "float", "min": 1e-6, "max": 1e-2, "log": True},
                  {"name": "warmup_steps", "type": "int", "min": 0, "max": 5000}],
        budget={"maxTrials": 10000, "parallelism": 50, "maxFailedTrials": 10000},
        reruns={"topK": 20, "seeds": 50},
    )
    rng = random.Random(0)
    trials = []
    for i in range(n):
        p = {"batch_size": rng.choice([32, 64, 128, 256]), "width_multiplier": rng.uniform(0.1, 10),
             "learning_rate": 10 ** rng.uniform(-5, 0), "weight_decay": 10 ** rng.uniform(-6, -2),
             "warmup_steps": rng.randint(0, 5000), "optimizer": "sgd"}
        phase = PHASES[i % len(PHASES)]
        y = rng.random()
        t = trial(i, p, phase, y if phase in ("Succeeded", "EarlyStopped") else None)
        t.status.curve = [CurvePoint(step=1_000_000 + 5000 * s, value=y + rng.random() / (s + 1))
                          for s in range(CURVE_LIMIT)]  # what downsample leaves of any curve
        for kind in ("Ready", "Reconciling", "Stalled", "MetricsAvailable"):
            t.status.conditions = set_condition(t.status.conditions, kind, True, "SomeReason", "x" * 5000, NOW, 1)
        if phase == "EarlyStopped":
            t.status.stop_reason = StopReason(rule="curvefit", step=500, message="m" * 1000,
                                              evidence={f"e{k}": rng.random() for k in range(8)})
        t.status.final = {f"metric_{k}": rng.random() for k in range(50)}
        trials.append(t)
    return study(), rnd, trials


@pytest.fixture(scope="module")
def ten_thousand():
    st, rnd, trials = big_round(10_000)
    plan = plan_round(st, rnd, trials, NOW)
    plan.status.analysis = analyze_round(st, rnd, trials).wire()
    return trials, plan.status


def test_a_trial_stays_under_20_kb(ten_thousand):
    trials, _ = ten_thousand
    assert max(size(t) for t in trials) < TRIAL_LIMIT


def test_a_curve_is_downsampled_to_its_limit():
    curve = [CurvePoint(step=s, value=1.0 / (s + 1)) for s in range(100_000)]
    kept = downsample(curve, "minimize")
    assert len(kept) <= CURVE_LIMIT
    assert kept[0].step == 0 and kept[-1].step == 99_999  # first, last (and best) kept


def test_a_round_of_10000_trials_stays_under_200_kb(ten_thousand):
    _, status = ten_thousand
    assert size(status) < ROUND_LIMIT
    assert status.counts.succeeded == 6000  # counts, not names


def test_no_status_list_grows_with_the_trials(ten_thousand):
    """Every list in the Round's analysis is as long at 10,000 trials as at 200: bounded by
    the Round's spec (parameters, re-runs), never by the number of trials."""
    _, big = ten_thousand
    st, rnd, trials = big_round(200)
    small = analyze_round(st, rnd, trials).wire()

    def lengths(a: dict) -> dict[str, int]:
        return {k: len(v) for k, v in a.items() if isinstance(v, (list, dict))}

    for key, n in lengths(big.analysis).items():
        assert n <= max(lengths(small).get(key, 0), 5), key


def _finished_bodies(n: int) -> list[dict]:
    """Finished Trials as the API server sends them, with the operator's four conditions."""
    _, _, trials = big_round(n)
    bodies = []
    for i, t in enumerate(trials):
        t.status.phase = "Succeeded" if t.status.phase == "Running" else t.status.phase
        t.status.conditions = []
        for kind in ("Ready", "Reconciling", "Stalled", "MetricsAvailable"):
            t.status.conditions = set_condition(t.status.conditions, kind, True, "SomeReason",
                                                f"trial {i}: what happened, for a person", NOW, 1)
        t.status.final = {}
        body = t.wire()
        body["metadata"]["resourceVersion"] = str(i + 1)
        bodies.append(body)
    return bodies


def test_a_finished_trial_is_held_once_packed_and_lean():
    """The operator holds every finished Trial of its Rounds (its trial index): in one
    form, parsed, with its curve packed (~107 KB a Trial with a 200-point curve when its
    body was held beside its parse), and lean: without its conditions, which no pass reads
    (1.26x its JSON before, 14.0 KB here; 0.56x now, 6.3 KB). It reads back as the API
    server sent it, less its conditions."""
    import gc
    import tracemalloc

    from kubetune.api import Trial
    from kubetune.api.trial import PackedCurve
    from kubetune.controller import trial_models
    from kubetune.controller.trial_models import TrialModels

    bodies = _finished_bodies(60)
    json_bytes = sum(len(json.dumps(b)) for b in bodies) / len(bodies)
    models = TrialModels()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        held = [models.settle(b) for b in bodies]
        gc.collect()
        per_trial = (tracemalloc.get_traced_memory()[0] - before) / len(held)
    finally:
        tracemalloc.stop()
    assert all(isinstance(e, Trial) and isinstance(e.status.curve, PackedCurve) for e in held)
    assert per_trial < 0.75 * json_bytes, (per_trial, json_bytes)
    for entry, body in zip(held, bodies):
        assert trial_models.body(entry)["status"] == {**body["status"], "conditions": []}
        assert trial_models.body(entry)["spec"] == body["spec"]
        assert trial_models.body(entry)["metadata"] == body["metadata"]
        assert trial_models.name(entry) == body["metadata"]["name"]
        assert trial_models.version(entry) == body["metadata"]["resourceVersion"]
        assert models.of([entry]) == [entry]
    parsed = Trial.model_validate(bodies[0])
    parsed.status.conditions = []
    assert held[0] == parsed


def test_a_curve_s_steps_are_held_in_four_bytes_and_any_int64_step_reads_back():
    """Steps fit 32 bits on practically every curve (4 bytes a step, not 8); a step past
    them (a trial that counts tokens) is held in 8 bytes and reads back as sent."""
    from kubetune.api import Trial

    body = _finished_bodies(1)[0]
    small = Trial.model_validate(body).status.curve
    assert small._steps.itemsize == 4 and len(small) > 100
    big = json.loads(json.dumps(body))
    big["status"]["curve"][-1]["step"] = 2**40 + 7
    curve = Trial.model_validate(big).status.curve
    assert curve._steps.itemsize == 8
    assert Trial.model_validate(big).model_dump(mode="json", by_alias=True)["status"]["curve"] == big["status"]["curve"]
    assert curve[-1].step == 2**40 + 7 and curve[:3] == small[:3]


def test_a_lean_trial_can_be_copied_and_changed_without_changing_its_peers():
    """Settled Trials share their short strings and their (unused) record of set fields; a
    pass that copies one and changes the copy (plan_trial, the analysis) changes nothing
    else, and the copy writes out with the change."""
    from kubetune.controller.trial_models import TrialModels

    models = TrialModels()
    a, b = (models.settle(body) for body in _finished_bodies(2))
    before_a, before_b = a.wire(), b.wire()
    status = a.status.model_copy(deep=True)
    status.message = "changed"
    status.objective = 123.0
    copy = a.model_copy(update={"status": status}, deep=True)
    copy.spec.parameters = {**copy.spec.parameters, "optimizer": "adam"}
    copy.metadata.labels["kubetune.io/round"] = "another"
    assert copy.wire()["status"]["message"] == "changed" and copy.wire()["status"]["objective"] == 123.0
    assert copy.wire()["spec"]["parameters"]["optimizer"] == "adam"
    assert a.wire() == before_a and b.wire() == before_b


def test_a_round_pass_and_its_analysis_keep_nothing_per_pass():
    """Passes over the same trials (the operator runs one on every event, the analysis at most
    every 10 s) keep no memory beyond the first: the analysis cache and the fANOVA cache hold
    one state per Round (a digest of its trials), not one per pass or per trial."""
    import gc
    import tracemalloc

    from kubetune.analysis.cache import AnalysisCache
    from kubetune.analysis.importance import _fanova

    st, rnd, trials = big_round(300)
    rnd.spec.budget.parallelism = sum(1 for t in trials if t.status.phase == "Running")  # no room: nothing created
    analyses = AnalysisCache()

    def one_pass(i: int) -> None:
        ts = [t.model_copy() for t in trials]  # a pass reads the trials afresh
        ts[i].status = ts[i].status.model_copy(update={"curve": ts[i].status.curve[:-1]})  # one curve changed
        plan_round(st, rnd, ts, NOW)
        analyses.of(st, rnd, ts)

    _fanova.cache_clear()
    for i in range(3):
        one_pass(i)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(3, 13):
        one_pass(i)
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 200_000, grown  # ten passes; a pass's trials alone take ~40 MB
    assert _fanova.cache_info().currsize <= 2
