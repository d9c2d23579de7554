"""A kubelet stand-in for the real API server: runs each pod's training container as a
local process with the pod's environment and writes the pod's status back as a kubelet
does (Running with startTime and a running container; on exit Succeeded or Failed with
the exit code and the termination message). A pod that is deleted gets SIGTERM.

It talks to the API server like any client (list and status patches through the
`kubernetes` client, in its own thread), so what the operator sees is what the API
server stored: real resourceVersions, real validation of the pod status.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import kubernetes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Kubelet:
    def __init__(self, client: Any, namespace: str, workdir: Path, targets_file: Path | None = None,
                 interval: float = 0.2):
        self.core = kubernetes.client.CoreV1Api(client)
        self.namespace, self.workdir, self.targets_file, self.interval = namespace, workdir, targets_file, interval
        self.procs: dict[str, tuple[subprocess.Popen, Path, int, str, str]] = {}  # name -> proc, term, port, container, image
        self.reported: set[str] = set()
        self.started: list[str] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> "Kubelet":
        self._thread = threading.Thread(target=self._loop, name="kubelet", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.stop_all()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync()
            except Exception as e:  # noqa: BLE001 - recorded; a real kubelet retries too
                self.errors.append(f"{type(e).__name__}: {str(e)[:300]}")
            self._stop.wait(self.interval)

    def sync(self) -> None:
        with self._lock:
            pods = self.core.list_namespaced_pod(self.namespace, _request_timeout=10).items
            present = {p.metadata.name for p in pods if not p.metadata.deletion_timestamp}
            changed = False
            for name, (proc, *_rest) in self.procs.items():
                if name not in present and proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)  # the pod was deleted: stop its container
                    changed = True
            for pod in pods:
                name = pod.metadata.name
                if pod.metadata.deletion_timestamp:
                    continue
                if name not in self.procs:
                    self._start(pod)
                    self._status(name, {"phase": "Running", "startTime": _now(), "podIP": "127.0.0.1",
                                        "containerStatuses": [self._container(name, {"running": {"startedAt": _now()}})]})
                    changed = True
                    continue
                proc, term, _, _, _ = self.procs[name]
                code = proc.poll()
                if code is not None and name not in self.reported:
                    message = term.read_text(errors="replace") if term.exists() else ""
                    exit_code = code if code >= 0 else 128 - code
                    self._status(name, {"phase": "Succeeded" if code == 0 else "Failed", "containerStatuses": [
                        self._container(name, {"terminated": {
                            "exitCode": exit_code, "message": message[:4096], "startedAt": _now(), "finishedAt": _now(),
                            "reason": "Completed" if code == 0 else "Error"}})]})
                    self.reported.add(name)  # only once the API server has it: a refused write is retried
                    changed = True
            if changed:
                self._targets()

    def _container(self, name: str, state: dict[str, Any]) -> dict[str, Any]:
        _, _, _, container, image = self.procs[name]
        return {"name": container, "image": image, "imageID": "", "ready": "running" in state,
                "restartCount": 0, "state": state}

    def _status(self, name: str, status: dict[str, Any]) -> None:
        try:
            self.core.patch_namespaced_pod_status(name, self.namespace, {"status": status}, _request_timeout=10)
        except kubernetes.client.ApiException as e:
            if e.status != 404:  # deleted meanwhile
                raise

    def _start(self, pod: Any) -> None:
        name = pod.metadata.name
        container = pod.spec.containers[0]
        env = dict(os.environ)
        env.update({e.name: e.value for e in container.env or [] if e.value is not None})
        port = free_port()
        term = self.workdir / f"{name}.term"
        env.update({"KUBETUNE_METRICS_PORT": str(port), "KUBETUNE_METRICS_ADDR": "127.0.0.1",
                    "KUBETUNE_TERMINATION_PATH": str(term), "PYTHONUNBUFFERED": "1"})
        argv = [*(container.command or []), *(container.args or [])]
        argv = [sys.executable if a in ("python", "python3") and i == 0 else a for i, a in enumerate(argv)]
        with open(self.workdir / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = (proc, term, port, container.name, container.image)
        self.started.append(name)

    def evict(self, name: str) -> None:
        """What a node drain or spot reclaim does: the pod is killed and marked Failed/Evicted."""
        with self._lock:
            proc = self.procs[name][0]
            self.reported.add(name)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            self._status(name, {
                "phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory.",
                "conditions": [{"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
                                "lastTransitionTime": _now()}],
                "containerStatuses": [self._container(name, {"terminated": {
                    "exitCode": 137, "reason": "Error", "startedAt": _now(), "finishedAt": _now()}})]})

    def _targets(self) -> None:
        if self.targets_file is None:
            return
        live = [{"targets": [f"127.0.0.1:{port}"], "labels": {"pod": name}}
                for name, (p, _, port, _, _) in self.procs.items() if p.poll() is None]
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(live))
        os.replace(tmp, self.targets_file)

    def stop_all(self) -> None:
        for proc, *_ in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
