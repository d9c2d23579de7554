"""Study status: its Rounds at a glance, and the baseline as adopted so far.

Adoption is a person's decision — the annotation kubetune.io/adopt=<round> on the
Study (`kubetune adopt` sets it) — unless the Study sets spec.autoAdopt, in which
case a Round whose re-runs recommend adoption is adopted when it succeeds. The
operator never rewrites the spec: the adopted baseline lives in status.baseline.
"""
from __future__ import annotations

import datetime as dt

from ..api import Round, Study
from ..api.common import rfc3339, set_condition
from ..api.study import Adoption, RoundSummary, StudyStatus
from ..space import SearchSpace

ADOPT_ANNOTATION = "kubetune.io/adopt"


def adoption_candidate(rnd: Round) -> tuple[str | None, dict, str] | None:
    """(trial, parameters, evidence) a Round recommends, or None."""
    analysis = rnd.status.analysis or {}
    best = rnd.status.best_trial
    if best is None:
        return None
    reruns = analysis.get("reruns") or {}
    searched = {p.name for p in SearchSpace.of(rnd.spec).parameters}
    winner = reruns.get("winner")
    trial = winner if winner and winner != "baseline" else best.name
    params = dict(best.parameters)
    for t in analysis.get("bestTrials", []):
        if t.get("name") == trial:
            params = dict(t.get("parameters", {}))
    evidence = reruns.get("message") or f"best trial {best.name} with objective {best.value:.6g}"
    return trial, {k: v for k, v in params.items() if k in searched or k in rnd.spec.fixed}, evidence


def plan_study_status(study: Study, rounds: list[Round], now: dt.datetime) -> StudyStatus:
    status = study.status.model_copy(deep=True)
    status.observed_generation = study.metadata.generation
    status.conditions = set_condition(status.conditions, "Ready", True, "Valid", "spec is valid", now,
                                      study.metadata.generation)
    status.rounds = [RoundSummary(name=r.metadata.name, phase=r.status.phase or "Pending", best_value=r.status.best_value)
                     for r in sorted(rounds, key=lambda r: r.metadata.creation_timestamp or r.metadata.name)]
    adopted = {a.round for a in status.adopted}
    wanted = study.metadata.annotations.get(ADOPT_ANNOTATION)
    for rnd in rounds:
        name = rnd.metadata.name
        if name in adopted:
            continue
        auto = (study.spec.auto_adopt and rnd.status.phase == "Succeeded"
                and ((rnd.status.analysis or {}).get("reruns") or {}).get("recommendation") == "adopt")
        if name != wanted and not auto:
            continue
        cand = adoption_candidate(rnd)
        if cand is None:
            continue
        trial, params, evidence = cand
        status.adopted.append(Adoption(round=name, trial=trial, parameters=params, evidence=evidence, time=rfc3339(now)))
        status.baseline = {**status.baseline, **params}
    return status
