"""kopf handlers: thin adapters that read indexes, call the core, and carry out its plans.

Indexes keep an in-memory view of Studies, Trials and trial Pods, so a reconcile
pass never lists the API. Timers drive Rounds and Trials; every write is
idempotent (deterministic names, create-or-ignore, status patches), so an operator
restart at any moment loses nothing and duplicates nothing.
"""
from __future__ import annotations

import copy
import datetime as dt
import logging
import time
from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any, Mapping

import kopf
import pydantic
from kubernetes.client.rest import ApiException

from ..analysis.cache import AnalysisCache
from ..api import FINISHED, GROUP, VERSION, Round, Study, Trial
from ..api.common import Condition, get_condition, set_condition
from ..api.validation import model_problems, problems
from ..core.curves import merge
from ..core.round_plan import LABEL_TRIAL, forget_round, phase_of, plan_round, round_key
from ..core.settings import resolve
from ..core.stopping_policy import stop_decision
from ..core.trial_plan import end_trial, plan_trial
from ..metrics import operator_metrics as m
from ..sampling import AlgorithmUnavailable
from ..space import ParameterNameClash
from ..metrics.prometheus import PrometheusClient, PrometheusError
from ..workload import render_pod, training_container
from .adoption import plan_study_status
from .kube import Forbidden, Kube
from .pods import pod_view
from .trial_models import TrialModels

log = logging.getLogger("kubetune")


@dataclass
class OperatorConfig:
    kube: Kube
    prometheus: PrometheusClient | None = None
    reconcile_seconds: float = 5.0
    poll_seconds: float = 15.0
    stop_grace_seconds: int = 30
    backoff_seconds: float = 10.0
    forbidden_retry_seconds: float = 60.0  # after a 403: RBAC does not change by itself in seconds
    clock: Any = field(default=lambda: dt.datetime.now(dt.timezone.utc))
    analyses: AnalysisCache = field(default_factory=AnalysisCache)
    trials: TrialModels = field(default_factory=TrialModels)
    _last_query: dict[str, float] = field(default_factory=dict)

    def due(self, namespace: str, name: str, now: float) -> bool:
        """Is it time to query Prometheus for this trial again (every poll_seconds)?"""
        key = f"{namespace}/{name}"
        if now - self._last_query.get(key, 0.0) < self.poll_seconds:
            return False
        self._last_query[key] = now
        return True

    def done_polling(self, namespace: str, name: str) -> None:
        self._last_query.pop(f"{namespace}/{name}", None)

    def forget_trial(self, namespace: str, name: str) -> None:
        self.done_polling(namespace, name)
        self.trials.forget(namespace, name)

    def forget_round(self, namespace: str, name: str) -> None:
        self.analyses.forget(round_key(namespace, name))
        forget_round(namespace, name)


def _plain(body: Mapping[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(dict(body))


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


def _write_status(patch: kopf.Patch, old: Mapping[str, Any] | None, new: Any) -> None:
    diff = merge_patch(old or {}, _status_dict(new))
    if diff:
        patch.status.update(diff)


def _owner(obj: Mapping[str, Any], kind: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "name": obj["metadata"]["name"],
        "uid": obj["metadata"].get("uid", ""), "controller": True, "blockOwnerDeletion": True,
    }


def _temporary(e: Exception) -> kopf.TemporaryError:
    return kopf.TemporaryError(f"the API server refused a call: {e}", delay=5)


def _forbidden(cfg: "OperatorConfig", body: kopf.Body, patch: kopf.Patch, e: Forbidden,
               post: Any = kopf.warn) -> kopf.TemporaryError:
    """A 403 is a configuration problem: say so on the object (Ready=False/Forbidden, logged
    once), in a Warning Event (kopf posts none for timers), and retry slowly instead of every
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

    @kopf.index(GROUP, VERSION, "studies", id="study_index", registry=registry)
    def study_index(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict:
        return {(namespace, name): _plain(body)}

    @kopf.index(GROUP, VERSION, "rounds", id="round_index", registry=registry)
    def round_index(namespace: str, body: kopf.Body, spec: kopf.Spec, **_: Any) -> dict:
        return {(namespace, (spec.get("studyRef") or {}).get("name")): _plain(body)}

    @kopf.index(GROUP, VERSION, "trials", id="trial_index", registry=registry)
    def trial_index(namespace: str, body: kopf.Body, spec: kopf.Spec, **_: Any) -> dict:
        return {(namespace, (spec.get("roundRef") or {}).get("name")): _plain(body)}

    @kopf.index(GROUP, VERSION, "trials", id="trial_name_index", registry=registry)
    def trial_name_index(namespace: str, name: str, spec: kopf.Spec, **_: Any) -> dict:
        """Which Round each Trial names, by the Trial's name: a Round's next trial name may
        be held by a Trial that is not the Round's (made by hand, or another Round's)."""
        return {(namespace, name): (spec.get("roundRef") or {}).get("name")}

    @kopf.index("", "v1", "pods", labels={LABEL_TRIAL: kopf.PRESENT}, id="pod_index", registry=registry)
    def pod_index(namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any) -> dict:
        trial = labels.get(LABEL_TRIAL)
        return {(namespace, trial): _plain(body)} if trial else {}

    # What the operator keeps per object (a Round's sampler and analysis, a trial's last
    # query time) goes with the object: a long-running operator sees thousands of them.
    @kopf.on.event(GROUP, VERSION, "rounds", id="round_gone", registry=registry)
    def round_gone(type: str | None, namespace: str, name: str, **_: Any) -> None:
        if type == "DELETED":
            cfg.forget_round(namespace, name)

    @kopf.on.event(GROUP, VERSION, "trials", id="trial_gone", registry=registry)
    def trial_gone(type: str | None, namespace: str, name: str, **_: Any) -> None:
        if type == "DELETED":
            cfg.forget_trial(namespace, name)

    @kopf.timer(GROUP, VERSION, "rounds", id="round", interval=cfg.reconcile_seconds, backoff=cfg.backoff_seconds, registry=registry)
    def round_timer(body: kopf.Body, namespace: str, name: str, patch: kopf.Patch, study_index: kopf.Index,
                    trial_index: kopf.Index, trial_name_index: kopf.Index, **_: Any) -> None:
        started = time.monotonic()
        try:
            reconcile_round(cfg, _plain(body), namespace, name, patch, study_index, trial_index,
                            _Others(trial_name_index, namespace, name))
        except Forbidden as e:
            m.RECONCILE_ERRORS.labels("Round").inc()
            raise _forbidden(cfg, body, patch, e) from None
        except ApiException as e:
            m.RECONCILE_ERRORS.labels("Round").inc()
            raise _temporary(e) from None
        finally:
            m.RECONCILE_SECONDS.labels("Round").observe(time.monotonic() - started)

    # Only unfinished trials need a timer (and so kopf's finalizer): a finished trial is
    # plain data, deleted with its Round without waiting for the operator.
    @kopf.timer(GROUP, VERSION, "trials", id="trial", interval=cfg.reconcile_seconds, backoff=cfg.backoff_seconds, registry=registry,
                when=lambda status, **_: (status or {}).get("phase") not in FINISHED)
    def trial_timer(body: kopf.Body, namespace: str, name: str, patch: kopf.Patch, study_index: kopf.Index,
                    round_index: kopf.Index, trial_index: kopf.Index, pod_index: kopf.Index, **_: Any) -> None:
        started = time.monotonic()
        try:
            reconcile_trial(cfg, _plain(body), namespace, name, patch, study_index, round_index, trial_index,
                            pod_index)
        except Forbidden as e:
            m.RECONCILE_ERRORS.labels("Trial").inc()
            raise _forbidden(cfg, body, patch, e) from None
        except ApiException as e:
            m.RECONCILE_ERRORS.labels("Trial").inc()
            raise _temporary(e) from None
        finally:
            m.RECONCILE_SECONDS.labels("Trial").observe(time.monotonic() - started)

    @kopf.timer(GROUP, VERSION, "studies", id="study", interval=cfg.reconcile_seconds, backoff=cfg.backoff_seconds, registry=registry)
    def study_timer(body: kopf.Body, namespace: str, name: str, patch: kopf.Patch, round_index: kopf.Index,
                    trial_index: kopf.Index, **_: Any) -> None:
        raw = _plain(body)
        found = problems(raw)
        now = cfg.clock()
        if found:
            _set_ready_false(patch, raw, "InvalidSpec", "; ".join(map(str, found)), now)
            return
        study = Study.model_validate(raw)
        rounds = [Round.model_validate(r) for r in _entries(round_index, (namespace, name)) if not problems(r)]
        _write_status(patch, raw.get("status"), plan_study_status(study, rounds, now))


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
    updated = set_condition(current, "Ready", False, reason, message, now, raw["metadata"].get("generation"))
    old = get_condition(current, "Ready")
    new = get_condition(updated, "Ready")
    if old is None or old.model_dump() != new.model_dump():  # type: ignore[union-attr]
        patch.status["conditions"] = [c.model_dump(by_alias=True, mode="json", exclude_none=True) for c in updated]
        patch.status["observedGeneration"] = raw["metadata"].get("generation")
        log.warning("%s %s: %s", raw.get("kind"), raw["metadata"].get("name"), message)


@dataclass(frozen=True)
class _Others:
    """The names of the Trials in a namespace that name another Round (or none)."""

    index: Any  # trial_name_index
    namespace: str
    round: str

    def __contains__(self, name: object) -> bool:
        return any(r != self.round for r in _entries(self.index, (self.namespace, name)))


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
    trials = cfg.trials.of(_entries(trial_index, (namespace, name)))
    try:
        plan = plan_round(study, rnd, trials, now, taken=others)
    except AlgorithmUnavailable as e:
        _set_ready_false(patch, raw, "AlgorithmUnavailable", str(e), now)
        return
    except ParameterNameClash as e:  # the baseline can change under a Round (adoption, an edit)
        _set_ready_false(patch, raw, "ParameterNameClash", str(e), now)
        return
    for t in plan.create:
        body = t.wire()
        body["metadata"]["ownerReferences"] = [_owner(raw, "Round")]
        body.pop("status", None)
        if cfg.kube.create_custom("trials", namespace, body):
            m.TRIALS_CREATED.inc()
            log.info("Round %s/%s: created trial %s %s", namespace, name, t.metadata.name, t.spec.parameters)
    by_name = {t.metadata.name: t for t in trials}
    for trial_name, why in plan.stop:
        t = by_name[trial_name]
        if phase_of(t) in ("Pending", "Running"):
            ended = end_trial(t.status.model_copy(deep=True), why, now)
            cfg.kube.patch_custom_status("trials", namespace, trial_name,
                                         merge_patch(_status_dict(t.status), _status_dict(ended)))
            if t.status.pod_name:
                cfg.kube.delete_pod(namespace, t.status.pod_name, cfg.stop_grace_seconds)
    status = plan.status
    status.analysis = cfg.analyses.of(study, rnd, trials)
    for phase, count in status.counts.wire().items():
        m.TRIALS.labels(namespace, name, phase).set(count)
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
    round_raw = next((r for r in _entries(round_index, (namespace, trial.spec.study_ref.name))
                      if r["metadata"]["name"] == trial.spec.round_ref.name), None)
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
    study, rnd = Study.model_validate(study_raw), Round.model_validate(round_raw)
    s = resolve(study, rnd)
    pods = _entries(pod_index, (namespace, trial.metadata.name))
    pod = next((p for p in pods if p["metadata"]["name"] == trial.status.pod_name), None)
    container = training_container(study)
    view = pod_view(pod, container) if pod else None
    for other in pods:  # a pod of an earlier attempt that still runs (e.g. a node that came back)
        if other is not pod and (other.get("status") or {}).get("phase") in ("Pending", "Running") \
                and not (other.get("metadata") or {}).get("deletionTimestamp"):
            cfg.kube.delete_pod(namespace, other["metadata"]["name"], cfg.stop_grace_seconds)

    curve, diverged = None, None
    conditions = trial.status.conditions
    if (cfg.prometheus is not None and view is not None and trial.status.phase == "Running"
            and cfg.due(namespace, name, time.monotonic())):
        start = _epoch(trial.status.start_time) or (now.timestamp() - 3600)
        try:
            curve, diverged = cfg.prometheus.observe(namespace, trial.metadata.name, s.metric, start - 60,
                                                     now.timestamp())
            conditions = set_condition(conditions, "MetricsAvailable", True, "PrometheusQueried",
                                       f"{len(curve)} points of {s.metric} read", now)
        except PrometheusError as e:
            m.PROMETHEUS_ERRORS.inc()
            conditions = set_condition(conditions, "MetricsAvailable", False, "PrometheusUnavailable",
                                       f"{e}; final results will still be read from the pod's termination message", now)
    stop = None
    if curve and view is not None and view.phase == "Running" and trial.status.phase == "Running" and diverged is None:
        peers = cfg.trials.of(_entries(trial_index, (namespace, rnd.metadata.name)))
        stop = stop_decision(s, trial, merge(trial.status.curve, curve), peers)
    plan = plan_trial(trial, view, metric=s.metric, direction=s.direction, strategy=s.strategy,
                      max_retries=s.max_retries, now=now, curve=curve, stop=stop, diverged_step=diverged)
    plan.status.conditions = conditions
    if stop is not None and plan.status.phase == "EarlyStopped":
        m.STOP_DECISIONS.labels(stop.rule).inc()
        log.info("Trial %s/%s stopped early: %s", namespace, name, stop.message)
    if plan.status.phase in FINISHED:
        cfg.done_polling(namespace, name)
    if plan.delete_pod:
        cfg.kube.delete_pod(namespace, plan.delete_pod, cfg.stop_grace_seconds)
    if plan.create_pod:
        trial.status = plan.status
        pod_body = render_pod(study, trial, plan.create_pod, plan.status.attempts)
        if cfg.kube.create_pod(namespace, pod_body):
            m.PODS_CREATED.inc()
    plan.status.conditions = permitted(plan.status.conditions)
    _write_status(patch, raw.get("status"), plan.status)


def permitted(conditions: list[Condition]) -> list[Condition]:
    """The conditions once a pass went through: a Ready=False/Forbidden said earlier is over
    (a Trial has no Ready condition of its own; a Round's plan sets Ready itself)."""
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
