"""GitOps for real, on a real API server: manifests applied the way Argo CD and Flux apply
them (server-side apply, their own field manager), spec edits the API server refuses or
lets through, health read by the chart's Argo CD check, and results that survive the
Round's deletion through the real garbage collector."""
from __future__ import annotations

import asyncio
import copy
import csv
import io
import json
from typing import Any

import pytest
import yaml

from kubetune.cli import main as kubetune_main
from kubetune.export import load_cluster

from ..unit.test_argocd_health import health
from ..unit.test_kstatus import compute, violations
from .conftest import NS, live, round_manifest, start_operator, study_manifest, wait_for

MANAGER = "argocd-controller"  # Argo CD's field manager with ServerSideApply=true (Flux: kustomize-controller)


def apply(server, *docs: dict, check: bool = True):
    """`kubectl apply --server-side` as Argo CD / Flux do: their own field manager, no force."""
    return server.kubectl("apply", "--server-side", f"--field-manager={MANAGER}", "-f", "-",
                          input=yaml.safe_dump_all(docs), check=check)


def get(server, kind: str, name: str) -> dict:
    return json.loads(server.kubectl("get", kind, name, "-n", NS, "-o", "json", "--show-managed-fields").stdout)


def _paths(fields: dict, prefix: tuple = ()) -> set[tuple]:
    """The leaf paths of a managedFields fieldsV1 set."""
    out = set()
    for key, sub in fields.items():
        if key == ".":
            continue
        out |= _paths(sub, prefix + (key,)) if sub else {prefix + (key,)}
    return out


def owned(obj: dict) -> dict[str, set[tuple]]:
    """Leaf paths each field manager owns (status writes apart: a subresource of their own)."""
    out: dict[str, set[tuple]] = {}
    for entry in obj["metadata"].get("managedFields", []):
        if entry.get("subresource"):
            continue
        out.setdefault(entry["manager"], set()).update(_paths(entry.get("fieldsV1", {})))
    return out


def _edited(doc: dict, **changes: Any) -> dict:
    out = copy.deepcopy(doc)
    for path, value in changes.items():
        node = out["spec"]
        *parents, leaf = path.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def test_fields_that_shape_results_cannot_change_and_the_others_can(apiserver):
    """CEL transition rules on the real API server: search space, algorithm, studyRef and
    the Study's objective are refused with a message that says what to do; parallelism,
    maxTrials and early stopping go through."""
    study = study_manifest()
    rnd = round_manifest(scientific=[{"name": "optimizer", "type": "categorical", "choices": ["sgd", "adam"]}],
                         fixed={"batch_size": 64, "warmup": True})
    apply(apiserver, study, rnd)

    refused = {
        "nuisance range": _edited(rnd, nuisance=[{"name": "learning_rate", "type": "float", "min": 0.0001,
                                                   "max": 1.0, "log": True}]),
        "a categorical choice (untyped)": _edited(rnd, scientific=[{"name": "optimizer", "type": "categorical",
                                                                     "choices": ["sgd", "rmsprop"]}]),
        "a fixed value (untyped)": _edited(rnd, fixed={"batch_size": 32, "warmup": True}),
        "a new fixed parameter": _edited(rnd, fixed={"batch_size": 64, "warmup": True, "layers": 2}),
        "the algorithm": _edited(rnd, algorithm={"name": "tpe", "seed": 1}),
        "the algorithm's seed": _edited(rnd, algorithm={"name": "sobol", "seed": 2}),
        "studyRef": _edited(rnd, studyRef={"name": "other"}),
    }
    for what, doc in refused.items():
        res = apply(apiserver, doc, check=False)
        assert res.returncode != 0, f"{what}: accepted"
        assert "cannot change once the Round exists" in res.stderr and "create a new Round" in res.stderr, res.stderr
    objective = _edited(study, objective={"metric": "val_accuracy", "goal": "maximize"})
    res = apply(apiserver, objective, check=False)
    assert res.returncode != 0 and "create a new Study" in res.stderr, res.stderr
    stored = get(apiserver, "round", "r1")
    assert stored["metadata"]["generation"] == 1  # nothing refused got in
    assert {k: stored["spec"][k] for k in ("scientific", "fixed", "algorithm")} == \
        {k: rnd["spec"][k] for k in ("scientific", "fixed", "algorithm")}

    allowed = _edited(rnd, budget__parallelism=4, budget__maxTrials=12, earlyStopping={"rule": "median"},
                      goal="find the learning rate, and more of it")
    apply(apiserver, allowed)
    now = get(apiserver, "round", "r1")
    assert now["spec"]["budget"]["maxTrials"] == 12 and now["spec"]["earlyStopping"]["rule"] == "median"
    apply(apiserver, _edited(study, objective={"metric": "val_loss", "goal": "minimize",
                                               "additionalMetrics": ["val_accuracy"]}))


@pytest.mark.timeout(120)
async def test_a_round_applied_by_gitops_runs_stays_in_sync_and_its_results_survive_a_prune(world, tmp_path):
    server, api = world["server"], world["api"]
    study = study_manifest()
    r1, r2 = round_manifest("r1", max_trials=3, parallelism=2), round_manifest("r2", max_trials=2, parallelism=2)
    await asyncio.to_thread(apply, server, study, r1, r2)
    await start_operator(world)

    # a spec edit while r1 runs takes effect: more trials, more at once
    await wait_for(lambda: len([t for t in live(api, "trials") if t.startswith("r1-")]) >= 2, 30, "r1's first trials")
    grown = _edited(r1, budget__maxTrials=4, budget__parallelism=3)
    await asyncio.to_thread(apply, server, study, grown, r2)

    def phase(name):
        return (live(api, "rounds")[name].get("status") or {}).get("phase")

    await wait_for(lambda: phase("r1") == "Succeeded" and phase("r2") == "Succeeded", 60, "both Rounds to succeed",
                   lambda: {n: (r.get("status") or {}).get("progress") for n, r in live(api, "rounds").items()})
    rounds = live(api, "rounds")
    assert rounds["r1"]["status"]["progress"] == "4/4" and rounds["r1"]["status"]["observedGeneration"] == 2

    # health as Flux (kstatus) and Argo CD (the chart's Lua) read it, on what the operator wrote
    trials = {n: t for n, t in live(api, "trials").items()}
    assert len(trials) == 6
    for o in [*rounds.values(), *trials.values(), live(api, "studies")["demo"]]:
        assert violations(o) == [], (o["kind"], o["metadata"]["name"], violations(o))
        assert compute(o) == "Current"
        assert health(o)[0] == "Healthy", (o["kind"], o["metadata"]["name"], health(o))

    # the archive is written as the Round ends, before anyone deletes anything
    await wait_for(lambda: (live(api, "rounds")["r1"]["status"].get("archive") or {}).get("trials") == 4, 15,
                   "r1's archive")
    results = {n: (t["status"]["phase"], t["status"].get("objective"), t["spec"]["parameters"]["learning_rate"])
               for n, t in trials.items() if n.startswith("r1-")}
    evidence = {n: (t["status"].get("final"), t["status"].get("curve") or None, t["status"].get("lastStep"), t["spec"]["seed"])
                for n, t in trials.items() if n.startswith("r1-")}
    assert all(final for final, *_ in evidence.values()), evidence

    # no drift: nothing the operator wrote is a field the GitOps manager owns, and
    # re-applying the same manifests changes nothing and conflicts with nothing
    for name in ("r1", "r2"):
        fields = owned(get(server, "round", name))
        ours = fields.pop(MANAGER)
        assert ours and all(not (ours & theirs) for theirs in fields.values()), (name, fields)
    for op in world["operators"]:
        await op.stop()  # so that no status write moves resourceVersion during the comparison
    before = {k: get(server, k, n)["metadata"]["resourceVersion"] for k, n in
              (("study", "demo"), ("round", "r1"), ("round", "r2"))}
    res = await asyncio.to_thread(apply, server, study, grown, r2)
    assert "conflict" not in (res.stdout + res.stderr).lower()
    after = {k: get(server, k, n)["metadata"]["resourceVersion"] for k, n in
             (("study", "demo"), ("round", "r1"), ("round", "r2"))}
    assert after == before, "re-applying the same manifests changed the objects"
    await start_operator(world)

    # r1 removed from git: Argo CD prunes it (foreground deletion); the garbage collector
    # deletes its Trials; the Study still has every result
    await asyncio.to_thread(server.kubectl, "delete", "round", "r1", "-n", NS, "--cascade=foreground", "--wait=false")
    await wait_for(lambda: "r1" not in live(api, "rounds") and not [t for t in live(api, "trials") if t.startswith("r1-")],
                   45, "r1 and its Trials to be deleted", lambda: (list(live(api, "rounds")), list(live(api, "trials"))))
    assert [t for t in live(api, "trials") if t.startswith("r2-")], "r2's Trials went too"

    rnd, kept, where = await asyncio.to_thread(load_cluster, "r1", NS)
    assert "archive" in where and rnd.metadata.name == "r1" and rnd.status.phase == "Succeeded"
    assert {t.metadata.name: (t.status.phase, t.status.objective, t.spec.parameters["learning_rate"])
            for t in kept} == results
    assert {t.metadata.name: (t.status.final or None, [p.wire() for p in t.status.curve] or None, t.status.last_step,
                              t.spec.seed) for t in kept} == evidence

    out = tmp_path / "r1.csv"
    assert await asyncio.to_thread(kubetune_main, ["export", "r1", "-n", NS, "-o", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert {r["trial"]: float(r["objective"]) for r in rows} == {n: v[1] for n, v in results.items()}
    yml = tmp_path / "r1.yaml"
    assert await asyncio.to_thread(kubetune_main, ["export", "r1", "-n", NS, "-o", str(yml)]) == 0
    docs = list(yaml.safe_load_all(yml.read_text()))
    assert [d["kind"] for d in docs] == ["Round"] + ["Trial"] * 4
