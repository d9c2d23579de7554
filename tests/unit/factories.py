"""Build Study/Round/Trial objects for unit tests."""
from __future__ import annotations

from typing import Any

from kubetune.api import Round, Study, Trial
from kubetune.api.trial import CurvePoint


class Clock:
    """A monotonic clock a test moves by hand (patched over `time.monotonic`)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def study(**spec: Any) -> Study:
    body = {
        "apiVersion": "kubetune.io/v1alpha1", "kind": "Study", "metadata": {"name": "s", "namespace": "ns", "uid": "u-s"},
        "spec": {"objective": {"metric": "val_loss", "goal": "minimize"}, "maxSteps": 20,
                 "baseline": {"learning_rate": 0.1, "optimizer": "sgd"},
                 "template": {"spec": {"containers": [{"name": "train", "image": "img", "command": ["python", "t.py"]}]}}},
    }
    body["spec"].update(spec)
    return Study.model_validate(body)


def round_(name: str = "r", **spec: Any) -> Round:
    body = {
        "apiVersion": "kubetune.io/v1alpha1", "kind": "Round", "metadata": {"name": name, "namespace": "ns", "uid": "u-r"},
        "spec": {"studyRef": {"name": "s"}, "goal": "g",
                 "nuisance": [{"name": "learning_rate", "type": "float", "min": 1e-4, "max": 1.0, "log": True}],
                 "budget": {"maxTrials": 6, "parallelism": 2, "maxFailedTrials": 2}},
    }
    body["spec"].update(spec)
    return Round.model_validate(body)


def finished(t: Trial, phase: str = "Succeeded", objective: float | None = None,
             curve: list[tuple[int, float]] | None = None) -> Trial:
    t = t.model_copy(deep=True)
    t.status.phase = phase  # type: ignore[assignment]
    t.status.objective = objective
    t.status.curve = [CurvePoint(step=s, value=v) for s, v in (curve or [])]
    return t


def trial(number: int, params: dict[str, Any], phase: str | None = None, objective: float | None = None,
          curve: list[tuple[int, float]] | None = None, purpose: str = "search", rerun_of: str | None = None,
          round_name: str = "r") -> Trial:
    t = Trial.model_validate({
        "metadata": {"name": f"{round_name}-{number}", "namespace": "ns"},
        "spec": {"studyRef": {"name": "s"}, "roundRef": {"name": round_name}, "number": number,
                 "parameters": params, "seed": number, "purpose": purpose, "rerunOf": rerun_of},
    })
    if phase:
        t = finished(t, phase, objective, curve)
    return t
