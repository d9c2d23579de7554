"""The real kopf operator runs a Round end to end against a real API server."""
from __future__ import annotations

import json
from typing import Any

from kubetune.core.round_plan import remembers_round, round_key

from .conftest import NS, Operator, create, live, round_manifest, study_manifest, wait_for


def _round(api, name="r1"):
    return live(api, "rounds").get(name, {})


async def test_round_of_8_trials_with_parallelism_3_completes(world):
    api, kubelet = world["api"], world["kubelet"]
    op = Operator()
    world["operators"].append(op)
    await op.start()
    await create(api, study_manifest())
    await create(api, round_manifest(max_trials=8, parallelism=3))

    peak = 0

    def done() -> bool:
        nonlocal peak
        running = sum(1 for p in live(api, "pods").values() if (p.get("status") or {}).get("phase") in ("Pending", "Running"))
        peak = max(peak, running)
        return (_round(api).get("status") or {}).get("phase") == "Succeeded"

    await wait_for(done, 90, "the Round to succeed")
    trials = live(api, "trials")
    assert sorted(trials) == sorted(f"r1-{i}" for i in range(8))
    assert 1 <= peak <= 3
    status = _round(api)["status"]
    assert status["counts"]["succeeded"] == 8
    assert status["progress"] == "8/8"
    best = status["bestTrial"]
    values = [t["status"]["objective"] for t in trials.values()]
    assert best["value"] == min(values)
    assert {c["type"]: c["status"] for c in status["conditions"]}["Complete"] == "True"
    assert status["analysis"]["bestTrials"][0]["name"] == best["name"]

    # owner references: Study <- Round <- Trial <- Pod
    study_uid = live(api, "studies")["demo"]["metadata"]["uid"]
    round_uid = _round(api)["metadata"]["uid"]
    assert any(r["uid"] == study_uid for r in _round(api)["metadata"]["ownerReferences"])
    for t in trials.values():
        assert t["metadata"]["ownerReferences"][0]["uid"] == round_uid
        assert t["status"]["phase"] == "Succeeded"
        assert t["status"]["final"]["val_loss"] > 0
    pods = live(api, "pods")
    assert len(pods) == 8
    for pod in pods.values():
        trial = trials[pod["metadata"]["labels"]["kubetune.io/trial"]]
        assert pod["metadata"]["ownerReferences"][0]["uid"] == trial["metadata"]["uid"]
        assert pod["spec"]["restartPolicy"] == "Never"
        c = pod["spec"]["containers"][0]
        assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"  # a quantity passes through
        env = {e["name"]: e["value"] for e in c["env"]}
        assert json.loads(env["KUBETUNE_PARAMS"]) == trial["spec"]["parameters"]
        assert float(env["KUBETUNE_PARAM_LEARNING_RATE"]) == trial["spec"]["parameters"]["learning_rate"]
        assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    # every pod the kubelet ran belongs to exactly one trial: no duplicates
    assert len(kubelet.started) == 8


async def test_restarts_lose_and_duplicate_nothing(world):
    api, kubelet = world["api"], world["kubelet"]
    await create(api, study_manifest(max_steps=15))
    await create(api, round_manifest(max_trials=9, parallelism=3))
    for stop_after in (1, 3, 6):
        op = Operator()
        world["operators"].append(op)
        await op.start()
        await wait_for(lambda: len(live(api, "trials")) >= stop_after, 60, f"{stop_after} trials")
        await op.stop()
        world["operators"].remove(op)
    op = Operator()
    world["operators"].append(op)
    await op.start()
    await wait_for(lambda: (_round(api).get("status") or {}).get("phase") == "Succeeded", 120, "the Round to succeed")
    trials = live(api, "trials")
    assert sorted(trials) == sorted(f"r1-{i}" for i in range(9))
    phases = {n: ((t.get("status") or {}).get("phase"), (t.get("status") or {}).get("message")) for n, t in trials.items()}
    assert _round(api)["status"]["counts"]["succeeded"] == 9, (_round(api)["status"]["counts"], phases)
    # one pod per trial, never two attempts for a healthy trial
    per_trial: dict[str, int] = {}
    for name in kubelet.started:
        trial = name.rsplit("-a", 1)[0]
        per_trial[trial] = per_trial.get(trial, 0) + 1
    assert per_trial == {f"r1-{i}": 1 for i in range(9)}


async def test_deleting_the_study_removes_rounds_trials_and_pods(world):
    api = world["api"]
    op = Operator()
    world["operators"].append(op)
    await op.start()
    await create(api, study_manifest(max_steps=200))
    await create(api, round_manifest(max_trials=4, parallelism=2))
    await wait_for(lambda: len([p for p in live(api, "pods").values()
                                if (p.get("status") or {}).get("phase") == "Running"]) == 2, 60, "2 running pods")
    assert op.cfg is not None
    await wait_for(lambda: round_key(NS, "r1") in op.cfg.analyses and remembers_round(NS, "r1")
                   and (NS, "r1-0") in op.cfg.trials, 30, "the operator to hold the Round and its Trials")
    resp = await api.delete(f"/apis/kubetune.io/v1alpha1/namespaces/{NS}/studies/demo")
    assert resp.status == 200
    def left() -> dict[str, Any]:
        """What is not deleted yet, and what holds it: finalizers, owners, deletionTimestamp
        (the real garbage collector of kube-controller-manager follows the owner references)."""
        out: dict[str, Any] = {}
        for plural in ("studies", "rounds", "trials", "pods"):
            for name, obj in live(api, plural).items():
                meta = obj.get("metadata") or {}
                out.setdefault(plural, {})[name] = (meta.get("finalizers"), meta.get("ownerReferences"),
                                                    meta.get("deletionTimestamp"))
        if out:
            out["kubelet errors"] = world["kubelet"].errors[-3:]
        return out

    await wait_for(lambda: not left(), 60, "everything to be deleted", detail=left)
    # a long-running operator does not keep a deleted Round's sampler and analysis
    await wait_for(lambda: round_key(NS, "r1") not in op.cfg.analyses and not remembers_round(NS, "r1")
                   and (NS, "r1-0") not in op.cfg.trials, 30, "the operator to forget the deleted Round and Trials")


async def test_a_trial_left_holding_the_finalizer_of_an_older_operator_is_let_go(world):
    """Operators before the work-queue sweep put kopf's finalizer on every unfinished Trial
    (a kopf timer needs one). After an upgrade nothing requires it: the operator must take it
    off, or deleting such a Trial (or its Round, its Study) would hang on it forever."""
    api = world["api"]
    await create(api, study_manifest())
    await create(api, round_manifest(max_trials=1, parallelism=1))
    finalizer = "kopf.zalando.org/KopfFinalizerMarker"  # the one this test operator's kopf settings use
    await create(api, {
        "apiVersion": "kubetune.io/v1alpha1", "kind": "Trial",
        "metadata": {"name": "old-0", "namespace": NS, "finalizers": [finalizer]},
        "spec": {"studyRef": {"name": "demo"}, "roundRef": {"name": "r1"}, "number": 7,
                 "parameters": {"learning_rate": 0.1}, "seed": 7},
    })
    op = Operator()
    world["operators"].append(op)
    await op.start()
    await wait_for(lambda: not (live(api, "trials").get("old-0", {}).get("metadata", {}).get("finalizers")),
                   30, "the old finalizer to be taken off", detail=lambda: live(api, "trials").get("old-0"))
    await api.delete(f"/apis/kubetune.io/v1alpha1/namespaces/{NS}/trials/old-0")
    await wait_for(lambda: "old-0" not in live(api, "trials"), 30, "the Trial to be deleted")
