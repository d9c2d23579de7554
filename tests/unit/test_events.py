"""The pieces that make passes event-driven (issue #24): the work queue, the memory of the
last write, client-side throttling, and one Prometheus query per Round per poll."""
from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import AsyncIterator

import pytest

from kubetune.controller.kube import RateLimiter
from kubetune.controller.round_curves import RoundCurves
from kubetune.controller.workqueue import WorkQueue
from kubetune.controller.writes import Writes
from kubetune.metrics.prometheus import Observed, PrometheusError
from kubetune.metrics.promql import raw_samples, round_selector


async def _passes(q: WorkQueue, n: int, tries: int = 100) -> None:
    """Wait (up to tries x 50 ms) until the queue has run `n` passes; the test asserts what ran."""
    for _ in range(tries):
        if q.passes == n:
            return
        await asyncio.sleep(0.05)


async def test_a_key_is_queued_once_and_never_processed_twice_at_once():
    running, seen, overlap = set(), [], []
    release = threading.Event()

    def process(key):
        if key in running:
            overlap.append(key)
        running.add(key)
        seen.append(key)
        release.wait(2)
        running.discard(key)
        return None

    q = WorkQueue(process, workers=4)
    await q.start()
    try:
        for _ in range(5):
            q.add("a")  # five events about one object while none is processed: one pass
        await asyncio.sleep(0.1)
        q.add("a")  # an event during the pass: one more pass right after, not a parallel one
        q.add("a")
        await asyncio.sleep(0.1)
        assert seen == ["a"]
        release.set()
        await _passes(q, 2, tries=50)
        assert seen == ["a", "a"] and q.passes == 2 and not overlap
    finally:
        await q.stop()


async def test_a_pass_that_asks_to_be_retried_runs_again_later_and_a_crash_does_not_stop_the_workers():
    calls: list[str] = []

    def process(key):
        calls.append(key)
        if key == "boom" and calls.count("boom") == 1:
            raise RuntimeError("a bug")
        return 0.2 if key == "later" and calls.count("later") == 1 else None

    q = WorkQueue(process, workers=1)
    await q.start()
    try:
        q.add("boom")
        q.add("later")
        await asyncio.sleep(0.5)
        assert calls.count("later") == 2
        q.add("ok")
        await asyncio.sleep(0.1)
        assert "ok" in calls  # the worker survived the crash (and retries it after 10 s)
    finally:
        await q.stop()
    q.add("after")  # stopped: nothing runs, nothing raises
    assert "after" not in calls


@contextlib.asynccontextmanager
async def _held_queue() -> AsyncIterator[tuple[WorkQueue, list[str], threading.Event]]:
    """A started queue with one worker that holds each pass until `gate` is set, and the keys
    in the order their passes ran; stopped afterwards, even when the test fails."""
    order: list[str] = []
    gate = threading.Event()

    def process(key):
        gate.wait(2)
        order.append(key)
        return None

    q = WorkQueue(process, workers=1)
    await q.start()
    try:
        yield q, order, gate
    finally:
        gate.set()
        await q.stop()


async def test_an_events_key_runs_before_a_sweep_of_thousands_waiting_ahead_of_it():
    async with _held_queue() as (q, order, gate):
        q.add("busy")  # holds the only worker while the sweep and the event arrive
        await asyncio.sleep(0.05)
        for i in range(2000):
            q.add(f"sweep-{i}", low=True)
        q.add("sweep-7")  # an event about a key the sweep queued too: it moves up, and runs once
        q.add("pod-ended")
        gate.set()
        await _passes(q, 2002)
        assert order[:3] == ["busy", "sweep-7", "pod-ended"]
        assert len(order) == 2002 and order.count("sweep-7") == 1  # busy, 2000 sweeps, the event


async def test_a_sweeps_key_still_waiting_at_the_next_sweep_is_not_starved_by_events():
    async with _held_queue() as (q, order, gate):
        q.add("busy")
        await asyncio.sleep(0.05)
        q.add("poll-me", low=True)  # a sweep
        for i in range(50):
            q.add(f"event-{i}")  # a flood of events
        q.add("poll-me", low=True)  # the next sweep finds it still waiting
        q.add("late-event")
        gate.set()
        await _passes(q, 53)
        assert order.index("poll-me") < order.index("late-event")  # it joined the events' line
        assert order.count("poll-me") == 1


async def test_a_successors_next_step_runs_before_the_rest_of_a_wave_that_ended_together():
    """Trials that started together end together: a wave of pod-ended events. The step that
    starts a successor (its Round's pass after a trial ended, then the new Trial's pass that
    creates its pod) runs before the wave's other events, so successors come one after
    another instead of all at the end of the wave."""
    async with _held_queue() as (q, order, gate):
        q.add("busy")
        await asyncio.sleep(0.05)
        for i in range(20):
            q.add(f"pod-ended-{i}")  # the wave
        q.add("round-of-0", next_step=True)  # trial 0's pass ended it: its Round plans the successor
        q.add("pod-ended-3", next_step=True)  # asked again, more urgently: it moves up, and runs once
        gate.set()
        await _passes(q, 22)
        assert order[:3] == ["busy", "round-of-0", "pod-ended-3"]
        assert order.count("pod-ended-3") == 1 and q.passes == 22


async def test_a_new_trials_pod_comes_before_the_waves_other_next_steps():
    """The last step of a successor (the new Trial's pass, which creates its pod) goes ahead
    of the wave's other next steps: the pod is what the successor waits for. The Rounds'
    passes keep their place behind the trials that ended, where they still coalesce."""
    async with _held_queue() as (q, order, gate):
        q.add("busy")
        await asyncio.sleep(0.05)
        for i in range(10):
            q.add(f"pod-ended-{i}", next_step=True)  # the wave's ended pods: their Trials' passes
        q.add("round", next_step=True)
        q.add("new-trial", last_step=True)  # created by the Round's last pass
        gate.set()
        await _passes(q, 13)
        assert order[:3] == ["busy", "new-trial", "pod-ended-0"]
        assert order[-1] == "round"


async def test_a_next_step_asked_while_its_key_runs_keeps_its_urgency():
    async with _held_queue() as (q, order, gate):
        q.add("round")
        await asyncio.sleep(0.05)  # running
        q.add("round", next_step=True)  # a trial ended meanwhile: the Round must plan again
        for i in range(5):
            q.add(f"event-{i}")
        gate.set()
        await _passes(q, 7)
        assert order[:2] == ["round", "round"]


async def test_sweep_passes_never_take_every_worker_so_an_event_starts_at_once():
    """Hundreds of running trials are polled by sweep passes; a pod that ends meanwhile gets
    its pass on a worker the sweeps left free, not after one of them finishes."""
    gate, started = threading.Event(), []
    running, most = [0], [0]
    lock = threading.Lock()

    def process(key):
        with lock:
            started.append(key)
            running[0] += key.startswith("sweep")
            most[0] = max(most[0], running[0])
        if key.startswith("sweep"):
            gate.wait(2)
            with lock:
                running[0] -= 1
        return None

    q = WorkQueue(process, workers=4)  # a quarter of them for sweeps: one
    await q.start()
    try:
        for i in range(10):
            q.add(f"sweep-{i}", low=True)
        await asyncio.sleep(0.1)
        q.add("pod-ended")
        await asyncio.sleep(0.1)
        assert "pod-ended" in started  # while the sweep pass still holds its worker
        assert sum(k.startswith("sweep") for k in started) == 1
        gate.set()
        await _passes(q, 11)
        assert q.passes == 11 and most[0] == 1  # every sweep key ran, one at a time
    finally:
        gate.set()
        await q.stop()


async def test_the_sweep_queues_every_round_and_every_unfinished_trial_behind_events():
    from kubetune.controller.sweep import every, rounds, unfinished_trials

    from kubetune.controller.index_keys import ByName

    indexes = {  # as the index handlers file them: under the Round (the Study), and by name
        "trial_index": {("ns", "r"): [{"metadata": {"name": "t-0"}, "status": {"phase": "Succeeded"}},
                                      {"metadata": {"name": "t-1"}, "status": {"phase": "Running"}},
                                      {"metadata": {"name": "t-2"}}],
                        **{ByName("ns", f"t-{i}"): ["r"] for i in range(3)}},
        "round_index": {("ns", "s"): [{}], ByName("ns", "r"): [{}]},
    }
    assert list(unfinished_trials(indexes)) == [("Trial", "ns", "t-1"), ("Trial", "ns", "t-2")]
    assert list(rounds(indexes)) == [("Round", "ns", "r")]
    added: list[tuple] = []
    task = asyncio.create_task(every(0.05, lambda: unfinished_trials(indexes), lambda k, low: added.append((k, low))))
    await asyncio.sleep(0.12)
    task.cancel()
    assert added[:2] == [(("Trial", "ns", "t-1"), True), (("Trial", "ns", "t-2"), True)] and len(added) == 4


def test_an_object_the_operator_created_is_its_own_until_the_watch_brings_it():
    w = Writes()
    w.created("t", {"metadata": {"name": "t", "resourceVersion": "5"}, "spec": {}})
    assert w.unseen("t")["metadata"]["resourceVersion"] == "5"  # its first pass can run before the watch
    w.wrote("t", w.unseen("t"), _obj("6", "Pending"))
    assert w.fresh("t", w.unseen("t"))["status"]["phase"] == "Pending"  # the pass's own write counts
    w.seen("t", "5")  # the watch delivers the creation: the index has it now
    assert w.unseen("t") is None
    assert w.fresh("t", _obj("5", "")) ["status"]["phase"] == "Pending"  # still ahead of the index


def _obj(rv: str, phase: str) -> dict:
    return {"metadata": {"name": "t", "resourceVersion": rv}, "status": {"phase": phase}}


def test_the_last_write_stands_in_for_the_index_until_the_watch_brings_it():
    w, key = Writes(), ("Trial", "ns", "t")
    before = _obj("9", "Pending")
    w.wrote(key, before, _obj("10", "Running"))
    assert w.fresh(key, before)["status"]["phase"] == "Running"  # the index still holds rv 9
    assert w.fresh(key, _obj("10", "Running"))["metadata"]["resourceVersion"] == "10"
    assert len(w) == 0  # caught up: forgotten
    w.wrote(key, before, _obj("10", "Running"))
    w.seen(key, "11")  # someone else wrote after us: the index is the truth again
    assert w.fresh(key, _obj("11", "Succeeded"))["status"]["phase"] == "Succeeded" and len(w) == 0
    w.wrote(key, before, None)  # the object was gone: nothing to remember
    assert len(w) == 0


def test_the_rate_limiter_allows_a_burst_then_the_rate():
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    lim = RateLimiter(qps=10, burst=3, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        lim.acquire()
    assert slept == []
    lim.acquire()
    lim.acquire()
    assert slept == pytest.approx([0.1, 0.1])
    RateLimiter(qps=0, burst=1, sleep=lambda s: slept.append(s)).acquire()  # 0: no limit
    assert len(slept) == 2


class _Prometheus:
    def __init__(self, fail: bool = False):
        self.calls, self.fail = 0, fail

    def observe_round(self, namespace, round_name, metric, start, end):
        self.calls += 1
        if self.fail:
            raise PrometheusError("Prometheus at x is unreachable")
        return {"r-0": Observed([], 3), "r-1": Observed([], None)}


def test_one_query_per_round_per_poll_however_many_trials_ask():
    now = [100.0]
    prom = _Prometheus()
    curves = RoundCurves(prom, poll_seconds=15, clock=lambda: now[0])  # type: ignore[arg-type]
    for trial in ("r-0", "r-1", "r-2"):
        curves.observe("ns", "r", trial, "val_loss", 0, 100)
    assert prom.calls == 1
    assert curves.observe("ns", "r", "r-0", "val_loss", 0, 100).diverged_step == 3
    assert curves.observe("ns", "r", "r-9", "val_loss", 0, 100) == Observed([], None)
    curves.observe("ns", "other", "other-0", "val_loss", 0, 100)
    assert prom.calls == 2  # per Round
    now[0] += 15
    curves.observe("ns", "r", "r-1", "val_loss", 0, 115)
    assert prom.calls == 3  # once per poll interval
    curves.forget_round("ns", "r")
    assert ("ns", "r") not in curves and ("ns", "other") in curves


def test_a_longer_poll_interval_keeps_one_query_per_round_per_interval():
    """When many running trials stretch the poll interval (OperatorConfig.poll_interval), a
    Round's answer serves its trials for the whole interval: asking again at every
    poll_seconds would fetch each point once per poll_seconds of the interval."""
    now, interval = [100.0], [15.0]
    prom = _Prometheus()
    curves = RoundCurves(prom, poll_seconds=15, clock=lambda: now[0], interval=lambda: interval[0])  # type: ignore[arg-type]
    curves.observe("ns", "r", "r-0", "val_loss", 0, 100)
    interval[0] = 144.0
    now[0] += 100
    curves.observe("ns", "r", "r-1", "val_loss", 0, 200)
    assert prom.calls == 1
    now[0] += 44
    curves.observe("ns", "r", "r-1", "val_loss", 0, 244)
    assert prom.calls == 2


def test_each_poll_asks_only_for_what_is_new_yet_no_trial_misses_a_point():
    asked: list[tuple[float, float]] = []

    class Prom:
        def observe_round(self, namespace, round_name, metric, start, end):
            asked.append((start, end))
            return {"r-0": Observed([], None), "r-1": Observed([], None)}

    now = [0.0]
    curves = RoundCurves(Prom(), poll_seconds=15, clock=lambda: now[0])  # type: ignore[arg-type]
    curves.observe("ns", "r", "r-0", "val_loss", 1000, 4600)  # trials started an hour ago
    curves.observe("ns", "r", "r-1", "val_loss", 1000, 4600)
    assert asked == [(1000, 4600)]
    now[0] = 15
    curves.observe("ns", "r", "r-0", "val_loss", 1000, 4615)
    assert asked[-1] == (4540, 4615)  # from the last read, a minute back for late samples; not the hour again
    now[0] = 30
    curves.observe("ns", "r", "r-0", "val_loss", 1000, 4630)
    assert asked[-1] == (4540, 4630)  # r-1 has not read the last answer: the window waits for it
    curves.done("ns", "r-1")  # finished: polls no more
    now[0] = 45
    curves.observe("ns", "r", "r-0", "val_loss", 1000, 4645)
    assert asked[-1] == (4570, 4645)


def test_an_outage_costs_one_query_per_round_per_poll():
    prom = _Prometheus(fail=True)
    curves = RoundCurves(prom, poll_seconds=15, clock=lambda: 0.0)  # type: ignore[arg-type]
    for trial in ("r-0", "r-1"):
        with pytest.raises(PrometheusError):
            curves.observe("ns", "r", trial, "val_loss", 0, 100)
    assert prom.calls == 1


def test_the_round_query_selects_the_round_and_escapes_every_value():
    q = raw_samples(round_selector('n"s', "r1", "val.loss"), 90.5)
    assert 'kubetune_round="r1"' in q and 'kubetune_namespace="n\\"s"' in q
    assert 'metric=~"val\\\\.loss|"' in q  # a regex: the dot is literal, and step series have no metric label
    assert "kubetune_trial_diverged_step" in q and "kubetune_trial_step" in q and "kubetune_trial_metric" in q
    assert q.endswith("}[90500ms]")  # raw samples: a range vector, no aggregation that would need a range query
