"""What queues a pass, and what does not.

A Trial pass that writes a new phase has acted on it: the watch's echo of that write does
not queue the Trial again (a pass that would find nothing to do), and the Round hears of
the change from the pass itself. A phase written by anyone else still queues both. At
120 Rounds x 30 every trial writes Pending and Running: two passes a trial saved.

A Round pass that finds the Trials its last pass created not yet in the index is put off;
the event that brings the last of them queues it at once, ahead of other events, instead
of a fixed retry later (a wave of trials of one Round that ended together waited for it)."""
from __future__ import annotations

import datetime as dt
from typing import Any
from unittest import mock

import kopf

from kubetune.controller import handlers
from kubetune.controller.handlers import OperatorConfig
from kubetune.controller.index_keys import ByName

from .factories import Clock, round_, study, trial

NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.timezone.utc)
KEY = ("Trial", "ns", "r-0")
ROUND = ("Round", "ns", "r")


def _body(model) -> dict:
    body = model.model_dump(by_alias=True, mode="json", exclude_none=True)
    body["metadata"]["resourceVersion"] = "1"
    return body


def _pod(phase: str) -> dict:
    status: dict[str, Any] = {"phase": phase, "startTime": "2026-12-03T11:59:50Z"}
    if phase == "Succeeded":
        status["containerStatuses"] = [{"name": "train", "state": {"terminated": {
            "exitCode": 0, "message": '{"min": {"val_loss": 0.25}, "last": {"val_loss": 0.25}, "step": 20}', "finishedAt": "2026-12-03T11:59:59Z"}}}]
    return {"metadata": {"name": "r-0-a1", "namespace": "ns", "labels": {}}, "status": status}


class Operator:
    """The operator's registered handlers and one Trial's pass, with the API faked."""

    def __init__(self) -> None:
        self.cfg = OperatorConfig(kube=mock.Mock(), clock=lambda: NOW)  # type: ignore[arg-type]
        self.cfg.queue = mock.Mock()
        registry = kopf.OperatorRegistry()
        handlers.register(registry, self.cfg)
        self.raw = _body(trial(0, {"learning_rate": 0.01}))
        self.pods: list[dict] = []
        self.cfg.indexes = {
            "study_index": {("ns", "s"): [_body(study())]},
            "round_index": {("ns", "s"): [_body(round_())], ByName("ns", "r"): [_body(round_())]},
            "trial_index": {("ns", "r"): [self.raw], ByName("ns", "r-0"): ["r"]}, "pod_index": {("ns", "r-0"): self.pods}}
        self.version = 1
        self.cfg.kube.patch_custom_status.side_effect = self._patched

    def _patched(self, plural: str, namespace: str, name: str, status: dict) -> dict:
        self.version += 1
        self.raw = {**self.raw, "metadata": {**self.raw["metadata"], "resourceVersion": str(self.version)},
                    "status": {**(self.raw.get("status") or {}), **status}}
        return self.raw

    def run_pass(self, pod_phase: str) -> None:
        self.pods[:] = [_pod(pod_phase)]
        self.cfg.queue.reset_mock()
        handlers._pass(self.cfg, KEY, handlers._current(self.cfg, KEY) or self.raw)

    def event(self, body: dict) -> list[tuple]:
        """The watch brings `body`: the keys its event queued."""
        self.cfg.queue.reset_mock()
        handlers.trial_changed(self.cfg, "MODIFIED", body)
        return [c.args[0] for c in self.cfg.queue.add.call_args_list]


def test_the_echo_of_a_trials_own_phase_write_queues_nothing_and_its_round_hears_from_the_pass():
    op = Operator()
    op.run_pass("Running")  # the pod's first event: the Trial's first status, Running
    assert op.raw["status"]["phase"] == "Running"
    op.cfg.queue.add_threadsafe.assert_called_once_with(ROUND, next_step=False)
    assert op.event(op.raw) == []  # its echo: no second pass of the Trial, no second of the Round

    op.run_pass("Succeeded")  # the pod ended: the Round plans the successor, first in line
    assert op.raw["status"]["phase"] == "Succeeded"
    op.cfg.queue.add_threadsafe.assert_called_once_with(ROUND, next_step=True)
    assert op.event(op.raw) == []


def test_a_phase_the_pass_did_not_write_still_queues_the_trial_and_its_round():
    op = Operator()
    op.run_pass("Running")
    op.event(op.raw)
    stopped = {**op.raw, "status": {**op.raw["status"], "phase": "Pending"}}  # written by someone else
    assert op.event(stopped) == [KEY, ROUND]
    ended = {**op.raw, "status": {**op.raw["status"], "phase": "EarlyStopped"}}  # the Round's stop
    assert op.event(ended) == [ROUND]


def test_a_pass_that_writes_no_new_phase_queues_no_round():
    op = Operator()
    op.run_pass("Running")
    op.run_pass("Running")  # the same pod, still running: nothing new to say
    op.cfg.queue.add_threadsafe.assert_not_called()


def test_an_echo_that_reaches_the_loop_before_the_write_returns_is_not_news_either():
    op = Operator()
    echoes: list[list[tuple]] = []
    write = op.cfg.kube.patch_custom_status.side_effect

    def echoed(*args: Any) -> dict:
        body = write(*args)
        echoes.append(op.event(body))  # the watch is quicker than the answer
        return body

    op.cfg.kube.patch_custom_status.side_effect = echoed
    op.run_pass("Running")
    assert echoes == [[]]
    op.cfg.queue.add_threadsafe.assert_called_once_with(ROUND, next_step=False)


def test_a_write_that_fails_leaves_its_phase_news():
    from kubernetes.client.rest import ApiException

    op = Operator()
    op.cfg.kube.patch_custom_status.side_effect = ApiException(status=500)
    try:
        op.run_pass("Running")
    except ApiException:
        pass
    else:
        raise AssertionError("the pass hid the API's refusal")
    op.cfg.queue.add_threadsafe.assert_not_called()
    running = {**op.raw, "status": {"phase": "Running"}}  # written by a pass that did not fail
    assert op.event(running) == [KEY, ROUND]


def test_a_round_pass_put_off_for_its_new_trial_runs_when_the_trial_reaches_the_index():
    op = Operator()
    created = _body(trial(1, {"learning_rate": 0.02}))
    op.cfg.expect(ROUND, "trial_index", ("ns", "r"), ["r-1"])  # what the Round's last pass created
    wait = handlers.run_pass(op.cfg, ROUND)
    assert wait is not None and wait > 2  # put off; the retry is only the safety net's
    op.cfg.queue.add.reset_mock()

    op.cfg.indexes["trial_index"][("ns", "r")].append(created)  # the watch files it before handing it on
    op.cfg.indexes["trial_index"][ByName("ns", "r-1")] = ["r"]
    op.cfg.known(("Trial", "ns", "r-1"), None)  # the Round's pass knew its ADDED was no news
    handlers.trial_changed(op.cfg, "ADDED", created)
    op.cfg.queue.add.assert_called_once_with(ROUND, next_step=True)

    op.cfg.queue.add.reset_mock()  # a later event of the Round's trials: no second wake-up
    handlers.trial_changed(op.cfg, "MODIFIED", created)
    op.cfg.queue.add.assert_not_called()


def test_a_trial_pass_parses_its_study_and_round_again_only_when_one_changed():
    cfg = OperatorConfig(kube=mock.Mock())  # type: ignore[arg-type]
    s, r = _body(study()), _body(round_())
    first = cfg.study_and_round("ns", s, r)
    assert cfg.study_and_round("ns", s, r) is first  # unchanged: the same parse, no second one

    edited = {**r, "metadata": {**r["metadata"], "resourceVersion": "2"},
              "spec": {**r["spec"], "budget": {"maxTrials": 9, "parallelism": 3}}}
    again = cfg.study_and_round("ns", s, edited)
    assert again is not first and again[1].spec.budget.max_trials == 9  # the edit is what the pass reads

    s2 = {**s, "metadata": {**s["metadata"], "resourceVersion": "7"}, "spec": {**s["spec"], "maxSteps": 40}}
    third = cfg.study_and_round("ns", s2, edited)
    assert third[0].spec.max_steps == 40  # so is the Study's
    assert cfg.study_and_round("ns", s2, edited) is third

    cfg.forget_round("ns", "r")  # the Round deleted: its parse goes with it
    assert cfg.study_and_round("ns", s2, edited) is not third


def test_each_rounds_parse_of_its_study_leaves_out_the_study_wide_results_but_not_the_baseline():
    cfg = OperatorConfig(kube=mock.Mock())  # type: ignore[arg-type]
    s = _body(study())
    s["status"] = {"baseline": {"learning_rate": 0.05}, "archive": [{"round": "r", "trials": []}],
                   "rounds": [{"name": "r"}]}
    parsed, _ = cfg.study_and_round("ns", s, _body(round_()))
    assert parsed.status.baseline == {"learning_rate": 0.05}  # an adopted baseline is what trials run with
    assert parsed.status.archive == [] and parsed.status.rounds == []
    assert s["status"]["archive"]  # the index's body is left as it was


def test_a_round_pass_whose_wait_lapsed_counts_the_trials_it_created_that_the_watch_has_not_brought():
    """An operator short of CPU can lag its watch by more than the expectation's 10 s: the
    Round's next pass then plans from an index without its new Trials. It must not create
    them again (a 409, and the Round's sampler told parameters no Trial runs with)."""
    op = Operator()
    created: list[dict] = []

    def create(plural: str, namespace: str, body: dict) -> dict:
        answer = {**body, "metadata": {**body["metadata"], "resourceVersion": str(100 + len(created))}}
        created.append(answer)
        return answer

    op.cfg.kube.create_custom.side_effect = create
    op.cfg.kube.patch_custom_status.side_effect = lambda plural, *a: op._patched(plural, *a) if plural == "trials" else None
    handlers.run_pass(op.cfg, ROUND)
    first = sorted(b["metadata"]["name"] for b in created)
    assert first == ["r-1"]  # parallelism 2: r-0 runs, r-1 is new
    at, *rest = op.cfg._expected[ROUND]
    op.cfg._expected[ROUND] = (at - 11, *rest)  # the watch has not brought r-1 within the wait

    handlers.run_pass(op.cfg, ROUND)
    assert sorted(b["metadata"]["name"] for b in created) == first  # nothing created twice


def _merged(old: dict, patch: dict) -> dict:
    """A JSON merge patch (RFC 7386) applied, as the API server does."""
    out = dict(old)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merged(out[k], v)
        else:
            out[k] = v
    return out


def _round_with_a_successor(clock: Clock) -> tuple[Operator, list[dict], list[str]]:
    """A Round of parallelism 2: its first pass creates r-1 and writes its first status; 10 s
    later r-0 has ended and the next pass creates r-2. Returns the operator, the Round
    statuses written and the Trials created."""
    op = Operator()
    written: list[dict] = []
    created: list[str] = []
    trials = op.cfg.indexes["trial_index"][("ns", "r")]

    def create(plural: str, namespace: str, body: dict) -> dict:
        answer = {**body, "metadata": {**body["metadata"], "resourceVersion": str(100 + len(created))}}
        created.append(body["metadata"]["name"])
        trials.append(answer)  # the watch brings it at once
        return answer

    def patch_status(plural: str, namespace: str, name: str, status: dict) -> dict | None:
        if plural == "trials":
            return op._patched(plural, namespace, name, status)
        written.append(status)
        old = op.cfg.indexes["round_index"][ByName("ns", "r")][0]
        new = {**old, "metadata": {**old["metadata"], "resourceVersion": str(int(old["metadata"]["resourceVersion"]) + 1)},
               "status": _merged(old.get("status") or {}, status)}
        op.cfg.indexes["round_index"][ByName("ns", "r")] = [new]  # so is the Round's status
        return new

    op.cfg.kube.create_custom.side_effect = create
    op.cfg.kube.patch_custom_status.side_effect = patch_status
    op.cfg.kube.custom.get_namespaced_custom_object.return_value = _body(study())  # the archive's read
    handlers.run_pass(op.cfg, ROUND)
    assert created == ["r-1"] and len(written) == 1  # a Round's first status is never kept waiting
    clock.now += 10
    ended = _body(trial(0, {"learning_rate": 0.01}, phase="Succeeded", objective=0.3))
    trials[0] = {**ended, "metadata": {**ended["metadata"], "resourceVersion": "2"}}
    op.cfg.queue.reset_mock()
    handlers.run_pass(op.cfg, ROUND)
    assert created == ["r-1", "r-2"]  # the successor is not kept waiting
    return op, written, created


def _started(op: Operator, name: str) -> None:
    trials = op.cfg.indexes["trial_index"][("ns", "r")]
    i = next(i for i, t in enumerate(trials) if t["metadata"]["name"] == name)
    t = trials[i]
    trials[i] = {**t, "metadata": {**t["metadata"], "resourceVersion": str(int(t["metadata"]["resourceVersion"]) + 1)},
                 "status": {"phase": "Running", "attempts": 1, "podName": f"{name}-a1"}}


def test_a_round_pass_that_creates_a_successor_leaves_its_recount_to_a_pass_status_seconds_later():
    """When a wave of trials ends together, each Round pass of the wave creates a successor;
    a status written by each of them (a write costs the API server three creates' CPU) stood
    between the successors that came after. The recount waits for a pass status_seconds
    later, which writes it once, with every trial that ended or started meanwhile counted."""
    clock = Clock()
    with mock.patch.object(handlers.time, "monotonic", clock):
        op, written, created = _round_with_a_successor(clock)
        assert len(written) == 1  # the recount waits
        op.cfg.queue.add_threadsafe.assert_called_with(ROUND, after=2.0)  # for the pass that writes it
        clock.now += 0.5
        _started(op, "r-1")  # a trial starts: its Round's pass recounts, and waits for the same write
        handlers.run_pass(op.cfg, ROUND)
        assert len(written) == 1
        op.cfg.queue.add_threadsafe.assert_called_with(ROUND, after=1.5)
        clock.now += 1.5
        handlers.run_pass(op.cfg, ROUND)  # the pass that was due
        assert created == ["r-1", "r-2"] and len(written) == 2
        status = op.cfg.indexes["round_index"][ByName("ns", "r")][0]["status"]
        assert status["counts"]["succeeded"] == 1 and status["counts"]["running"] == 1  # the end and the start
        assert status["trialsCreated"] == 3
        op.cfg.queue.reset_mock()
        handlers.run_pass(op.cfg, ROUND)  # nothing new: nothing written, nothing queued
        assert len(written) == 2 and not op.cfg.queue.add_threadsafe.called


def test_a_recount_is_written_at_most_every_status_seconds():
    clock = Clock()
    with mock.patch.object(handlers.time, "monotonic", clock):
        op, written, _ = _round_with_a_successor(clock)
        clock.now += 2.0
        handlers.run_pass(op.cfg, ROUND)
        assert len(written) == 2  # the recount the successor's pass left
        clock.now += 0.5
        _started(op, "r-2")
        handlers.run_pass(op.cfg, ROUND)
        assert len(written) == 2  # 0.5 s after the last write: it waits for 1.5 s more
        op.cfg.queue.add_threadsafe.assert_called_with(ROUND, after=1.5)
        clock.now += 1.5
        handlers.run_pass(op.cfg, ROUND)
        assert len(written) == 3 and written[2]["counts"]["running"] == 1


def test_only_a_recount_waits():
    clock = Clock()
    cfg = OperatorConfig(kube=mock.Mock())  # type: ignore[arg-type]
    with mock.patch.object(handlers.time, "monotonic", clock):
        assert cfg.status_wait(ROUND, created=False, changed=True, recount=True) is None  # never written: now
        clock.now += 0.5
        assert cfg.status_wait(ROUND, created=False, changed=True, recount=False) is None  # a new phase: now
        assert cfg.status_wait(ROUND, created=True, changed=True, recount=True) == 2.0
        clock.now += 2.0
        assert cfg.status_wait(ROUND, created=True, changed=True, recount=True) is None  # never longer than that
        assert cfg.status_wait(ROUND, created=False, changed=False, recount=False) is None  # nothing to write


def test_only_a_recount_waits_not_a_new_phase_or_condition():
    from kubetune.api.round import RoundStatus
    from kubetune.core.round_plan import only_recounts
    written = {"phase": "Running", "observedGeneration": 1, "progress": "1/6",
               "conditions": [{"type": "Ready", "status": "False", "reason": "Running", "message": "1/6 finished",
                               "lastTransitionTime": "2026-12-03T12:00:00Z"}]}
    recount = RoundStatus.model_validate({**written, "progress": "2/6", "conditions": [
        {**written["conditions"][0], "message": "2/6 finished", "lastTransitionTime": "2026-12-03T12:00:05Z"}]})
    assert only_recounts(written, recount)
    assert not only_recounts(None, recount)  # nothing written yet
    assert not only_recounts(written, recount.model_copy(update={"phase": "Succeeded"}))
    assert not only_recounts(written, recount.model_copy(update={"observed_generation": 2}))  # the spec changed
    assert not only_recounts(written, RoundStatus.model_validate({**written, "conditions": [
        {**written["conditions"][0], "status": "True", "reason": "Done"}]}))
