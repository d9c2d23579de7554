"""Study, Round and Trial status follow the kstatus conventions (sigs.k8s.io/cli-utils/pkg/kstatus),
which Flux's health checks and `kubectl wait` rely on: observedGeneration, and Ready,
Reconciling and Stalled conditions that never contradict each other."""
import datetime as dt
import re

import kopf
import pytest

from kubetune.api.common import Condition
from kubetune.controller.adoption import plan_study_status
from kubetune.controller.handlers import _set_ready_false
from kubetune.core import kstatus
from kubetune.core.round_plan import plan_round

from .factories import round_, study, trial

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
LATER = NOW + dt.timedelta(minutes=5)
CAMEL = re.compile(r"^[A-Z][A-Za-z0-9]*$")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def compute(obj: dict) -> str:
    """kstatus' generic computation for a custom resource (status.Compute without the
    built-in kinds): Terminating, InProgress, Failed or Current."""
    meta, status = obj.get("metadata", {}), obj.get("status") or {}
    if meta.get("deletionTimestamp"):
        return "Terminating"
    observed = status.get("observedGeneration")
    if observed is not None and observed != meta.get("generation"):
        return "InProgress"
    for c in status.get("conditions") or []:
        if c["type"] == "Reconciling" and c["status"] == "True":
            return "InProgress"
        if c["type"] == "Stalled" and c["status"] == "True":
            return "Failed"
    return "Current"


def violations(obj: dict) -> list[str]:
    """What in the status breaks the conventions kstatus (and the API conventions) set."""
    meta, status = obj["metadata"], obj.get("status") or {}
    out = []
    if status.get("observedGeneration") != meta.get("generation"):
        out.append(f"observedGeneration {status.get('observedGeneration')} != generation {meta.get('generation')}")
    conds = status.get("conditions") or []
    by_type = {c["type"]: c for c in conds}
    if len(by_type) != len(conds):
        out.append("a condition type repeats")
    for c in conds:
        Condition.model_validate(c)
        if not CAMEL.match(c["type"]) or not CAMEL.match(c["reason"]):
            out.append(f"{c['type']}/{c['reason']}: type and reason are one CamelCase word")
        if not RFC3339.match(c["lastTransitionTime"]):
            out.append(f"{c['type']}: lastTransitionTime {c['lastTransitionTime']} is not RFC 3339")
        if c.get("observedGeneration") != meta.get("generation"):
            out.append(f"{c['type']}: observedGeneration {c.get('observedGeneration')}")
    missing = {"Ready", "Reconciling", "Stalled"} - set(by_type)
    if missing:
        return out + [f"missing {sorted(missing)}"]
    ready, rec, stalled = (by_type[t]["status"] for t in ("Ready", "Reconciling", "Stalled"))
    if rec == "True" and stalled == "True":
        out.append("Reconciling and Stalled both True")
    if ready == "True" and "True" in (rec, stalled):
        out.append("Ready=True while Reconciling or Stalled")
    if stalled == "True" and (ready != "False" or not by_type["Stalled"]["message"]):
        out.append("Stalled=True needs Ready=False and a message saying why")
    if rec == "True" and ready != "Unknown":
        out.append("Reconciling=True goes with Ready=Unknown")
    if rec == "Unknown" or stalled == "Unknown":
        out.append("Reconciling and Stalled are True or False (abnormal-true polarity)")
    return out


def obj(kind: str, status: dict, generation: int = 1) -> dict:
    return {"apiVersion": "kubetune.io/v1alpha1", "kind": kind,
            "metadata": {"name": "x", "generation": generation}, "status": status}


def round_status(trials, generation=1, **spec):
    rnd = round_(**spec)
    rnd.metadata.generation = generation
    plan = plan_round(study(), rnd, trials, NOW)
    return obj("Round", plan.status.wire(), generation), plan


def lr(i):
    return {"learning_rate": 0.01 * (i + 1)}


ROUNDS = {
    "running": ([trial(0, lr(0), "Running"), trial(1, lr(1), "Succeeded", 0.3)], "InProgress", "Unknown"),
    "complete": ([trial(i, lr(i), "Succeeded", 0.1 * i) for i in range(6)], "Current", "True"),
    "failed": ([trial(0, lr(0), "Failed"), trial(1, lr(1), "Failed")], "Failed", "False"),
}


@pytest.mark.parametrize("case", ROUNDS)
def test_a_rounds_status_follows_kstatus(case):
    trials, expected, ready = ROUNDS[case]
    o, _ = round_status(trials)
    assert violations(o) == []
    assert compute(o) == expected
    conds = {c["type"]: c for c in o["status"]["conditions"]}
    assert conds["Ready"]["status"] == ready
    if case == "failed":
        assert conds["Stalled"]["reason"] == "TooManyFailedTrials" and "2 trials failed" in conds["Stalled"]["message"]
    if case == "running":
        assert conds["Reconciling"]["reason"] == "Running" and "1/6 trials finished" in conds["Reconciling"]["message"]


def test_the_same_pass_again_changes_no_condition():
    """No status churn: a pass over an unchanged Round writes the same conditions
    (lastTransitionTime moves only when a status does)."""
    trials = ROUNDS["running"][0]
    first, plan = round_status(trials)
    rnd = round_()
    rnd.metadata.generation = 1
    rnd.status = plan.status
    again = plan_round(study(), rnd, trials, LATER)
    assert again.status.wire()["conditions"] == first["status"]["conditions"]


def test_a_spec_edit_is_in_progress_until_the_operator_observed_it():
    o, _ = round_status(ROUNDS["complete"][0])
    o["metadata"]["generation"] = 2  # raised maxTrials, say: the status still describes generation 1
    assert compute(o) == "InProgress"
    o2, _ = round_status(ROUNDS["complete"][0], generation=2, budget={"maxTrials": 8, "parallelism": 2})
    assert violations(o2) == [] and compute(o2) == "InProgress"  # two more trials to run
    assert o2["status"]["observedGeneration"] == 2


@pytest.mark.parametrize("reason", ["InvalidSpec", "StudyNotFound", "Forbidden", "AlgorithmUnavailable"])
def test_an_object_that_cannot_proceed_is_stalled(reason):
    raw = obj("Round", {"phase": "Running"}, generation=3)
    running, _ = round_status(ROUNDS["running"][0], generation=3)
    raw["status"] = running["status"]
    patch = kopf.Patch()
    _set_ready_false(patch, raw, reason, "what went wrong, for a person", LATER)
    after = obj("Round", {**raw["status"], **patch["status"]}, generation=3)
    assert violations(after) == []
    assert compute(after) == "Failed"
    assert {c["type"]: c["reason"] for c in after["status"]["conditions"]}["Stalled"] == reason


@pytest.mark.parametrize("phase, expected", [
    ("Pending", "InProgress"), ("Running", "InProgress"), ("Succeeded", "Current"), ("EarlyStopped", "Current"),
    ("Infeasible", "Current"), ("Failed", "Failed"),
])
def test_a_trials_status_follows_kstatus(phase, expected):
    conditions = kstatus.trial_conditions([], phase, "", NOW, 1)
    o = obj("Trial", {"observedGeneration": 1, "phase": phase,
                      "conditions": [c.wire() for c in conditions]})
    assert violations(o) == [] and compute(o) == expected


def test_a_studys_status_follows_kstatus():
    s = study()
    s.metadata.generation = 4
    planned = plan_study_status(s, [], NOW)
    planned.conditions = kstatus.done(planned.conditions, "Valid", "spec is valid", NOW, 4)  # as the handler does
    o = obj("Study", planned.wire(), generation=4)
    assert violations(o) == [] and compute(o) == "Current"


def test_the_checks_themselves_catch_a_broken_status():
    """The rules above can fail: a status without Stalled, or with contradicting conditions."""
    o, _ = round_status(ROUNDS["running"][0])
    broken = [c for c in o["status"]["conditions"] if c["type"] != "Stalled"]
    assert violations(obj("Round", {**o["status"], "conditions": broken})) == ["missing ['Stalled']"]
    both = [{**c, "status": "True"} if c["type"] == "Stalled" else c for c in o["status"]["conditions"]]
    assert "Reconciling and Stalled both True" in violations(obj("Round", {**o["status"], "conditions": both}))
