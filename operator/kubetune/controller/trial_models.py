"""Typed Trials from the index's bodies, parsed once per resourceVersion.

Every stop decision reads all peer Trials of its Round and every Round pass reads all
of its Trials; a Round can hold a thousand, and parsing them all each time cost about
0.2 s per decision there. The API server changes an object's resourceVersion on every
write, so a parse is reused exactly while the object is unchanged. The core never
mutates a Trial it is given (it copies a status before changing it), which is what
makes sharing the parsed objects safe.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Iterable, Mapping

from ..api import Trial
from ..memo import Memo


class TrialModels:
    def __init__(self) -> None:
        self._memo: Memo[Trial] = Memo()  # keyed by (namespace, name), fingerprint: resourceVersion

    def of(self, bodies: Iterable[Mapping[str, Any]]) -> list[Trial]:
        out = []
        for body in bodies:
            meta = body.get("metadata") or {}
            version = meta.get("resourceVersion")
            if not version:  # nothing tells a change apart: parse it every time
                out.append(Trial.model_validate(body))
                continue
            key = (meta.get("namespace") or "", meta.get("name") or "")
            out.append(self._memo.get(key, version, partial(Trial.model_validate, body)))
        return out

    def forget(self, namespace: str, name: str) -> None:
        self._memo.forget((namespace, name))

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._memo
