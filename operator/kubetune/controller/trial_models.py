"""Typed Trials from the index's bodies, parsed once per resourceVersion.

Every stop decision reads all peer Trials of its Round and every Round pass reads all
of its Trials; a Round can hold a thousand, and parsing them all each time cost about
0.2 s per decision there. The API server changes an object's resourceVersion on every
write, so a parse is reused exactly while the object is unchanged. The core never
mutates a Trial it is given (it copies a status before changing it), which is what
makes sharing the parsed objects safe.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from ..api import Trial


class TrialModels:
    def __init__(self) -> None:
        self._items: dict[tuple[str, str], tuple[str, Trial]] = {}

    def of(self, bodies: Iterable[Mapping[str, Any]]) -> list[Trial]:
        out = []
        for body in bodies:
            meta = body.get("metadata") or {}
            key = (meta.get("namespace") or "", meta.get("name") or "")
            version = meta.get("resourceVersion")
            hit = self._items.get(key)
            if version and hit is not None and hit[0] == version:
                out.append(hit[1])
                continue
            trial = Trial.model_validate(body)
            if version:
                self._items[key] = (version, trial)
            out.append(trial)
        return out

    def forget(self, namespace: str, name: str) -> None:
        self._items.pop((namespace, name), None)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._items
