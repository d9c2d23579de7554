"""What the operator wrote last, until the watch brings it back.

A pass computes the status it wants and writes only the difference from the status it
read. With event-driven passes the next pass often starts before the watch has
delivered the previous write, so the index still holds the object as it was before:
a difference taken from that stale copy would leave fields of the previous write in
place that the new pass wants back. The API server answers every write with the whole
object; it stands in for the index's copy while the index still holds the version that
write replaced. It is never used once the index moved on (to that write or beyond),
so nothing here outlives the watch by more than one event, and resourceVersions are
only compared for equality, as the API conventions allow.

Objects the operator created are kept the same way until the watch brings them: the
Round that creates a Trial queues the Trial's first pass at once (it creates the pod)
instead of waiting for the Trial to come back through the watch.
"""
from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Any, Mapping


_OF_SEEN = object()


class Writes:
    def __init__(self) -> None:
        self._last: dict[Hashable, tuple[str, str, dict[str, Any]]] = {}  # key -> (rv before, rv after, object)
        self._created: dict[Hashable, dict[str, Any]] = {}  # key -> the create's answer, until the watch has it
        self._lock = threading.Lock()

    def fresh(self, key: Hashable, seen: Any, version: str | None | object = _OF_SEEN) -> Any:
        """The newest copy of the object: `seen` (the index's), or what our last write
        returned when the index still holds the version that write replaced. `version` is
        seen's resourceVersion where seen is not a body (a Trial the index keeps parsed)."""
        if version is _OF_SEEN:
            version = (seen.get("metadata") or {}).get("resourceVersion")
        with self._lock:
            last = self._last.get(key)
            if last is None:
                return seen
            before, after, obj = last
            if version == before and version is not None:
                return obj
            del self._last[key]
            return seen

    def wrote(self, key: Hashable, before: Mapping[str, Any], answer: Mapping[str, Any] | None) -> None:
        """Remember the API server's answer to a write made against `before`."""
        if not answer:
            return
        old = (before.get("metadata") or {}).get("resourceVersion")
        new = (answer.get("metadata") or {}).get("resourceVersion")
        if old and new and old != new:
            with self._lock:
                self._last[key] = (old, new, dict(answer))

    def created(self, key: Hashable, answer: Mapping[str, Any] | None) -> None:
        """Remember the API server's answer to a create, until the watch delivers the object."""
        if answer and (answer.get("metadata") or {}).get("resourceVersion"):
            with self._lock:
                self._created[key] = dict(answer)

    def unseen(self, key: Hashable) -> dict[str, Any] | None:
        """The object this operator created and the watch has not delivered yet, if any."""
        with self._lock:
            return self._created.get(key)

    def unseen_where(self, kind: str, namespace: str, owned: Any) -> list[dict[str, Any]]:
        """The objects of `kind` in `namespace` created here that the watch has not delivered
        yet and for which `owned(body)` holds (a Round's Trials): a pass that plans from
        the index counts them too, however far the watch lags."""
        with self._lock:
            return [body for key, body in self._created.items()
                    if isinstance(key, tuple) and key[:2] == (kind, namespace) and owned(body)]

    def seen(self, key: Hashable, version: str | None) -> None:
        """The watch delivered `version` of the object: drop a write it has caught up with."""
        with self._lock:
            self._created.pop(key, None)
            last = self._last.get(key)
            if last is not None and version is not None and version != last[0]:
                del self._last[key]

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._last.pop(key, None)
            self._created.pop(key, None)

    def __len__(self) -> int:
        return len(self._last) + len(self._created)
