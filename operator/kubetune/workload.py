"""Building a trial's workload: the environment it reads, and the pod that runs it.

Parameters reach the training code as environment variables (one JSON document and
one variable per parameter), never through a shell string, so no value can run a
command. Everything the user put in the template passes through untouched.
"""
from __future__ import annotations

import copy
import json
import re
from typing import Any

from .api import API_VERSION, Study, Trial
from .api.parameters import env_text
from .core.round_plan import ANNOTATION_MAX_STEPS, LABEL_ROUND, LABEL_STUDY, LABEL_TRIAL, label_value

METRICS_PORT = 8000
LABEL_POD_OF = "kubetune.io/attempt"


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


def training_container(study: Study) -> str:
    containers = study.spec.template.spec["containers"]
    return study.spec.template.container or containers[0]["name"]


def training_container_spec(study: Study) -> dict[str, Any]:
    """The training container as the template writes it."""
    return _container_named(study.spec.template.spec["containers"], training_container(study))


def _container_named(containers: list[dict[str, Any]], name: str) -> dict[str, Any]:
    for c in containers:
        if c.get("name") == name:
            return c
    raise ValueError(f"template.container {name!r} is not a container of the template")


def render_pod(study: Study, trial: Trial, pod_name: str, attempt: int) -> dict[str, Any]:
    """The pod of one attempt of a trial, owned by the Trial."""
    template = study.spec.template
    spec = copy.deepcopy(template.spec)
    spec["restartPolicy"] = "Never"
    spec.setdefault("securityContext", {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}})
    c = _container_named(spec["containers"], training_container(study))
    ours = trial_env(study, trial)
    c["env"] = [e for e in c.get("env", []) if e.get("name") not in ours] + [
        {"name": k, "value": v} for k, v in ours.items()
    ]
    c.setdefault("terminationMessagePolicy", "FallbackToLogsOnError")
    _quantities_as_strings(c)
    ports = c.setdefault("ports", [])
    if not any(p.get("containerPort") == METRICS_PORT for p in ports):
        ports.append({"name": "kt-metrics", "containerPort": METRICS_PORT, "protocol": "TCP"})
    labels = {
        **template.metadata.labels,
        LABEL_STUDY: label_value(study.metadata.name),
        LABEL_ROUND: label_value(trial.spec.round_ref.name),
        LABEL_TRIAL: label_value(trial.metadata.name),
        LABEL_POD_OF: str(attempt),
    }
    annotations = {
        **template.metadata.annotations,
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(METRICS_PORT),
        "prometheus.io/path": "/metrics",
    }
    owner = {
        "apiVersion": API_VERSION,
        "kind": "Trial",
        "name": trial.metadata.name,
        "uid": trial.metadata.uid or "",
        "controller": True,
        "blockOwnerDeletion": True,
    }
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


def _quantities_as_strings(container: dict[str, Any]) -> None:
    """`nvidia.com/gpu: 1` is a valid quantity for the API server, but the typed client
    insists on strings; "1" means the same."""
    resources = container.get("resources") or {}
    for key in ("limits", "requests"):
        if isinstance(resources.get(key), dict):
            resources[key] = {k: str(v) for k, v in resources[key].items()}
