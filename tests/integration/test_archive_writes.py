"""The Study archive's writes on a real API server (issue #24: a Study of many Rounds): a
running Round's later writes replace only its own entry with a JSON patch, and a copy of
the Study that is behind (the index's) never overwrites another Round's entry."""
from __future__ import annotations

import datetime as dt

import kubernetes

from kubetune.api import Round, Study, Trial
from kubetune.controller import archive
from kubetune.controller.kube import Kube
from kubetune.core import archive as core

from .conftest import NS, study_manifest

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def _round(name: str, uid: str) -> Round:
    return Round.model_validate({
        "metadata": {"name": name, "namespace": NS, "uid": uid},
        "spec": {"studyRef": {"name": "demo"}, "goal": "g",
                 "nuisance": [{"name": "learning_rate", "type": "float", "min": 0.001, "max": 1.0, "log": True}],
                 "budget": {"maxTrials": 50, "parallelism": 2, "maxFailedTrials": 3}},
        "status": {"phase": "Running"},
    })


def _trials(round_name: str, n: int) -> list[Trial]:
    return [Trial.model_validate({
        "metadata": {"name": f"{round_name}-{i}", "namespace": NS},
        "spec": {"studyRef": {"name": "demo"}, "roundRef": {"name": round_name}, "number": i, "seed": i,
                 "parameters": {"learning_rate": 0.01 * (i + 1)}},
        "status": {"phase": "Succeeded", "objective": 1.0 / (i + 1),
                   "curve": [{"step": s, "value": 1.0 / (i + 1) + 1.0 / (s + 1)} for s in range(1, 50)]},
    }) for i in range(n)]


def _archived(custom, round_name: str) -> list[str]:
    study = Study.model_validate(custom.get_namespaced_custom_object("kubetune.io", "v1alpha1", NS, "studies", "demo"))
    entry = next(a for a in study.status.archive if a.round == round_name)
    return [t.metadata.name for t in core.decode(entry.data)[1]]


def test_a_running_rounds_later_writes_replace_only_its_entry(apiserver):
    client = apiserver.client()
    custom = kubernetes.client.CustomObjectsApi(client)
    kube = Kube(client)
    custom.create_namespaced_custom_object("kubetune.io", "v1alpha1", NS, "studies", study_manifest())
    a, b = _round("a", "u-a"), _round("b", "u-b")

    def study_now() -> dict:
        return custom.get_namespaced_custom_object("kubetune.io", "v1alpha1", NS, "studies", "demo")

    # first writes: no entry yet, so each reads the Study and writes the archive whole
    for rnd in (a, b):
        state = archive.keep(kube, study_now(), rnd, _trials(rnd.metadata.name, 2), rnd.status, NOW)
        assert state is not None and state.trials == 2
    assert _archived(custom, "a") == ["a-0", "a-1"] and _archived(custom, "b") == ["b-0", "b-1"]

    # a later write of b from a copy of the Study read before: one JSON patch, no read
    index_copy = study_now()
    kube.calls.clear()
    later = NOW + dt.timedelta(seconds=60)
    state = archive.keep(kube, index_copy, b, _trials("b", 5), b.status, later)
    assert state is not None and state.trials == 5
    assert dict(kube.calls) == {"patch studies/status": 1}
    assert _archived(custom, "b") == [f"b-{i}" for i in range(5)] and _archived(custom, "a") == ["a-0", "a-1"]

    # meanwhile a wrote too (the copy above does not show it): b's replace leaves a's entry as a wrote it
    archive.keep(kube, study_now(), a, _trials("a", 4), a.status, later)
    state = archive.keep(kube, index_copy, b, _trials("b", 6), b.status, later + dt.timedelta(seconds=60))
    assert state is not None and state.trials == 6
    assert _archived(custom, "a") == [f"a-{i}" for i in range(4)] and _archived(custom, "b") == [f"b-{i}" for i in range(6)]

    # a copy whose positions are wrong (the entries were reordered by hand since): the patch's
    # test fails and the write is made from a fresh read instead, still only b's entry changing
    body = study_now()
    body["status"]["archive"] = list(reversed(body["status"]["archive"]))
    custom.replace_namespaced_custom_object_status("kubetune.io", "v1alpha1", NS, "studies", "demo", body)
    state = archive.keep(kube, index_copy, b, _trials("b", 7), b.status, later + dt.timedelta(seconds=120))
    assert state is not None and state.trials == 7
    assert _archived(custom, "a") == [f"a-{i}" for i in range(4)] and _archived(custom, "b") == [f"b-{i}" for i in range(7)]
    assert sorted(e["round"] for e in study_now()["status"]["archive"]) == ["a", "b"]  # one entry each
