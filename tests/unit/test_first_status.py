"""A new Trial's first status is written on its pod's first event, not in the pass that
creates the pod: a burst of new Trials (3,600 at 120 Rounds x 30) gets its pods before its
statuses, and a pod that starts at once costs one status write instead of two. Nothing is
lost meanwhile: the pod is named by its trial and attempt."""
from __future__ import annotations

import datetime as dt
from unittest import mock

import kopf

from kubetune.controller.handlers import OperatorConfig, reconcile_round, reconcile_trial
from kubetune.controller.index_keys import ByName

from .factories import round_, study, trial

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.timezone.utc)


def _body(model) -> dict:
    body = model.model_dump(by_alias=True, mode="json", exclude_none=True)
    body["metadata"]["resourceVersion"] = "1"
    return body


def _config() -> OperatorConfig:
    cfg = OperatorConfig(kube=mock.Mock(), clock=lambda: NOW)  # type: ignore[arg-type]
    cfg.kube.create_pod.return_value = True
    return cfg


def _trial_pass(cfg: OperatorConfig, raw: dict, pods: list[dict]) -> dict:
    s, r = study(), round_()
    indexes = {"study_index": {("ns", "s"): [_body(s)]}, "round_index": {("ns", "s"): [_body(r)], ByName("ns", "r"): [_body(r)]},
               "trial_index": {("ns", "r"): [raw]}, "pod_index": {("ns", "r-0"): pods}}
    patch = kopf.Patch()
    reconcile_trial(cfg, raw, "ns", "r-0", patch, *indexes.values())
    return dict(patch.get("status") or {})


def test_a_new_trials_pass_creates_its_pod_and_its_pods_first_event_writes_its_status():
    cfg = _config()
    raw = _body(trial(0, {"learning_rate": 0.01}))
    assert _trial_pass(cfg, raw, []) == {}  # the pod, and no status write yet
    created = cfg.kube.create_pod.call_args.args[1]
    assert created["metadata"]["name"] == "r-0-a1"

    pod = {"metadata": {"name": "r-0-a1", "namespace": "ns", "labels": {}},
           "status": {"phase": "Running", "startTime": "2026-12-02T11:59:58Z"}}
    first = _trial_pass(cfg, raw, [pod])  # the pod started before the pass: one write says so
    assert (first["phase"], first["attempts"], first["podName"]) == ("Running", 1, "r-0-a1")
    assert first["startTime"] == "2026-12-02T11:59:58Z"
    assert cfg.kube.create_pod.call_count == 1

    pending = {**pod, "status": {"phase": "Pending"}}
    waiting = _trial_pass(_config(), raw, [pending])  # a pod that waits for a node: the Trial says Pending
    assert (waiting["phase"], waiting["attempts"], waiting["podName"]) == ("Pending", 1, "r-0-a1")


def test_a_retry_still_writes_its_attempt_with_the_pod():
    cfg = _config()
    t = trial(0, {"learning_rate": 0.01})
    t.status.phase, t.status.attempts, t.status.pod_name = "Running", 1, "r-0-a1"
    evicted = {"metadata": {"name": "r-0-a1", "namespace": "ns", "labels": {}},
               "status": {"phase": "Failed", "reason": "Evicted"}}
    status = _trial_pass(cfg, _body(t), [evicted])
    assert (status["phase"], status["attempts"], status["podName"]) == ("Pending", 2, "r-0-a2")


def test_a_round_that_ends_stops_the_pod_of_a_trial_whose_status_does_not_name_it_yet():
    cfg = _config()
    s, r = study(), round_()  # maxFailedTrials 2
    failed = [trial(i, {"learning_rate": 0.01 * (i + 1)}, phase="Failed") for i in range(2)]
    new = trial(2, {"learning_rate": 0.5})  # created, its pod too, its first status not written yet
    trials = [_body(t) for t in [*failed, new]]
    raw = _body(r)
    cfg.kube.custom.get_namespaced_custom_object.return_value = _body(s)  # the archive's read of the Study
    reconcile_round(cfg, raw, "ns", "r", kopf.Patch(), {("ns", "s"): [_body(s)]}, {("ns", "r"): trials}, set())
    ended = {c.args[2]: c.args[3] for c in cfg.kube.patch_custom_status.call_args_list if c.args[0] == "trials"}
    assert ended["r-2"]["phase"] == "Failed" and "the Round has ended" in ended["r-2"]["message"]
    cfg.kube.delete_pod.assert_called_once_with("ns", "r-2-a1", cfg.stop_grace_seconds)


def test_a_trial_finds_its_round_by_name_and_only_under_its_own_study():
    """A Trial's pass looks its Round up by name (one of 120 Rounds under a Study, 3,600 times
    in a first wave), and a Round of that name under another Study is not its Round."""
    cfg = _config()
    raw = _body(trial(0, {"learning_rate": 0.01}))
    other = _body(round_())
    other["spec"]["studyRef"]["name"] = "another"
    indexes = {"study_index": {("ns", "s"): [_body(study())]},
               "round_index": {("ns", "another"): [other], ByName("ns", "r"): [other]},
               "trial_index": {("ns", "r"): [raw]}, "pod_index": {}}
    patch = kopf.Patch()
    reconcile_trial(cfg, raw, "ns", "r-0", patch, *indexes.values())
    ready = {c["type"]: c for c in patch["status"]["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "RoundNotFound")
    cfg.kube.create_pod.assert_not_called()

    assert _trial_pass(cfg, raw, []) == {}  # its own Round, found by name: its pod is created
    cfg.kube.create_pod.assert_called_once()
