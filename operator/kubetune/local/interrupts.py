"""Ctrl-C as a request the local run answers between two steps, never inside one.

A KeyboardInterrupt raised wherever the main thread happens to be can land between
starting a training process and registering it, and the interrupt then cannot stop the
process it never heard of: an orphan that keeps its GPU. So while a run is active,
SIGINT only sets a flag; the loop sees it after the step, stops every process it
started, and exits with 130.
"""
from __future__ import annotations

import signal
import threading
import time


class Interrupts:
    """SIGINT sets `requested` instead of raising, while the context is active (main
    thread only: elsewhere signals cannot be handled, and nothing changes)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> "Interrupts":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake within a tenth of a second of a request."""
        deadline = time.monotonic() + seconds
        while not self.requested:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.1))
