"""The chart's Argo CD health check (Lua) maps the status the operator writes to Argo CD's
health: a running Round is Progressing, a finished one Healthy, a failed or invalid one
Degraded with its message. Run with lupa, as Argo CD runs it (gopher-lua: plain Lua 5.1)."""
from pathlib import Path

import kopf
import pytest

from kubetune.controller.handlers import _set_ready_false
from kubetune.core import kstatus

from ..chart.helm import render
from .test_kstatus import NOW, ROUNDS, obj, round_status

lupa = pytest.importorskip("lupa")

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "charts" / "kubetune" / "argocd" / "health.lua"


def health(o: dict, script: str | None = None) -> tuple[str, str]:
    """Run the health check on `o` as Argo CD does: the object as the global `obj`, the
    returned table's status and message."""
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    check = lua.eval("function(obj)\n" + (script or SCRIPT.read_text()) + "\nend")
    hs = check(lua.table_from(o, recursive=True))
    return hs["status"], hs["message"]


def test_a_running_round_is_progressing():
    o, _ = round_status(ROUNDS["running"][0])
    status, message = health(o)
    assert status == "Progressing" and message.startswith("Running: 1/6 trials finished")


def test_a_finished_round_is_healthy():
    o, _ = round_status(ROUNDS["complete"][0])
    assert health(o) == ("Healthy", "BudgetSpent: all 6 search trials and 0 re-runs finished")


def test_a_failed_round_is_degraded_with_its_message():
    o, _ = round_status(ROUNDS["failed"][0])
    status, message = health(o)
    assert status == "Degraded" and message.startswith("TooManyFailedTrials: 2 trials failed")


def test_an_invalid_round_is_degraded_with_its_message():
    raw = obj("Round", {}, generation=2)
    patch = kopf.Patch()
    _set_ready_false(patch, raw, "InvalidSpec", "spec.nuisance[0].min: min must be less than max", NOW)
    o = obj("Round", dict(patch["status"]), generation=2)
    assert health(o) == ("Degraded", "InvalidSpec: spec.nuisance[0].min: min must be less than max")


def test_before_the_operator_saw_it_a_round_is_progressing():
    assert health(obj("Round", None))[0] == "Progressing"
    o, _ = round_status(ROUNDS["complete"][0])
    o["metadata"]["generation"] = 2  # edited in git; the operator has not seen the edit yet
    assert health(o) == ("Progressing", "Waiting for the kubetune operator to observe generation 2")


@pytest.mark.parametrize("phase, expected", [("Running", "Progressing"), ("Succeeded", "Healthy"),
                                             ("EarlyStopped", "Healthy"), ("Failed", "Degraded")])
def test_trials(phase, expected):
    conditions = kstatus.trial_conditions([], phase, "exit code 1" if phase == "Failed" else "", NOW, 1)
    o = obj("Trial", {"observedGeneration": 1, "phase": phase, "conditions": [c.wire() for c in conditions]})
    status, message = health(o)
    assert status == expected
    if phase == "Failed":
        assert message == "TrialFailed: exit code 1"


def test_a_check_that_ignored_the_conditions_would_be_caught():
    """The assertions above can fail: a check that says Healthy to everything fails them."""
    o, _ = round_status(ROUNDS["failed"][0])
    assert health(o, 'return {status="Healthy", message=""}')[0] != health(o)[0]


def test_the_chart_ships_the_check_for_each_kind():
    docs = render("argocd.healthCheck=true")
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-argocd-health")]
    for kind in ("Study", "Round", "Trial"):
        assert cm["data"][f"resource.customizations.health.kubetune.io_{kind}"].strip() == SCRIPT.read_text().strip()
    assert not [d for d in render() if d["kind"] == "ConfigMap"]  # off unless asked for
