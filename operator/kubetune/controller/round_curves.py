"""Each Round's trial curves, from one Prometheus query per Round per poll.

Trials of a Round poll Prometheus on their own passes; the first pass of a poll
interval asks for the whole Round (every trial, grouped by `kubetune_trial`) and the
others read their curve from that answer. An outage is remembered for the interval
too, so a Prometheus that is down costs one failed query per Round per poll, not one
per trial. Only the last answer per Round is kept, and forgotten with the Round.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..metrics.prometheus import Observed, PrometheusClient, PrometheusError

NOTHING = Observed([], None)


@dataclass
class _Answer:
    at: float
    start: float
    by_trial: dict[str, Observed]
    error: PrometheusError | None = None


class RoundCurves:
    def __init__(self, prometheus: PrometheusClient, poll_seconds: float,
                 clock: Callable[[], float] = time.monotonic):
        self.prometheus, self.poll_seconds, self.clock = prometheus, poll_seconds, clock
        self._answers: dict[tuple[str, str, str], _Answer] = {}
        self._locks: dict[tuple[str, str, str], threading.Lock] = {}
        self._guard = threading.Lock()
        self.queries = 0  # range queries sent, for the benchmark and the tests

    def observe(self, namespace: str, round_name: str, trial: str, metric: str, start: float,
                end: float) -> Observed:
        """The trial's curve as of the Round's latest query, asking Prometheus again when that
        answer is a poll interval old (or does not reach back to `start`). Raises
        PrometheusError while Prometheus is out, for the rest of the interval."""
        key = (namespace, round_name, metric)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # the Round's other trials wait for this one answer instead of asking too
            answer = self._answers.get(key)
            now = self.clock()
            if answer is None or now - answer.at >= self.poll_seconds or start < answer.start:
                self.queries += 1
                try:
                    answer = _Answer(now, start, self.prometheus.observe_round(namespace, round_name, metric,
                                                                               start, end))
                except PrometheusError as e:
                    answer = _Answer(now, start, {}, e)
                self._answers[key] = answer
        if answer.error is not None:
            raise answer.error
        return answer.by_trial.get(trial, NOTHING)

    def forget_round(self, namespace: str, round_name: str) -> None:
        with self._guard:
            for key in [k for k in self._answers if k[:2] == (namespace, round_name)]:
                self._answers.pop(key, None)
                self._locks.pop(key, None)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return any(k[:2] == key for k in list(self._answers))
