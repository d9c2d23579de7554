"""What a trial runs when one pod is not enough: a Job, a JobSet, a PyTorchJob or any other
kind, with the success and failure conditions that say when it has ended.

The known kinds (`KINDS`) come with their pod templates' places, their suspend field and
their conditions built in; any other kind names its conditions in CEL over `object`
(the whole workload object, as Katib's successCondition / failureCondition do).
"""
from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Any, Iterator

import celpy
from pydantic import ConfigDict, Field, model_validator

from .common import Model


@dataclass(frozen=True)
class Kind:
    """A workload kind kubetune knows: where its pod templates are, how it is suspended
    (for Kueue), and the conditions its own controller writes when it ends."""

    api_version: str
    kind: str
    plural: str
    success: str
    failure: str
    suspend: tuple[str, ...] | None  # path of the suspend field inside spec
    index_labels: tuple[str, ...] = ()  # pod labels whose value "0" marks the first pod of a replica


def _condition(type: str) -> str:
    return f'has(object.status) && has(object.status.conditions) && ' \
           f'object.status.conditions.exists(c, c.type == "{type}" && c.status == "True")'


JOB = Kind("batch/v1", "Job", "jobs", _condition("Complete"), _condition("Failed"), ("suspend",),
           ("batch.kubernetes.io/job-completion-index",))
JOBSET = Kind("jobset.x-k8s.io/v1alpha2", "JobSet", "jobsets", _condition("Completed"), _condition("Failed"),
              ("suspend",), ("jobset.sigs.k8s.io/job-index", "batch.kubernetes.io/job-completion-index"))
PYTORCHJOB = Kind("kubeflow.org/v1", "PyTorchJob", "pytorchjobs", _condition("Succeeded"), _condition("Failed"),
                  ("runPolicy", "suspend"), ("training.kubeflow.org/replica-index",))
KINDS = {(k.api_version, k.kind): k for k in (JOB, JOBSET, PYTORCHJOB)}

INDEX_LABELS = tuple(dict.fromkeys(label for k in KINDS.values() for label in k.index_labels))
"""Every known kind's index labels: the primary pod is the one whose index labels are all "0"."""


def known(api_version: str, kind: str) -> Kind | None:
    return KINDS.get((api_version, kind))


@dataclass(frozen=True)
class PodTemplate:
    """One pod template inside a workload's spec: the replica it belongs to and its path."""

    replica: str
    path: tuple[str | int, ...]
    template: dict[str, Any]


def pod_templates(api_version: str, kind: str, spec: dict[str, Any]) -> list[PodTemplate]:
    """The pod templates of a workload spec, in the order the kind lists its replicas."""
    k = known(api_version, kind)
    out: list[PodTemplate] = []
    if k is JOB:
        if isinstance(spec.get("template"), dict):
            out.append(PodTemplate("", ("template",), spec["template"]))
    elif k is JOBSET:
        for i, rj in enumerate(spec.get("replicatedJobs") or []):
            t = ((rj.get("template") or {}).get("spec") or {}).get("template") if isinstance(rj, dict) else None
            if isinstance(t, dict):
                out.append(PodTemplate(str(rj.get("name", i)), ("replicatedJobs", i, "template", "spec", "template"), t))
    elif k is PYTORCHJOB:
        replicas = spec.get("pytorchReplicaSpecs") or {}
        for name in sorted(replicas, key=lambda n: (n != "Master", n)):  # Master first, then by name
            t = replicas[name].get("template") if isinstance(replicas[name], dict) else None
            if isinstance(t, dict):
                out.append(PodTemplate(name, ("pytorchReplicaSpecs", name, "template"), t))
    else:
        out = list(_found_templates(spec, ()))
    return out


def _found_templates(node: Any, path: tuple[str | int, ...]) -> Iterator[PodTemplate]:
    """Pod templates anywhere in an unknown kind's spec: objects whose spec has containers."""
    if isinstance(node, dict):
        inner = node.get("spec")
        if isinstance(inner, dict) and isinstance(inner.get("containers"), list):
            names = [p for p in path if isinstance(p, str) and p not in ("template", "spec")]
            yield PodTemplate(".".join(names), path, node)
            return
        for key, value in node.items():
            yield from _found_templates(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _found_templates(value, (*path, i))


def primary_template(workload: "Workload") -> PodTemplate:
    """The pod template of the replica whose first pod reports metrics and the result."""
    templates = pod_templates(workload.api_version, workload.kind, workload.spec)
    wanted = workload.primary_replica
    if wanted is None and known(workload.api_version, workload.kind) is PYTORCHJOB:
        wanted = "Master" if any(t.replica == "Master" for t in templates) else "Worker"
    for t in templates:
        if wanted is None or t.replica == wanted or wanted in t.replica.split("."):
            return t
    names = ", ".join(t.replica for t in templates)
    raise ValueError(f"primaryReplica: {wanted!r} is not a replica of the {workload.kind} (replicas: {names})")


def training_container_name(workload: "Workload", template: dict[str, Any]) -> str:
    """The training container of one pod template: `container` where the template has it,
    else its first container."""
    containers = (template.get("spec") or {}).get("containers") or []
    names = [c.get("name") for c in containers if isinstance(c, dict)]
    if workload.container and workload.container in names:
        return workload.container
    return str(names[0]) if names else ""


_CEL = threading.Lock()


@functools.cache
def cel_program(expression: str) -> Any:
    """The compiled CEL program of a condition; ValueError with celpy's message when it does not parse."""
    with _CEL:  # celpy builds its grammar on first use: not thread-safe then
        env = celpy.Environment()
        try:
            return env.program(env.compile(expression))
        except celpy.CELParseError as e:
            column = getattr(e, "column", None)
            where = f"at column {column}" if column else "somewhere"
            near = expression[max(0, (column or 1) - 1):][:20] if column else ""
            raise ValueError(f"syntax error {where}" + (f" (near {near!r})" if near else "")) from None


def evaluate(expression: str, obj: dict[str, Any]) -> bool:
    """A success or failure condition over the workload object; False when it cannot be
    evaluated yet (a status field not written yet)."""
    try:
        result = cel_program(expression).evaluate({"object": celpy.json_to_cel(obj)})
    except (celpy.CELEvalError, ValueError, TypeError):
        return False
    return result is True or (isinstance(result, celpy.celtypes.BoolType) and bool(result))


WORKLOAD_RULES = [
    {
        "rule": " || ".join(f"(self.apiVersion == '{k.api_version}' && self.kind == '{k.kind}')" for k in KINDS.values())
                + " || (has(self.successCondition) && has(self.failureCondition))",
        "message": "a workload of a kind kubetune does not know (other than batch/v1 Job, "
                   "jobset.x-k8s.io/v1alpha2 JobSet, kubeflow.org/v1 PyTorchJob) needs both successCondition "
                   "and failureCondition",
        "fieldPath": ".successCondition",
        "reason": "FieldValueRequired",
    },
    {
        "rule": "!(self.apiVersion == 'batch/v1' && self.kind == 'Job') || !has(self.primaryReplica)",
        "message": "a Job has one pod template: leave primaryReplica out (the pod with completion index 0, "
                   "or its only pod, reports metrics)",
        "fieldPath": ".primaryReplica",
        "reason": "FieldValueForbidden",
    },
]


class Workload(Model):
    """A workload that runs one trial on several pods (a Job, a JobSet, a PyTorchJob, any kind
    with conditions), instead of the single pod of spec.template."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": WORKLOAD_RULES})

    api_version: str = Field(
        pattern=r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?v[0-9]+((alpha|beta)[0-9]+)?$",
        max_length=253,
        description="apiVersion of the workload, e.g. batch/v1, jobset.x-k8s.io/v1alpha2, kubeflow.org/v1.",
    )
    kind: str = Field(
        pattern=r"^[A-Z][A-Za-z0-9]*$", max_length=63, description="kind of the workload, e.g. Job, JobSet, PyTorchJob."
    )
    spec: dict[str, Any] = Field(
        description=(
            "The workload's spec as you would write it. kubetune adds the trial's parameters as env vars to "
            "every container of every pod template, its labels to every pod template, and (with queueName) "
            "suspends it for Kueue."
        ),
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True, "type": "object"},
    )
    container: str | None = Field(
        default=None, max_length=63,
        description="Name of the training container in each pod template; default: the first container.",
    )
    primary_replica: str | None = Field(
        default=None, max_length=63,
        description=(
            "The replica whose first pod reports metrics and whose termination message is the trial's result: "
            "a PyTorchJob replica type (default Master, else Worker), a JobSet replicatedJob name (default the "
            "first). Not used for a Job."
        ),
    )
    success_condition: str | None = Field(
        default=None, max_length=4096,
        description=(
            "CEL over `object` (the whole workload) that is true once it has succeeded, e.g. "
            "object.status.conditions.exists(c, c.type == \"Complete\" && c.status == \"True\"). Built in for "
            "Job, JobSet and PyTorchJob; required for other kinds."
        ),
    )
    failure_condition: str | None = Field(
        default=None, max_length=4096,
        description="CEL over `object` that is true once the workload has failed. Built in for Job, JobSet and "
                    "PyTorchJob; required for other kinds.",
    )

    @model_validator(mode="after")
    def _checked(self) -> "Workload":
        k = known(self.api_version, self.kind)
        if k is None and (self.success_condition is None or self.failure_condition is None):
            missing = "successCondition" if self.success_condition is None else "failureCondition"
            raise ValueError(f"{missing}: a {self.kind} ({self.api_version}) is not a kind kubetune knows; "
                             "give both successCondition and failureCondition")
        for field, expr in (("successCondition", self.success_condition), ("failureCondition", self.failure_condition)):
            if expr is not None:
                try:
                    cel_program(expr)
                except ValueError as e:
                    raise ValueError(f"{field}: not a valid CEL expression: {e}") from None
        templates = pod_templates(self.api_version, self.kind, self.spec)
        if not templates:
            where = {JOB: "spec.template", JOBSET: "spec.replicatedJobs[].template.spec.template",
                     PYTORCHJOB: "spec.pytorchReplicaSpecs.<type>.template"}.get(k, "a pod template (spec.containers)")
            raise ValueError(f"spec: the {self.kind} has no pod template; expected one at {where}")
        for t in templates:
            containers = (t.template.get("spec") or {}).get("containers")
            where = ".".join(map(str, t.path))
            if not isinstance(containers, list) or not containers:
                raise ValueError(f"spec.{where}.spec.containers: a pod template needs at least one container")
            for i, c in enumerate(containers):
                if not isinstance(c, dict) or not c.get("name") or not c.get("image"):
                    raise ValueError(f"spec.{where}.spec.containers[{i}]: every container needs a name and an image")
        if k is JOB and self.primary_replica is not None:
            raise ValueError("primaryReplica: a Job has one pod template: leave primaryReplica out")
        primary = primary_template(self)
        if self.container is not None:
            names = [c["name"] for c in primary.template["spec"]["containers"]]
            if self.container not in names:
                raise ValueError(f"container: {self.container!r} is not a container of the primary replica's pod "
                                 f"template (containers: {', '.join(names)})")
        return self

    def kind_info(self) -> Kind | None:
        return known(self.api_version, self.kind)

    def success(self) -> str:
        k = self.kind_info()
        return self.success_condition or (k.success if k else "false")

    def failure(self) -> str:
        k = self.kind_info()
        return self.failure_condition or (k.failure if k else "false")


QUEUE_NAME_FIELD: dict[str, Any] = {
    "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
    "max_length": 63,
}
