"""Typed Trials from the index's bodies, parsed once per resourceVersion.

Every stop decision reads all peer Trials of its Round and every Round pass reads all
of its Trials; a Round can hold a thousand, and parsing them all each time cost about
0.2 s per decision there. The API server changes an object's resourceVersion on every
write, so a parse is reused exactly while the object is unchanged. The core never
mutates a Trial it is given (it copies a status before changing it), which is what
makes sharing the parsed objects safe.

A parsed Trial is kept for as long as its object exists, so it is kept small: every point of a
curve (200 per finished Trial) shares one set of the fields it sets, instead of a set of its
own each (pydantic's default; 216 of the ~500 bytes a point takes, ~40 KB of a Trial).

A Trial that does not parse (made by hand, with parameters no Round samples: the
schema lets any parameter value through, the model does not) is left out, with one
warning per version: one such Trial must not stop its Round and every peer's stop
decisions. Its own reconcile says why in its Ready condition.
"""
from __future__ import annotations

import logging
from typing import Any, Iterable, Mapping

import pydantic

from ..api import Trial
from ..api.validation import model_problems
from ..memo import Memo

log = logging.getLogger("kubetune")


_POINT_FIELDS = {"step", "value"}  # shared by every curve point: never changed in place (both fields are required)


def _compact(trial: Trial) -> Trial:
    for point in trial.status.curve:
        if point.__pydantic_fields_set__ == _POINT_FIELDS:
            object.__setattr__(point, "__pydantic_fields_set__", _POINT_FIELDS)
    return trial


def _parsed(body: Mapping[str, Any]) -> Trial | None:
    try:
        return _compact(Trial.model_validate(body))
    except pydantic.ValidationError as e:
        meta = body.get("metadata") or {}
        log.warning("Trial %s/%s is left out: it is not a valid Trial (%s)", meta.get("namespace"), meta.get("name"),
                    "; ".join(map(str, model_problems(e))))
        return None


class TrialModels:
    def __init__(self) -> None:
        self._memo: Memo[Trial | None] = Memo()  # keyed by (namespace, name), fingerprint: resourceVersion

    def of(self, bodies: Iterable[Mapping[str, Any]]) -> list[Trial]:
        out = []
        for body in bodies:
            meta = body.get("metadata") or {}
            version = meta.get("resourceVersion")
            if not version:  # nothing tells a change apart: parse it every time
                trial = _parsed(body)
            else:
                key = (meta.get("namespace") or "", meta.get("name") or "")
                trial = self._memo.get(key, version, lambda: _parsed(body))
            if trial is not None:
                out.append(trial)
        return out

    def forget(self, namespace: str, name: str) -> None:
        self._memo.forget((namespace, name))

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._memo
