"""Curves through a real Prometheus scraping real trial processes."""
from __future__ import annotations

import math
import time

import pytest

from kubetune.metrics.prometheus import PrometheusClient, PrometheusError
from kubetune.metrics.promql import round_selector

from .conftest import create, live, round_manifest, start_operator, study_manifest, wait_for


def expected(lr: float, step: int) -> float:  # the trainer's curve (tests/integration/trainer.py)
    return 0.05 + (math.log10(lr) + 2.0) ** 2 * 0.1 + 1.0 / math.sqrt(step)


async def test_curve_in_status_matches_what_the_trial_reported(world, prometheus):
    api = world["api"]
    await start_operator(world, prometheus=PrometheusClient(prometheus.url, timeout=2, retries=1))
    await create(api, study_manifest(max_steps=10, baseline={"learning_rate": 0.1, "step_seconds": 1.3}))
    await create(api, round_manifest(max_trials=2, parallelism=2))

    def done():
        ts = live(api, "trials")
        return len(ts) == 2 and all((t.get("status") or {}).get("phase") == "Succeeded" for t in ts.values())

    await wait_for(done, 90, "both trials to finish")
    for t in live(api, "trials").values():
        lr = t["spec"]["parameters"]["learning_rate"]
        curve = t["status"]["curve"]
        assert len(curve) >= 5, curve  # 10 steps of 1.3 s, scraped every second (first sample ~2 s late)
        for point in curve:
            assert point["value"] == pytest.approx(expected(lr, point["step"]), rel=1e-9)
        steps = [p["step"] for p in curve]
        assert steps == sorted(set(steps))
        assert max(steps) >= 8
        cond = {c["type"]: c for c in t["status"]["conditions"]}["MetricsAvailable"]
        assert cond["status"] == "True"
        assert t["status"]["objective"] == pytest.approx(expected(lr, 10), rel=1e-9)


async def test_prometheus_outage_mid_trial_keeps_the_final_result(world, prometheus):
    api = world["api"]
    op = await start_operator(world, prometheus=PrometheusClient(prometheus.url, timeout=1, retries=0))
    await create(api, study_manifest(max_steps=14, baseline={"learning_rate": 0.1, "step_seconds": 1.0}))
    await create(api, round_manifest(max_trials=1, parallelism=1))

    def has_curve():
        t = live(api, "trials").get("r1-0") or {}
        return len((t.get("status") or {}).get("curve") or []) >= 2

    await wait_for(has_curve, 60, "a curve from Prometheus")
    prometheus.stop()

    def unavailable():
        t = live(api, "trials").get("r1-0") or {}
        conds = {c["type"]: c for c in (t.get("status") or {}).get("conditions", [])}
        return conds.get("MetricsAvailable", {}).get("status") == "False"

    await wait_for(unavailable, 30, "the MetricsAvailable=False condition")
    await wait_for(lambda: (live(api, "rounds")["r1"].get("status") or {}).get("phase") == "Succeeded", 60,
                   "the Round to succeed without Prometheus")
    t = live(api, "trials")["r1-0"]
    assert t["status"]["phase"] == "Succeeded"
    lr = t["spec"]["parameters"]["learning_rate"]
    assert t["status"]["objective"] == pytest.approx(expected(lr, 14), rel=1e-9)
    assert t["status"]["final"]["val_loss"] == t["status"]["objective"]
    msg = {c["type"]: c for c in t["status"]["conditions"]}["MetricsAvailable"]["message"]
    assert "termination message" in msg
    assert op.task is not None and not op.task.done()  # the operator kept running


async def test_a_trial_that_trains_on_after_nan_is_ended_infeasible_naming_the_step(world, prometheus):
    """Its code never checks sdk.diverged(): the operator reads the step of the first NaN from
    Prometheus (with the step query, no extra query) and ends it at its next poll."""
    api = world["api"]
    await start_operator(world, prometheus=PrometheusClient(prometheus.url, timeout=2, retries=1))
    await create(api, study_manifest(max_steps=60, baseline={
        "learning_rate": 0.1, "step_seconds": 0.5, "nan_at": 3, "train_on_nan": True}))
    await create(api, round_manifest(max_trials=1, parallelism=1))
    await wait_for(lambda: (live(api, "rounds")["r1"].get("status") or {}).get("phase") == "Succeeded", 60,
                   "the Round to end")
    t = live(api, "trials")["r1-0"]
    assert t["status"]["phase"] == "Infeasible", t["status"]
    assert t["status"]["message"] == "val_loss diverged (NaN or infinite) at step 3"
    assert t["status"]["podName"] not in live(api, "pods")  # its pod was deleted, long before step 60
    assert all(math.isfinite(p["value"]) for p in t["status"].get("curve", []))


async def test_label_values_cannot_change_the_query(prometheus):
    client = PrometheusClient(prometheus.url, timeout=2, retries=0)
    evil = 'x"} or vector(1) or {__name__="up'
    now = time.time()
    assert client.samples(round_selector(evil, evil, 'val_loss"}) or vector(2'), now - 100, now) == []
    assert client.observe_round(evil, evil, 'val_loss"}) or vector(2', now - 100, now) == {}


async def test_unreachable_prometheus_raises_a_clear_error():
    client = PrometheusClient("http://127.0.0.1:9", timeout=0.5, retries=1, backoff=0.01)
    try:
        client.samples("up", 0, 10)
    except PrometheusError as e:
        assert "unreachable" in str(e)
    else:
        raise AssertionError("no error")
