"""Each Round's trial curves, from one Prometheus query per Round per poll.

Trials of a Round poll Prometheus on their own passes; the first pass of a poll
interval asks for the whole Round (every trial, grouped by `kubetune_trial`) and the
others read their curve from that answer. An outage is remembered for the interval
too, so a Prometheus that is down costs one failed query per Round per poll, not one
per trial. Only the last answer per Round is kept, and forgotten with the Round.

Each query asks only for what is new: from where the Round's slowest reader stands
(minus a minute, for samples that land late), not from the earliest trial's start. A
trial merges what it reads into its status curve (core.trial_plan), which keeps the
history; asking for it again every poll made each poll read every running trial's
whole curve again, a cost that grew with the trials' age (20 MB per poll for 3,600
trials 90 s old, bench/prometheus_cost.py). The answer holds each sample once, as
scraped (PrometheusClient.samples), not a range query's value at every second. A trial
that has not read an answer yet holds the window back to that answer's start, so no
point is skipped; a finished or deleted trial lets go (`done`).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..metrics.prometheus import Observed, PrometheusClient, PrometheusError

NOTHING = Observed([], None)
OVERLAP = 60.0  # seconds asked again each poll: a scrape's samples can land after later ones are read


@dataclass
class _Answer:
    at: float
    start: float
    end: float
    by_trial: dict[str, Observed]
    error: PrometheusError | None = None


class RoundCurves:
    def __init__(self, prometheus: PrometheusClient, poll_seconds: float,
                 clock: Callable[[], float] = time.monotonic, interval: Callable[[], float] | None = None):
        """`interval`: the poll interval now, when it changes with the trials being polled
        (OperatorConfig.poll_interval); a Round's answer serves its trials that long."""
        self.prometheus, self.clock = prometheus, clock
        self.interval = interval or (lambda: poll_seconds)
        self._answers: dict[tuple[str, str, str], _Answer] = {}
        self._locks: dict[tuple[str, str, str], threading.Lock] = {}
        self._read: dict[tuple[str, str, str], dict[str, float]] = {}  # Round key -> trial -> read up to
        self._round_of: dict[tuple[str, str], tuple[str, str, str]] = {}  # (namespace, trial) -> Round key
        self._guard = threading.Lock()
        self.queries = 0  # queries sent, for the benchmark and the tests

    def observe(self, namespace: str, round_name: str, trial: str, metric: str, start: float,
                end: float) -> Observed:
        """The trial's curve points since it last read (merge them into what it has), from
        the Round's latest query, asking Prometheus again when that answer is a poll interval
        old. `start`: where the Round's first query reaches back to. Raises PrometheusError
        while Prometheus is out, for the rest of the interval."""
        key = (namespace, round_name, metric)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # the Round's other trials wait for this one answer instead of asking too
            answer = self._answers.get(key)
            now = self.clock()
            if answer is None or now - answer.at >= self.interval():
                read = self._read.setdefault(key, {})
                marks = list(read.values())  # `done` may drop one from another thread
                since = max(start, min(marks) - OVERLAP) if marks else start
                self.queries += 1
                try:
                    answer = _Answer(now, since, end, self.prometheus.observe_round(namespace, round_name, metric,
                                                                                   since, end))
                    for name in answer.by_trial:  # not read yet: the next window reaches back to this one
                        if name not in read:
                            read[name] = since + OVERLAP
                            self._round_of[(namespace, name)] = key
                except PrometheusError as e:
                    answer = _Answer(now, since, end, {}, e)
                self._answers[key] = answer
            if answer.error is not None:
                raise answer.error
            read = self._read.setdefault(key, {})
            read[trial] = max(read.get(trial, answer.end), answer.end)
            self._round_of[(namespace, trial)] = key
        return answer.by_trial.get(trial, NOTHING)

    def done(self, namespace: str, trial: str) -> None:
        """The trial polls no more (finished, deleted): the Round's window no longer waits for it."""
        with self._guard:
            key = self._round_of.pop((namespace, trial), None)
            if key is not None:
                self._read.get(key, {}).pop(trial, None)

    def forget_round(self, namespace: str, round_name: str) -> None:
        with self._guard:
            for key in [k for k in self._answers if k[:2] == (namespace, round_name)]:
                self._answers.pop(key, None)
                self._locks.pop(key, None)
                for trial in self._read.pop(key, {}):
                    self._round_of.pop((namespace, trial), None)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return any(k[:2] == key for k in list(self._answers))
