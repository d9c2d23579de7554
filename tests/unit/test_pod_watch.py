"""The trial pods the operator keeps (pod_watch.PodIndex) and what a relist hands on: the
passes read pods under their Trial, and a pod that went away while nothing watched must
still reach its Trial as gone."""
from __future__ import annotations

from unittest import mock

from kubetune.controller import handlers
from kubetune.controller.handlers import OperatorConfig
from kubetune.controller.pod_watch import PodIndex, relisted

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
    assert [(kind, p["metadata"]["name"]) for kind, p in changes] == [
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
