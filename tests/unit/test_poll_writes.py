"""A metric poll writes the Trial only when the curve changed: at 3,600 running trials every
write is API-server time, and a poll that read nothing new has nothing to say."""
from __future__ import annotations

import datetime as dt
from unittest import mock

import kopf

from kubetune.api.trial import CurvePoint
from kubetune.controller.handlers import OperatorConfig, reconcile_trial
from kubetune.controller.index_keys import ByName
from kubetune.metrics.prometheus import Observed

from .factories import round_, study, trial

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.timezone.utc)


class Prometheus:
    def __init__(self) -> None:
        self.points: list[tuple[int, float]] = [(1, 0.9), (2, 0.8)]
        self.queries = 0

    def observe_round(self, namespace, round_name, metric, start, end):
        self.queries += 1
        return {"r-0": Observed([CurvePoint(step=s, value=v) for s, v in self.points], None)}


def _body(model) -> dict:
    return model.model_dump(by_alias=True, mode="json", exclude_none=True)


def _poll(cfg: OperatorConfig, raw: dict, indexes: dict, now: dt.datetime) -> dict:
    cfg.clock = lambda: now
    cfg.curves.clock = lambda: now.timestamp()  # the Round's answer is a poll interval old: asked again
    cfg._last_query.clear()  # the poll is due
    patch = kopf.Patch()
    reconcile_trial(cfg, raw, "ns", "r-0", patch, *indexes.values())
    return dict(patch.get("status") or {})


def test_a_poll_that_reads_no_new_point_writes_nothing_and_a_new_point_is_written():
    prom = Prometheus()
    cfg = OperatorConfig(kube=mock.Mock(), prometheus=prom, poll_seconds=15.0)  # type: ignore[arg-type]
    s, r = study(), round_()
    t = trial(0, {"learning_rate": 0.01})
    t.status.phase, t.status.attempts, t.status.pod_name = "Running", 1, "r-0-1"
    t.status.start_time = "2026-12-02T11:50:00Z"
    raw = _body(t)
    raw["metadata"]["resourceVersion"] = "1"
    pod = {"metadata": {"name": "r-0-1", "namespace": "ns", "labels": {}},
           "status": {"phase": "Running", "startTime": "2026-12-02T11:50:00Z"}}
    indexes = {"study_index": {("ns", "s"): [_body(s)]}, "round_index": {("ns", "s"): [_body(r)], ByName("ns", "r"): [_body(r)]},
               "trial_index": {("ns", "r"): [raw]}, "pod_index": {("ns", "r-0"): [pod]}}

    first = _poll(cfg, raw, indexes, NOW)
    assert [p["step"] for p in first["curve"]] == [1, 2]
    metrics = {c["type"]: c for c in first["conditions"]}["MetricsAvailable"]
    assert metrics["status"] == "True" and "2 points" in metrics["message"]
    raw["status"] = {**raw["status"], **first}  # what the API server now holds

    later = NOW + dt.timedelta(seconds=20)
    prom.points = [(2, 0.8)]  # the window moved on: only what is new, and the overlap
    assert _poll(cfg, raw, indexes, later) == {}  # the same points (the window overlaps): no write
    assert prom.queries == 2

    prom.points = [(2, 0.8), (3, 0.7)]
    third = _poll(cfg, raw, indexes, later + dt.timedelta(seconds=20))
    assert [p["step"] for p in third["curve"]] == [1, 2, 3] and third["lastStep"] == 3
    assert "3 points" in {c["type"]: c for c in third["conditions"]}["MetricsAvailable"]["message"]
