"""Keep each Round's results in its Study's status, so that they survive the Round.

Two moments write the archive (core/archive.py decides what goes in):
- while the Round runs, as its trials finish (at most every 30 s; at once when it ends),
  from the Round's pass (`keep`);
- when the Round is deleted, before kopf lets it go (`register`: a deletion handler, so
  the Round's finalizer holds it until its Trials are archived). With background
  deletion (kubectl, Flux) the Trials are all still there then; with foreground deletion
  (Argo CD's default) the garbage collector may delete finished Trials first, which the
  first kind of write archived already.
Entries of earlier writes are merged, never dropped, and the Study owns them: they go
when the Study goes.

A Round's first write and the deletion's read the Study and write its whole archive, on
the condition that the Study did not change meanwhile. The running Round's later writes
(every 30 s) replace only its own entry, from the Study as kopf's index holds it: a JSON
patch that tests the entry at that position is still this Round's, then replaces it. With
many Rounds in one Study, each of those writes read the whole Study (up to 900 KiB) and
sent the whole archive back, and collided with the other Rounds' writes (409s).
"""
from __future__ import annotations

import copy
import datetime as dt
import logging
from typing import Any

import kopf
import pydantic
from kubernetes.client.rest import ApiException

from ..api import GROUP, VERSION, Round, Study, Trial
from ..api.common import rfc3339
from ..api.round import ArchiveState, RoundStatus
from ..api.study import RoundArchive
from ..core import archive as core
from .kube import Kube, classify

log = logging.getLogger("kubetune")
TIMEOUT = 10


def write(kube: Kube, namespace: str, study_name: str, rnd: Round, trials: list[Trial],
          now: dt.datetime) -> ArchiveState | None:
    """Merge `trials` into the Study's archive entry for `rnd`; the new state, or None when
    the Study is gone. Raises ApiException (a 409 when the Study changed meanwhile: the
    next pass tries again)."""
    try:
        raw = kube.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "studies", study_name,
                                                       _request_timeout=TIMEOUT)
    except ApiException as e:
        if e.status == 404:
            return None
        raise classify(e, "get", "studies", namespace, GROUP) from None
    if raw["metadata"].get("deletionTimestamp"):
        return None  # the Study goes too: nothing outlives it
    study = Study.model_validate(raw)
    entries = study.status.archive
    at = _position(entries, rnd.metadata.name)
    kept, entry = _merged_entry(study, rnd, trials, now, entries[at] if at is not None else None)
    done = len(core.finished(trials))
    if entry is None:
        message = (f"the Study's archive has no room left for this Round's {len(kept)} trials; export it with "
                   f"`kubetune export {rnd.metadata.name}` before deleting it")
        log.warning("Round %s/%s: %s", namespace, rnd.metadata.name, message)
        return ArchiveState(study=study_name, trials=done, phase=rnd.status.phase or "", time=rfc3339(now),
                            message=message)
    updated = [a for a in entries if a.round != rnd.metadata.name] + [entry]
    body = {
        "metadata": {"resourceVersion": raw["metadata"]["resourceVersion"]},  # refused if the Study changed since
        "status": {"archive": [a.wire() for a in updated]},
    }
    try:
        kube.custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, "studies", study_name, body,
                                                          _request_timeout=TIMEOUT)
    except ApiException as e:
        if e.status == 404:
            return None
        raise classify(e, "patch", "studies/status", namespace, GROUP) from None
    return _state(study_name, rnd, entry, done)


_NOT_HERE = object()


def replace(kube: Kube, study_raw: dict[str, Any], rnd: Round, trials: list[Trial],
            now: dt.datetime) -> ArchiveState | None | object:
    """Rewrite only `rnd`'s entry of the Study's archive, found in `study_raw` (the index's
    copy): the new state, None when the Study is gone, or _NOT_HERE when the entry is not
    there (the first write), does not fit, or moved (the JSON patch's test failed): then
    `write` does it from a fresh read."""
    study = Study.model_validate(study_raw)
    name = rnd.metadata.name
    at = _position(study.status.archive, name)
    if at is None:
        return _NOT_HERE
    _, entry = _merged_entry(study, rnd, trials, now, study.status.archive[at])
    if entry is None:
        return _NOT_HERE  # `write` says there is no room, from a fresh read
    ops = [{"op": "test", "path": f"/status/archive/{at}/round", "value": name},
           {"op": "replace", "path": f"/status/archive/{at}", "value": entry.wire()}]
    try:
        answer = kube.json_patch_custom_status("studies", rnd.metadata.namespace or "", study.metadata.name, ops)
    except ApiException as e:
        if e.status == 422:  # the entry is not where the index said: the index was behind
            return _NOT_HERE
        raise
    if answer is None:
        return None
    return _state(study.metadata.name, rnd, entry, len(core.finished(trials)))


def _position(entries: list[RoundArchive], round_name: str) -> int | None:
    return next((i for i, a in enumerate(entries) if a.round == round_name), None)


def _merged_entry(study: Study, rnd: Round, trials: list[Trial], now: dt.datetime,
                  old: RoundArchive | None) -> tuple[list[Trial], RoundArchive | None]:
    """The trials to archive (`old`'s merged with `trials`) and `rnd`'s new entry, within the
    room the Study's other entries leave (None: no room)."""
    kept = core.merged(old, rnd, trials)
    return kept, core.entry(rnd, kept, study.spec.objective.goal, now, core.room_for(study.status.archive,
                                                                                        rnd.metadata.name))


def _state(study_name: str, rnd: Round, entry: RoundArchive, done: int) -> ArchiveState:
    thinned = f"; curves thinned to {entry.curve_points} points" if entry.curve_points < core.CURVE_STEPS[0] else ""
    return ArchiveState(study=study_name, trials=done, phase=rnd.status.phase or "", time=entry.time,
                        message=f"{entry.trials} trials archived{thinned}" if thinned else "")


def keep(kube: Kube, study_raw: dict[str, Any] | None, rnd: Round, trials: list[Trial], status: RoundStatus,
         now: dt.datetime) -> ArchiveState | None:
    """The Round pass's part: archive the finished trials when it is time (core.due). Returns
    the Round's new status.archive; the old one when nothing was written or the write must
    be tried again."""
    if study_raw is None:
        return status.archive
    rounds = len((study_raw.get("status") or {}).get("archive") or ())
    if not core.due(status.archive, trials, status.phase, now, rounds):
        return status.archive
    current = rnd.model_copy(update={"status": status})
    done = core.finished(trials)
    try:
        state = replace(kube, study_raw, current, done, now)
        if state is _NOT_HERE:
            state = write(kube, rnd.metadata.namespace or "", study_raw["metadata"]["name"], current, done, now)
    except ApiException as e:  # a 409: another Round of the Study archived at the same moment
        (log.info if e.status == 409 else log.warning)(
            "Round %s/%s: could not archive its results yet (%s); retrying on the next pass",
            rnd.metadata.namespace, rnd.metadata.name, getattr(e, "reason", e))
        return status.archive
    return state if state is not None else status.archive


def register(registry: kopf.OperatorRegistry, cfg: Any) -> None:
    """The deletion handler: a Round being deleted archives every Trial it still has
    (running ones as they stand) before its finalizer goes."""

    @kopf.on.delete(GROUP, VERSION, "rounds", id="round_archive", registry=registry, retries=10, backoff=3)
    def round_deleted(body: kopf.Body, namespace: str, name: str, **_: Any) -> None:
        raw = copy.deepcopy(dict(body))
        try:
            rnd = Round.model_validate(raw)
        except pydantic.ValidationError:
            return  # an invalid Round never ran a trial
        if not cfg.indexes:  # the operator's Trial watch has not listed yet: it does not know them all
            raise kopf.TemporaryError(f"Round {name}'s Trials are not all known yet", delay=1)
        trials = cfg.trials.of(list(cfg.indexes["trial_index"].get((namespace, name), ())))  # parsed already
        if not trials and rnd.status.archive is None:
            return
        try:
            state = write(cfg.kube, namespace, rnd.spec.study_ref.name, rnd, trials, cfg.clock())
        except ApiException as e:
            raise kopf.TemporaryError(f"could not archive Round {name}'s results before its deletion: {e}",
                                      delay=3) from None
        if state is not None:
            log.info("Round %s/%s deleted; %d trials kept in Study %s's status.archive", namespace, name,
                     len(trials), rnd.spec.study_ref.name)
