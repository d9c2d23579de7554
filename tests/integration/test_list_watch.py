"""The operator's own list and watch (controller/list_watch.py), of trial pods, against a
real API server: it lists what exists, follows creations, phase changes and deletions in its
namespace only, and a watch started again later hands on a pod deleted while none ran."""
from __future__ import annotations

import threading
import time
from typing import Any

import kubernetes

import functools

from kubetune.controller.handlers import _list_pods
from kubetune.controller.list_watch import ListWatch
from kubetune.controller.pod_index import PodIndex

from .conftest import NS

LABEL = "kubetune.io/trial"


def _pod(name: str, trial: str | None) -> dict:
    labels = {LABEL: trial} if trial else {"app": "unrelated"}
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "train", "image": "kubetune/trial:test"}]}}


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str | None]] = []
        self._lock = threading.Lock()

    def __call__(self, kind: str, pod: dict[str, Any]) -> None:
        with self._lock:
            self.seen.append((kind, pod["metadata"]["name"], (pod.get("status") or {}).get("phase")))

    def wait_for(self, wanted: tuple[str, str, str | None], seconds: float = 20.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self._lock:
                if wanted in self.seen:
                    return
            time.sleep(0.05)
        raise AssertionError(f"no {wanted} in {self.seen}")


def test_the_pod_watch_lists_follows_and_relists_trial_pods_of_its_namespace(apiserver):
    client = apiserver.client()
    core = kubernetes.client.CoreV1Api(client)
    core.create_namespace({"metadata": {"name": "elsewhere"}})
    core.create_namespaced_pod(NS, _pod("before-0", "t0"))
    core.create_namespaced_pod(NS, _pod("unrelated", None))

    index, events, synced = PodIndex(LABEL), Events(), threading.Event()
    lister = functools.partial(_list_pods, kubernetes.client.CoreV1Api(client))
    watch = ListWatch("pods", lister, [NS], index, events, on_synced=synced.set, label_selector=LABEL,
                      page=1).start()  # pages of one pod
    try:
        assert synced.wait(20) and watch.synced.is_set()
        assert [p["metadata"]["name"] for p in index.get((NS, "t0"))] == ["before-0"]
        assert len(index) == 1  # the unlabelled pod is not a trial pod

        core.create_namespaced_pod(NS, _pod("t1-a", "t1"))
        core.create_namespaced_pod("elsewhere", _pod("t9-a", "t9"))
        events.wait_for(("ADDED", "t1-a", "Pending"))
        core.patch_namespaced_pod_status("t1-a", NS, {"status": {"phase": "Succeeded"}})
        events.wait_for(("MODIFIED", "t1-a", "Succeeded"))
        assert index.get((NS, "t1"))[0]["status"]["phase"] == "Succeeded"
        core.delete_namespaced_pod("t1-a", NS, grace_period_seconds=0)
        events.wait_for(("DELETED", "t1-a", "Succeeded"))
        assert index.get((NS, "t1"), ()) == ()
        assert all(name != "t9-a" for _, name, _ in events.seen)  # another namespace's pod
    finally:
        watch.stop()
    assert not watch.alive()  # stop() ends the threads

    core.delete_namespaced_pod("before-0", NS, grace_period_seconds=0)  # while nothing watches
    again = Events()
    later = ListWatch("pods", lister, [NS], index, again, label_selector=LABEL).start()  # the same index
    try:
        assert later.synced.wait(20)
        again.wait_for(("DELETED", "before-0", "Pending"))
        assert len(index) == 0
    finally:
        later.stop()
