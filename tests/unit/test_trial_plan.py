import datetime as dt
import json

from kubetune.api.trial import CurvePoint, StopReason
from kubetune.core.trial_plan import PodView, plan_trial

from .factories import trial

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
KW = dict(metric="val_loss", direction="minimize", strategy="best", max_retries=2, now=NOW)


def term(**kw):
    doc = {"step": 10, "last": {"val_loss": 0.3}, "min": {"val_loss": 0.25}, "max": {"val_loss": 1.0},
           "diverged": False, "infeasible": None, "error": None}
    doc.update(kw)
    return json.dumps(doc)


def test_a_new_trial_gets_its_first_pod():
    plan = plan_trial(trial(0, {}), None, **KW)
    assert plan.create_pod == "r-0-a1" and plan.status.phase == "Pending" and plan.status.attempts == 1


def test_a_trial_whose_first_status_was_never_written_takes_its_pod_as_the_first_attempt():
    # the operator writes a new Trial's first status on its pod's first event: a restart in
    # between finds the pod and a Trial without status; an eviction must then start a2, not a1 again
    t = trial(0, {})
    found = plan_trial(t, PodView("r-0-a1", "Running", started_at="2026-01-01T00:00:00Z"), **KW)
    assert found.status.phase == "Running" and found.status.attempts == 1 and found.status.pod_name == "r-0-a1"
    t.status = found.status
    again = plan_trial(t, PodView("r-0-a1", "Failed", reason="Evicted"), **KW)
    assert again.create_pod == "r-0-a2" and again.delete_pod == "r-0-a1"


def test_pod_running_then_succeeded_gives_the_best_value():
    t = trial(0, {})
    t.status.phase, t.status.attempts, t.status.pod_name = "Pending", 1, "r-0-a1"
    running = plan_trial(t, PodView("r-0-a1", "Running", started_at="2026-01-01T00:00:00Z"), **KW)
    assert running.status.phase == "Running" and running.status.start_time == "2026-01-01T00:00:00Z"
    t.status = running.status
    done = plan_trial(t, PodView("r-0-a1", "Succeeded", exit_code=0, termination_message=term()), **KW)
    assert done.status.phase == "Succeeded" and done.status.objective == 0.25
    assert done.status.final == {"val_loss": 0.3} and done.status.last_step == 10


def test_divergence_and_self_declared_infeasibility_are_infeasible():
    t = trial(0, {})
    t.status.phase, t.status.attempts = "Running", 1
    a = plan_trial(t, PodView("p", "Succeeded", termination_message=term(diverged=True)), **KW)
    b = plan_trial(t, PodView("p", "Failed", exit_code=1, termination_message=term(infeasible="CUDA OOM")), **KW)
    assert a.status.phase == b.status.phase == "Infeasible"
    assert "CUDA OOM" in b.status.message


def test_a_crash_is_failed_with_the_error_and_exit_code():
    t = trial(0, {})
    t.status.phase, t.status.attempts = "Running", 1
    p = plan_trial(t, PodView("p", "Failed", exit_code=1, termination_message=term(error="ValueError: bad")), **KW)
    assert p.status.phase == "Failed" and "ValueError: bad" in p.status.message and "exit code 1" in p.status.message


def test_a_pod_that_ended_without_any_metric_is_never_left_running():
    t = trial(0, {})
    t.status.phase, t.status.attempts = "Running", 1
    ok = plan_trial(t, PodView("p", "Succeeded", exit_code=0, termination_message="not json"), **KW)
    assert ok.status.phase == "Failed" and "never reported val_loss" in ok.status.message
    bad = plan_trial(t, PodView("p", "Failed", exit_code=137, reason="OOMKilled"), **KW)
    assert bad.status.phase == "Failed" and "OOMKilled" in bad.status.message


def test_evictions_are_retried_up_to_the_limit():
    t = trial(0, {})
    t.status.phase, t.status.attempts, t.status.pod_name = "Running", 1, "r-0-a1"
    p = plan_trial(t, PodView("r-0-a1", "Failed", reason="Evicted"), **KW)
    assert p.create_pod == "r-0-a2" and p.delete_pod == "r-0-a1" and p.status.phase == "Pending"
    t.status.attempts = 3
    p = plan_trial(t, PodView("r-0-a3", "Failed", disrupted=True), **KW)
    assert p.status.phase == "Failed" and "gave up after 3 attempts" in p.status.message


def test_a_vanished_pod_under_a_running_trial_starts_a_new_attempt():
    t = trial(0, {})
    t.status.phase, t.status.attempts, t.status.pod_name = "Running", 1, "r-0-a1"
    p = plan_trial(t, None, **KW)
    assert p.create_pod == "r-0-a2"


def test_an_early_stop_records_evidence_and_deletes_the_pod():
    t = trial(0, {})
    t.status.phase, t.status.attempts, t.status.pod_name = "Running", 1, "r-0-a1"
    stop = StopReason(rule="median", step=5, message="worse than the median", evidence={"median": 0.4, "value": 0.9})
    curve = [CurvePoint(step=s, value=1.0 / s) for s in range(1, 6)]
    p = plan_trial(t, PodView("r-0-a1", "Running"), curve=curve, stop=stop, **KW)
    assert p.status.phase == "EarlyStopped" and p.delete_pod == "r-0-a1"
    assert p.status.stop_reason.evidence["median"] == 0.4 and p.status.objective == 0.2
    assert len(p.status.curve) == 5


def test_with_the_last_value_as_objective_a_trial_counts_where_it_ended_or_stopped():
    t = trial(0, {})
    t.status.phase, t.status.attempts, t.status.pod_name = "Running", 1, "r-0-a1"
    last = {**KW, "strategy": "last"}
    # termination message: best 0.25 on the way, 0.3 at the end
    done = plan_trial(t, PodView("r-0-a1", "Succeeded", exit_code=0, termination_message=term()), **last)
    assert done.status.phase == "Succeeded" and done.status.objective == 0.3
    assert plan_trial(t, PodView("r-0-a1", "Succeeded", exit_code=0, termination_message=term()),
                      **KW).status.objective == 0.25
    # no termination message: the curve's last point
    curve = [CurvePoint(step=s, value=v) for s, v in [(1, 0.9), (2, 0.4), (3, 0.6)]]
    ended = plan_trial(t, PodView("r-0-a1", "Succeeded", exit_code=0), curve=curve, **last)
    assert ended.status.objective == 0.6
    stop = StopReason(rule="median", step=3, message="worse than the median", evidence={})
    stopped = plan_trial(t, PodView("r-0-a1", "Running"), curve=curve, stop=stop, **last)
    assert stopped.status.phase == "EarlyStopped" and stopped.status.objective == 0.6


def test_finished_trials_only_clean_up_their_pod():
    t = trial(0, {}, "Succeeded", 0.1)
    assert plan_trial(t, PodView("p", "Running"), **KW).delete_pod == "p"
    assert plan_trial(t, PodView("p", "Succeeded"), **KW).status.phase == "Succeeded"


def test_curves_stay_bounded_and_keep_first_last_and_best():
    t = trial(0, {})
    t.status.phase, t.status.attempts = "Running", 1
    curve = [CurvePoint(step=s, value=abs(s - 1234) / 1000 + 0.01) for s in range(1, 5001)]
    p = plan_trial(t, PodView("p", "Running"), curve=curve, **KW)
    steps = [c.step for c in p.status.curve]
    assert len(steps) <= 200 and steps[0] == 1 and steps[-1] == 5000 and 1234 in steps
    assert steps == sorted(steps)


def test_a_pod_that_can_never_start_fails_the_trial_instead_of_pending_forever():
    t = trial(0, {})
    t.status.phase, t.status.attempts, t.status.pod_name = "Pending", 1, "r-0-a1"
    pod = PodView("r-0-a1", "Pending", waiting_reason="CreateContainerConfigError",
                  waiting_message="container has runAsNonRoot and image will run as root")
    p = plan_trial(t, pod, **KW)
    assert p.status.phase == "Failed" and "runAsNonRoot" in p.status.message and p.delete_pod == "r-0-a1"
    slow = plan_trial(t, PodView("r-0-a1", "Pending", waiting_reason="ContainerCreating"), **KW)
    assert slow.status.phase == "Pending"


def test_pod_view_reads_the_kubelet_fields():
    from kubetune.controller.pods import pod_view

    pod = {"metadata": {"name": "p"}, "status": {
        "phase": "Failed", "reason": "Evicted", "startTime": "2026-01-01T00:00:00Z",
        "conditions": [{"type": "DisruptionTarget", "status": "True"}],
        "containerStatuses": [{"name": "train", "state": {"terminated": {"exitCode": 137, "message": "{}"}}}]}}
    v = pod_view(pod, "train")
    assert (v.phase, v.reason, v.exit_code, v.disrupted, v.termination_message) == ("Failed", "Evicted", 137, True, "{}")


def test_what_the_operator_keeps_of_a_trial_pod_reads_the_same_and_is_a_fraction_of_it():
    """The pod index holds every trial pod until its Trial goes (10,000 in a long Round):
    it keeps only what the operator reads of one, and reads it the same."""
    from kubetune.controller.pods import kept, pod_view, primary_pod
    from kubetune.workload import render_pod

    from .factories import study

    s = study(template={"spec": {"containers": [{
        "name": "train", "image": "registry.example/train:1", "command": ["python", "train.py"],
        "env": [{"name": f"SETTING_{i}", "value": "x" * 40} for i in range(30)],
        "resources": {"limits": {"nvidia.com/gpu": 1, "memory": "16Gi"}}}]}})
    t = trial(0, {"learning_rate": 0.1, "optimizer": "sgd"})
    for gated in (False, True):
        pod = render_pod(s, t, "r-0-a1", 1, queue="team-a" if gated else None)
        pod["metadata"].update(uid="u-1", resourceVersion="9", creationTimestamp="2026-01-01T00:00:00Z",
                               managedFields=[{"manager": "kubelet", "fieldsV1": {"f:status": {}}}])
        if gated:
            pod["spec"]["schedulingGates"] = [{"name": "kueue.x-k8s.io/admission"}]
        pod["status"] = {"phase": "Succeeded", "startTime": "2026-01-01T00:00:05Z", "containerStatuses": [
            {"name": "train", "state": {"terminated": {"exitCode": 0, "message": json.dumps({"val_loss": 0.1})}}}]}
        small = kept(pod)
        assert pod_view(small, "train") == pod_view(pod, "train")
        assert pod_view(small, "train").queued is gated
        assert primary_pod([small]) is not None or primary_pod([pod]) is None
        assert len(json.dumps(small)) < len(json.dumps(pod)) / 3


def test_a_running_trial_whose_objective_diverged_ends_infeasible_at_once():
    t = trial(0, {})
    t.status.phase, t.status.attempts, t.status.pod_name = "Running", 1, "r-0-a1"
    curve = [CurvePoint(step=1, value=0.9), CurvePoint(step=2, value=0.8)]
    plan = plan_trial(t, PodView("r-0-a1", "Running"), **KW, curve=curve, diverged_step=3)
    assert plan.status.phase == "Infeasible" and plan.delete_pod == "r-0-a1"
    assert plan.status.message == "val_loss diverged (NaN or infinite) at step 3"
    assert plan.status.objective == 0.8  # the best of what it reported before
    # and when the trial ended by itself first, its termination message says the same step
    ended = plan_trial(t, PodView("r-0-a1", "Succeeded", exit_code=0,
                                  termination_message=term(diverged=True, divergedStep=3, step=20)), **KW)
    assert ended.status.phase == "Infeasible" and "at step 3" in ended.status.message
