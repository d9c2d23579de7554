"""Values kept per object: rebuilt when the object's fingerprint changes, dropped when the
object is deleted (a long-running operator sees thousands of Rounds)."""
from __future__ import annotations

from typing import Any, Callable, Generic, Hashable, TypeVar

T = TypeVar("T")


class Memo(Generic[T]):
    def __init__(self) -> None:
        self._items: dict[Hashable, tuple[Any, T]] = {}

    def get(self, key: Hashable, fingerprint: Any, build: Callable[[], T]) -> T:
        hit = self._items.get(key)
        if hit is None or hit[0] != fingerprint:
            hit = (fingerprint, build())
            self._items[key] = hit
        return hit[1]

    def forget(self, key: Hashable) -> None:
        self._items.pop(key, None)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items
