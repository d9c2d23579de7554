"""An in-process work queue of object keys, in the manner of controller-runtime's.

Watch events (a pod that ended, a Trial whose phase changed, a Round whose spec
changed) add keys; a bounded set of workers runs one reconcile pass per key in a
thread pool, so the synchronous Kubernetes client never blocks kopf's event loop.
A key is queued at most once however many events name it, and never processed by
two workers at once: an event that arrives while its key is being processed queues
it again for right after. Passes are level-triggered (each reads the latest state
from kopf's indexes), so coalescing events loses nothing. Nothing is kept here that
the API server does not also have: after a restart, kopf's initial listing queues
every object again.
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger("kubetune")

Process = Callable[[Hashable], "float | None"]
"""One pass over a key; returns None when done, or the seconds after which to run it again."""


class WorkQueue:
    def __init__(self, process: Process, workers: int = 8):
        """`workers`: passes that run at once (threads); each holds at most one API call in flight."""
        self.process, self.workers = process, max(1, workers)
        self._queue: asyncio.Queue[Hashable] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queued: set[Hashable] = set()
        self._running: set[Hashable] = set()
        self._again: set[Hashable] = set()
        self._tasks: list[asyncio.Task] = []
        self._executor: ThreadPoolExecutor | None = None
        self.passes = 0  # done, for the benchmark and the tests

    @property
    def started(self) -> bool:
        return self._queue is not None

    async def start(self) -> None:
        """Start the workers in the running loop (kopf's), with its context (kopf's event posting)."""
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
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
        self._queued.clear(), self._running.clear(), self._again.clear()

    def add(self, key: Hashable, after: float = 0.0) -> None:
        """Queue `key` (now, or after `after` seconds). Call it from the event loop's thread;
        before `start()` (or after `stop()`) it does nothing: the timers still cover the key."""
        if self._queue is None or self._loop is None:
            return
        if after > 0:
            self._loop.call_later(after, self.add, key)
            return
        if key in self._running:
            self._again.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def add_threadsafe(self, key: Hashable, after: float = 0.0) -> None:
        loop = self._loop
        if loop is None:
            return
        if threading.get_ident() == getattr(loop, "_thread_id", None):
            self.add(key, after)
        else:
            loop.call_soon_threadsafe(self.add, key, after)

    def __len__(self) -> int:
        return len(self._queued)

    async def _work(self, context: contextvars.Context) -> None:
        assert self._queue is not None and self._loop is not None
        queue, loop = self._queue, self._loop
        while True:
            key = await queue.get()
            self._queued.discard(key)
            self._running.add(key)
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
            if key in self._again:
                self._again.discard(key)
                self.add(key)
            elif again is not None:
                self.add(key, again)
