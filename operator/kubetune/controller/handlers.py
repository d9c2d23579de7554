"""kopf handlers: thin adapters that read indexes, call the core, and carry out its plans.

Indexes keep an in-memory view of Studies, Rounds (kopf's), Trials and trial Pods (the
operator's own list and watch, list_watch.py: they bring most of the events, and kopf's
per-event machinery cost ten times a plain watch's), so a reconcile pass never lists the
API. Watch events drive the passes: a trial pod that
changes phase queues its Trial, a Trial that changes phase queues its Round (and
itself), a new Round or a Round whose spec changed queues the Round; a work queue
(`workqueue.py`) runs the passes in a bounded thread pool, one at a time per object.
Loops that queue every Round and unfinished Trial now and then (`sweep.py`) only catch
what an event could not (a failed pass, a lost watch) and poll Prometheus. Passes are level-triggered and every write is idempotent (deterministic
names, create-or-ignore, status patches), so an operator restart at any moment loses
nothing and duplicates nothing.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass, field
from typing import Any, Mapping

import kopf
import pydantic
import urllib3
from kubernetes.client.rest import ApiException

from ..analysis.cache import AnalysisCache
from ..api import FINISHED, GROUP, VERSION, Round, Study, Trial
from ..api.common import Condition, get_condition, rfc3339, set_condition
from ..api.validation import model_problems, problems
from ..core import kstatus
from ..core.curves import merge
from ..core.round_plan import LABEL_TRIAL, forget_round, only_recounts, phase_of, plan_round, round_key
from ..core.settings import resolve
from ..core.stopping_policy import stop_decision
from ..core.trial_plan import end_trial, plan_trial, pod_name
from ..metrics import operator_metrics as m
from ..sampling import AlgorithmUnavailable
from ..space import ParameterNameClash
from ..memo import Memo
from ..metrics.prometheus import PrometheusClient, PrometheusError
from ..workload import queue_name, render_pod, training_container, trial_workload
from . import archive
from .adoption import plan_study_status
from .index_keys import ByName
from .kube import Forbidden, Kube
from . import workload_handlers as workloads
from .list_watch import ListWatch, custom_lister
from .peering import GROUP as PEERING_GROUP, VERSION as PEERING_VERSION, Peering, PeeringGate
from .pod_index import PodIndex
from .pods import pod_view
from .round_curves import RoundCurves
from .sweep import every, rounds, unfinished_trials
from . import trial_models
from .trial_index import TrialIndex
from .trial_models import TrialModels
from .workqueue import WorkQueue
from .writes import Writes

log = logging.getLogger("kubetune")


@dataclass
class OperatorConfig:
    kube: Kube
    prometheus: PrometheusClient | None = None
    reconcile_seconds: float = 5.0
    """How often the safety-net timers run a pass over each Round and unfinished Trial
    (watch events start passes at once; the timers catch what an event could not)."""
    poll_seconds: float = 15.0
    polls_per_second: float = 0.0
    """Metric polls of running trials per second, all trials together (0: no limit). A poll
    that read new points writes the Trial's status, so at 3,600 running trials polled every
    15 s the writes alone would be 240 a second: a trial is then polled every
    `poll_interval()` seconds instead. The operator sets half its client-side qps."""
    stop_grace_seconds: int = 30
    backoff_seconds: float = 10.0
    forbidden_retry_seconds: float = 60.0  # after a 403: RBAC does not change by itself in seconds
    clock: Any = field(default=lambda: dt.datetime.now(dt.timezone.utc))
    analyses: AnalysisCache = field(default_factory=AnalysisCache)
    trials: TrialModels = field(default_factory=TrialModels)
    workers: int = 8
    """Reconcile passes that run at once, each in its own thread (API calls never block kopf's loop)."""
    writes: Writes = field(default_factory=Writes)
    _last_query: dict[str, float] = field(default_factory=dict)
    _locks: dict[tuple[str, str, str], threading.Lock] = field(default_factory=dict)
    _phases: dict[tuple[str, str, str], Any] = field(default_factory=dict)  # last phase seen, by kind/ns/name
    indexes: dict[str, Any] = field(default_factory=dict)
    """kopf's Studies and Rounds (taken from the first handler call), the operator's own Trials
    and trial pods (list_watch.py), once all of them hold what the API server had: passes wait
    for it, as kopf's handlers wait for kopf's."""
    namespaces: tuple[str, ...] = ()  # watched; () = the whole cluster (the own watches' scope)
    peering: Peering | None = None
    """kopf's peering, when replicas share one (passes wait while a peer holds it: peering.py)."""
    pods: PodIndex = field(default_factory=lambda: PodIndex(LABEL_TRIAL))
    _kopf_indexes: dict[str, Any] = field(default_factory=dict)
    _watches: list[ListWatch] = field(default_factory=list)
    analysis_seconds: float = 10.0
    """A running Round's analysis is recomputed at most this often (it runs fANOVA; with a
    pass on every trial's phase change it would otherwise hold the workers that start the
    next trials). A finished Round's is always current."""
    analysis_share: float = 0.05
    """...and no more often than keeps it under this share of a core: one that took 2.6 s
    (10,000 trials) comes every 52 s, not every 10 s (26% of a core for that Round alone)."""
    _analyzed: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)  # when, seconds it took
    _parsed: Memo[tuple[Study, Round]] = field(default_factory=Memo)
    """Per Round, its Study and itself parsed, while neither changes (resourceVersions): every
    Trial pass reads both, and parsing them was 7% of the operator's CPU at 40 x 30."""
    status_seconds: float = 2.0
    """A Round's status that only recounts (counts, progress, the best trial: only_recounts)
    is written at most this often, and never by a pass that created trials: that pass leaves
    it to one this many seconds later, which writes it with every trial that ended or started
    meanwhile counted. When a wave of trials ends together, each Round then writes once for
    the wave, not once per successor, and no write stands between two successors (a Round's
    status write took 14 ms of the API server's CPU here, three creates' worth). A new phase
    or condition is written at once; a recount never waits longer than this."""
    _held: dict[tuple[str, str, str], float] = field(default_factory=dict)  # Round -> when its recount is written
    _status_written: dict[tuple[str, str, str], float] = field(default_factory=dict)  # Round -> last written
    _expected: dict[tuple[str, str, str], tuple[float, str, Any, frozenset[str]]] = field(default_factory=dict)
    _put_off: set[tuple[str, str, str]] = field(default_factory=set)  # passes waiting for _expected
    _not_before: dict[tuple[str, str, str], float] = field(default_factory=dict)  # failed passes' back-off
    workloads: "workloads.WorkloadStore" = field(default_factory=lambda: workloads.WorkloadStore())
    """Trials' Jobs, JobSets, ... as the watches last saw them (workload_handlers.py)."""
    watched_kinds: set[tuple[str, str]] | None = None  # the workload kinds watched: (apiVersion, kind)
    sweepers: list[Any] = field(default_factory=list)  # asyncio tasks that queue the safety net's keys (sweep.py)

    def __post_init__(self) -> None:
        self.trial_store = TrialIndex(self.trials)
        self.queue = WorkQueue(lambda key: run_pass(self, key), self.workers)  # type: ignore[arg-type]
        self.curves = (RoundCurves(self.prometheus, self.poll_seconds, interval=self.poll_interval)
                       if self.prometheus is not None else None)

    def status_wait(self, key: tuple[str, str, str], created: bool, changed: bool, recount: bool) -> float | None:
        """None when this Round pass writes its status now; else the seconds after which the
        Round's pass that writes it is due (status_seconds). `changed`: the status differs from
        the one written; `recount`: only in what every pass recounts."""
        now = time.monotonic()
        if not changed:
            self._held.pop(key, None)
            return None
        if recount:
            until = self._held.get(key)
            if until is None:
                until = self._status_written.get(key, -1e18) + self.status_seconds
                if created:
                    until = max(until, now + self.status_seconds)
            if until > now:
                self._held[key] = until
                return until - now
        self._held.pop(key, None)
        self._status_written[key] = now
        return None

    def lock(self, key: tuple[str, str, str]) -> threading.Lock:
        """One pass at a time per object, whether a timer or the work queue started it."""
        return self._locks.setdefault(key, threading.Lock())

    def analysis_due(self, namespace: str, name: str, now_or_never: bool) -> bool:
        at = time.monotonic()
        last, took = self._analyzed.get((namespace, name), (-1e18, 0.0))
        if now_or_never or at - last >= max(self.analysis_seconds, took / self.analysis_share):
            self._analyzed[(namespace, name)] = (at, took)
            return True
        return False

    def analyzed(self, namespace: str, name: str, seconds: float) -> None:
        """How long the analysis that analysis_due allowed took: it spaces out the next one.
        A Round forgotten meanwhile (deleted during its pass) stays forgotten."""
        found = self._analyzed.get((namespace, name))
        if found is not None:
            self._analyzed[(namespace, name)] = (found[0], seconds)

    def expect(self, key: tuple[str, str, str], index: str, index_key: Any, names: list[str]) -> None:
        """What a pass just created (Trials of a Round, the pod of a Trial): the object's next
        pass waits until the watch has brought them, as the ReplicaSet controller's
        expectations do, instead of planning them again from an index that lacks them."""
        if names:
            self._expected[key] = (time.monotonic(), index, index_key, frozenset(names))

    def expecting(self, key: tuple[str, str, str]) -> bool:
        """Does `key` still wait for objects it created to reach the indexes (at most 10 s)?"""
        found = self._expected.get(key)
        if found is None:
            return False
        at, index, index_key, names = found
        seen = {trial_models.name(e) for e in _entries(self.indexes.get(index, {}), index_key)}
        if names <= seen or time.monotonic() - at > 10.0:
            self._expected.pop(key, None)
            return False
        return True

    def study_and_round(self, namespace: str, study_raw: Mapping[str, Any],
                        round_raw: Mapping[str, Any]) -> tuple[Study, Round]:
        """The Study and the Round parsed, as a Trial pass reads them; shared by the passes,
        which never change them. The Study comes without its Rounds' summaries and archive
        (status.rounds, status.archive): no Trial pass reads them, and each Round would
        otherwise hold its own copy of results that grow with every Round's trials (+15 MiB
        at 40 x 30)."""
        def parse() -> tuple[Study, Round]:
            status = {k: v for k, v in (study_raw.get("status") or {}).items() if k not in _NOT_FOR_TRIALS}
            return Study.model_validate({**study_raw, "status": status}), Round.model_validate(round_raw)
        versions = ((study_raw.get("metadata") or {}).get("resourceVersion"),
                    (round_raw.get("metadata") or {}).get("resourceVersion"))
        if None in versions:
            return parse()  # nothing tells a change apart
        return self._parsed.get((namespace, round_raw["metadata"]["name"]), versions, parse)

    def put_off(self, key: tuple[str, str, str]) -> float | None:
        """None when `key`'s pass may run now; else it waits for what its last pass created:
        the event that brings the last of them queues it (arrived), and these seconds are
        the safety net's (when the expectation lapses)."""
        if not self.expecting(key):
            self._put_off.discard(key)
            return None
        self._put_off.add(key)
        if not self.expecting(key):  # arrived between the two looks, before arrived() could know
            self._put_off.discard(key)
            return None
        m.PUT_OFF.labels(key[0]).inc()
        at = self._expected.get(key, (time.monotonic(),))[0]
        return max(0.5, 10.0 - (time.monotonic() - at))

    def arrived(self, key: tuple[str, str, str]) -> bool:
        """Is `key` a pass put off for its creations, all of which the indexes now hold?"""
        if key not in self._put_off or self.expecting(key):
            return False
        self._put_off.discard(key)
        return True

    def changed(self, key: tuple[str, str, str], value: Any) -> bool:
        """Has `value` (a phase, a generation) changed since the last event about the object?"""
        old = self._phases.get(key, _UNSEEN)
        self._phases[key] = value
        return old != value

    def back_off(self, key: tuple[str, str, str], seconds: float) -> float:
        """A failed pass: no pass over `key` before `seconds` from now, whatever event comes."""
        self._not_before[key] = time.monotonic() + seconds
        return seconds

    def backing_off(self, key: tuple[str, str, str]) -> float:
        """Seconds left of `key`'s back-off (0 when none; a pass that ran clears it)."""
        left = self._not_before.get(key, 0.0) - time.monotonic()
        if left <= 0.05:
            self._not_before.pop(key, None)
            return 0.0
        return left

    def known(self, key: tuple[str, str, str], value: Any) -> None:
        """What a pass already acted on: an event that brings just this is not a change."""
        self._phases[key] = value

    @contextlib.contextmanager
    def knowing(self, key: tuple[str, str, str], value: Any) -> Iterator[None]:
        """known(key, value) for a write about to be made; undone if the write fails."""
        before = self._phases.get(key, _UNSEEN)
        self._phases[key] = value
        try:
            yield
        except BaseException:
            if self._phases.get(key, _UNSEEN) == value:
                if before is _UNSEEN:
                    self._phases.pop(key, None)
                else:
                    self._phases[key] = before
            raise

    def poll_interval(self) -> float:
        """Seconds between two polls of one running trial: poll_seconds, or longer when the
        trials being polled would otherwise poll (and write) more than polls_per_second."""
        if self.polls_per_second <= 0:
            return self.poll_seconds
        return max(self.poll_seconds, len(self._last_query) / self.polls_per_second)

    def due(self, namespace: str, name: str, now: float) -> bool:
        """Is it time to query Prometheus for this trial again (every poll_interval())?"""
        key = f"{namespace}/{name}"
        if now - self._last_query.get(key, -1e18) < self.poll_interval():
            return False
        self._last_query[key] = now
        return True

    def done_polling(self, namespace: str, name: str) -> None:
        self._last_query.pop(f"{namespace}/{name}", None)
        if self.curves is not None:
            self.curves.done(namespace, name)

    def forget_trial(self, namespace: str, name: str) -> None:
        self.done_polling(namespace, name)
        self.trials.forget(namespace, name)
        self._forget(("Trial", namespace, name))

    def forget_round(self, namespace: str, name: str) -> None:
        self.analyses.forget(round_key(namespace, name))
        forget_round(namespace, name)
        if self.curves is not None:
            self.curves.forget_round(namespace, name)
        self._analyzed.pop((namespace, name), None)
        self._parsed.forget((namespace, name))
        self._forget(("Round", namespace, name))

    def forget_pod(self, namespace: str, name: str) -> None:
        self._phases.pop(("Pod", namespace, name), None)

    def _forget(self, key: tuple[str, str, str]) -> None:
        self.writes.forget(key)
        self._expected.pop(key, None)
        self._put_off.discard(key)
        self._not_before.pop(key, None)
        self._held.pop(key, None)
        self._status_written.pop(key, None)
        self._locks.pop(key, None)
        self._phases.pop(key, None)


_UNSEEN = object()
_NOT_FOR_TRIALS = ("rounds", "archive")  # what a Trial pass's Study leaves out (OperatorConfig.study_and_round)
FINISHED_ROUND = ("Succeeded", "Failed")


def _plain(body: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a watched object (JSON: dicts, lists, scalars) the operator may keep.
    copy.deepcopy does the same at about four times the cost, and every event of every
    Trial, Round and trial pod goes through here. metadata.managedFields is left out: the
    operator never reads it, and it is often the largest part of a pod's metadata."""
    out = {k: _json_copy(v) for k, v in body.items() if k != "metadata"}
    meta = body.get("metadata")
    if meta is not None:
        out["metadata"] = {k: _json_copy(v) for k, v in meta.items() if k != "managedFields"}
    return out


def _json_copy(value: Any) -> Any:
    t = type(value)
    if t is dict:
        return {k: _json_copy(v) if type(v) in _NESTED else v for k, v in value.items()}
    if t is list:
        return [_json_copy(v) if type(v) in _NESTED else v for v in value]
    if isinstance(value, Mapping):  # a kopf view
        return {k: _json_copy(v) for k, v in value.items()}
    return value


_NESTED = (dict, list)


def _entries(index: Any, key: Any) -> list[dict[str, Any]]:
    """A copy of an index's entries under `key`. Sync handlers run in threads while
    kopf's event loop updates its index stores, so iterating a store itself while
    parsing each entry failed now and then with 'dictionary changed size during
    iteration'; list() copies it in one step under the GIL."""
    return list(index.get(key, ()))


def _one(index: Any, key: Any) -> dict[str, Any] | None:
    found = _entries(index, key)
    return found[0] if found else None


def _status_dict(model: Any) -> dict[str, Any]:
    return model.model_dump(by_alias=True, mode="json", exclude_none=True)


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) that turns `old` into `new`: keys that disappeared
    become null, maps are diffed recursively, everything else is replaced."""
    patch: dict[str, Any] = {k: None for k in old if k not in new}
    for k, v in new.items():
        if isinstance(v, Mapping) and isinstance(old.get(k), Mapping):
            sub = merge_patch(old[k], v)
            if sub:
                patch[k] = sub
        elif old.get(k) != v or k not in old:
            patch[k] = v
    return patch


def _study_of(round_raw: Mapping[str, Any]) -> str | None:
    return ((round_raw.get("spec") or {}).get("studyRef") or {}).get("name")


def _write_status(patch: kopf.Patch, old: Mapping[str, Any] | None, new: Any) -> None:
    diff = merge_patch(old or {}, _status_dict(new))
    if diff:
        patch.status.update(diff)


def _owner(obj: Mapping[str, Any], kind: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "name": obj["metadata"]["name"],
        "uid": obj["metadata"].get("uid", ""), "controller": True, "blockOwnerDeletion": True,
    }


def _forbidden(cfg: "OperatorConfig", body: Mapping[str, Any], patch: kopf.Patch, e: Forbidden,
               post: Any) -> kopf.TemporaryError:
    """A 403 is a configuration problem: say so on the object (Ready=False/Forbidden, logged
    once) and in a Warning Event; the error returned says when to retry: slowly, not every
    few seconds."""
    _set_ready_false(patch, _plain(body), "Forbidden", str(e), cfg.clock())
    post(body, reason="Forbidden", message=str(e))
    return kopf.TemporaryError(f"{e} (retrying in {cfg.forbidden_retry_seconds:g} s)",
                               delay=cfg.forbidden_retry_seconds)


def register(registry: kopf.OperatorRegistry, cfg: OperatorConfig) -> None:
    """Register every handler with the given intervals (tests use short ones)."""

    @kopf.on.login(id="login", registry=registry)
    def login(**kwargs: Any) -> Any:
        """The pod's service account in a cluster, KUBECONFIG elsewhere."""
        return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)

    # Indexes are async: kopf runs a sync handler in its thread pool, a hop per event and index
    # for a deep copy that takes microseconds.
    @kopf.index(GROUP, VERSION, "studies", id="study_index", registry=registry)
    async def study_index(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict:
        return {(namespace, name): _plain(body)}

    @kopf.index(GROUP, VERSION, "rounds", id="round_index", registry=registry)
    async def round_index(namespace: str, name: str, body: kopf.Body, spec: kopf.Spec, **_: Any) -> dict:
        """Each Round under its Study, and by its name for the passes the work queue runs."""
        entry = _plain(body)
        return {(namespace, _study_of(body)): entry, ByName(namespace, name): entry}

    # The safety net (sweep.py): every Round each resync interval, every unfinished Trial at
    # least once per poll interval (the Trial's pass is what reads Prometheus), queued with the
    # events' keys. No kopf timer per object: no finalizer on Trials, no second thread pool.
    trial_interval = min(cfg.reconcile_seconds, cfg.poll_seconds) if cfg.prometheus else cfg.reconcile_seconds

    @kopf.on.startup(id="workqueue", registry=registry)
    async def start_queue(**_: Any) -> None:
        if cfg.peering is not None:
            cfg.queue.pause()  # until the peering has been read (_gate)
        await cfg.queue.start()
        cfg.sweepers = [
            asyncio.create_task(every(cfg.reconcile_seconds, lambda: rounds(cfg.indexes), cfg.queue.add),
                                name="kubetune-round-sweep"),
            asyncio.create_task(every(trial_interval, lambda: unfinished_trials(cfg.indexes), cfg.queue.add),
                                name="kubetune-trial-sweep"),
        ]
        loop = asyncio.get_running_loop()
        custom, core = cfg.kube.watch_clients()
        synced = lambda: loop.call_soon_threadsafe(_take_indexes, cfg, {})  # noqa: E731
        cfg._watches = [
            ListWatch("trials", custom_lister(custom, GROUP, VERSION, "trials"), cfg.namespaces, cfg.trial_store,
                      deliver=lambda type, body: loop.call_soon_threadsafe(trial_changed, cfg, type, body),
                      on_synced=synced).start(),
            ListWatch("pods", functools.partial(_list_pods, core), cfg.namespaces, cfg.pods,
                      deliver=lambda type, pod: loop.call_soon_threadsafe(pod_changed, cfg, type, pod),
                      on_synced=synced, label_selector=LABEL_TRIAL).start(),
        ]
        if cfg.peering is not None:
            cfg._watches.append(_gate(cfg, loop, custom, synced))

    @kopf.on.cleanup(id="workqueue_stop", registry=registry)
    async def stop_queue(**_: Any) -> None:
        for task in cfg.sweepers:
            task.cancel()
        await asyncio.gather(*cfg.sweepers, return_exceptions=True)
        cfg.sweepers = []
        await asyncio.gather(*(asyncio.to_thread(w.stop) for w in cfg._watches))
        cfg._watches = []
        await cfg.queue.stop()

    # Events queue passes (async handlers: they only look at the event, in the loop). What
    # the operator keeps per object (a Round's sampler and analysis, a trial's last query
    # time) goes with the object: a long-running operator sees thousands of them.
    @kopf.on.event(GROUP, VERSION, "rounds", id="round_event", registry=registry)
    async def round_event(type: str | None, namespace: str, name: str, body: kopf.Body, **kwargs: Any) -> None:
        _take_indexes(cfg, kwargs)
        key = ("Round", namespace, name)
        if type == "DELETED":
            cfg.forget_round(namespace, name)
            return
        cfg.writes.seen(key, body.get("metadata", {}).get("resourceVersion"))
        if cfg.changed(key, body.get("metadata", {}).get("generation")):  # new, or its spec changed
            cfg.queue.add(key)

    @kopf.timer(GROUP, VERSION, "studies", id="study", interval=cfg.reconcile_seconds, backoff=cfg.backoff_seconds, registry=registry)
    def study_timer(body: kopf.Body, namespace: str, name: str, patch: kopf.Patch, round_index: kopf.Index,
                    **_: Any) -> None:
        raw = _plain(body)
        found = problems(raw)
        now = cfg.clock()
        if found:
            _set_ready_false(patch, raw, "InvalidSpec", "; ".join(map(str, found)), now)
            return
        study = Study.model_validate(raw)
        rounds = [Round.model_validate(r) for r in _entries(round_index, (namespace, name)) if not problems(r)]
        planned = plan_study_status(study, rounds, now)
        planned.conditions = kstatus.done(planned.conditions, "Valid", "spec is valid", now, study.metadata.generation)
        _write_status(patch, raw.get("status"), planned)

    archive.register(registry, cfg)  # a Round being deleted hands its Trials' results to its Study first
    workloads.register(registry, cfg)  # trials that run as Jobs, JobSets, PyTorchJobs, ...


_INDEXES = ("study_index", "round_index")  # kopf's; the Trials' and the trial pods' are the operator's own


def _take_indexes(cfg: OperatorConfig, kwargs: Mapping[str, Any]) -> None:
    """Take kopf's indexes (the same objects for the operator's life) from a handler's
    arguments; once the operator's own watches have listed too, the passes may read them all."""
    if cfg.indexes:
        return
    if not cfg._kopf_indexes and all(k in kwargs for k in _INDEXES):
        cfg._kopf_indexes = {k: kwargs[k] for k in _INDEXES}
    if cfg._kopf_indexes and cfg._watches and all(w.synced.is_set() for w in cfg._watches):
        cfg.indexes = {**cfg._kopf_indexes, "trial_index": cfg.trial_store, "pod_index": cfg.pods}


def _gate(cfg: OperatorConfig, loop: asyncio.AbstractEventLoop, custom: Any, synced: Callable[[], Any]) -> ListWatch:
    """Passes wait while a peer holds the peering (peering.py): the queue, paused from its
    start, resumes once the peering objects have been read and kopf's rule lets this operator
    act, and pauses whenever it says a peer is ahead. `synced`: what the other watches call
    once listed (the indexes are taken once every watch has listed)."""
    assert cfg.peering is not None
    peering = cfg.peering
    said = False  # that passes wait: then their resuming is said too

    def turned(acting: bool, why: str) -> None:
        nonlocal said
        if acting:
            cfg.queue.resume()
            if said:
                log.info("passes resume: no live peer of priority %d or more holds %s", peering.priority,
                         peering.where(None))
        else:
            cfg.queue.pause()
            said = True
            log.warning("passes wait: %s", why)

    gate = PeeringGate(peering, turned)
    decide = lambda *_: loop.call_soon_threadsafe(gate.decide) if watch.synced.is_set() else None  # noqa: E731
    watch = ListWatch(peering.plural, custom_lister(custom, PEERING_GROUP, PEERING_VERSION, peering.plural),
                      peering.namespaces, gate,
                      deliver=decide, on_synced=lambda: (synced(), decide()))
    cfg.sweepers.append(asyncio.create_task(gate.every(GATE_SECONDS), name="kubetune-peering-gate"))
    return watch.start()


GATE_SECONDS = 2.0  # a peer that stops renewing its keep-alive expires without an event: look this often


def _list_pods(core: Any, namespace: str | None, **params: Any) -> Any:
    if namespace is None:
        return core.list_pod_for_all_namespaces(**params)
    return core.list_namespaced_pod(namespace, **params)


def trial_changed(cfg: OperatorConfig, type: str, obj: Any) -> None:
    """A Trial's event (list_watch.py), in the loop. A Trial that is new, changed phase (not by
    this operator's own write: Writes, knowing) or went away queues its Round; an unfinished
    one whose phase changed, itself."""
    body = trial_models.body(obj)
    meta = body.get("metadata") or {}
    namespace, name = meta.get("namespace") or "", meta.get("name") or ""
    key = ("Trial", namespace, name)
    round_name = trial_models.round_name(body)
    if round_name and cfg.arrived(("Round", namespace, round_name)):
        # the last Trial its Round's pass created is in the index (the watch files it before
        # handing it on): the pass put off for it runs now, first in line, not after its wait
        cfg.queue.add(("Round", namespace, round_name), next_step=True)
    if type == "DELETED":
        cfg.forget_trial(namespace, name)
    else:
        cfg.writes.seen(key, meta.get("resourceVersion"))
        if _stale_finalizers(body):
            cfg.queue.add(key)  # finished or not, its pass takes the finalizer off
        phase = (body.get("status") or {}).get("phase")
        if not cfg.changed(key, phase):
            return
        if phase not in FINISHED:
            cfg.queue.add(key)
    if round_name:  # a Trial that appeared, ended or went away changes what its Round does next
        cfg.queue.add(("Round", namespace, round_name))


STALE_FINALIZERS = ("kubetune.io/finalizer", "kopf.zalando.org/KopfFinalizerMarker")
"""Finalizers operators before the work-queue sweep put on every unfinished Trial (a kopf
timer needs one; the operator's kopf setting, and kopf's default). Nothing needs one on a
Trial now, and kopf no longer watches Trials to take it off: the Trial's pass does, or
deleting such a Trial (its Round, its Study) would hang on it forever."""


def _stale_finalizers(body: Mapping[str, Any]) -> list[str]:
    return [f for f in (body.get("metadata") or {}).get("finalizers") or () if f in STALE_FINALIZERS]


def _let_go(cfg: OperatorConfig, key: tuple[str, str, str], raw: Mapping[str, Any], stale: list[str]) -> None:
    """Take the stale finalizers off a Trial (the others stay; the patch holds for the version
    read, so a finalizer added meanwhile is not lost: a conflict is retried)."""
    _, namespace, name = key
    meta = raw.get("metadata") or {}
    kept = [f for f in meta.get("finalizers") or () if f not in stale]
    try:
        cfg.kube.patch_custom_meta("trials", namespace, name,
                                   {"finalizers": kept or None, "resourceVersion": meta.get("resourceVersion")})
    except ApiException as e:
        if e.status != 404:
            raise
    log.info("Trial %s/%s: took off the finalizer %s an older operator left", namespace, name, ", ".join(stale))


def pod_changed(cfg: OperatorConfig, type: str, pod: Mapping[str, Any]) -> None:
    """A trial pod's event (list_watch.py), in the loop: a pod that changed phase, started
    terminating or went away queues its Trial; one that ended, as the first step of its
    successor."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    namespace, name = meta.get("namespace") or "", meta.get("name") or ""
    key = ("Pod", namespace, name)
    if type == "DELETED":
        cfg.forget_pod(namespace, name)
    elif not cfg.changed(key, (status.get("phase"), bool(meta.get("deletionTimestamp")))):
        return
    trial = (meta.get("labels") or {}).get(LABEL_TRIAL)
    if trial:
        cfg.queue.add(("Trial", namespace, trial),
                      next_step=type != "DELETED" and status.get("phase") in ("Succeeded", "Failed"))


_PLURAL = {"Round": "rounds", "Trial": "trials"}


def _current(cfg: OperatorConfig, key: tuple[str, str, str]) -> dict[str, Any] | None:
    """The object as the operator knows it best: the index's copy, or what its last write returned."""
    kind, namespace, name = key
    if kind == "Round":
        raw = _one(cfg.indexes["round_index"], ByName(namespace, name))
    else:
        round_name = _one(cfg.indexes["trial_index"], ByName(namespace, name))
        entry = next((t for t in _entries(cfg.indexes["trial_index"], (namespace, round_name))
                      if trial_models.name(t) == name), None) if round_name is not None else None
        raw = trial_models.body(entry) if entry is not None else None
    raw = raw if raw is not None else cfg.writes.unseen(key)  # created by a pass, not in the watch yet
    return cfg.writes.fresh(key, raw) if raw is not None else None


def _pass(cfg: OperatorConfig, key: tuple[str, str, str], raw: dict[str, Any]) -> None:
    """One pass over a Round or a Trial; its object's writes are made here, not by kopf."""
    kind, namespace, name = key
    idx, patch = cfg.indexes, kopf.Patch()
    started = time.monotonic()
    try:
        if kind == "Round":
            reconcile_round(cfg, raw, namespace, name, patch, idx["study_index"], idx["trial_index"],
                            _Others(idx["trial_index"], namespace, name))
        else:
            reconcile_trial(cfg, raw, namespace, name, patch, idx["study_index"], idx["round_index"],
                            idx["trial_index"], idx["pod_index"])
        phase = _new_phase(raw, patch) if kind == "Trial" else None
        if phase is None:
            _apply(cfg, key, raw, patch)
        else:
            # This pass acts on what it writes: the watch's echo of it is not news to the Trial
            # (its inputs, its pod and Prometheus, have their own events). Said before the write:
            # the echo often reaches kopf's loop before the call returns to this thread. Its
            # Round hears of it now, from this write (Writes), not after the watch; a trial
            # that ended first, as the first step of its successor.
            with cfg.knowing(key, phase):
                _apply(cfg, key, raw, patch)
            cfg.queue.add_threadsafe(("Round", namespace, trial_models.round_name(raw)),
                                     next_step=phase in FINISHED)
    except ApiException:
        m.RECONCILE_ERRORS.labels(kind).inc()
        raise
    finally:
        m.RECONCILE_SECONDS.labels(kind).observe(time.monotonic() - started)


def _created_not_indexed(cfg: OperatorConfig, namespace: str, round_name: str,
                         indexed: list[Any]) -> list[dict[str, Any]]:
    unseen = cfg.writes.unseen_where(
        "Trial", namespace, lambda b: trial_models.round_name(b) == round_name)
    if not unseen:
        return []
    names = {trial_models.name(t) for t in indexed}
    return [b for b in unseen if b["metadata"]["name"] not in names]


def _new_phase(raw: Mapping[str, Any], patch: kopf.Patch) -> str | None:
    """The phase this pass wrote, if it changed the Trial's."""
    phase = (patch.get("status") or {}).get("phase")
    return phase if phase is not None and phase != (raw.get("status") or {}).get("phase") else None


def _apply(cfg: OperatorConfig, key: tuple[str, str, str], raw: dict[str, Any], patch: kopf.Patch) -> None:
    kind, namespace, name = key
    wanted = dict(patch)
    if wanted.get("metadata"):
        cfg.kube.patch_custom_meta(_PLURAL[kind], namespace, name, wanted["metadata"])
    if wanted.get("status"):
        cfg.writes.wrote(key, raw, cfg.kube.patch_custom_status(_PLURAL[kind], namespace, name, wanted["status"]))


def _unavailable(e: Exception) -> bool:
    """A refusal that says the API server cannot serve now (unreachable, 5xx, 429), not that
    the request was wrong."""
    if isinstance(e, ApiException):
        return e.status is not None and (e.status >= 500 or e.status == 429 or e.status == 0)
    return True  # urllib3's connection errors and OSError: nothing answered


def _short(e: Exception) -> str:
    if isinstance(e, ApiException):
        return f"{e.status} {e.reason}"
    return type(e).__name__


def run_pass(cfg: OperatorConfig, key: tuple[str, str, str]) -> float | None:
    """The work queue's pass over `key`; the seconds after which to try again, or None.
    It never raises for a refusal of the API server: a 403 is said on the object and retried
    slowly; an API server that cannot serve now (restarting, overloaded: 5xx, 429, no
    answer) is a WARNING and retried in a few seconds; any other refusal is our error, an
    ERROR retried after `backoff_seconds`."""
    if not cfg.indexes:
        return 1.0  # kopf's indexes or the operator's own watches do not hold everything yet
    with cfg.lock(key):
        wait = cfg.backing_off(key)
        if wait > 0:
            return wait  # its last pass failed: an event meanwhile does not make the retry come sooner
        wait = cfg.put_off(key)  # what its last pass created is not in the indexes yet?
        if wait is not None:
            return wait
        raw = _current(cfg, key)
        if raw is None:
            return None  # gone
        finished = key[0] == "Trial" and (raw.get("status") or {}).get("phase") in FINISHED
        stale = _stale_finalizers(raw) if key[0] == "Trial" else []
        if finished and not stale:
            return None  # a finished Trial: nothing to do
        try:
            if stale:
                _let_go(cfg, key, raw, stale)
            if not finished:
                _pass(cfg, key, raw)
        except Forbidden as e:
            patch = kopf.Patch()
            slow = _forbidden(cfg, raw, patch, e, post=functools.partial(_post_warning, cfg))
            try:
                _apply(cfg, key, raw, patch)
            except ApiException:
                pass  # may not even write the status: the log line said it
            return cfg.back_off(key, float(slow.delay or cfg.forbidden_retry_seconds))
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as e:
            if _unavailable(e):
                log.warning("%s %s/%s: the API server is unavailable (%s); retrying in 5 s", *key, _short(e))
                return cfg.back_off(key, 5.0)
            log.error("%s %s/%s: the API server refused a call: %s; retrying in %g s", *key, e, cfg.backoff_seconds)
            return cfg.back_off(key, cfg.backoff_seconds)
    return None


def _post_warning(cfg: OperatorConfig, body: Mapping[str, Any], reason: str, message: str) -> None:
    """A Warning Event from a work-queue thread, through the operator's client (kopf's
    posting needs its loop's context)."""
    try:
        cfg.kube.warn(dict(body), reason=reason, message=message)
    except Exception as e:  # noqa: BLE001 - an Event is a courtesy: never worth failing the pass for
        log.warning("could not post a %s Event: %s", reason, e)


def _set_ready_false(patch: kopf.Patch, raw: dict, reason: str, message: str, now: dt.datetime) -> None:
    """Say in the Ready condition why the object cannot be acted on (once; no retry loop).
    Conditions that do not parse (written by hand) are replaced: they must not keep the
    reason from being said."""
    current = []
    found = (raw.get("status") or {}).get("conditions")
    for c in found if isinstance(found, list) else []:
        try:
            current.append(Condition.model_validate(c))
        except pydantic.ValidationError:
            pass
    updated = kstatus.stalled(current, reason, message, now, raw["metadata"].get("generation"))  # Ready=False, Stalled=True
    if [c.model_dump() for c in updated] != [c.model_dump() for c in current]:
        patch.status["conditions"] = [c.model_dump(by_alias=True, mode="json", exclude_none=True) for c in updated]
        patch.status["observedGeneration"] = raw["metadata"].get("generation")
        log.warning("%s %s: %s", raw.get("kind"), raw["metadata"].get("name"), message)


@dataclass(frozen=True)
class _Others:
    """The names of the Trials in a namespace that name another Round (or none)."""

    index: Any  # trial_index
    namespace: str
    round: str

    def __contains__(self, name: object) -> bool:
        return any(r != self.round for r in _entries(self.index, ByName(self.namespace, name)))


def reconcile_round(cfg: OperatorConfig, raw: dict, namespace: str, name: str, patch: kopf.Patch,
                    study_index: Any, trial_index: Any, others: Container[str]) -> None:
    if raw["metadata"].get("deletionTimestamp"):
        return  # being deleted: start nothing, keep nothing (its Trials go with it)
    now = cfg.clock()
    found = problems(raw)
    if found:
        _set_ready_false(patch, raw, "InvalidSpec", "; ".join(map(str, found)), now)
        return
    rnd = Round.model_validate(raw)
    study_raw = _one(study_index, (namespace, rnd.spec.study_ref.name))
    if study_raw is None or problems(study_raw):
        why = "not found" if study_raw is None else "invalid"
        _set_ready_false(patch, raw, "StudyNotFound" if study_raw is None else "StudyInvalid",
                         f"Study {rnd.spec.study_ref.name!r} is {why}; the Round waits for it", now)
        return
    study = Study.model_validate(study_raw)
    refs = raw["metadata"].get("ownerReferences") or []
    if study.metadata.uid and not any(r.get("uid") == study.metadata.uid for r in refs):
        owner = _owner(study_raw, "Study")
        owner["controller"] = False  # the user owns the Round's spec; the Study only cascades deletion
        patch.meta["ownerReferences"] = [*refs, owner]
    indexed = _entries(trial_index, (namespace, name))
    trials = cfg.trials.of([
        *(cfg.writes.fresh(("Trial", namespace, trial_models.name(t)), t, trial_models.version(t))
          for t in indexed),  # a Trial's own last write counts
        # and so does a Trial this Round created that the watch has not brought yet: the
        # expectation's wait lapses after 10 s, and a watch that lags longer (an operator
        # short of CPU) must not make the pass create the same Trial again with other parameters
        *(cfg.writes.fresh(("Trial", namespace, b["metadata"]["name"]), b)
          for b in _created_not_indexed(cfg, namespace, name, indexed))])
    try:
        plan = plan_round(study, rnd, trials, now, taken=others)
    except AlgorithmUnavailable as e:
        _set_ready_false(patch, raw, "AlgorithmUnavailable", str(e), now)
        return
    except ParameterNameClash as e:  # the baseline can change under a Round (adoption, an edit)
        _set_ready_false(patch, raw, "ParameterNameClash", str(e), now)
        return
    cfg.expect(("Round", namespace, name), "trial_index", (namespace, name), [t.metadata.name for t in plan.create])
    made = 0
    for t in plan.create:
        body = t.wire()
        body["metadata"]["ownerReferences"] = [_owner(raw, "Round")]
        body.pop("status", None)
        created = cfg.kube.create_custom("trials", namespace, body)
        if created is not None:
            made += 1
            m.TRIALS_CREATED.inc()
            log.info("Round %s/%s: created trial %s %s", namespace, name, t.metadata.name, t.spec.parameters)
            key = ("Trial", namespace, t.metadata.name)
            cfg.writes.created(key, created)
            cfg.known(key, None)  # the watch's ADDED (no phase yet) is not news: this pass is its pass
            # its pod now, not when the watch brings the Trial, and ahead of the burst's other
            # steps: the pod is what the successor waits for, and this step coalesces nothing
            cfg.queue.add_threadsafe(key, last_step=True)
    by_name = {t.metadata.name: t for t in trials}
    for trial_name, why in plan.stop:
        t = by_name[trial_name]
        if phase_of(t) in ("Pending", "Running"):
            ended = end_trial(t.status.model_copy(deep=True), why, now)
            cfg.kube.patch_custom_status("trials", namespace, trial_name,
                                         merge_patch(_status_dict(t.status), _status_dict(ended)))
            wl = trial_workload(study, rnd)
            if t.status.pod_name or wl is None:
                # a new Trial's pod may run before its status names it (its first status waits
                # for the pod's first event): a pod is named by its trial and attempt
                _stop_run(cfg, namespace, wl, t.status.pod_name or pod_name(t.metadata.name, max(t.status.attempts, 1)))
    status = plan.status
    this, written = ("Round", namespace, name), raw.get("status") or {}
    changed = bool(merge_patch(written, _status_dict(status)))
    wait = cfg.status_wait(this, made > 0, changed, changed and only_recounts(written, status))
    if wait is not None:
        cfg.queue.add_threadsafe(this, after=wait)  # the pass that writes it
        return
    if cfg.analysis_due(namespace, name, status.analysis is None or status.phase in FINISHED_ROUND):
        started = time.monotonic()
        status.analysis = cfg.analyses.of(study, rnd, trials)
        cfg.analyzed(namespace, name, time.monotonic() - started)
    for phase, count in status.counts.wire().items():
        m.TRIALS.labels(namespace, name, phase).set(count)
    status.archive = archive.keep(cfg.kube, study_raw, rnd, trials, status, now)  # results outlive the Round
    _write_status(patch, raw.get("status"), status)


def reconcile_trial(cfg: OperatorConfig, raw: dict, namespace: str, name: str, patch: kopf.Patch,
                    study_index: Any, round_index: Any, trial_index: Any, pod_index: Any) -> None:
    now = cfg.clock()
    try:
        trial = Trial.model_validate(raw)
    except pydantic.ValidationError as e:  # made by hand: the schema lets parameters through that the model refuses
        _set_ready_false(patch, raw, "InvalidSpec", "; ".join(map(str, model_problems(e))), now)
        return
    study_raw = _one(study_index, (namespace, trial.spec.study_ref.name))
    round_raw = _one(round_index, ByName(namespace, trial.spec.round_ref.name))  # not a scan of the Study's Rounds
    if round_raw is not None and _study_of(round_raw) != trial.spec.study_ref.name:
        round_raw = None  # a Round of that name under another Study is not this Trial's
    if study_raw is None or round_raw is None:
        if not any(r.get("kind") == "Round" for r in raw["metadata"].get("ownerReferences") or []):
            # made by hand: say so (a Round's own Trials are being deleted with it)
            study_ref, round_ref = trial.spec.study_ref.name, trial.spec.round_ref.name
            if study_raw is None:
                _set_ready_false(patch, raw, "StudyNotFound", f"Study {study_ref!r} is not found; "
                                 "the Trial waits for it", now)
            else:
                _set_ready_false(patch, raw, "RoundNotFound", f"Round {round_ref!r} of Study {study_ref!r} "
                                 "is not found; the Trial waits for it", now)
        return  # nothing to run against
    study, rnd = cfg.study_and_round(namespace, study_raw, round_raw)
    s = resolve(study, rnd)
    pods = _entries(pod_index, (namespace, trial.metadata.name))
    wl, queue = trial_workload(study, rnd), queue_name(study, rnd)
    if wl is not None:
        if trial.status.phase not in FINISHED:
            why = workloads.unavailable(cfg, wl)
            if why is not None:  # the trial waits, saying why, until the kind is served
                _set_ready_false(patch, raw, *why, now)
                return
        view = workloads.observe(cfg, namespace, trial, study, rnd, wl, pods)
    else:
        view = _pod_trial_view(cfg, namespace, trial, study, pods)
    curve, diverged, peers = None, None, []
    conditions = trial.status.conditions
    if (cfg.curves is not None and view is not None and trial.status.phase == "Running"
            and cfg.due(namespace, name, time.monotonic())):
        # one query for the whole Round, reaching back to its earliest running trial's start
        peers = cfg.trials.of(_entries(trial_index, (namespace, rnd.metadata.name)))
        starts = [_epoch(t.status.start_time) for t in peers if t.status.phase == "Running"]
        start = min([x for x in [*starts, _epoch(trial.status.start_time)] if x is not None],
                    default=now.timestamp() - 3600)
        try:
            curve, diverged = cfg.curves.observe(namespace, rnd.metadata.name, trial.metadata.name, s.metric,
                                                 start - 60, now.timestamp())
        except PrometheusError as e:
            m.PROMETHEUS_ERRORS.inc()
            conditions = set_condition(conditions, "MetricsAvailable", False, "PrometheusUnavailable",
                                       f"{e}; final results will still be read from the pod's termination message", now)
    stop = None
    if curve and view is not None and view.phase == "Running" and trial.status.phase == "Running" and diverged is None:
        stop = stop_decision(s, trial, merge(trial.status.curve, curve), peers)  # a curve was read: peers are too
    plan = plan_trial(trial, view, metric=s.metric, direction=s.direction, strategy=s.strategy,
                      max_retries=s.max_retries, now=now, curve=curve, stop=stop, diverged_step=diverged)
    if curve is not None:  # read: said with the curve's length, not the poll's (a poll with nothing new writes nothing)
        conditions = set_condition(conditions, "MetricsAvailable", True, "PrometheusQueried",
                                   f"{s.metric} read from Prometheus; the curve holds {len(plan.status.curve)} points",
                                   now)
    plan.status.conditions = conditions
    if stop is not None and plan.status.phase == "EarlyStopped":
        m.STOP_DECISIONS.labels(stop.rule).inc()
        log.info("Trial %s/%s stopped early: %s", namespace, name, stop.message)
    if plan.status.phase in FINISHED:
        cfg.done_polling(namespace, name)
    if plan.delete_pod:
        _stop_run(cfg, namespace, wl, plan.delete_pod)
    if plan.create_pod and wl is not None:
        trial.status = plan.status
        try:
            workloads.create(cfg, namespace, study, trial, wl, plan.create_pod, plan.status.attempts, queue)
        except ApiException as e:
            if e.status not in (400, 422):
                raise
            # the API server refuses the workload as written (its own schema, a webhook): a bad
            # spec that no retry can fix
            refused = _refusal(e)
            plan.status.phase, plan.status.pod_name = "Failed", None
            plan.status.message = f"the API server refused the {wl.kind}: {refused}"[:1000]
            plan.status.completion_time = rfc3339(now)
    elif plan.create_pod:
        trial.status = plan.status
        pod_body = render_pod(study, trial, plan.create_pod, plan.status.attempts, queue)
        cfg.expect(("Trial", namespace, name), "pod_index", (namespace, name), [plan.create_pod])
        if cfg.kube.create_pod(namespace, pod_body):
            m.PODS_CREATED.inc()
        if not (raw.get("status") or {}).get("phase"):
            # A new Trial's first status waits for its pod's first event, whose pass writes it
            # (Pending, or Running when the pod started meanwhile): a burst of new Trials gets
            # its pods before their statuses, and a pod that starts at once costs one write, not two.
            return
    plan.status.conditions = permitted(plan.status.conditions)
    plan.status.conditions = kstatus.trial_conditions(plan.status.conditions, plan.status.phase, plan.status.message,
                                                      now, trial.metadata.generation, plan.status.reason)
    _write_status(patch, raw.get("status"), plan.status)


def _stop_run(cfg: OperatorConfig, namespace: str, wl: Any, name: str) -> None:
    """Stop what runs a trial, gracefully: its pod, or its workload (a Job, JobSet, ...) with all its pods."""
    if wl is not None:
        workloads.stop(cfg, namespace, wl, name)
    else:
        cfg.kube.delete_pod(namespace, name, cfg.stop_grace_seconds)


def _pod_trial_view(cfg: OperatorConfig, namespace: str, trial: Trial, study: Study,
                    pods: list[dict[str, Any]]) -> Any:
    """The trial's current pod as the core reads it (None: it has none), deleting pods of
    earlier attempts that still run."""
    pod = next((p for p in pods if p["metadata"]["name"] == trial.status.pod_name), None)
    # An operator stopped (kill -9) after creating a pod but before writing its name into the
    # status leaves the pod of an attempt the status does not name yet: it is the trial's
    # current pod, not a stray of an earlier attempt to delete and start again.
    attempt = trial.status.attempts + 1 if trial.status.pod_name else max(trial.status.attempts, 1)
    unrecorded = next((p for p in pods if p["metadata"]["name"] == pod_name(trial.metadata.name, attempt)), None)
    if unrecorded is not None and trial.status.phase not in FINISHED:
        pod = unrecorded
        trial.status.attempts, trial.status.pod_name = attempt, unrecorded["metadata"]["name"]
        trial.status.phase = "Pending"  # what the lost status write said; the pod tells the rest
    container = training_container(study)
    view = pod_view(pod, container) if pod else None
    for other in pods:  # a pod of an earlier attempt that still runs (e.g. a node that came back)
        if other is not pod and (other.get("status") or {}).get("phase") in ("Pending", "Running") \
                and not (other.get("metadata") or {}).get("deletionTimestamp"):
            cfg.kube.delete_pod(namespace, other["metadata"]["name"], cfg.stop_grace_seconds)
    return view


def _refusal(e: ApiException) -> str:
    try:
        return str(json.loads(e.body or "{}").get("message") or e.reason)
    except (ValueError, AttributeError):
        return str(e.reason)


def permitted(conditions: list[Condition]) -> list[Condition]:
    """The conditions once a pass went through: a Ready=False/Forbidden said earlier is over.
    (kstatus.trial_conditions then sets the Trial's Ready afresh; a Round's plan sets its own.)"""
    ready = get_condition(conditions, "Ready")
    if ready is None or ready.reason != "Forbidden":
        return conditions
    return [c for c in conditions if c.type != "Ready"]


def _epoch(ts: str | None) -> float | None:
    if not ts:
        return None
    try:
        return dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc).timestamp()
    except ValueError:
        return None
