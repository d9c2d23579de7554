"""The conditions GitOps tools read to tell whether an object is done: kstatus.

Flux (and `kubectl wait`, and kstatus-based tools such as cli-utils and kpt) decide an
object's health from three things in its status, the conventions of
sigs.k8s.io/cli-utils/pkg/kstatus:

- `observedGeneration` equal to `metadata.generation`: the status describes the spec in
  force (otherwise the object is InProgress);
- `Reconciling=True` while the controller is still working towards the spec
  (InProgress); `Stalled=True`, with a reason, when it cannot get there without
  someone acting (Failed). Both have "abnormal-true" polarity: False when not so;
- neither: Current (done).

kubetune adds `Ready` in the sense Flux's own kinds give it: True once the object is
where its spec asked it to be, Unknown while it is on the way, False (with the same
reason as Stalled) when it cannot get there. Each function here sets all three at once,
so they never contradict each other. The phase a user sees is derived from the same
facts, never the other way round.
"""
from __future__ import annotations

import datetime as dt

from ..api.common import Condition, set_condition

READY, RECONCILING, STALLED = "Ready", "Reconciling", "Stalled"


def _three(conditions: list[Condition], ready: str, reconciling: bool, stalled: bool, reason: str, message: str,
           now: dt.datetime, generation: int | None) -> list[Condition]:
    conditions = set_condition(conditions, READY, ready, reason, message, now, generation)
    conditions = set_condition(conditions, RECONCILING, reconciling, reason if reconciling else "Idle",
                               message if reconciling else "", now, generation)
    return set_condition(conditions, STALLED, stalled, reason if stalled else "NotStalled",
                         message if stalled else "", now, generation)


def progressing(conditions: list[Condition], reason: str, message: str, now: dt.datetime,
                generation: int | None) -> list[Condition]:
    """Work is under way (trials running): Reconciling=True, Ready=Unknown, Stalled=False."""
    return _three(conditions, "Unknown", True, False, reason, message, now, generation)


def done(conditions: list[Condition], reason: str, message: str, now: dt.datetime,
         generation: int | None) -> list[Condition]:
    """The object is where its spec asked it to be: Ready=True, Reconciling=Stalled=False."""
    return _three(conditions, "True", False, False, reason, message, now, generation)


def stalled(conditions: list[Condition], reason: str, message: str, now: dt.datetime,
            generation: int | None) -> list[Condition]:
    """It cannot proceed until someone acts (an invalid spec, a missing Study, too many failed
    trials, a permission): Stalled=True and Ready=False with the reason, Reconciling=False."""
    return _three(conditions, "False", False, True, reason, message, now, generation)


TRIAL_ACTIVE = ("Pending", "Running")
TRIAL_DONE = ("Succeeded", "EarlyStopped", "Infeasible")
_DONE = {
    "Succeeded": "the trial finished with a result",
    "EarlyStopped": "the early-stopping rule stopped the trial",
    "Infeasible": "the trial's objective diverged, or the trial said it was infeasible",
}


def trial_conditions(conditions: list[Condition], phase: str | None, message: str, now: dt.datetime,
                     generation: int | None, reason: str | None = None) -> list[Condition]:
    """A Trial's kstatus conditions from its phase: running or waiting for its pod is
    progress, a result (also an early stop or an infeasible one) is done, a failure is
    stalled (its Round counts it against maxFailedTrials). `reason`: what the phase alone
    does not say (Queued: its workload waits for Kueue), the conditions' reason then."""
    phase = phase or "Pending"
    if phase in TRIAL_ACTIVE:
        return progressing(conditions, reason or phase, message or f"the trial is {phase.lower()}", now, generation)
    if phase in TRIAL_DONE:
        return done(conditions, phase, message or _DONE[phase], now, generation)
    return stalled(conditions, "TrialFailed", message or "the trial failed", now, generation)
