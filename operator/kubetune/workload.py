"""Building a trial's workload: the environment it reads, and the pod (or the Job, JobSet,
PyTorchJob, ...) that runs it.

Parameters reach the training code as environment variables (one JSON document and
one variable per parameter), never through a shell string, so no value can run a
command. Everything the user put in the template passes through untouched.
"""
from __future__ import annotations

import copy
import json
import re
from typing import Any

from .api import API_VERSION, Round, Study, Trial
from .api.parameters import env_text
from .api.workload import Workload, pod_templates, primary_template, training_container_name
from .core.round_plan import ANNOTATION_MAX_STEPS, LABEL_ROUND, LABEL_STUDY, LABEL_TRIAL, label_value

METRICS_PORT = 8000
LABEL_POD_OF = "kubetune.io/attempt"
LABEL_ROLE = "kubetune.io/role"
"""On every pod template of a workload: `primary` on the replica whose first pod reports
metrics and the result, `replica` on the others."""
LABEL_QUEUE = "kueue.x-k8s.io/queue-name"


def trial_workload(study: Study, rnd: Round | None) -> Workload | None:
    """What a trial of this Round runs: the Round's workload, else the Study's; None for
    the single pod of the Study's template."""
    if rnd is not None and rnd.spec.workload is not None:
        return rnd.spec.workload
    return study.spec.workload


def queue_name(study: Study, rnd: Round | None) -> str | None:
    """The Kueue LocalQueue of a Round's trials: the Round's, else the Study's."""
    return (rnd.spec.queue_name if rnd is not None else None) or study.spec.queue_name


def env_name(parameter: str) -> str:
    return "KUBETUNE_PARAM_" + re.sub(r"[^A-Za-z0-9_]", "_", parameter).upper()


def trial_env(study: Study, trial: Trial) -> dict[str, str]:
    """What the SDK reads: the configuration, the seed, and who the trial is."""
    env = {
        "KUBETUNE_PARAMS": json.dumps(trial.spec.parameters, sort_keys=True),
        "KUBETUNE_SEED": str(trial.spec.seed),
        "KUBETUNE_NAMESPACE": trial.metadata.namespace or "default",
        "KUBETUNE_STUDY": study.metadata.name,
        "KUBETUNE_ROUND": trial.spec.round_ref.name,
        "KUBETUNE_TRIAL": trial.metadata.name,
        "KUBETUNE_OBJECTIVE": study.spec.objective.metric,
        "KUBETUNE_GOAL": study.spec.objective.goal,
        "KUBETUNE_MAX_STEPS": str(_max_steps(study, trial)),
    }
    for name, value in trial.spec.parameters.items():
        env[env_name(name)] = env_text(value)
    return env


def _max_steps(study: Study, trial: Trial) -> int:
    return int(trial.metadata.annotations.get(ANNOTATION_MAX_STEPS, study.spec.max_steps))


def training_container(study: Study, rnd: Round | None = None) -> str:
    """The name of the container that trains (for a workload: in its primary replica)."""
    wl = trial_workload(study, rnd)
    if wl is not None:
        return training_container_name(wl, primary_template(wl).template)
    assert study.spec.template is not None  # a Study has a template or a workload
    containers = study.spec.template.spec["containers"]
    return study.spec.template.container or containers[0]["name"]


def training_container_spec(study: Study, rnd: Round | None = None) -> dict[str, Any]:
    """The training container as the template (for a workload: its primary replica's) writes it."""
    wl = trial_workload(study, rnd)
    if wl is not None:
        return _container_named(primary_template(wl).template["spec"]["containers"], training_container(study, rnd))
    assert study.spec.template is not None
    return _container_named(study.spec.template.spec["containers"], training_container(study))


def _container_named(containers: list[dict[str, Any]], name: str) -> dict[str, Any]:
    for c in containers:
        if c.get("name") == name:
            return c
    raise ValueError(f"template.container {name!r} is not a container of the template")


def render_pod(study: Study, trial: Trial, pod_name: str, attempt: int, queue: str | None = None) -> dict[str, Any]:
    """The pod of one attempt of a trial, owned by the Trial; with a Kueue `queue`, labelled
    for Kueue's pod integration."""
    template = study.spec.template
    assert template is not None  # a Study has a template or a workload
    spec = copy.deepcopy(template.spec)
    spec["restartPolicy"] = "Never"
    spec.setdefault("securityContext", copy.deepcopy(POD_SECURITY))
    c = _container_named(spec["containers"], training_container(study))
    _set_env(c, trial_env(study, trial))
    c.setdefault("terminationMessagePolicy", "FallbackToLogsOnError")
    _quantities_as_strings(c)
    _expose_metrics(c)
    labels = {**template.metadata.labels, **_trial_labels(study, trial, attempt)}
    if queue:
        labels[LABEL_QUEUE] = queue
    annotations = {**template.metadata.annotations, **SCRAPE_ANNOTATIONS}
    owner = _trial_owner(trial)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name,
            "namespace": trial.metadata.namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner],
        },
        "spec": spec,
    }


POD_SECURITY = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
"""A pod template's securityContext when it gives none."""


def _set_env(container: dict[str, Any], ours: dict[str, str]) -> None:
    """The trial's variables in `container`, replacing any of the same name the template set."""
    container["env"] = [e for e in container.get("env", []) if e.get("name") not in ours] + [
        {"name": k, "value": v} for k, v in ours.items()
    ]


def _expose_metrics(container: dict[str, Any]) -> None:
    """The SDK's metrics port on `container`, unless the template declares it already."""
    ports = container.setdefault("ports", [])
    if not any(p.get("containerPort") == METRICS_PORT for p in ports):
        ports.append({"name": "kt-metrics", "containerPort": METRICS_PORT, "protocol": "TCP"})


SCRAPE_ANNOTATIONS = {
    "prometheus.io/scrape": "true",
    "prometheus.io/port": str(METRICS_PORT),
    "prometheus.io/path": "/metrics",
}


def _trial_owner(trial: Trial) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Trial",
        "name": trial.metadata.name,
        "uid": trial.metadata.uid or "",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _trial_labels(study: Study, trial: Trial, attempt: int) -> dict[str, str]:
    return {
        LABEL_STUDY: label_value(study.metadata.name),
        LABEL_ROUND: label_value(trial.spec.round_ref.name),
        LABEL_TRIAL: label_value(trial.metadata.name),
        LABEL_POD_OF: str(attempt),
    }


def render_workload(study: Study, trial: Trial, workload: Workload, name: str, attempt: int,
                    queue: str | None = None) -> dict[str, Any]:
    """The workload of one attempt of a trial, owned by the Trial (so deleting the Trial, its
    Round or its Study removes it and its pods): the trial's environment in every container
    of every pod template, kubetune's labels on every pod template (the primary replica's
    marked `kubetune.io/role: primary` and annotated for Prometheus), and with a Kueue
    `queue` the queue label and, where the kind has one, its suspend field set."""
    spec = copy.deepcopy(workload.spec)
    ours = trial_env(study, trial)
    primary = primary_template(workload).path
    labels = _trial_labels(study, trial, attempt)
    for t in pod_templates(workload.api_version, workload.kind, spec):
        template = t.template  # a reference into `spec`: edited in place
        pod_spec = template.setdefault("spec", {})
        pod_spec.setdefault("securityContext", copy.deepcopy(POD_SECURITY))
        meta = template.setdefault("metadata", {})
        is_primary = t.path == primary
        meta["labels"] = {**(meta.get("labels") or {}), **labels, LABEL_ROLE: "primary" if is_primary else "replica"}
        if is_primary:
            meta["annotations"] = {**(meta.get("annotations") or {}), **SCRAPE_ANNOTATIONS}
        trainer = training_container_name(workload, template)
        for c in [*(pod_spec.get("initContainers") or []), *pod_spec["containers"]]:
            _set_env(c, ours)
        c = _container_named(pod_spec["containers"], trainer)
        c.setdefault("terminationMessagePolicy", "FallbackToLogsOnError")
        if is_primary:
            _expose_metrics(c)
    kind = workload.kind_info()
    if queue and kind is not None and kind.suspend is not None:
        node = spec
        for key in kind.suspend[:-1]:
            node = node.setdefault(key, {})
        node[kind.suspend[-1]] = True
    meta_labels = dict(labels)
    if queue:
        meta_labels[LABEL_QUEUE] = queue
    return {
        "apiVersion": workload.api_version,
        "kind": workload.kind,
        "metadata": {
            "name": name,
            "namespace": trial.metadata.namespace,
            "labels": meta_labels,
            "ownerReferences": [_trial_owner(trial)],
        },
        "spec": spec,
    }


def _quantities_as_strings(container: dict[str, Any]) -> None:
    """`nvidia.com/gpu: 1` is a valid quantity for the API server, but the typed client
    insists on strings; "1" means the same."""
    resources = container.get("resources") or {}
    for key in ("limits", "requests"):
        if isinstance(resources.get(key), dict):
            resources[key] = {k: str(v) for k, v in resources[key].items()}
