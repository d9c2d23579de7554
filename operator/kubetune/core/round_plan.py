"""What a Round needs next: trials to create, trials to stop, the status to write.

A pure function of the Study, the Round, its Trials and `now`. The kopf handlers
and the local runner both call `plan_round` and carry out the plan.
"""
from __future__ import annotations

import datetime as dt
import math
import zlib
from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..api import FINISHED, Round, Study, Trial, TrialSpec
from ..api.common import ObjectMeta, ObjectRef, get_condition, rfc3339, set_condition
from ..api.round import BestTrial, RoundStatus, TrialCounts
from ..api.trial import curve_pairs
from ..memo import Memo
from ..sampling import Observation, Suggester
from ..space import SearchSpace, check_names, effective_parameters
from . import kstatus
from .settings import RoundSettings, resolve

ACTIVE = ("Pending", "Running")
LABEL_STUDY = "kubetune.io/study"
LABEL_ROUND = "kubetune.io/round"
LABEL_TRIAL = "kubetune.io/trial"
ANNOTATION_MAX_STEPS = "kubetune.io/max-steps"
"""How many steps the trial trains (the Round's maxSteps, else the Study's): its pod reads it."""

_CACHE: Memo[Suggester] = Memo()
"""One Suggester per Round, rebuilt whenever the Round's settings change (and after a
restart, when it is empty), and let go once the Round will suggest nothing more (its
search budget is created, or it ended): its kept studies hold every trial's parameters and
value (2.5 KB a trial), and a long-running operator holds thousands of finished Rounds.
The trials themselves are always read afresh."""


@dataclass
class RoundPlan:
    create: list[Trial] = field(default_factory=list)
    stop: list[tuple[str, str]] = field(default_factory=list)  # (trial name, why)
    status: RoundStatus = field(default_factory=RoundStatus)


def trial_name(round_name: str, number: int) -> str:
    return f"{round_name}-{number}"


def _free_number(round_name: str, number: int, own: set[str], taken: Container[str]) -> int:
    """The first number from `number` on whose trial name neither the Round's own trials
    nor others use: a Trial made by hand (or by another Round whose name ends in "-<n>")
    may hold the name the Round would give its next trial, and creating it again would
    fail on every pass."""
    while (name := trial_name(round_name, number)) in own or name in taken:
        number += 1
    return number


def phase_of(trial: Trial) -> str:
    return trial.status.phase or "Pending"


def ranked(trials: list[Trial], direction: str) -> list[Trial]:
    """Succeeded search trials with a finite objective, best first (ties keep their order)."""
    done = [
        t for t in trials
        if t.spec.purpose == "search" and phase_of(t) == "Succeeded"
        and t.status.objective is not None and math.isfinite(t.status.objective)
    ]
    sign = 1.0 if direction == "minimize" else -1.0
    return sorted(done, key=lambda t: sign * t.status.objective)  # type: ignore[operator]


def best_trial(trials: list[Trial], direction: str) -> Trial | None:
    return next(iter(ranked(trials, direction)), None)


_SAMPLER_STATE = {"Succeeded": "complete", "EarlyStopped": "pruned", "Failed": "fail", "Infeasible": "fail"}


def observations(trials: list[Trial]) -> list[Observation]:
    """What the Round's sampler learns from its search trials. The Suggester keeps the last
    history it read, so an observation shares the Trial's parameters (nothing changes them)
    and carries a curve only where a sampler reads one: an early-stopped trial's last point."""
    out = []
    for t in trials:
        if t.spec.purpose == "search":
            state = _SAMPLER_STATE.get(phase_of(t), "running")
            out.append(Observation(number=t.spec.number, params=t.spec.parameters, state=state,
                                   value=t.status.objective, curve=_last_point(t) if state == "pruned" else ()))
    return out


def _last_point(t: Trial) -> tuple[tuple[int, float], ...]:
    """The last finite point of a trial's curve: all a sampler reads of an early-stopped
    trial's curve (a Round's history holds one per such trial, not every curve)."""
    last = max(((s, v) for s, v in curve_pairs(t.status.curve) if math.isfinite(v)), key=lambda p: p[0], default=None)
    return (last,) if last else ()


def round_key(namespace: str | None, name: str) -> str:
    return f"{namespace}/{name}"


def forget_round(namespace: str | None, name: str) -> None:
    """Release what was kept for a Round (its Suggester): deleted, or done suggesting."""
    _CACHE.forget(round_key(namespace, name))


def remembers_round(namespace: str | None, name: str) -> bool:
    return round_key(namespace, name) in _CACHE


def suggester_for(study: Study, rnd: Round, s: RoundSettings) -> Suggester:
    key = round_key(rnd.metadata.namespace, rnd.metadata.name)
    fingerprint = (rnd.metadata.uid, rnd.spec.model_dump_json(), s)
    return _CACHE.get(
        key,
        fingerprint,
        lambda: Suggester(SearchSpace.of(rnd.spec), s.algorithm, s.seed, s.direction, s.startup_trials),
    )


def plan_round(
    study: Study, rnd: Round, trials: list[Trial], now: dt.datetime, taken: Container[str] = frozenset()
) -> RoundPlan:
    """What a Round pass does. Raises ParameterNameClash (nothing is created) when the
    Round's parameter names clash with the Study's baseline in force, and
    AlgorithmUnavailable when the algorithm needs a library this installation lacks.

    taken: names of Trials in the namespace that are not this Round's; new trials skip
    them (and the names of the Round's own trials)."""
    check_names(study, rnd.spec)
    s = resolve(study, rnd)
    plan = RoundPlan()
    trials = sorted(trials, key=lambda t: t.spec.number)
    counts = _counts(trials)
    status = rnd.status.model_copy(deep=True)
    status.observed_generation = rnd.metadata.generation
    conditions = status.conditions  # Ready, Reconciling and Stalled are set at the end (kstatus)
    done_before = _terminal(status)
    active = [t for t in trials if phase_of(t) in ACTIVE]
    search = [t for t in trials if t.spec.purpose == "search"]
    reruns = [t for t in trials if t.spec.purpose == "rerun"]
    planned = _planned_reruns(study, rnd, s, search)

    if not done_before and counts.failed and counts.failed >= s.max_failed:
        conditions = set_condition(
            conditions, "Failed", True, "TooManyFailedTrials",
            f"{counts.failed} trials failed (maxFailedTrials {s.max_failed}); no more trials will be created",
            now, rnd.metadata.generation,
        )
    status.conditions = conditions
    terminal = _terminal(status)

    if not terminal:
        room = s.parallelism - len(active)
        next_number = max((t.spec.number for t in trials), default=-1) + 1
        own = {t.metadata.name for t in trials}
        if len(search) < s.max_trials:
            want = min(room, s.max_trials - len(search))
            if want > 0:  # most passes have no room: no history (every trial's curve) to build then
                suggester = suggester_for(study, rnd, s)
                history = observations(trials)
                for _ in range(want):
                    number = _free_number(rnd.metadata.name, max(next_number, len(search)), own, taken)
                    sampled = suggester.suggest(number, history)
                    params = effective_parameters(study, rnd.spec, sampled)
                    t = _new_trial(study, rnd, s, number, params, "search", None)
                    plan.create.append(t)
                    history.append(Observation(number, dict(t.spec.parameters), "running"))
                    next_number = number + 1
                    search.append(t)
        elif not [t for t in search if phase_of(t) in ACTIVE]:
            missing = [p for p in planned if (p[0], p[2]) not in {(t.spec.rerun_of, t.spec.seed) for t in reruns}]
            for rerun_of, params, seed in missing[: max(0, room)]:
                next_number = _free_number(rnd.metadata.name, next_number, own, taken)
                t = _new_trial(study, rnd, s, next_number, params, "rerun", rerun_of, seed)
                plan.create.append(t)
                next_number += 1
            if not missing and not active:
                status.conditions = set_condition(
                    status.conditions, "Complete", True, "BudgetSpent",
                    f"all {len(search)} search trials and {len(reruns)} re-runs finished",
                    now, rnd.metadata.generation,
                )

    terminal = _terminal(status)
    if terminal or len(search) >= s.max_trials:
        # nothing more to suggest: raising maxTrials changes the spec, and a changed spec
        # builds a new Suggester anyway
        forget_round(rnd.metadata.namespace, rnd.metadata.name)
    if terminal:
        why = "the Round has ended" + (
            ": " + get_condition(status.conditions, "Failed").message  # type: ignore[union-attr]
            if _is_true(status, "Failed") else ""
        )
        plan.stop = [(t.metadata.name, why) for t in active]
        if status.completion_time is None:
            status.completion_time = rfc3339(now)

    best = best_trial(trials, s.direction)
    status.best_trial = (
        BestTrial(name=best.metadata.name, value=best.status.objective, parameters=best.spec.parameters)  # type: ignore[arg-type]
        if best else None
    )
    status.best_value = best.status.objective if best else None
    status.counts = counts
    status.trials_created = len(trials) + len(plan.create)
    planned_total = s.max_trials + len(planned)
    finished = sum(1 for t in trials if phase_of(t) in FINISHED)
    status.progress = f"{finished}/{planned_total}"
    if status.start_time is None and (trials or plan.create):
        status.start_time = rfc3339(now)
    status.phase = (
        "Failed" if _is_true(status, "Failed")
        else "Succeeded" if _is_true(status, "Complete")
        else "Running" if (trials or plan.create)
        else "Pending"
    )
    status.conditions = _kstatus(status, rnd.metadata.generation, now)
    plan.status = status
    return plan


def only_recounts(written: Mapping[str, Any] | None, status: RoundStatus) -> bool:
    """Does `status` differ from the Round's `written` status only in what every pass
    recounts (trial counts, progress, the best trial, the conditions' messages), not in
    its phase, the generation it describes or any condition's state? The operator writes
    such a status at most every few seconds (OperatorConfig.status_seconds); a new phase
    or condition never waits."""
    if not written:
        return False
    def states(conditions: Any) -> set[tuple[Any, Any, Any]]:
        return {(c.get("type"), c.get("status"), c.get("reason")) for c in conditions or () if isinstance(c, Mapping)}
    return (written.get("phase") == status.phase
            and written.get("observedGeneration") == status.observed_generation
            and states(written.get("conditions"))
            == {(c.type, c.status, c.reason) for c in status.conditions})


def _kstatus(status: RoundStatus, generation: int | None, now: dt.datetime) -> list:
    """Ready, Reconciling and Stalled from the phase: GitOps tools read these (core/kstatus.py)."""
    if status.phase == "Failed":
        failed = get_condition(status.conditions, "Failed")
        return kstatus.stalled(status.conditions, failed.reason if failed else "Failed",
                               failed.message if failed else "the Round failed", now, generation)
    if status.phase == "Succeeded":
        complete = get_condition(status.conditions, "Complete")
        return kstatus.done(status.conditions, complete.reason if complete else "Complete",
                            complete.message if complete else "the Round is complete", now, generation)
    c = status.counts
    queued = f" ({c.queued} queued in Kueue)" if c.queued else ""
    message = f"{status.progress} trials finished; {c.running} running, {c.pending} pending{queued}"
    return kstatus.progressing(status.conditions, status.phase or "Pending", message, now, generation)


def _is_true(status: RoundStatus, type: str) -> bool:
    c = get_condition(status.conditions, type)
    return c is not None and c.status == "True"


def _terminal(status: RoundStatus) -> bool:
    return _is_true(status, "Failed") or _is_true(status, "Complete")


def _counts(trials: list[Trial]) -> TrialCounts:
    c = TrialCounts()
    key = {"Pending": "pending", "Running": "running", "Succeeded": "succeeded", "Failed": "failed",
           "EarlyStopped": "early_stopped", "Infeasible": "infeasible"}
    for t in trials:
        attr = key[phase_of(t)]
        setattr(c, attr, getattr(c, attr) + 1)
        if attr == "pending" and t.status.reason == "Queued":
            c.queued += 1
    return c


def rerun_seed(round_name: str, rerun_of: str, k: int) -> int:
    return zlib.crc32(f"{round_name}/{rerun_of}/{k}".encode()) % 2**31


def _planned_reruns(
    study: Study, rnd: Round, s: RoundSettings, search: list[Trial]
) -> list[tuple[str, dict, int]]:
    """(rerun_of, parameters, seed) of every re-run the Round asks for, in order."""
    if not s.rerun_top_k:
        return []
    out = []
    for t in ranked(search, s.direction)[: s.rerun_top_k]:
        out += [(t.metadata.name, dict(t.spec.parameters), rerun_seed(rnd.metadata.name, t.metadata.name, k))
                for k in range(s.rerun_seeds)]
    if s.rerun_baseline:
        base = effective_parameters(study, rnd.spec, {})
        out += [("baseline", base, rerun_seed(rnd.metadata.name, "baseline", k)) for k in range(s.rerun_seeds + 1)]
    return out


def _new_trial(
    study: Study, rnd: Round, s: RoundSettings, number: int, params: dict, purpose: str, rerun_of: str | None,
    seed: int | None = None,
) -> Trial:
    name = trial_name(rnd.metadata.name, number)
    labels = {
        LABEL_STUDY: label_value(study.metadata.name),
        LABEL_ROUND: label_value(rnd.metadata.name),
        LABEL_TRIAL: label_value(name),
    }
    return Trial(
        metadata=ObjectMeta(name=name, namespace=rnd.metadata.namespace, labels=labels,
                            annotations={ANNOTATION_MAX_STEPS: str(s.max_steps)}),
        spec=TrialSpec(
            study_ref=ObjectRef(name=study.metadata.name),
            round_ref=ObjectRef(name=rnd.metadata.name),
            number=number,
            parameters=params,
            seed=seed if seed is not None else zlib.crc32(f"{rnd.metadata.name}/{number}".encode()) % 2**31,
            purpose=purpose,  # type: ignore[arg-type]
            rerun_of=rerun_of,
        ),
    )


def label_value(value: str) -> str:
    """A label value (at most 63 characters); long names keep a hash to stay unique."""
    if len(value) <= 63:
        return value
    digest = format(zlib.crc32(value.encode()), "08x")
    return f"{value[:54].rstrip('-_.')}-{digest}"
