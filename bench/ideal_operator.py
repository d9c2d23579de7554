"""The least any operator must ask of the API server, as a process: the floor under
bench/operator_scale.py's successor latency (`--ideal`).

It runs the bench's Rounds with none of an operator's thinking: no kopf, no indexes, no
sampler, no analysis, no Prometheus, no Trial status but the end. It watches the trial
pods; for each Round it creates `parallel` Trials and their pods at once, and when a pod
has Succeeded it makes the three calls a successor cannot do without: the ended Trial's
status (its result, written before anything else, as the operator does), the next Trial
and its pod. The calls go through kubetune's own client wrapper (`Kube`: the same
generated API methods, timeouts and client-side rate limiter) from `--workers` threads.
What it leaves out (the Round's status, a Trial's Pending/Running and metrics writes, the
Study's archive) is work the real operator does besides, so this is a floor, not a rival:
the time the API server, etcd and the kubelet stand-in need on this machine for the same
successors.

    python bench/ideal_operator.py --namespace bench --workers 8 --kube-qps 200 --kube-burst 400
"""
from __future__ import annotations

import argparse
import collections
import datetime as dt
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import kubernetes

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))
from kubetune.api import GROUP, VERSION, Round, Study, Trial  # noqa: E402
from kubetune.controller.kube import Kube, RateLimiter, api_client  # noqa: E402
from kubetune.core.trial_plan import pod_name  # noqa: E402
from kubetune.workload import LABEL_ROUND, LABEL_TRIAL, render_pod  # noqa: E402


class Ideal:
    def __init__(self, namespace: str, kube: Kube, workers: int) -> None:
        self.ns, self.kube = namespace, kube
        self.pool = ThreadPoolExecutor(workers)
        self.lock = threading.Lock()
        self.next_number: dict[str, int] = collections.defaultdict(int)
        self.rounds: dict[str, Round] = {}
        self.study: Study | None = None
        self.ended: set[str] = set()

    def start_rounds(self) -> None:
        """Wait for the bench's Study and Rounds, then start each Round's first wave."""
        custom = self.kube.custom
        seen: set[str] = set()
        w = kubernetes.watch.Watch()
        for ev in w.stream(custom.list_namespaced_custom_object, GROUP, VERSION, self.ns, "rounds",
                           timeout_seconds=3600):
            rnd = Round.model_validate(ev["object"])
            if rnd.metadata.name in seen:
                continue
            seen.add(rnd.metadata.name)
            if self.study is None:
                self.study = Study.model_validate(custom.get_namespaced_custom_object(
                    GROUP, VERSION, self.ns, "studies", rnd.spec.study_ref.name))
            self.rounds[rnd.metadata.name] = rnd
            for _ in range(rnd.spec.budget.parallelism):
                self.pool.submit(self.successor, rnd.metadata.name, None)

    def successor(self, round_name: str, ended_trial: str | None) -> None:
        if ended_trial is not None:
            now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            self.kube.patch_custom_status("trials", self.ns, ended_trial, {
                "phase": "Succeeded", "objective": 0.5, "completionTime": now, "message": "ended"})
        rnd = self.rounds[round_name]
        with self.lock:
            number = self.next_number[round_name]
            if number >= rnd.spec.budget.max_trials:
                return
            self.next_number[round_name] = number + 1
        assert self.study is not None
        name = f"{round_name}-{number}"
        trial = Trial.model_validate({
            "metadata": {"name": name, "namespace": self.ns},
            "spec": {"studyRef": {"name": rnd.spec.study_ref.name}, "roundRef": {"name": round_name},
                     "number": number, "parameters": {"learning_rate": 0.01}, "seed": number}})
        body = trial.wire()
        body.pop("status", None)
        created = self.kube.create_custom("trials", self.ns, body) or {}
        trial.metadata.uid = (created.get("metadata") or {}).get("uid")
        self.kube.create_pod(self.ns, render_pod(self.study, trial, pod_name(name, 1), 1))

    def watch_pods(self) -> None:
        rv = None
        while True:
            w = kubernetes.watch.Watch()
            try:
                for ev in w.stream(self.kube.core.list_namespaced_pod, self.ns, resource_version=rv,
                                   timeout_seconds=300, _preload_content=True):
                    pod = ev["object"]
                    rv = pod.metadata.resource_version
                    if pod.status and pod.status.phase == "Succeeded" and pod.metadata.name not in self.ended:
                        self.ended.add(pod.metadata.name)
                        labels = pod.metadata.labels or {}
                        self.pool.submit(self.successor, labels.get(LABEL_ROUND, ""), labels.get(LABEL_TRIAL, ""))
            except Exception:  # noqa: BLE001 - a watch ends; start again from where it was
                rv = None
                time.sleep(0.2)  # not a busy loop while the API server is away


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--namespace", required=True)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--kube-qps", type=float, default=200.0)
    ap.add_argument("--kube-burst", type=int, default=400)
    a = ap.parse_args()
    kube = Kube(api_client(), RateLimiter(a.kube_qps, a.kube_burst))
    ideal = Ideal(a.namespace, kube, a.workers)
    threading.Thread(target=ideal.watch_pods, daemon=True).start()
    ideal.start_rounds()


if __name__ == "__main__":
    main()
