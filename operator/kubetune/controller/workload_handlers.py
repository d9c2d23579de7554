"""Trials that run as workloads (Job, JobSet, PyTorchJob, or another kind): the watches that
keep the operator's view of them, and the calls that create, observe and stop them.

Which kinds the operator watches comes from `KUBETUNE_WORKLOAD_KINDS` (the Helm chart sets
it from `workloads:` in values.yaml, with the RBAC for exactly those kinds); the default is
the three kinds kubetune knows. A kind whose CRD is not installed is said at start-up and,
on every Trial that needs it, as `Ready=False` with reason `WorkloadKindNotInstalled`.
"""
from __future__ import annotations

import copy
import json
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any, Mapping

import kopf

from ..api import Study, Trial
from ..api.workload import JOB, JOBSET, KINDS, Workload
from ..core.round_plan import LABEL_TRIAL
from ..core.trial_plan import PodView, pod_name
from ..workload import LABEL_POD_OF, render_workload, training_container
from .pods import workload_view

log = logging.getLogger("kubetune")

ENV_KINDS = "KUBETUNE_WORKLOAD_KINDS"


@dataclass(frozen=True)
class WatchedKind:
    api_version: str
    kind: str
    plural: str

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]


DEFAULT_KINDS = tuple(WatchedKind(k.api_version, k.kind, k.plural) for k in KINDS.values())


def enabled_kinds(environ: Mapping[str, str] = os.environ) -> tuple[WatchedKind, ...]:
    """The workload kinds this operator watches (and may create): `KUBETUNE_WORKLOAD_KINDS`, a
    JSON list of {apiVersion, kind, plural}, else Job, JobSet and PyTorchJob."""
    text = environ.get(ENV_KINDS)
    if not text:
        return DEFAULT_KINDS
    try:
        return tuple(WatchedKind(str(k["apiVersion"]), str(k["kind"]), str(k["plural"])) for k in json.loads(text))
    except (ValueError, TypeError, KeyError) as e:
        raise SystemExit(f"{ENV_KINDS} must be a JSON list of {{apiVersion, kind, plural}}: {e}") from None


class WorkloadStore:
    """The workloads of trials, by (namespace, trial), as the watches last saw them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_trial: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {}

    def put(self, namespace: str, trial: str, body: Mapping[str, Any]) -> None:
        key = (body.get("kind", ""), body["metadata"]["name"])
        with self._lock:
            self._by_trial.setdefault((namespace, trial), {})[key] = copy.deepcopy(dict(body))

    def drop(self, namespace: str, trial: str, kind: str, name: str) -> None:
        with self._lock:
            found = self._by_trial.get((namespace, trial))
            if found is not None:
                found.pop((kind, name), None)
                if not found:
                    self._by_trial.pop((namespace, trial), None)

    def get(self, namespace: str, trial: str, kind: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return (self._by_trial.get((namespace, trial)) or {}).get((kind, name))


def register(registry: kopf.OperatorRegistry, cfg: Any, kinds: tuple[WatchedKind, ...] | None = None) -> None:
    """Watch every enabled workload kind's objects that belong to trials: each change goes into
    the store and queues the trial's pass (a Job's Complete condition comes after its pod's
    last event). Kinds whose CRD is not installed are said at start-up."""
    kinds = enabled_kinds() if kinds is None else kinds
    workloads = cfg.workloads
    cfg.watched_kinds = {(k.api_version, k.kind) for k in kinds}

    for k in kinds:
        @kopf.on.event(k.group, k.version, k.plural, labels={LABEL_TRIAL: kopf.PRESENT},
                       id=f"workload_event_{k.plural}.{k.group}", registry=registry)
        async def workload_event(type: str | None, namespace: str, name: str, labels: kopf.Labels,
                                 body: kopf.Body, **_: Any) -> None:
            trial = labels.get(LABEL_TRIAL)
            if not trial:
                return
            if type == "DELETED":
                workloads.drop(namespace, trial, body.get("kind", ""), name)
            else:
                workloads.put(namespace, trial, body)
            cfg.queue.add(("Trial", namespace, trial))

    @kopf.on.startup(id="workload_kinds", registry=registry)
    def check_kinds(**_: Any) -> None:
        for k in kinds:
            try:
                plural = cfg.kube.resource_for(k.api_version, k.kind)
            except Exception as e:  # noqa: BLE001 - a start-up message only; the trials say it again
                log.warning("workload kind %s (%s): cannot ask the API server whether it is served: %s",
                            k.kind, k.api_version, e)
                continue
            if plural is None:
                log.warning("workload kind %s (%s) is not installed (no CRD): trials that run it wait with "
                            "Ready=False, reason WorkloadKindNotInstalled, until its CRD is installed and the "
                            "operator restarted", k.kind, k.api_version)
            else:
                log.info("watching workload kind %s (%s, %s)", k.kind, k.api_version, plural)


def unavailable(cfg: Any, workload: Workload) -> tuple[str, str] | None:
    """Why the operator cannot run this workload kind, as (reason, message), or None."""
    watched = cfg.watched_kinds
    if watched is not None and (workload.api_version, workload.kind) not in watched:
        return ("WorkloadKindNotEnabled",
                f"the operator does not watch {workload.kind} ({workload.api_version}): add it to `workloads` in the "
                f"Helm chart's values.yaml (which also grants the RBAC for it) and upgrade the release")
    if cfg.kube.resource_for(workload.api_version, workload.kind) is None:
        return ("WorkloadKindNotInstalled",
                f"{workload.kind} ({workload.api_version}) is not served by the API server: install its CRD "
                f"(and its controller), then restart the operator; the trial waits")
    return None


def current(cfg: Any, namespace: str, trial: Trial, workload: Workload) -> dict[str, Any] | None:
    """The trial's workload as the watch last saw it: the one its status names, or the one an
    operator stopped before recording it would have created (same deterministic name)."""
    if trial.status.pod_name:
        return cfg.workloads.get(namespace, trial.metadata.name, workload.kind, trial.status.pod_name)
    attempt = max(trial.status.attempts, 1)
    found = cfg.workloads.get(namespace, trial.metadata.name, workload.kind, pod_name(trial.metadata.name, attempt))
    if found is not None:
        trial.status.attempts, trial.status.pod_name = attempt, found["metadata"]["name"]
        trial.status.phase = trial.status.phase or "Pending"
    return found


def observe(cfg: Any, namespace: str, trial: Trial, study: Study, rnd: Any, workload: Workload,
            pods: list[dict[str, Any]]) -> PodView | None:
    """The trial's workload as the core reads it, or None when it has none (yet, or any more)."""
    obj = current(cfg, namespace, trial, workload)
    if obj is None:
        return None
    attempt = str((obj["metadata"].get("labels") or {}).get(LABEL_POD_OF, ""))
    mine = [p for p in pods if ((p.get("metadata") or {}).get("labels") or {}).get(LABEL_POD_OF) == attempt]
    return workload_view(obj, mine, workload, training_container(study, rnd))


def create(cfg: Any, namespace: str, study: Study, trial: Trial, workload: Workload, name: str, attempt: int,
           queue: str | None) -> bool:
    """Create the workload of one attempt; False when it exists already."""
    plural = cfg.kube.resource_for(workload.api_version, workload.kind)
    body = render_workload(study, trial, workload, name, attempt, queue)
    return bool(cfg.kube.create_object(workload.api_version, plural, namespace, body))


def stop(cfg: Any, namespace: str, workload: Workload, name: str) -> None:
    """Stop a trial's workload gracefully and remove it with all its pods: a Job or JobSet is
    suspended first (its controller stops every pod with their grace periods), then deleted."""
    plural = cfg.kube.resource_for(workload.api_version, workload.kind)
    if plural is None:
        return
    kind = workload.kind_info()
    if kind in (JOB, JOBSET) and kind.suspend is not None:  # type: ignore[union-attr]
        cfg.kube.patch_object(workload.api_version, plural, namespace, name, {"spec": {"suspend": True}})
    cfg.kube.delete_object(workload.api_version, plural, namespace, name, cfg.stop_grace_seconds)
