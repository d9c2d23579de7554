"""A running Round's analysis (fANOVA over all its trials) is recomputed at most every
analysis_seconds, and no more often than keeps it under analysis_share of a core: at
10,000 trials one analysis takes seconds, and every 10 s it would take a quarter of a core
for that Round alone. A finished Round's analysis is always brought up to date."""
from __future__ import annotations

import datetime as dt
from unittest import mock

import kopf

from kubetune.controller import handlers
from kubetune.controller.handlers import OperatorConfig, reconcile_round

from .factories import Clock, round_, study, trial

NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.timezone.utc)


def _body(model) -> dict:
    body = model.model_dump(by_alias=True, mode="json", exclude_none=True)
    body["metadata"]["resourceVersion"] = "1"
    return body


def test_a_slow_analysis_is_spaced_out_to_its_share_of_a_core():
    clock, cfg = Clock(), OperatorConfig(kube=mock.Mock(), analysis_seconds=10.0, analysis_share=0.05)
    with mock.patch.object(handlers.time, "monotonic", clock):
        assert cfg.analysis_due("ns", "r", now_or_never=False)  # never analyzed
        cfg.analyzed("ns", "r", 2.6)  # 10,000 trials
        clock.now += 11
        assert not cfg.analysis_due("ns", "r", now_or_never=False)  # 10 s passed, but 2.6 s is 5% of 52 s
        clock.now += 40
        assert not cfg.analysis_due("ns", "r", now_or_never=False)
        assert cfg.analysis_due("ns", "r", now_or_never=True)  # the Round ended: analyzed at once
        cfg.analyzed("ns", "r", 0.1)  # a quick one: back to every 10 s
        clock.now += 10
        assert cfg.analysis_due("ns", "r", now_or_never=False)
        assert cfg.analysis_due("ns", "other", now_or_never=False)  # per Round


def test_a_round_pass_spaces_its_analyses_by_what_the_last_one_took():
    clock, cfg = Clock(), OperatorConfig(kube=mock.Mock(), clock=lambda: NOW)
    s, r = study(), round_()
    running = trial(0, {"learning_rate": 0.01})
    running.status.phase, running.status.attempts, running.status.pod_name = "Running", 1, "r-0-a1"
    done = trial(1, {"learning_rate": 0.02}, phase="Succeeded", objective=0.5)
    trials = [_body(running), _body(done)]
    cfg.kube.custom.get_namespaced_custom_object.return_value = _body(s)  # the archive's read of the Study
    cfg.kube.create_custom.return_value = None
    analyses = []

    def slow(*_):
        analyses.append(clock.now)
        clock.now += 2.0  # an analysis that takes 2 s: every 40 s at 5% of a core
        return {"summary": "x"}

    cfg.analyses = mock.Mock(of=slow)

    def round_pass(raw: dict) -> dict:
        patch = kopf.Patch()
        reconcile_round(cfg, raw, "ns", "r", patch, {("ns", "s"): [_body(s)]}, {("ns", "r"): trials}, set())
        return {**raw, "status": {**(raw.get("status") or {}), **dict(patch.get("status") or {})}}

    with mock.patch.object(handlers.time, "monotonic", clock):
        raw = round_pass(_body(r))
        for _ in range(6):  # a pass every 5 s for 30 s
            clock.now += 5
            raw = round_pass(raw)
        assert len(analyses) == 1
        clock.now += 15
        round_pass(raw)
        assert len(analyses) == 2 and analyses[1] - analyses[0] >= 40


def test_a_round_deleted_while_its_analysis_ran_stays_forgotten():
    cfg = OperatorConfig(kube=mock.Mock())
    assert cfg.analysis_due("ns", "r", now_or_never=False)
    cfg.forget_round("ns", "r")  # the Round went away during its pass
    cfg.analyzed("ns", "r", 2.6)
    assert ("ns", "r") not in cfg._analyzed
