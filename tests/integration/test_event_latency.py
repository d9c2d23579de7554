"""Watch events drive the passes (issue #24): with the safety-net timers at 30 s, a trial's
pod that ends gets its successor at once, and a Round whose spec changes acts at once.
Behaviour, not a benchmark: 5 s is far below the 30 s a timer would take (bench/operator_scale.py
measures the latency)."""
from __future__ import annotations

import asyncio

from .conftest import NS, create, live, round_manifest, start_operator, study_manifest, wait_for

TIMERS = 30.0  # seconds between two safety-net passes over an object
PROMPT = 5.0


def _phase(obj: dict) -> str | None:
    return (obj.get("status") or {}).get("phase")


async def test_a_successor_starts_when_its_predecessor_ends_not_at_the_next_timer(world):
    api = world["api"]
    op = await start_operator(world, interval=TIMERS)
    await create(api, study_manifest(max_steps=10))
    await create(api, round_manifest(max_trials=3, parallelism=1))

    pods = lambda: live(api, "pods")  # noqa: E731
    for n in range(3):  # each trial's pod ends; the next one's pod follows within seconds
        await wait_for(lambda: any(p["metadata"]["labels"]["kubetune.io/trial"] == f"r1-{n}" for p in pods().values()),
                       PROMPT if n else 30, f"the pod of trial r1-{n}")
        await wait_for(lambda: any(_phase(p) == "Succeeded" and p["metadata"]["labels"]["kubetune.io/trial"] == f"r1-{n}"
                                   for p in pods().values()), 30, f"the pod of r1-{n} to end")
        if n < 2:
            await wait_for(lambda: any(p["metadata"]["labels"]["kubetune.io/trial"] == f"r1-{n + 1}"
                                       for p in pods().values()), PROMPT, f"the successor of r1-{n}")
    await wait_for(lambda: _phase(live(api, "rounds")["r1"]) == "Succeeded", PROMPT, "the Round to succeed")
    assert op.cfg is not None and op.cfg.queue.passes > 0
    assert sorted(world["kubelet"].started) == [f"r1-{n}-a1" for n in range(3)]  # one pod per trial


async def test_a_spec_change_acts_at_once_not_at_the_next_timer(world):
    api = world["api"]
    await start_operator(world, interval=TIMERS)
    await create(api, study_manifest(max_steps=10))
    await create(api, round_manifest("r2", max_trials=2, parallelism=1, maxSteps=600))  # 30 s a trial
    await wait_for(lambda: _phase(live(api, "trials").get("r2-0") or {}) == "Running", 30, "the first trial to run")
    await asyncio.sleep(1.0)  # whatever its start queued has run: only the spec change can start r2-1
    assert "r2-1" not in live(api, "trials")
    resp = await api.patch(f"/apis/kubetune.io/v1alpha1/namespaces/{NS}/rounds/r2",
                           json={"spec": {"budget": {"maxTrials": 2, "parallelism": 2, "maxFailedTrials": 3}}})
    assert resp.status == 200, await resp.text()
    await wait_for(lambda: "r2-1" in live(api, "trials"), PROMPT, "the second trial once parallelism grew")
    await wait_for(lambda: any(p["metadata"]["labels"]["kubetune.io/trial"] == "r2-1"
                               for p in live(api, "pods").values()), PROMPT, "the second trial's pod")
