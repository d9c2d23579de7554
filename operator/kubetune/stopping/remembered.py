"""A bounded memo the stopping rules share across the operator's decision threads."""
from __future__ import annotations

import threading
from typing import Any, Hashable


class Remembered:
    """Values by key within a budget of units (entries, points, bytes): the oldest are
    forgotten first, and a value larger than the whole budget is not remembered.

    `get` is the dict's own, one lookup without a lock (a decision reads thousands); writes
    take the lock, since the operator decides in several threads. A reader may find a key
    gone that it saw a moment ago, never a value half written."""

    __slots__ = ("budget", "size", "get", "_items", "_sizes", "_lock")

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.size = 0  # units remembered now
        self._items: dict[Hashable, Any] = {}
        self._sizes: dict[Hashable, int] = {}
        self._lock = threading.Lock()
        self.get = self._items.get

    def put(self, key: Hashable, value: Any, size: int = 1) -> None:
        if size > self.budget:
            return
        with self._lock:
            if key in self._items:
                del self._items[key]
                self.size -= self._sizes.pop(key)
            while self._items and self.size + size > self.budget:
                oldest = next(iter(self._items))
                del self._items[oldest]
                self.size -= self._sizes.pop(oldest)
            self._items[key] = value
            self._sizes[key] = size
            self.size += size

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._sizes.clear()
            self.size = 0

    def __len__(self) -> int:
        return len(self._items)
