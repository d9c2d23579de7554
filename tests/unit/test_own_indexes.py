"""The trial pods and Trials the operator keeps (PodIndex, TrialIndex) and what a relist
hands on (list_watch.relisted): the passes read pods under their Trial and Trials under
their Round, and an object that went away while nothing watched must still be handed on
as gone."""
from __future__ import annotations

import copy
from unittest import mock

from kubetune.controller import handlers
from kubetune.controller.handlers import OperatorConfig
from kubetune.controller.index_keys import ByName
from kubetune.controller.list_watch import relisted
from kubetune.controller.pod_index import PodIndex
from kubetune.controller.trial_index import TrialIndex
from kubetune.controller import trial_models
from kubetune.controller.trial_models import TrialModels

from .factories import trial

LABEL = "kubetune.io/trial"


def pod(name: str, trial: str | None, phase: str = "Pending", ns: str = "ns") -> dict:
    labels = {LABEL: trial} if trial else {"app": "other"}
    return {"metadata": {"name": name, "namespace": ns, "labels": labels, "resourceVersion": "1",
                         "managedFields": [{"manager": "x"}]},
            "spec": {"containers": [{"name": "train", "image": "i", "env": [{"name": "A", "value": "1"}]}]},
            "status": {"phase": phase}}


def names(index: PodIndex, key: tuple[str, str]) -> list[str]:
    return sorted(p["metadata"]["name"] for p in index.get(key, ()))


def test_pods_are_kept_under_their_trial_without_their_spec_and_replaced_by_newer_versions():
    index = PodIndex(LABEL)
    index.put(pod("t0-a", "t0"))
    index.put(pod("t0-b", "t0"))  # a Trial's second pod (its first one failed to start)
    index.put(pod("t1-a", "t1", ns="other"))
    assert names(index, ("ns", "t0")) == ["t0-a", "t0-b"] and names(index, ("other", "t1")) == ["t1-a"]
    assert index.get(("ns", "t1"), ()) == ()
    kept = index.get(("ns", "t0"))[0]
    assert "spec" not in kept and "managedFields" not in kept["metadata"]

    index.put(pod("t0-a", "t0", phase="Running"))
    assert [p["status"]["phase"] for p in index.get(("ns", "t0")) if p["metadata"]["name"] == "t0-a"] == ["Running"]
    assert len(index) == 3

    index.put(pod("t0-b", None))  # its label taken away: no longer a trial pod
    index.discard("ns", "t0-a")
    assert index.get(("ns", "t0"), ()) == () and len(index) == 1


def test_a_relist_hands_on_every_pod_listed_and_each_one_gone_meanwhile_in_its_namespace_only():
    index = PodIndex(LABEL)
    for p in (pod("t0-a", "t0"), pod("t1-a", "t1"), pod("t2-a", "t2", ns="other")):
        index.put(p)
    changes = relisted(index, "ns", [pod("t0-a", "t0", phase="Succeeded"), pod("t3-a", "t3")])
    assert [(kind, p["metadata"]["name"]) for kind, p in changes] == [  # the listed as listed, the gone as kept
        ("MODIFIED", "t0-a"), ("MODIFIED", "t3-a"), ("DELETED", "t1-a")]
    assert names(index, ("ns", "t1")) == [] and names(index, ("ns", "t3")) == ["t3-a"]
    assert names(index, ("other", "t2")) == ["t2-a"]  # another namespace's watch keeps its own
    assert relisted(index, None, []) and len(index) == 0  # the cluster's list: everything


def test_a_pod_that_ended_queues_its_trial_as_a_successors_first_step_and_an_unchanged_one_nothing():
    cfg = OperatorConfig(kube=mock.Mock())  # type: ignore[arg-type]
    cfg.queue = mock.Mock()
    index = PodIndex(LABEL)
    running = index.put(pod("t0-a", "t0", phase="Running"))
    handlers.pod_changed(cfg, "ADDED", running)
    handlers.pod_changed(cfg, "MODIFIED", running)  # a status write that did not change its phase
    handlers.pod_changed(cfg, "MODIFIED", index.put(pod("t0-a", "t0", phase="Succeeded")))
    handlers.pod_changed(cfg, "DELETED", index.get(("ns", "t0"))[0])
    assert [(c.args, c.kwargs) for c in cfg.queue.add.call_args_list] == [
        ((("Trial", "ns", "t0"),), {"next_step": False}),
        ((("Trial", "ns", "t0"),), {"next_step": True}),
        ((("Trial", "ns", "t0"),), {"next_step": False})]


def _trial_body(i: int, round_name: str = "r", **kw) -> dict:
    body = trial(i, {"learning_rate": 0.01 * (i + 1)}, round_name=round_name, **kw).model_dump(
        by_alias=True, mode="json", exclude_none=True)
    body["metadata"]["managedFields"] = [{"manager": "kubetune"}]
    return body


def test_trials_are_kept_under_their_round_and_by_name_finished_ones_parsed_and_a_deleted_one_dropped():
    index = TrialIndex(TrialModels())
    index.put(_trial_body(0))
    index.put(_trial_body(1, phase="Succeeded", objective=0.5))
    moved = _trial_body(0, round_name="other")
    moved["metadata"]["name"] = "r-0"  # a new version of r-0 that names another Round
    index.put(moved)
    assert index.get(ByName("ns", "r-0")) == ("other",)  # the latest version moved it
    kept = index.get(("ns", "r"))
    assert [type(t).__name__ for t in kept] == ["Trial"]  # r-1 finished: held parsed, once
    assert kept[0].metadata.name == "r-1" and kept[0].status.phase == "Succeeded"
    running = index.get(("ns", "other"))[0]
    assert isinstance(running, dict) and "managedFields" not in running["metadata"]
    assert sorted(k for k, _ in index.items()) == [("ns", "other"), ("ns", "r")]

    assert index.discard("ns", "r-1").metadata.name == "r-1"
    assert index.get(("ns", "r"), ()) == () and index.get(ByName("ns", "r-1"), ()) == ()
    assert len(index) == 1


def test_finished_trials_of_a_round_share_its_round_wide_parts_and_write_out_as_they_came():
    """A Round's settled Trials hold one copy of what is the same for all of them (the Study
    and Round references, the annotations, the owner reference: ~1 KB of a Trial as the API
    server returns it); each still writes out as it came (less its conditions), and a copy
    changed does not change its peers."""
    index = TrialIndex(TrialModels())
    owner = [{"apiVersion": "kubetune.io/v1alpha1", "kind": "Round", "name": "r", "uid": "u-r", "controller": True}]
    bodies = []
    for i in range(3):
        body = _trial_body(i, phase="Succeeded", objective=0.1 * i)
        body["metadata"].update(ownerReferences=[dict(owner[0])], annotations={"kubetune.io/max-steps": "12"},
                                resourceVersion=str(i + 1))
        bodies.append(copy.deepcopy(body))
        index.put(body)
    other = _trial_body(3, round_name="other", phase="Succeeded", objective=0.3)
    index.put(other)
    a, b, c = index.get(("ns", "r"))
    for t in (b, c):
        assert t.spec.study_ref is a.spec.study_ref and t.spec.round_ref is a.spec.round_ref
        assert t.metadata.annotations is a.metadata.annotations
        assert t.metadata.model_extra["ownerReferences"] is a.metadata.model_extra["ownerReferences"]
    assert index.get(("ns", "other"))[0].spec.round_ref is not a.spec.round_ref  # another Round's: its own
    for t, body in zip((a, b, c), bodies):
        body["metadata"].pop("managedFields")
        assert trial_models.body(t) == body
    changed = b.model_copy(deep=True)
    changed.spec.round_ref.name = "elsewhere"
    changed.metadata.annotations["x"] = "y"
    assert a.spec.round_ref.name == "r" and "x" not in c.metadata.annotations
