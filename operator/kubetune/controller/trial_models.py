"""Typed Trials from the index's bodies, parsed once per resourceVersion.

Every stop decision reads all peer Trials of its Round and every Round pass reads all
of its Trials; a Round can hold a thousand, and parsing them all each time cost about
0.2 s per decision there. The API server changes an object's resourceVersion on every
write, so a parse is reused exactly while the object is unchanged. The core never
mutates a Trial it is given (it copies a status before changing it), which is what
makes sharing the parsed objects safe.

A finished Trial is held in one form only: the trial index (trial_index.py) keeps its parse instead of
its body (`settle`, called by the index), so the 10,000 Trials of a long Round are not
held twice; a parse keeps its curve packed (api.trial.PackedCurve). Index entries are
therefore bodies (unfinished Trials, and Trials that do not parse) or Trials; `name`,
`phase`, `version` and `body` read either.

A settled Trial is also held lean (`lean`), as nothing in the operator reads the rest:
its conditions are left out (bookkeeping for people and tools, which read them from the
API server; no pass reads a finished Trial's), each of its models forgets which fields
its body set (pydantic's record for exclude_unset, which nothing here uses: wire() leaves
out None), and its short strings are interned (the namespace, the Round's and Study's
names, label keys and values, parameter names, the phase: the same for every Trial of a
Round). That took a finished Trial with a 200-point curve and four conditions from
14.0 KB to 6.3 KB (tracemalloc, tests/unit/test_bounded.py).

A Trial that does not parse (made by hand, with parameters no Round samples: the
schema lets any parameter value through, the model does not) is left out, with one
warning per version: one such Trial must not stop its Round and every peer's stop
decisions. Its own reconcile says why in its Ready condition.
"""
from __future__ import annotations

import logging
import sys
from typing import Any, Iterable, Mapping

import pydantic

from ..api import Trial
from ..api.trial import round_name  # noqa: F401  (the index's and the handlers' accessor)
from ..api.validation import model_problems
from ..memo import Memo

log = logging.getLogger("kubetune")


Entry = Mapping[str, Any] | Trial  # what the trial index holds for one Trial


def name(entry: Entry) -> str:
    return entry.metadata.name if isinstance(entry, Trial) else entry["metadata"]["name"]


def phase(entry: Entry) -> str | None:
    return entry.status.phase if isinstance(entry, Trial) else (entry.get("status") or {}).get("phase")


def version(entry: Entry) -> str | None:
    meta = (entry.metadata.model_extra or {}) if isinstance(entry, Trial) else (entry.get("metadata") or {})
    return meta.get("resourceVersion")


def body(entry: Entry) -> dict[str, Any]:
    """The object as a pass reads it: the index's body, or a settled Trial written out again."""
    return entry.wire() if isinstance(entry, Trial) else entry  # type: ignore[return-value]


def _parsed(body: Mapping[str, Any]) -> Trial | None:
    try:
        return Trial.model_validate(body)
    except pydantic.ValidationError as e:
        meta = body.get("metadata") or {}
        log.warning("Trial %s/%s is left out: it is not a valid Trial (%s)", meta.get("namespace"), meta.get("name"),
                    "; ".join(map(str, model_problems(e))))
        return None


class TrialModels:
    def __init__(self) -> None:
        self._memo: Memo[Trial | None] = Memo()  # keyed by (namespace, name), fingerprint: resourceVersion

    def of(self, entries: Iterable[Entry]) -> list[Trial]:
        out = []
        for body in entries:
            if isinstance(body, Trial):  # settled in the index
                out.append(body)
                continue
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

    def settle(self, body: Mapping[str, Any], like: Trial | None = None) -> Entry:
        """What the index keeps of a finished Trial: its parse (taken over from the passes'
        cache, which then lets it go), or the body itself when it does not parse. `like`: a
        settled peer of the same Round, whose parts it shares where they are equal."""
        meta = body.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        version = meta.get("resourceVersion")
        trial = self._memo.get(key, version, lambda: _parsed(body)) if version else _parsed(body)
        if trial is None:
            return body  # its parse (None) stays in the cache: one warning per version
        self._memo.forget(key)
        return lean(trial, like)

    def forget(self, namespace: str, name: str) -> None:
        self._memo.forget((namespace, name))

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._memo


SHORT = 64  # strings up to this long are interned when a Trial is settled; longer ones are messages
_UNRECORDED: set[str] = set()
"""The one record of set fields every settled model shares (an empty set is 216 bytes and a
Trial has eight models). Nothing reads it; a field assigned later adds its name here, harmlessly."""


def lean(trial: Trial, like: Trial | None = None) -> Trial:
    """A finished Trial as the index holds it: without its conditions, its models without
    their record of set fields, its short strings shared with its peers', and the parts that
    are the same for every Trial of its Round (the Study and Round references, the
    annotations, the owner reference) shared with `like`'s. It writes out as the Trial did,
    less its conditions. Changes the Trial in place: a settled Trial is one only the index
    holds (its parse is taken over from the passes' cache)."""
    trial.status.conditions = []
    _lean_model(trial)
    if like is not None:
        _share(trial, like)
    return trial


def _share(trial: Trial, like: Trial) -> None:
    """Equal parts are `like`'s objects (nothing changes a settled Trial in place: a pass
    copies a status before it changes it). ~1 KB of a Trial as the API server returns it."""
    for mine, theirs, names in ((trial.spec, like.spec, ("study_ref", "round_ref")),
                                (trial.metadata, like.metadata, ("annotations",))):
        for name in names:
            a, b = mine.__dict__.get(name), theirs.__dict__.get(name)
            if a is not None and a is not b and a == b:
                mine.__dict__[name] = b
    extra, peer = trial.metadata.__pydantic_extra__, like.metadata.__pydantic_extra__
    if extra and peer:
        refs = extra.get("ownerReferences")
        if refs is not None and refs == peer.get("ownerReferences"):
            extra["ownerReferences"] = peer["ownerReferences"]


def _lean_model(model: pydantic.BaseModel) -> None:
    object.__setattr__(model, "__pydantic_fields_set__", _UNRECORDED)
    fields = model.__dict__
    for k, v in fields.items():
        fields[k] = _lean(v)
    extra = model.__pydantic_extra__
    if extra:
        for k, v in extra.items():
            extra[k] = _lean(v)


def _lean(value: Any) -> Any:
    t = type(value)
    if t is str:
        return sys.intern(value) if len(value) <= SHORT else value
    if t is dict:
        return {sys.intern(k) if type(k) is str else k: _lean(v) for k, v in value.items()}
    if t is list:
        return [_lean(v) for v in value]
    if isinstance(value, pydantic.BaseModel):
        _lean_model(value)
    return value  # numbers, packed curves
