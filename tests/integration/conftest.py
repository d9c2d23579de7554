"""Fixtures that run the real kopf operator against a real kube-apiserver (with etcd and
the garbage collector of kube-controller-manager), started fresh for each test from
../shared/envtest, and a kubelet stand-in that runs pods as local processes."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import kopf
import kubernetes
import pytest

from kubetune.controller.handlers import OperatorConfig, register
from kubetune.controller.kube import Kube, api_client
from kubetune.metrics.prometheus import PrometheusClient

from ..envtest import ApiServer, missing
from .kubelet import Kubelet

NS = "tuning"
TRAINER = str(Path(__file__).with_name("trainer.py"))
PLURALS = {"Study": "studies", "Round": "rounds", "Trial": "trials"}


@contextlib.contextmanager
def serving(server: ApiServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiServer]:
    """Start `server` with the namespace `tuning`, point KUBECONFIG at it, and stop it
    afterwards even when the test fails; skip, saying why, where none can start."""
    why = missing()
    if why:
        pytest.skip(why)
    try:
        server.start()
        monkeypatch.setenv("KUBECONFIG", str(server.kubeconfig))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        kubernetes.client.CoreV1Api(server.client()).create_namespace({"metadata": {"name": NS}})
        yield server
    finally:
        server.stop()


@pytest.fixture()
def apiserver(monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiServer]:
    """A real API server of this test's own, with kubetune's CRDs and the namespace `tuning`."""
    with serving(ApiServer(), monkeypatch) as server:
        yield server


@pytest.fixture()
def kubeconfig(apiserver: ApiServer) -> Path:
    assert apiserver.kubeconfig is not None
    return apiserver.kubeconfig


class Response:
    def __init__(self, status: int, body: str):
        self.status, self.body = status, body

    async def text(self) -> str:
        return self.body


class Api:
    """The test's own client of the API server: what a user or kubectl does."""

    def __init__(self, server: ApiServer):
        self.server = server
        self.client = server.client()
        self.custom = kubernetes.client.CustomObjectsApi(self.client)
        self.core = kubernetes.client.CoreV1Api(self.client)

    def _call(self, method: str, path: str, body: Any = None) -> Response:
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if method == "PATCH":
            headers["Content-Type"] = "application/merge-patch+json"
        try:
            resp = self.client.call_api(method, self.client.configuration.host + path, header_params=headers,
                                        body=body, _request_timeout=10)
            resp.read()
            return Response(resp.status, (resp.data or b"").decode())
        except kubernetes.client.ApiException as e:
            return Response(e.status, e.body or "")

    async def post(self, path: str, json: Any) -> Response:
        return await asyncio.to_thread(self._call, "POST", path, json)

    async def patch(self, path: str, json: Any) -> Response:
        return await asyncio.to_thread(self._call, "PATCH", path, json)

    async def delete(self, path: str) -> Response:
        return await asyncio.to_thread(self._call, "DELETE", path)

    def list(self, plural: str) -> list[dict]:
        if plural == "pods":
            return [self.client.sanitize_for_serialization(p)
                    for p in self.core.list_namespaced_pod(NS, _request_timeout=10).items]
        return self.custom.list_namespaced_custom_object("kubetune.io", "v1alpha1", NS, plural,
                                                         _request_timeout=10)["items"]


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
                                  backoff_seconds=1.0, namespaces=(NS,))
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
        if self.cfg is not None:  # a cancelled kopf skips its cleanup: the operator's own watches
            await asyncio.gather(*(asyncio.to_thread(w.stop) for w in self.cfg._watches))


@pytest.fixture()
async def world(apiserver: ApiServer, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """The API server with a kubelet stand-in running; operators and trial processes are
    stopped even when the test fails."""
    logging.getLogger("kopf").setLevel(logging.WARNING)
    (tmp_path / "targets.json").write_text("[]")
    api = Api(apiserver)
    kubelet = Kubelet(api.client, NS, tmp_path, targets_file=tmp_path / "targets.json").start()
    operators: list[Operator] = []
    try:
        yield {"api": api, "kubelet": kubelet, "operators": operators, "tmp": tmp_path, "server": apiserver}
    finally:
        for op in operators:
            await op.stop()
        await asyncio.to_thread(kubelet.stop)


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


async def create(api: Api, body: dict) -> None:
    resp = await api.post(f"/apis/kubetune.io/v1alpha1/namespaces/{NS}/{PLURALS[body['kind']]}", json=body)
    assert resp.status in (200, 201), await resp.text()


def live(api: Api, plural: str) -> dict[str, dict]:
    """The objects of a kind in the test namespace as the API server has them now, by name
    (objects being deleted, held by a finalizer, included)."""
    return {o["metadata"]["name"]: o for o in api.list(plural)}


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
