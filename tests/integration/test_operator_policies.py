"""Failures, evictions, divergence, bad input, edits and early stopping, through the real operator."""
from __future__ import annotations

import asyncio

from kubetune.metrics.prometheus import PrometheusClient

from .conftest import NS, create, live, round_manifest, start_operator, study_manifest, wait_for


def _status(api, plural, name):
    return (live(api, plural).get(name) or {}).get("status") or {}


async def test_too_many_failed_trials_fail_the_round_and_stop_the_rest(world):
    api = world["api"]
    await start_operator(world)
    await create(api, study_manifest(max_steps=30))
    rnd = round_manifest(max_trials=10, parallelism=2)
    rnd["spec"]["fixed"] = {"crash": True}
    rnd["spec"]["budget"]["maxFailedTrials"] = 3
    await create(api, rnd)
    await wait_for(lambda: _status(api, "rounds", "r1").get("phase") == "Failed", 60, "the Round to fail")
    status = _status(api, "rounds", "r1")
    failed = {c["type"]: c for c in status["conditions"]}["Failed"]
    assert failed["reason"] == "TooManyFailedTrials" and "(maxFailedTrials 3)" in failed["message"]
    assert int(failed["message"].split()[0]) >= 3
    trials = live(api, "trials")
    assert len(trials) < 10  # stopped creating
    await wait_for(lambda: all((t.get("status") or {}).get("phase", "Pending") not in ("Pending", "Running")
                               for t in live(api, "trials").values()), 30, "no trial left running")
    crashed = [t for t in live(api, "trials").values() if "simulated crash" in t["status"].get("message", "")]
    assert len(crashed) >= 3  # the SDK's error reached the Trial through the termination message


async def test_an_evicted_pod_is_retried_without_counting_as_a_failure(world):
    api, kubelet = world["api"], world["kubelet"]
    await start_operator(world)
    await create(api, study_manifest(max_steps=40))
    await create(api, round_manifest(max_trials=1, parallelism=1))
    await wait_for(lambda: "r1-0-a1" in kubelet.procs, 30, "the first pod to run")
    await asyncio.to_thread(kubelet.evict, "r1-0-a1")
    await wait_for(lambda: "r1-0-a2" in kubelet.procs, 30, "a second attempt")
    await wait_for(lambda: _status(api, "rounds", "r1").get("phase") == "Succeeded", 60, "the Round to succeed")
    t = live(api, "trials")["r1-0"]
    assert t["status"]["phase"] == "Succeeded" and t["status"]["attempts"] == 2
    assert _status(api, "rounds", "r1")["counts"]["failed"] == 0


async def test_a_diverged_trial_is_infeasible_not_failed(world):
    api = world["api"]
    await start_operator(world)
    await create(api, study_manifest(max_steps=10))
    rnd = round_manifest(max_trials=2, parallelism=2)
    rnd["spec"]["fixed"] = {"nan_at": 4}
    await create(api, rnd)
    await wait_for(lambda: _status(api, "rounds", "r1").get("phase") == "Succeeded", 60, "the Round to end")
    for t in live(api, "trials").values():
        assert t["status"]["phase"] == "Infeasible"
        assert "diverged" in t["status"]["message"]
    counts = _status(api, "rounds", "r1")["counts"]
    assert counts["infeasible"] == 2 and counts["failed"] == 0


async def test_bad_input_is_reported_as_a_condition_and_nothing_crashes(world, caplog):
    api = world["api"]
    # a Trial made by hand in the good Round, with parameters no Round could have sampled
    # (before the operator starts, so that it reads them at once)
    await create(api, {
        "apiVersion": "kubetune.io/v1alpha1", "kind": "Trial", "metadata": {"name": "by-hand", "namespace": NS},
        "spec": {"studyRef": {"name": "demo"}, "roundRef": {"name": "good"}, "number": 99, "seed": 1,
                 "parameters": {"learning_rate": [0.1, 0.2]}},
    })
    op = await start_operator(world)
    # the API server refuses what its schema and CEL rules can see ...
    refused = round_manifest(name="refused")
    refused["spec"]["nuisance"][0]["min"] = 5.0  # min > max
    resp = await api.post(f"/apis/kubetune.io/v1alpha1/namespaces/{NS}/rounds", json=refused)
    assert resp.status == 422 and "min must be less than max" in await resp.text()
    # ... and the operator what only the models check (values that may be any scalar)
    bad = round_manifest(name="bad")
    bad["spec"]["nuisance"][0]["choices"] = [0.1, 0.2]  # choices on a float parameter
    await create(api, bad)
    orphan = round_manifest(name="orphan")
    orphan["spec"]["studyRef"]["name"] = "missing"
    await create(api, orphan)
    clash = round_manifest(name="clash")  # valid alone, but the baseline spells it learning_rate
    clash["spec"]["nuisance"][0]["name"] = "Learning_Rate"
    await create(api, clash)
    await create(api, study_manifest())
    # a Trial of another Round's, holding the name the good Round would give its second trial
    await create(api, {
        "apiVersion": "kubetune.io/v1alpha1", "kind": "Trial", "metadata": {"name": "good-1", "namespace": NS},
        "spec": {"studyRef": {"name": "demo"}, "roundRef": {"name": "elsewhere"}, "number": 1, "seed": 1,
                 "parameters": {"learning_rate": 0.1}},
    })
    await create(api, round_manifest(name="good", max_trials=2, parallelism=2))
    await wait_for(lambda: _status(api, "rounds", "good").get("phase") == "Succeeded", 60, "the good Round")
    ours = {n for n, t in live(api, "trials").items() if t["spec"]["roundRef"]["name"] == "good"}
    assert ours == {"good-0", "good-2", "by-hand"}
    elsewhere = live(api, "trials")["good-1"]  # untouched, and says why it does not run
    assert elsewhere["spec"]["roundRef"]["name"] == "elsewhere" and not elsewhere["status"].get("podName")
    ready_1 = {c["type"]: c for c in elsewhere["status"]["conditions"]}["Ready"]
    assert ready_1["reason"] == "RoundNotFound" and "Round 'elsewhere' of Study 'demo'" in ready_1["message"]

    def ready(name):
        return {c["type"]: c for c in _status(api, "rounds", name).get("conditions", [])}.get("Ready", {})

    assert ready("bad")["status"] == "False" and ready("bad")["reason"] == "InvalidSpec"
    assert "spec.nuisance[0].choices: choices belong to categorical parameters only" in ready("bad")["message"]
    assert ready("orphan")["reason"] == "StudyNotFound"
    assert ready("clash")["status"] == "False" and ready("clash")["reason"] == "ParameterNameClash"
    assert "'Learning_Rate' and the Study baseline's 'learning_rate' differ only in case" in ready("clash")["message"]
    assert not [t for t in live(api, "trials") if t.startswith(("bad-", "orphan-", "clash-"))]
    # the hand-made Trial is not the good Round's business, and says why it is not run
    assert _status(api, "rounds", "good")["progress"] == "2/2"
    by_hand = {c["type"]: c for c in _status(api, "trials", "by-hand").get("conditions", [])}.get("Ready", {})
    assert by_hand.get("status") == "False" and by_hand["reason"] == "InvalidSpec", _status(api, "trials", "by-hand")
    assert "spec.parameters" in by_hand["message"] and not _status(api, "trials", "by-hand").get("podName")
    # no handler raised on the way (kopf retries a handler that raises, and logs it)
    crashed = [r.getMessage() for r in caplog.records if "failed with an exception" in r.getMessage()]
    assert not crashed, crashed[:3]
    assert op.task is not None and not op.task.done()


async def test_raising_parallelism_on_a_running_round_takes_effect(world):
    api = world["api"]
    await start_operator(world)
    await create(api, study_manifest(max_steps=60))
    await create(api, round_manifest(max_trials=6, parallelism=1))
    await wait_for(lambda: len(live(api, "trials")) == 1, 30, "one trial")
    await api.patch(f"/apis/kubetune.io/v1alpha1/namespaces/{NS}/rounds/r1",
                    json={"spec": {"budget": {"parallelism": 3}}})

    def running():
        return sum(1 for t in live(api, "trials").values() if (t.get("status") or {}).get("phase") == "Running")

    await wait_for(lambda: running() == 3, 30, "three running trials")
    assert len(live(api, "trials")) == 3


async def test_median_rule_stops_hopeless_trials_with_evidence(world, prometheus):
    api = world["api"]
    world["kubelet"].targets_file = prometheus.targets
    await start_operator(world, prometheus=PrometheusClient(prometheus.url, timeout=2, retries=1))
    await create(api, study_manifest(max_steps=12, baseline={"learning_rate": 0.1, "step_seconds": 1.0}))
    rnd = round_manifest(max_trials=8, parallelism=4)
    rnd["spec"]["nuisance"][0].update(min=0.0001, max=10.0)
    rnd["spec"]["earlyStopping"] = {"rule": "median", "startStep": 3, "minTrials": 2}
    await create(api, rnd)
    await wait_for(lambda: _status(api, "rounds", "r1").get("phase") == "Succeeded", 150, "the Round to end")
    stopped = [t for t in live(api, "trials").values() if t["status"]["phase"] == "EarlyStopped"]
    assert stopped, "no trial was stopped"
    for t in stopped:
        reason = t["status"]["stopReason"]
        assert reason["rule"] == "median"
        assert reason["evidence"]["value"] > reason["evidence"]["median"]
        assert reason["step"] < 12
        pod = t["status"]["podName"]
        assert pod not in live(api, "pods")  # its pod was deleted
    best = _status(api, "rounds", "r1")["bestTrial"]
    assert best["name"] not in {t["metadata"]["name"] for t in stopped}
