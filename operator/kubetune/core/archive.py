"""A Round's results in a form that outlives the Round: its Study keeps them.

Removing a Round from git makes Argo CD or Flux prune it, and the owner cascade then
deletes every Trial. So the operator copies each Round's Trials (spec and status:
parameters, seed, phase, objective, final metrics, stop reason, curve) into
`Study.status.archive`, as trials finish and once more before the Round goes. One
entry per Round, gzip-compressed JSON; `kubetune export ROUND` writes it out.

The Study is one object, and the API server keeps objects under about 1.5 MiB, so
each Round's entry has a budget: curves are thinned (first, last and best point kept)
until the entry fits, and dropped last; parameters and results are always kept.
"""
from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
from typing import Any

from ..api import FINISHED, Round, Trial
from ..api.common import rfc3339
from ..api.round import ArchiveState
from ..api.study import RoundArchive
from .curves import downsample

ROUND_LIMIT = 128 * 1024
"""Bytes of `data` one Round's entry may take in the Study."""
STUDY_LIMIT = 900 * 1024
"""Bytes all entries may take together: the Study keeps room for its spec and the rest of its status."""
INTERVAL_SECONDS = 30.0
"""A running Round's archive is brought up to date at most this often (at once when the Round ends)."""
STUDY_WRITE_SECONDS = 5.0
"""A Study shared by many running Rounds is written by their periodic archive writes about
this often at most: each Round's interval grows with the Rounds that share its Study
(`interval`). Every write of a Study sends the whole object, up to ~1 MB of archive,
through the API server, etcd and every watch: at 120 Rounds of one Study a 30-s interval
made it the API server's costliest request (p50 0.4 s, p99 9 s, a third of its time)."""
CURVE_STEPS = (200, 50, 12, 0)


def _trial_wire(t: Trial, curve_points: int, direction: str) -> dict[str, Any]:
    body = t.wire()
    meta = body.get("metadata", {})
    body["metadata"] = {k: meta[k] for k in ("name", "namespace", "labels", "creationTimestamp") if meta.get(k)}
    status = body.get("status", {})
    status.pop("conditions", None)
    status.pop("podName", None)
    if curve_points:
        status["curve"] = [p.wire() for p in downsample(t.status.curve, direction, curve_points)]
    else:
        status.pop("curve", None)
    return body


def _round_wire(rnd: Round) -> dict[str, Any]:
    body = rnd.wire()
    meta = body.get("metadata", {})
    body["metadata"] = {k: meta[k] for k in ("name", "namespace", "uid", "labels", "creationTimestamp") if meta.get(k)}
    status = body.get("status", {})
    for key in ("analysis", "conditions", "archive"):
        status.pop(key, None)
    return body


def encode(rnd: Round, trials: list[Trial], curve_points: int, direction: str) -> str:
    doc = {"round": _round_wire(rnd), "trials": [_trial_wire(t, curve_points, direction) for t in trials]}
    raw = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    return base64.b64encode(gzip.compress(raw, mtime=0)).decode()


def decode(data: str) -> tuple[Round, list[Trial]]:
    """The Round and Trials of an archive entry (curves as thinned as the entry says)."""
    doc = json.loads(gzip.decompress(base64.b64decode(data)))
    return Round.model_validate(doc["round"]), [Trial.model_validate(t) for t in doc["trials"]]


def merged(old: RoundArchive | None, rnd: Round, trials: list[Trial]) -> list[Trial]:
    """The Trials to archive: those archived before (Trials the garbage collector deleted
    already stay in the archive) overridden by the ones seen now, in number order."""
    by_name: dict[str, Trial] = {}
    if old is not None and old.uid == (rnd.metadata.uid or ""):
        by_name = {t.metadata.name: t for t in decode(old.data)[1]}
    by_name.update({t.metadata.name: t for t in trials})
    return sorted(by_name.values(), key=lambda t: t.spec.number)


def entry(rnd: Round, trials: list[Trial], direction: str, now: dt.datetime,
          room: int = ROUND_LIMIT) -> RoundArchive | None:
    """The archive entry of `rnd` with `trials`, with curves thinned to fit `room` bytes;
    None when even the parameters and results alone do not fit."""
    for points in CURVE_STEPS:
        data = encode(rnd, trials, points, direction)
        if len(data) <= room:
            best = rnd.status.best_trial
            return RoundArchive(
                round=rnd.metadata.name, uid=rnd.metadata.uid or "", goal=rnd.spec.goal, phase=rnd.status.phase or "",
                best_trial=best.name if best else None, best_value=rnd.status.best_value, trials=len(trials),
                curve_points=points, time=rfc3339(now), data=data,
            )
    return None


def room_for(archive: list[RoundArchive], round_name: str) -> int:
    """Bytes this Round's entry may take, given the Study's other entries."""
    others = sum(len(a.data) for a in archive if a.round != round_name)
    return max(0, min(ROUND_LIMIT, STUDY_LIMIT - others))


def finished(trials: list[Trial]) -> list[Trial]:
    return [t for t in trials if (t.status.phase or "Pending") in FINISHED]


def interval(rounds: int) -> float:
    """Seconds between a running Round's archive writes when `rounds` Rounds have entries
    in its Study: 30 s for up to six, then 5 s per Round (120 Rounds: every 10 minutes)."""
    return max(INTERVAL_SECONDS, STUDY_WRITE_SECONDS * rounds)


def due(state: ArchiveState | None, trials: list[Trial], phase: str | None, now: dt.datetime,
        rounds: int = 1) -> bool:
    """Is it time to write the Round's archive? When a trial has finished since the last
    write: at once when the Round ended or for its first finished trial, else at most every
    `interval(rounds)` seconds, `rounds` the Rounds with entries in its Study."""
    done = len(finished(trials))
    if state is None:
        return done > 0
    if state.trials == done and state.phase == (phase or ""):
        return False
    if phase in ("Succeeded", "Failed"):
        return True
    try:
        last = dt.datetime.strptime(state.time, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return True
    return (now - last).total_seconds() >= interval(rounds) and done != state.trials
