"""The operator survives what a cluster does to it, on a real API server (issue #23):
SIGKILL at random moments, an API server that stops for 10 s and comes back, and watches
that expire (410 Gone). Nothing is lost, nothing is duplicated, no ERROR is left behind."""
from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import logging
import random
import re
import signal
import ssl
import time
import urllib.request
from typing import Any

from .conftest import NS, create, live, round_manifest, start_operator, study_manifest, wait_for
from .operator_process import OperatorProcess

LEVEL = re.compile(r"^\S+ \S+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


def errors_in(log: str) -> list[str]:
    """The ERROR (and CRITICAL) records of a log, each with the lines that follow it
    (a traceback) up to the next record."""
    out: list[str] = []
    current: list[str] | None = None
    for line in log.splitlines():
        m = LEVEL.match(line)
        if m:
            if current:
                out.append("\n".join(current))
            current = [line] if m.group(1) in ("ERROR", "CRITICAL") else None
        elif current is not None:
            current.append(line)
    if current:
        out.append("\n".join(current))
    return out


RETRY = re.compile(r"Request attempt #\d+/\d+ failed; will retry: |(Timer|Handler) '[^']+' failed temporarily: ")
"""kopf's one-line notices that something will be retried: a request to the API server
that failed (kopf logs it at ERROR, hard-coded in kopf/_cogs/clients/api.py; no setting
changes that), or a handler that raised kopf.TemporaryError (also logged at ERROR). An
exception nobody classified ("failed with an exception", with a traceback) is none."""


def _when(record: str) -> float:
    return dt.datetime.strptime(" ".join(record.split(" ", 2)[:2]), "%Y-%m-%d %H:%M:%S,%f").timestamp()


def outage_errors(records: list[tuple[float, str]], back: float) -> tuple[list[str], list[str]]:
    """ERROR records (time, text) of an outage that ended at `back` (epoch seconds): those
    that are not one-line retry notices, and every one logged after `back` (left behind)."""
    other = [text for _, text in records if not RETRY.search(text) or "\n" in text]
    late = [f"+{at - back:.2f}s {text}" for at, text in records if at > back]
    return other, late


def _phase(obj: dict[str, Any]) -> str | None:
    return (obj.get("status") or {}).get("phase")


def _unfinished(api: Any) -> dict[str, Any]:
    """The trials not Succeeded yet, with their status and their pods' phases."""
    pods = live(api, "pods")
    return {name: {**{k: v for k, v in (t.get("status") or {}).items() if k not in ("curve", "conditions")},
                   "pods": {p: (_phase(pod), pod["metadata"]["uid"][:8]) for p, pod in pods.items()
                            if p.rsplit("-a", 1)[0] == name}}
            for name, t in live(api, "trials").items() if _phase(t) != "Succeeded"}


def _attempts(kubelet: Any) -> dict[str, int]:
    """How many pods the kubelet ran per trial (pods are named <trial>-a<attempt>)."""
    per_trial: dict[str, int] = {}
    for name in kubelet.started:
        trial = name.rsplit("-a", 1)[0]
        per_trial[trial] = per_trial.get(trial, 0) + 1
    return per_trial


def _assert_round_complete(api: Any, kubelet: Any, n: int, context: str) -> None:
    """Exactly the trials r1-0..r1-<n-1>, one pod each, every result kept, counts right."""
    trials = live(api, "trials")
    assert sorted(trials) == sorted(f"r1-{i}" for i in range(n)), f"{sorted(trials)}\n{context}"
    phases = {name: (_phase(t), (t.get("status") or {}).get("message")) for name, t in trials.items()}
    assert all(p == "Succeeded" for p, _ in phases.values()), f"{phases}\n{context}"
    for name, t in trials.items():
        st = t["status"]
        assert st.get("objective") is not None and st.get("final", {}).get("val_loss") is not None, \
            f"{name} lost its result: {st}\n{context}"
        assert st.get("attempts") == 1 and st.get("podName") == f"{name}-a1", f"{name}: {st}\n{context}"
    assert _attempts(kubelet) == {f"r1-{i}": 1 for i in range(n)}, f"pods run: {kubelet.started}\n{context}"
    status = live(api, "rounds")["r1"]["status"]
    assert status["counts"]["succeeded"] == n and status["progress"] == f"{n}/{n}", f"{status['counts']}\n{context}"
    assert status["trialsCreated"] == n, f"{status}\n{context}"
    assert status["bestValue"] == min(t["status"]["objective"] for t in trials.values()), context


class PodUids:
    """Every uid each pod name had while the test ran, polled from the API server: a pod
    deleted and made again under the same name (a second run of a healthy trial that the
    kubelet stand-in, keyed by pod name, does not show) has two."""

    def __init__(self, api: Any):
        self.api, self.seen, self.task = api, {}, None  # type: ignore[var-annotated]

    async def _poll(self) -> None:
        while True:
            try:
                pods = await asyncio.to_thread(self.api.list, "pods")
            except Exception:  # noqa: BLE001 - the API server may be down on purpose
                pods = []
            for pod in pods:
                self.seen.setdefault(pod["metadata"]["name"], set()).add(pod["metadata"]["uid"])
            await asyncio.sleep(0.1)

    def __enter__(self) -> "PodUids":
        self.task = asyncio.get_running_loop().create_task(self._poll())
        return self

    def __exit__(self, *exc: Any) -> None:
        self.task.cancel()  # type: ignore[union-attr]

    def remade(self) -> dict[str, set[str]]:
        return {name: uids for name, uids in self.seen.items() if len(uids) > 1}


def _kill_when_created(api: Any, plural: str, count: int, op: OperatorProcess) -> str:
    """Block until `count` objects of `plural` exist, then SIGKILL the operator at once (a
    watch sees a creation within milliseconds, so the kill lands right after the create
    call, often before the operator wrote what followed it). The last name created."""
    import kubernetes

    lister = api.core.list_namespaced_pod if plural == "pods" else functools.partial(
        api.custom.list_namespaced_custom_object, "kubetune.io", "v1alpha1")
    args = (NS,) if plural == "pods" else (NS, plural)
    names: set[str] = set()
    watch = kubernetes.watch.Watch()
    for event in watch.stream(lister, *args, timeout_seconds=90, _request_timeout=100):
        obj = event["object"]
        name = obj.metadata.name if plural == "pods" else obj["metadata"]["name"]
        if event["type"] == "ADDED":
            names.add(name)
        if len(names) >= count:
            assert op.proc is not None
            op.proc.send_signal(signal.SIGKILL)
            watch.stop()
            return name
    raise AssertionError(f"no {count} {plural} within 90 s")


async def test_kill_9_at_random_moments_loses_and_duplicates_nothing(world, kubeconfig, tmp_path):
    api, kubelet = world["api"], world["kubelet"]
    rng = random.Random(23)
    n = 9
    # trials of ~5 s: longer than an operator's restart, so a pod made just before a kill still
    # runs when the next operator looks at it
    await create(api, study_manifest(max_steps=40, baseline={"learning_rate": 0.1, "step_seconds": 0.1}))
    await create(api, round_manifest(max_trials=n, parallelism=3))
    op = OperatorProcess(kubeconfig, tmp_path / "operator.log")
    began = time.monotonic()

    def counts() -> tuple[int, int, int]:
        trials, pods = live(api, "trials"), live(api, "pods")
        return len(trials), len(pods), sum(1 for t in trials.values() if _phase(t) == "Succeeded")

    # The moments, each counted from the state after the restart before it: right as the
    # first Trial of a creation burst appears, right as a pod appears (before the operator
    # may have written the pod's name into its Trial), a random delay after trials finish.
    moments = [("trials", 1, 0.0), ("pods", 2, 0.0), ("succeeded", rng.randint(1, 2), rng.uniform(0.0, 1.0)),
               ("trials", 1, 0.0), ("pods", 1, 0.0)]
    kills: list[str] = []
    restarts: list[float] = []
    uids = PodUids(api)
    try:
        with uids:
            op.start()
            restarts.append(await op.started())
            for what, ahead, delay in moments:
                threshold = min(counts()[("trials", "pods", "succeeded").index(what)] + ahead, n)
                if what == "succeeded":
                    await wait_for(lambda: counts()[2] >= threshold, 90, f"{threshold} trials to succeed",
                                   detail=lambda: f"kills so far: {kills}")
                    await asyncio.sleep(delay)
                    op.kill9()
                    last = ""
                else:
                    last = await asyncio.to_thread(_kill_when_created, api, what, threshold, op)
                    op.kill9()
                trials_, pods_, done_ = counts()
                kills.append(f"t={time.monotonic() - began:.1f}s {what}>={threshold} +{delay:.2f}s: "
                             f"{trials_} trials, {pods_} pods, {done_} succeeded")
                await asyncio.sleep(rng.uniform(0.0, 1.0))  # pods go on while no operator runs
                if what == "pods":  # had the operator written the new pod's name into its Trial?
                    trial = last.rsplit("-a", 1)[0]
                    said = (live(api, "trials")[trial].get("status") or {}).get("podName")
                    kills[-1] += f" ({trial}.status.podName: {said})"
                op.start()
                restarts.append(await op.started())
            context = f"kills: {kills}; restarts took {[round(r, 1) for r in restarts]} s"
            await wait_for(lambda: _phase(live(api, "rounds")["r1"]) == "Succeeded", 60, "the Round to succeed",
                           detail=lambda: f"{counts()}; {_unfinished(api)}; {context}")
            _assert_round_complete(api, kubelet, n, context)
            assert not uids.remade(), f"pods deleted and made again: {uids.remade()}\n{context}"
            assert not errors_in(op.log()), f"{context}\n" + "\n".join(errors_in(op.log()))

            # nothing holds on: the Study goes, and everything with it (no finalizer left stuck)
            resp = await api.delete(f"/apis/kubetune.io/v1alpha1/namespaces/{NS}/studies/demo")
            assert resp.status == 200

            def left() -> dict[str, Any]:
                return {plural: {name: (o["metadata"].get("finalizers"), o["metadata"].get("deletionTimestamp"))
                                 for name, o in live(api, plural).items()}
                        for plural in ("studies", "rounds", "trials", "pods") if live(api, plural)}

            await wait_for(lambda: not left(), 60, "everything to be deleted", detail=lambda: f"{left()}; {context}")
            print(context)
    finally:
        op.stop()


async def test_an_api_server_down_for_10_s_loses_nothing_and_leaves_no_error(world, kubeconfig, tmp_path):
    api, kubelet, server = world["api"], world["kubelet"], world["server"]
    n = 6
    await create(api, study_manifest(max_steps=25, baseline={"learning_rate": 0.1, "step_seconds": 0.1}))
    await create(api, round_manifest(max_trials=n, parallelism=3))
    op = OperatorProcess(kubeconfig, tmp_path / "operator.log")
    try:
        op.start()
        await op.started()
        before = len(op.log())
        # down the moment the first trial ends: the operator has its result to write, a Trial
        # to create, and the other two trials end while nothing answers
        with PodUids(api) as uids:
            down = await asyncio.to_thread(_down_when_a_pod_ends, api, server, 10)
            back, back_wall = time.monotonic(), time.time()
            await wait_for(lambda: _phase(live(api, "rounds")["r1"]) == "Succeeded", 60, "the Round to succeed",
                           detail=lambda: f"{_unfinished(api)}; the operator said since the outage:\n"
                                          + "\n".join(line for line in op.log()[before:].splitlines()
                                                       if LEVEL.match(line) and " INFO " not in line)[-6000:])
            done = time.monotonic() - back
            context = f"API server answered nothing for {down:.1f} s; the Round succeeded {done:.1f} s after it was back"
            _assert_round_complete(api, kubelet, n, context)
        assert not uids.remade(), f"pods deleted and made again: {uids.remade()}\n{context}"
        log = op.log()
        assert not errors_in(log[:before]), errors_in(log[:before])
        records = [(_when(r), r) for r in errors_in(log[before:])]
        other, late = outage_errors(records, back_wall)
        print(f"{context}; {len(records)} ERROR records during the outage, all retry notices: {not other}; "
              f"after it: {late}")
        assert not other, f"{context}\n" + "\n".join(other)
        assert not late, f"{context}\n" + "\n".join(late)
    finally:
        op.stop()


def _down_when_a_pod_ends(api: Any, server: Any, seconds: float) -> float:
    """Stop the API server for `seconds` as soon as a pod has Succeeded; restart_apiserver's answer."""
    import kubernetes

    watch = kubernetes.watch.Watch()
    for event in watch.stream(api.core.list_namespaced_pod, NS, timeout_seconds=90, _request_timeout=100):
        if event["object"].status.phase == "Succeeded":
            watch.stop()
            return server.restart_apiserver(seconds)
    raise AssertionError("no pod succeeded within 90 s")


async def test_watches_that_expire_with_410_gone_are_resumed(world, caplog):
    api, kubelet, server = world["api"], world["kubelet"], world["server"]
    n = 6
    caplog.set_level(logging.DEBUG, logger="kopf")
    caplog.set_level(logging.INFO, logger="kubetune")  # the operator's own watches (Trials, pods)
    await start_operator(world)
    await create(api, study_manifest(max_steps=20, baseline={"learning_rate": 0.1, "step_seconds": 0.1}))
    await create(api, round_manifest(max_trials=n, parallelism=3))
    await wait_for(lambda: sum(1 for p in live(api, "pods").values() if _phase(p) == "Running") == 3, 60,
                   "3 running trials")
    listed = api.custom.list_namespaced_custom_object("kubetune.io", "v1alpha1", NS, "trials")
    rv, before = listed["metadata"]["resourceVersion"], len(listed["items"])
    assert before < n
    caplog.clear()
    # a watch resumed from a resourceVersion of before the restart has expired. Whether the
    # restarted API server refuses it (410) or serves it from etcd's history depends on its
    # watch cache at that instant (1 run in 3 served it here): restart again until it is
    # refused, which is the case the operator must survive
    for _ in range(3):
        await asyncio.to_thread(server.restart_apiserver, 1)
        back = time.time()
        expired = _watch_from(server, "trials", rv)
        if expired.get("code") == 410:
            break
    assert expired.get("code") == 410, expired
    await wait_for(lambda: _phase(live(api, "rounds")["r1"]) == "Succeeded", 90, "the Round to succeed",
                   detail=lambda: {k: _phase(t) for k, t in live(api, "trials").items()})
    restarted = [r.getMessage() for r in caplog.records
                 if "Restarting the watch-stream" in r.getMessage() or "410 Gone; listing again" in r.getMessage()]
    assert any("trials" in m for m in restarted), f"the operator's watch of trials never saw 410 Gone: {restarted}"
    # the Trials after the restart were made, ran and were recorded through the resumed watches
    _assert_round_complete(api, kubelet, n, f"{before} trials before the restart; watch restarts: {restarted}")
    fmt = logging.Formatter()
    records = [(r.created, f"{r.name}: {r.getMessage()}"
                + (f"\n{fmt.formatException(r.exc_info)}" if r.exc_info else ""))
               for r in caplog.records if r.levelno >= logging.ERROR]
    other, late = outage_errors(records, back)
    print(f"watch restarts after 410: {restarted}; {len(records)} ERROR records, after the outage: {late}")
    assert not other, other
    assert not late, late


def _watch_from(server: Any, plural: str, rv: str) -> dict[str, Any]:
    """The first event of a watch of `plural` from resourceVersion `rv` (the error object of
    an ERROR event, else the event's type)."""
    client = server.client()
    cfg = client.configuration
    ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
    ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    url = (f"{cfg.host}/apis/kubetune.io/v1alpha1/namespaces/{NS}/{plural}"
           f"?watch=true&resourceVersion={rv}&timeoutSeconds=2")
    with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
        line = r.readline()
    event = json.loads(line) if line else {}
    return event.get("object", {}) if event.get("type") == "ERROR" else {"type": event.get("type")}


async def test_a_pod_created_just_before_a_kill_is_the_trials_pod_not_a_stray(world):
    """What SIGKILL leaves between creating a trial's pod and writing its name into the
    Trial's status (a window of milliseconds random kills seldom hit, so it is built here
    as the API server holds it then): r1-0 has no status yet and its first pod runs;
    r1-1's first pod was evicted, the operator deleted it and created the second attempt's
    pod, and the status still names the first. The restarted operator must take those pods for the
    trials' own: neither delete them as strays of an earlier attempt nor start others."""
    from kubetune.api import Round, Study, Trial
    from kubetune.core.round_plan import plan_round
    from kubetune.workload import render_pod

    api, kubelet = world["api"], world["kubelet"]
    await create(api, study_manifest(max_steps=30, baseline={"learning_rate": 0.1, "step_seconds": 0.1}))
    await create(api, round_manifest(max_trials=2, parallelism=2))
    study = Study.model_validate(live(api, "studies")["demo"])
    rnd_raw = live(api, "rounds")["r1"]
    planned = plan_round(study, Round.model_validate(rnd_raw), [], dt.datetime.now(dt.timezone.utc)).create
    assert [t.metadata.name for t in planned] == ["r1-0", "r1-1"]
    trials: dict[str, Trial] = {}
    for t in planned:  # as the operator creates them
        body = t.wire()
        body.pop("status", None)
        body["metadata"]["ownerReferences"] = [{
            "apiVersion": "kubetune.io/v1alpha1", "kind": "Round", "name": "r1", "uid": rnd_raw["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True}]
        await create(api, body)
        trials[t.metadata.name] = Trial.model_validate(live(api, "trials")[t.metadata.name])

    def run(trial: str, pod: str, attempt: int) -> None:
        api.core.create_namespaced_pod(NS, render_pod(study, trials[trial], pod, attempt), _request_timeout=10)

    await asyncio.to_thread(run, "r1-0", "r1-0-a1", 1)
    await asyncio.to_thread(run, "r1-1", "r1-1-a1", 1)
    await wait_for(lambda: sum(1 for p in live(api, "pods").values() if _phase(p) == "Running") == 2, 30,
                   "the first pods to run")
    await asyncio.to_thread(kubelet.evict, "r1-1-a1")
    await asyncio.to_thread(api.custom.patch_namespaced_custom_object_status, "kubetune.io", "v1alpha1", NS,
                            "trials", "r1-1", {"status": {"phase": "Running", "attempts": 1, "podName": "r1-1-a1"}})
    await asyncio.to_thread(api.core.delete_namespaced_pod, "r1-1-a1", NS, _request_timeout=10)
    await asyncio.to_thread(run, "r1-1", "r1-1-a2", 2)  # the pass that starts attempt 2 deletes attempt 1's pod first
    await wait_for(lambda: _phase(live(api, "pods").get("r1-1-a2", {})) == "Running", 30, "the second attempt to run")

    uids = {name: p["metadata"]["uid"] for name, p in live(api, "pods").items()}
    await start_operator(world)
    await wait_for(lambda: _phase(live(api, "rounds")["r1"]) == "Succeeded", 60, "the Round to succeed",
                   detail=lambda: {k: t.get("status") for k, t in live(api, "trials").items()})
    # the same pods ran to the end: none deleted and made again under the same name (the
    # kubelet stand-in keys its processes by pod name and would not show that)
    now = {name: p["metadata"]["uid"] for name, p in live(api, "pods").items()}
    assert now == uids, (uids, now)
    assert kubelet.started == ["r1-0-a1", "r1-1-a1", "r1-1-a2"], kubelet.started
    got = {k: (t["status"]["phase"], t["status"]["attempts"], t["status"]["podName"], t["status"].get("lastStep"))
           for k, t in live(api, "trials").items()}
    assert got == {"r1-0": ("Succeeded", 1, "r1-0-a1", 30), "r1-1": ("Succeeded", 2, "r1-1-a2", 30)}, got
    assert all(t["status"].get("objective") is not None for t in live(api, "trials").values())
