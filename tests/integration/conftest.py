"""Fixtures that run the real kopf operator against kmock's emulator over HTTP."""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from pathlib import Path
from typing import Any, AsyncIterator

import kmock
import kopf
import pytest
import yaml

from kubetune.api.crdgen import crd_by_kind
from kubetune.controller.handlers import OperatorConfig, register
from kubetune.controller.kube import Kube, api_client
from kubetune.metrics.prometheus import PrometheusClient

from .cluster import Cluster, GarbageCollector, Kubelet

NS = "tuning"
TRAINER = str(Path(__file__).with_name("trainer.py"))



@pytest.fixture()
def kmock_options(kmock_options: dict[str, Any]) -> dict[str, Any]:
    """Use the emulator with object identity (see cluster.Cluster)."""
    return {**kmock_options, "cls": Cluster}


@pytest.fixture()
def kubeconfig(tmp_path: Path, kmock: kmock.KubernetesEmulator, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "kubeconfig"
    config.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": str(kmock.url)}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
        "users": [{"name": "test", "user": {"token": "test"}}],
    }))
    monkeypatch.setenv("KUBECONFIG", str(config))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return config


@pytest.fixture()
def cluster(kmock: Cluster, kubeconfig: Path) -> Cluster:
    kmock.resources.load_bundled()
    for kind, c in crd_by_kind().items():
        plural = c["spec"]["names"]["plural"]
        info = kmock.resources[f"kubetune.io/v1alpha1/{plural}"]
        info.kind, info.namespaced = kind, True
        info.verbs = {"list", "watch", "get", "create", "patch", "delete"}
        info.subresources = {"status"}
    kmock.resources["v1/pods"].verbs = {"list", "watch", "get", "create", "patch", "delete"}
    kmock.resources["v1/namespaces"].verbs = {"list", "watch", "get"}
    kmock.resources["apiextensions.k8s.io/v1/customresourcedefinitions"].verbs = {"list", "watch", "get"}
    kmock.objects["v1/namespaces", None, NS] = {"metadata": {"name": NS}}
    kmock.objects["v1/namespaces", None, "default"] = {"metadata": {"name": "default"}}
    for c in crd_by_kind().values():
        kmock.objects["apiextensions.k8s.io/v1/customresourcedefinitions", None, c["metadata"]["name"]] = c
    return kmock


class Operator:
    """The real operator as an asyncio task in the test's loop; restartable."""

    def __init__(self, prometheus: PrometheusClient | None = None, interval: float = 0.5):
        self.prometheus, self.interval = prometheus, interval
        self.task: asyncio.Task | None = None
        self.stop_flag: asyncio.Event | None = None
        self.cfg: OperatorConfig | None = None

    async def start(self) -> None:
        registry = kopf.OperatorRegistry()
        self.cfg = OperatorConfig(kube=Kube(api_client()), prometheus=self.prometheus,
                                  reconcile_seconds=self.interval, poll_seconds=self.interval, stop_grace_seconds=5,
                                  backoff_seconds=1.0)
        register(registry, self.cfg)
        settings = kopf.OperatorSettings()
        settings.scanning.disabled = True
        settings.posting.enabled = False
        settings.networking.request_timeout = 10
        settings.watching.reconnect_backoff = 0.2
        self.stop_flag = asyncio.Event()
        self.task = asyncio.create_task(kopf.operator(
            registry=registry, settings=settings, namespaces=[NS], standalone=True, stop_flag=self.stop_flag))
        await asyncio.sleep(1.0)

    async def stop(self) -> None:
        if self.task is None:
            return
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(self.task, 15)
        self.task = None


@pytest.fixture()
async def world(cluster: Cluster, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """The emulator with a kubelet and a garbage collector running; stopped even on failure."""
    logging.getLogger("kopf").setLevel(logging.WARNING)
    kubelet = Kubelet(cluster, tmp_path, targets_file=tmp_path / "targets.json")
    (tmp_path / "targets.json").write_text("[]")
    gc = GarbageCollector(cluster)
    tasks = [asyncio.create_task(kubelet.run()), asyncio.create_task(gc.run())]
    operators: list[Operator] = []
    try:
        yield {"api": cluster, "kubelet": kubelet, "gc": gc, "operators": operators, "tmp": tmp_path}
    finally:
        for op in operators:
            await op.stop()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        kubelet.stop_all()


def study_manifest(max_steps: int = 12, **spec: Any) -> dict:
    body = {
        "apiVersion": "kubetune.io/v1alpha1", "kind": "Study",
        "metadata": {"name": "demo", "namespace": NS},
        "spec": {
            "objective": {"metric": "val_loss", "goal": "minimize"},
            "maxSteps": max_steps,
            "baseline": {"learning_rate": 0.1, "step_seconds": 0.05},
            "template": {"spec": {"containers": [{
                "name": "train", "image": "kubetune/trial:test", "command": ["python", TRAINER],
                "resources": {"limits": {"nvidia.com/gpu": 1}},
            }]}},
        },
    }
    body["spec"].update(spec)
    return body


def round_manifest(name: str = "r1", max_trials: int = 8, parallelism: int = 3, **spec: Any) -> dict:
    body = {
        "apiVersion": "kubetune.io/v1alpha1", "kind": "Round",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "studyRef": {"name": "demo"}, "goal": "find the learning rate",
            "nuisance": [{"name": "learning_rate", "type": "float", "min": 0.001, "max": 1.0, "log": True}],
            "algorithm": {"name": "sobol", "seed": 1},
            "budget": {"maxTrials": max_trials, "parallelism": parallelism, "maxFailedTrials": 3},
        },
    }
    body["spec"].update(spec)
    return body


async def create(api: Cluster, body: dict) -> None:
    plural = {"Study": "studies", "Round": "rounds", "Trial": "trials"}[body["kind"]]
    resp = await api.post(f"/apis/kubetune.io/v1alpha1/namespaces/{NS}/{plural}", json=body)
    assert resp.status in (200, 201), await resp.text()


def live(api: Cluster, plural: str) -> dict[str, dict]:
    out = {}
    for (resource, namespace, name), obj in list(api.objects.items()):
        if resource.plural == plural and not obj.deleted:
            out[name] = obj.raw
    return out


async def wait_for(predicate, timeout: float = 60.0, what: str = "condition", detail=None) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if predicate():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f"; still: {detail()}" if detail else ""))
        await asyncio.sleep(0.2)


@pytest.fixture()
def prometheus(tmp_path: Path):
    """A real Prometheus scraping the kubelet stand-in's trial processes; stopped even on failure."""
    import shutil

    from ..prometheus_server import PrometheusServer

    if shutil.which("prometheus") is None:
        pytest.skip("Debian's prometheus binary is not installed (scripts/test.sh installs it)")
    server = PrometheusServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def start_operator(world: dict[str, Any], **kw: Any) -> Operator:
    """Start the operator; the world fixture stops it, even when the test fails."""
    op = Operator(**kw)
    world["operators"].append(op)
    await op.start()
    return op
