"""A small Kubernetes for the tests: kmock's emulator plus the parts of a cluster the
operator relies on — object identity, a kubelet that runs pods as local processes,
and a garbage collector that follows owner references.

The emulator (kmock 0.8, pinned) stores objects as sent: no uid, resourceVersion,
generation or creationTimestamp. The API server assigns them, and kubetune's owner
references need the uid, so `Cluster` assigns them on create, and a new resourceVersion
on every patch. The kubelet and the
garbage collector are stand-ins; tests/e2e covers the real ones.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp.web
import jsonpatch
import kmock

_rv = itertools.count(1)


async def forever(step: Any, interval: float, errors: list[str]) -> None:
    """Run one pass of a control loop every `interval` seconds, as a real controller does:
    a pass that fails (a refused or cut-short request under load) is recorded in `errors`
    and the loop goes on, instead of ending silently and stalling every test behind it."""
    while True:
        try:
            await step()
        except Exception as e:  # noqa: BLE001 - recorded, and the loop retries
            errors.append(f"{type(e).__name__}: {e}")
        await asyncio.sleep(interval)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Cluster(kmock.KubernetesEmulator):
    async def _handle(self, request: Any) -> Any:
        if request.resource is not None and request.action == kmock.action.CREATE and isinstance(request.data, dict):
            meta = request.data.setdefault("metadata", {})
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("generation", 1)
            meta.setdefault("creationTimestamp", _now())
            meta["resourceVersion"] = str(next(_rv))
            if request.namespace and not meta.get("namespace"):
                meta["namespace"] = request.namespace
        elif request.resource is not None and request.action == kmock.action.UPDATE:
            # every write gives the object a new resourceVersion (the operator relies on it)
            if isinstance(request.data, dict):  # a merge patch
                meta = request.data.get("metadata")
                if not isinstance(meta, dict):
                    meta = request.data["metadata"] = {}
                meta["resourceVersion"] = str(next(_rv))
            elif isinstance(request.data, list):  # a JSON patch (kopf's finalizers)
                request.data.append({"op": "add", "path": "/metadata/resourceVersion", "value": str(next(_rv))})
        try:
            return await super()._handle(request)
        except (jsonpatch.JsonPatchTestFailed, jsonpatch.JsonPatchConflict) as e:
            # kopf guards its JSON patches with a test of the resourceVersion; an API server
            # answers a failed test with 422, and kopf tries again on its next cycle. The
            # emulator answered 500, which kopf retried with the same stale test until it
            # gave up on the object for a while.
            return aiohttp.web.json_response({
                "apiVersion": "v1", "kind": "Status", "metadata": {}, "code": 422, "status": "Failure",
                "reason": "Invalid", "message": f"the JSON patch failed: {e}",
            }, status=422)


PODS = ("", "v1", "pods")


def _is_pods(resource: Any) -> bool:
    return (resource.group or "", resource.version, resource.plural) == PODS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Kubelet:
    """Runs each pod's training container as a local process with the pod's env, and
    writes the pod status back as a kubelet would: phase, startTime, and on exit the
    container's exit code and termination message. A deleted pod gets SIGTERM."""

    def __init__(self, api: Cluster, workdir: Path, targets_file: Path | None = None):
        self.api, self.workdir, self.targets_file = api, workdir, targets_file
        self.procs: dict[str, tuple[subprocess.Popen, Path, int, str]] = {}
        self.reported: set[str] = set()
        self.started: list[str] = []
        self.errors: list[str] = []

    def _targets(self) -> None:
        if self.targets_file is None:
            return
        live = [{"targets": [f"127.0.0.1:{port}"], "labels": {"pod": name}}
                for name, (p, _, port, _) in self.procs.items() if p.poll() is None]
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(live))
        os.replace(tmp, self.targets_file)

    async def run(self) -> None:
        await forever(self.sync, 0.2, self.errors)

    async def sync(self) -> None:
        changed = False
        for (resource, namespace, name), obj in list(self.api.objects.items()):
            if not _is_pods(resource):
                continue
            if obj.deleted:
                if name in self.procs and self.procs[name][0].poll() is None:
                    os.killpg(self.procs[name][0].pid, signal.SIGTERM)
                continue
            if name not in self.procs:
                self._start(namespace, name, obj.raw)
                await self.api.patch(f"/api/v1/namespaces/{namespace}/pods/{name}/status", json={"status": {
                    "phase": "Running", "startTime": _now(), "podIP": "127.0.0.1"}})
                changed = True
                continue
            proc, term, _, container = self.procs[name]
            code = proc.poll()
            if code is not None and name not in self.reported:
                self.reported.add(name)
                message = term.read_text() if term.exists() else ""
                await self.api.patch(f"/api/v1/namespaces/{namespace}/pods/{name}/status", json={"status": {
                    "phase": "Succeeded" if code == 0 else "Failed",
                    "containerStatuses": [{"name": container, "state": {"terminated": {
                        "exitCode": code if code >= 0 else 128 - code, "message": message,
                        "reason": "Completed" if code == 0 else "Error"}}}]}})
                changed = True
        if changed:
            self._targets()

    def _start(self, namespace: str, name: str, pod: dict) -> None:
        container = pod["spec"]["containers"][0]
        env = dict(os.environ)
        env.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
        port = free_port()
        term = self.workdir / f"{name}.term"
        env.update({"KUBETUNE_METRICS_PORT": str(port), "KUBETUNE_METRICS_ADDR": "127.0.0.1",
                    "KUBETUNE_TERMINATION_PATH": str(term), "PYTHONUNBUFFERED": "1"})
        argv = [*container.get("command", []), *container.get("args", [])]
        argv = [sys.executable if a in ("python", "python3") and i == 0 else a for i, a in enumerate(argv)]
        log = open(self.workdir / f"{name}.log", "wb")
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = (proc, term, port, container["name"])
        self.started.append(name)

    async def evict(self, namespace: str, name: str) -> None:
        """What a node drain or spot reclaim does: the pod is killed and marked Failed/Evicted."""
        proc = self.procs[name][0]
        self.reported.add(name)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        await self.api.patch(f"/api/v1/namespaces/{namespace}/pods/{name}/status", json={"status": {
            "phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory.",
            "conditions": [{"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"}]}})

    def stop_all(self) -> None:
        for proc, *_ in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


class GarbageCollector:
    """Deletes objects whose owners are gone, like the API server's garbage collector."""

    def __init__(self, api: Cluster):
        self.api = api
        self.errors: list[str] = []

    async def run(self) -> None:
        await forever(self.sweep, 0.3, self.errors)

    async def sweep(self) -> None:
        live = {obj.raw["metadata"].get("uid") for _, obj in list(self.api.objects.items()) if not obj.deleted}
        for (resource, namespace, name), obj in list(self.api.objects.items()):
            if obj.deleted:
                continue
            owners = obj.raw["metadata"].get("ownerReferences") or []
            if owners and not any(o.get("uid") in live for o in owners):
                group = resource.group
                prefix = f"/apis/{group}/{resource.version}" if group else f"/api/{resource.version}"
                await self.api.delete(f"{prefix}/namespaces/{namespace}/{resource.plural}/{name}")
