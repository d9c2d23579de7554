"""The safety net and the Prometheus poll: loops that queue every Round and every
unfinished Trial now and then.

Events start a pass the moment a pod, a Trial or a Round changes; what an event cannot
bring (the curve in Prometheus, a pass that failed, a watch that was lost) needs a pass
now and then. kopf timers did that once, at a price that grew with the objects: an
asyncio task per object, a pass in kopf's own thread pool competing with the work
queue's for the same locks, and kopf's finalizer added to and removed from every Trial
(two API writes each). These loops put the keys on the work queue instead, where they
coalesce with the events' and run in the same bounded pool, with one error ladder
(handlers.run_pass). Finished Trials are plain data and skipped.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from ..api import FINISHED
from . import trial_models
from .index_keys import ByName

Key = tuple[str, str, str]


def unfinished_trials(indexes: Mapping[str, Any]) -> Iterator[Key]:
    """The keys of the Trials in the trial index that are not finished."""
    for key, store in list(indexes.get("trial_index", {}).items()):
        if isinstance(key, ByName):
            continue  # a Trial's Round, by the Trial's name; the Trial is under its Round's key
        namespace, _round = key
        for entry in list(store):
            if trial_models.phase(entry) not in FINISHED:
                yield ("Trial", namespace, trial_models.name(entry))


def rounds(indexes: Mapping[str, Any]) -> Iterator[Key]:
    for key in list(indexes.get("round_index", {}).keys()):
        if isinstance(key, ByName):
            yield ("Round", key.namespace, key.name)


async def every(interval: float, keys: Callable[[], Iterable[Key]], add: Callable[..., None]) -> None:
    """Every `interval` seconds, queue `keys()` behind every event's key (WorkQueue's low
    priority). Runs in kopf's event loop, where kopf updates its indexes, so an index does
    not change while it is read."""
    while True:
        await asyncio.sleep(interval)
        for key in keys():
            add(key, low=True)
