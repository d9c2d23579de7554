"""The operator's parsed Trials follow every change of the object, and only parse again then."""
from __future__ import annotations

from kubetune.controller.trial_models import TrialModels


def body(version: str | None, phase: str, objective: float | None = None) -> dict:
    meta = {"name": "r-0", "namespace": "ns"}
    if version is not None:
        meta["resourceVersion"] = version
    return {
        "apiVersion": "kubetune.io/v1alpha1", "kind": "Trial", "metadata": meta,
        "spec": {"studyRef": {"name": "s"}, "roundRef": {"name": "r"}, "number": 0, "seed": 0, "parameters": {"lr": 0.1}},
        "status": {"phase": phase, **({"objective": objective} if objective is not None else {})},
    }


def test_a_changed_trial_is_seen_changed_and_an_unchanged_one_is_parsed_once():
    models = TrialModels()
    [running] = models.of([body("5", "Running")])
    assert running.status.phase == "Running"
    [again] = models.of([body("5", "Running")])
    assert again is running  # same resourceVersion: the object has not changed
    [done] = models.of([body("6", "Succeeded", 0.25)])
    assert done.status.phase == "Succeeded" and done.status.objective == 0.25
    models.forget("ns", "r-0")
    assert ("ns", "r-0") not in models


def test_without_a_resource_version_every_read_parses_afresh():
    models = TrialModels()
    [a] = models.of([body(None, "Running")])
    [b] = models.of([body(None, "Succeeded", 0.5)])
    assert a.status.phase == "Running" and b.status.phase == "Succeeded"
