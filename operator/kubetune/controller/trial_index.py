"""Trials as the operator keeps them, read the way a kopf index is read: under
(namespace, Round name) a Round's Trials, and under ByName(namespace, Trial name) the name
of the Round a Trial names (a Round's next trial name may be held by a Trial that is not
the Round's: made by hand, or another Round's). An unfinished Trial is kept as its body
(less metadata.managedFields, which nothing reads); a finished one as its parse
(trial_models.TrialModels.settle), so a long Round's Trials are not held twice. Kept
current by the operator's own watch (list_watch.py)."""
from __future__ import annotations

import threading
from typing import Any, Iterator

from ..api import FINISHED
from . import trial_models
from .index_keys import ByName
from .trial_models import Entry, TrialModels


class TrialIndex:
    """Written by the watch threads, read by the passes' threads: each key's entry is a tuple
    replaced whole, never changed in place, so a reader gets a consistent one without a lock."""

    def __init__(self, trials: TrialModels) -> None:
        self.trials = trials
        self._by_round: dict[tuple[str, str | None], tuple[Entry, ...]] = {}
        self._round_of: dict[tuple[str, str], str | None] = {}  # (namespace, Trial name) -> its Round
        self._lock = threading.Lock()

    def get(self, key: Any, default: Any = ()) -> Any:
        if isinstance(key, ByName):
            found = (key.namespace, key.name)
            return (self._round_of[found],) if found in self._round_of else default
        return self._by_round.get(key, default)

    def items(self) -> Iterator[tuple[tuple[str, str | None], tuple[Entry, ...]]]:
        """Each Round's key and its Trials (the ByName keys left out)."""
        return iter(list(self._by_round.items()))

    def __len__(self) -> int:
        return len(self._round_of)

    def names(self, namespace: str | None) -> set[tuple[str, str]]:
        with self._lock:
            return {k for k in self._round_of if namespace is None or k[0] == namespace}

    def put(self, body: dict[str, Any]) -> Entry:
        meta = body.get("metadata") or {}
        meta.pop("managedFields", None)
        namespace, name = meta.get("namespace") or "", meta.get("name") or ""
        entry: Entry = body
        if (body.get("status") or {}).get("phase") in FINISHED:
            entry = self.trials.settle(body)
        key = (namespace, trial_models.round_name(body))
        with self._lock:
            self._remove((namespace, name))
            self._by_round[key] = (*self._by_round.get(key, ()), entry)
            self._round_of[(namespace, name)] = key[1]
        return entry

    def discard(self, namespace: str, name: str) -> Entry | None:
        with self._lock:
            return self._remove((namespace, name))

    def _remove(self, trial: tuple[str, str]) -> Entry | None:
        if trial not in self._round_of:
            return None
        key = (trial[0], self._round_of.pop(trial))
        held = self._by_round.get(key, ())
        gone = next((t for t in held if trial_models.name(t) == trial[1]), None)
        left = tuple(t for t in held if t is not gone)
        if left:
            self._by_round[key] = left
        else:
            self._by_round.pop(key, None)
        return gone

