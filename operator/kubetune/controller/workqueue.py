"""An in-process work queue of object keys, in the manner of controller-runtime's.

Watch events (a pod that ended, a Trial whose phase changed, a Round whose spec
changed) add keys; a bounded set of workers runs one reconcile pass per key in a
thread pool, so the synchronous Kubernetes client never blocks kopf's event loop.
A key is queued at most once however many events name it, and never processed by
two workers at once: an event that arrives while its key is being processed queues
it again for right after. Passes are level-triggered (each reads the latest state
from the indexes), so coalescing events loses nothing. Nothing is kept here that
the API server does not also have: after a restart, the watches' initial listings queue
every object again.

Keys come at four priorities: a successor's last step (a Round pass that created a Trial
queues the Trial, which creates its pod: the pod is what the successor waits for, and the
pass coalesces nothing), its next steps (a trial pod that ended queues its Trial, a pass
that ended a trial queues its Round), an
event's (something changed: a pod started or ended, a Trial was created), and the safety
net's (sweep.py: every unfinished Trial now and then, to poll
Prometheus). A worker always takes an event's key first, so a sweep of thousands of
Trials never stands between a finished trial and its successor; a key that the next sweep
finds still waiting moves up with the events', so a flood of events never starves the
safety net (nor the Prometheus poll it carries). A successor's next step goes first so
that when a wave of trials ends together (trials started together), each successor is
finished before the next wave's end is handled: successors come one after another, not
all at the end of the burst. Sweep keys also run on at most
`sweep_workers` workers at once: the others stay free for events, instead of all of them
being taken by poll passes the moment an event arrives (passes share one interpreter, so
eight poll passes at once also made each event's pass eight times slower).

The queue can be paused (`pause`, `resume`: a peer holds the peering, controller/peering.py):
no pass starts meanwhile, a pass under way ends, and keys keep being queued and coalesced,
to run when it resumes.
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor

from ..metrics import operator_metrics as m

log = logging.getLogger("kubetune")

Process = Callable[[Hashable], "float | None"]
"""One pass over a key; returns None when done, or the seconds after which to run it again."""


class WorkQueue:
    def __init__(self, process: Process, workers: int = 8, sweep_workers: int | None = None):
        """`workers`: passes that run at once (threads); each holds at most one API call in flight.
        `sweep_workers`: how many of them may run sweep (low) keys at once (default: a quarter)."""
        self.process, self.workers = process, max(1, workers)
        self.sweep_workers = max(1, min(self.workers, sweep_workers or self.workers // 4))
        self._sweeping = 0  # sweep keys running now
        self._deferred: deque[tuple[int, int, Hashable]] = deque()  # sweep keys taken while sweep_workers ran
        self._queue: asyncio.PriorityQueue[tuple[int, int, Hashable]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queued: dict[Hashable, tuple[float, int]] = {}  # key -> (when it was queued, priority)
        self._order = 0
        self._running: set[Hashable] = set()
        self._again: dict[Hashable, int] = {}  # added while running -> the most urgent priority asked
        self._tasks: list[asyncio.Task] = []
        self._executor: ThreadPoolExecutor | None = None
        self._acting: asyncio.Event | None = None
        self._paused = False
        self.passes = 0  # done, for the benchmark and the tests

    @property
    def started(self) -> bool:
        return self._queue is not None

    async def start(self) -> None:
        """Start the workers in the running loop (kopf's), with its context (kopf's event posting)."""
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.PriorityQueue()
        self._acting = asyncio.Event()
        if not self._paused:
            self._acting.set()
        m.ACTING.set(0 if self._paused else 1)
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="kubetune-pass")
        self._tasks = [asyncio.create_task(self._work(contextvars.copy_context()), name=f"kubetune-worker-{i}")
                       for i in range(self.workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._queue = self._executor = None
        self._queued.clear(), self._running.clear(), self._again.clear(), self._deferred.clear()
        self._sweeping = 0

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        """No pass starts until `resume()` (in the loop's thread; before `start()` too)."""
        self._paused = True
        m.ACTING.set(0)
        if self._acting is not None:
            self._acting.clear()

    def resume(self) -> None:
        self._paused = False
        if self._acting is not None:
            self._acting.set()
            m.ACTING.set(1)

    def add(self, key: Hashable, after: float = 0.0, low: bool = False, next_step: bool = False,
            last_step: bool = False) -> None:
        """Queue `key` (now, or after `after` seconds; `low`: the safety net's, behind every
        event's key; `next_step`: a successor's next step, ahead of them; `last_step`: its
        last, ahead of those). Call it from the event loop's thread; before `start()` (or
        after `stop()`) it does nothing: the sweep covers the key later."""
        if self._queue is None or self._loop is None:
            return
        if after > 0:
            self._loop.call_later(after, self.add, key, 0.0, low, next_step, last_step)
            return
        self._put(key, -2 if last_step else -1 if next_step else 1 if low else 0)

    def _put(self, key: Hashable, priority: int) -> None:
        """Queue `key` now at `priority` (-2 a successor's last step, -1 its next, 0 an event's,
        1 a sweep's)."""
        if self._queue is None:
            return  # stopped
        low = priority == 1
        if key in self._running:
            self._again[key] = min(self._again.get(key, 1), priority)  # the most urgent ask wins
            return
        queued = self._queued.get(key)
        if queued is not None and low and queued[1] == 1:
            priority = 0  # the sweep before this one queued it and it still waits: events never starve it
        if queued is not None and queued[1] <= priority:
            return  # already waiting, as early or earlier
        self._order += 1
        self._queued[key] = (queued[0] if queued else time.monotonic(), priority)
        self._queue.put_nowait((priority, self._order, key))  # an earlier low entry goes stale
        m.QUEUE_DEPTH.set(len(self._queued))

    def add_threadsafe(self, key: Hashable, after: float = 0.0, low: bool = False, next_step: bool = False,
                       last_step: bool = False) -> None:
        loop = self._loop
        if loop is None:
            return
        if threading.get_ident() == getattr(loop, "_thread_id", None):
            self.add(key, after, low, next_step, last_step)
        else:
            loop.call_soon_threadsafe(self.add, key, after, low, next_step, last_step)

    def __len__(self) -> int:
        return len(self._queued)

    def _undefer(self) -> None:
        """A sweep worker is free: the oldest deferred sweep key still waiting goes back."""
        while self._deferred and self._queue is not None:
            priority, order, key = self._deferred.popleft()
            queued = self._queued.get(key)
            if queued is not None and queued[1] == priority:  # not taken meanwhile as an event's
                self._queue.put_nowait((priority, order, key))
                return

    async def _work(self, context: contextvars.Context) -> None:
        assert self._queue is not None and self._loop is not None and self._acting is not None
        queue, loop, acting = self._queue, self._loop, self._acting
        while True:
            await acting.wait()
            priority, order, key = await queue.get()
            if not acting.is_set():  # paused while this worker waited for a key: it waits with the others
                queue.put_nowait((priority, order, key))
                continue
            queued = self._queued.get(key)
            if queued is None or queued[1] != priority:
                continue  # a stale entry: the key was taken already, or queued again earlier
            sweep = priority == 1
            if sweep and self._sweeping >= self.sweep_workers:
                self._deferred.append((priority, order, key))  # back in the queue when a sweep pass ends
                continue
            del self._queued[key]
            m.QUEUE_WAIT.labels(_kind(key), _PRIORITY[priority]).observe(time.monotonic() - queued[0])
            m.QUEUE_DEPTH.set(len(self._queued))
            self._running.add(key)
            self._sweeping += sweep
            again: float | None = None
            try:
                again = await loop.run_in_executor(self._executor, context.copy().run, self.process, key)
            except asyncio.CancelledError:
                self._queue = self._loop = None  # the operator stops: later adds do nothing
                raise
            except Exception:  # the process function classifies its own errors; this is a bug
                log.exception("reconcile pass of %s failed; retrying in 10 s", key)
                again = 10.0
            finally:
                self._running.discard(key)
                self.passes += 1
                if sweep:
                    self._sweeping -= 1
                    self._undefer()
            if key in self._again:
                self._put(key, self._again.pop(key))
            elif again is not None:
                self.add(key, again)


_PRIORITY = {-2: "last_step", -1: "next_step", 0: "event", 1: "sweep"}


def _kind(key: Hashable) -> str:
    return str(key[0]) if isinstance(key, tuple) and key else "other"
