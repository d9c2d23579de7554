"""`kubetune operator`: run the kopf operator with kubetune's handlers.

Standalone unless `--peering NAME` asks for kopf's peering (several replicas, one acting).
A peering that cannot work (no CRD, no peering object, no permission) stops the start
with one line saying how to fix it, instead of kopf waiting for it in silence; while
another peer holds the peering, `/healthz` answers 503 and says who (`/livez` stays 200).
"""
from __future__ import annotations

import argparse
import asyncio
import copy
import logging
import os
import random
import socket
import time
import urllib.parse
from datetime import datetime, timezone
from typing import Any

import kopf
import kubernetes
import urllib3
from aiohttp import web
from prometheus_client import start_http_server

from . import log_levels
from .controller.handlers import OperatorConfig, register
from .controller.kube import Kube, RateLimiter, api_client
from .controller.peering import CHECK_TIMEOUT, Peering, peers_ahead
from .metrics.operator_metrics import REGISTRY
from .metrics.prometheus import PrometheusClient

log = logging.getLogger("kubetune.operator")
PRIORITIES = (1, 999_999)  # a random one per process: replicas never tie (a tie pauses them all)


def prometheus_from_env(url: str | None) -> PrometheusClient | None:
    url = url or os.environ.get("KUBETUNE_PROMETHEUS_URL")
    if not url:
        return None
    token = None
    token_file = os.environ.get("KUBETUNE_PROMETHEUS_TOKEN_FILE")
    if token_file and os.path.exists(token_file):
        token = open(token_file).read().strip()
    return PrometheusClient(
        url=url,
        token=token or os.environ.get("KUBETUNE_PROMETHEUS_TOKEN") or None,
        ca_file=os.environ.get("KUBETUNE_PROMETHEUS_CA_FILE") or None,
        insecure_skip_verify=os.environ.get("KUBETUNE_PROMETHEUS_INSECURE") == "true",
    )


class NoDiffBase(kopf.DiffBaseStorage):
    """No diff base. kopf builds one (a deep copy of the object less its status) on every
    event of every watched kind, to tell creations and spec updates apart for on.create,
    on.update and on.field handlers; this operator has none (passes are level-triggered,
    from the watches' events and the indexes; the one changing handler, on.delete for
    Rounds, reads no diff). At 40 Rounds x 30 the copies were a third of kopf's work per
    event. Nothing is stored on the objects either (no last-handled-configuration)."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> Any:
        return None

    def fetch(self, *, body: kopf.Body) -> Any:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: Any) -> None:
        return None


def build(args: argparse.Namespace, client: Any, prometheus: PrometheusClient | None,
          namespaces: list[str] | None = None,
          peering: Peering | None = None) -> tuple[kopf.OperatorRegistry, kopf.OperatorSettings]:
    """The handlers and kopf's settings; `namespaces` watched (None or []: the whole cluster);
    `peering`: kopf's, when replicas share one (None: standalone)."""
    registry = kopf.OperatorRegistry()
    workers = max(1, getattr(args, "workers", 8))
    limiter = RateLimiter(getattr(args, "kube_qps", 200.0), getattr(args, "kube_burst", 400))
    # one connection per thread that may call at once (the workers, kopf's handler threads):
    # with fewer, urllib3 discards connections and every call past the pool opens a new TLS one
    pool = max(client.configuration.connection_pool_maxsize or 0, workers + 8)
    if pool != client.configuration.connection_pool_maxsize:
        client.configuration.connection_pool_maxsize = pool
        client.rest_client = kubernetes.client.rest.RESTClientObject(client.configuration)  # built with the old size
    cfg = OperatorConfig(kube=Kube(client, limiter), prometheus=prometheus, workers=workers,
                         poll_seconds=args.poll, reconcile_seconds=getattr(args, "resync", 30.0),
                         polls_per_second=limiter.qps / 2,  # the rest of the qps for the passes' own calls
                         namespaces=tuple(namespaces or ()), peering=peering)
    register(registry, cfg)
    settings = kopf.OperatorSettings()
    settings.persistence.finalizer = "kubetune.io/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="kubetune.io")
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.posting.level = logging.WARNING
    settings.scanning.disabled = True  # no access to CustomResourceDefinitions needed (least privilege)
    settings.watching.server_timeout = 270
    settings.networking.request_timeout = 60
    return registry, settings


# --- peering ---------------------------------------------------------------------------

class PeeringProblem(Exception):
    """The peering asked for cannot work; the message says how to fix it."""


def own_identity() -> str:
    """How this process appears in the peering's status: the pod's name where the chart sets
    POD_ID (as kopf does), else host and process."""
    return os.environ.get("POD_ID") or f"{socket.gethostname()}/{os.getpid()}"


def checking_client(client: Any) -> Any:
    """A client of the same cluster that retries once, not thrice: with CHECK_TIMEOUT per try,
    a silent API server costs seconds, not a minute."""
    config = copy.deepcopy(client.configuration)
    config.retries = 1
    return kubernetes.client.ApiClient(config)


def check_peering(client: Any, peering: Peering) -> None:
    """Raise PeeringProblem unless kopf can use the peering: its CRD is served, the peering
    objects exist and we may read them. Every call has a timeout."""
    fix = "or drop --peering to run standalone"
    crd = f"{peering.plural}.kopf.dev"
    try:
        served = kubernetes.client.CustomObjectsApi(client).get_api_resources(
            "kopf.dev", "v1", _request_timeout=CHECK_TIMEOUT)
        has_crd = any(r.name == peering.plural for r in served.resources or [])
    except kubernetes.client.ApiException as e:
        if e.status != 404:
            raise PeeringProblem(f"--peering {peering.name}: cannot look up the CRD {crd}: "
                                 f"{e.status} {e.reason}; {fix}") from None
        has_crd = False
    except (urllib3.exceptions.HTTPError, OSError) as e:
        raise PeeringProblem(f"--peering {peering.name}: cannot reach the API server at {client.configuration.host} "
                             f"to check the peering ({_why(e)}); check KUBECONFIG and the network, {fix}") from None
    if not has_crd:
        raise PeeringProblem(
            f"--peering {peering.name}: this cluster has no {crd} CRD (kopf's peering); install it with the "
            f"kubetune chart (crds/kopf.dev_peerings.yaml) and create {peering.where(_first(peering))}, {fix}")
    for namespace in peering.namespaces or (None,):
        try:
            peering.get(client, namespace)
        except kubernetes.client.ApiException as e:
            if e.status == 404:
                raise PeeringProblem(
                    f"--peering {peering.name}: there is no {peering.where(namespace)}; create it (the kubetune "
                    f"chart does when replicas > 1), {fix}") from None
            if e.status == 403:
                raise PeeringProblem(
                    f"--peering {peering.name}: not allowed to read {peering.where(namespace)} (403 Forbidden); "
                    f"grant get, list, watch and patch on {crd} to the operator (the kubetune chart's "
                    f"{'Role' if namespace else 'ClusterRole'} does), {fix}") from None
            raise PeeringProblem(f"--peering {peering.name}: cannot read {peering.where(namespace)}: "
                                 f"{e.status} {e.reason}; {fix}") from None
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise PeeringProblem(f"--peering {peering.name}: cannot reach the API server to read "
                                 f"{peering.where(namespace)} ({_why(e)}); {fix}") from None


def _first(peering: Peering) -> str | None:
    return peering.namespaces[0] if peering.namespaces else None


def _why(e: Exception) -> str:
    """The root of a connection failure, in one line."""
    reason = getattr(e, "reason", None) or e  # urllib3's MaxRetryError wraps the real one
    return " ".join(str(reason).split()) or type(e).__name__


class Health:
    """`/healthz`: 200 while the operator acts, 503 while a peer keeps it paused (or the
    peering cannot be read); `/livez`: 200 while the process serves at all. Results are
    cached for a few seconds so that probes do not load the API server."""

    def __init__(self, client: Any, peering: Peering | None, cache_seconds: float = 2.0):
        self.client, self.peering, self.cache_seconds = client, peering, cache_seconds
        self._last: tuple[float, bool, str] | None = None
        self._lock = asyncio.Lock()

    def _check(self) -> tuple[bool, str]:
        peering = self.peering
        if peering is None:
            return True, "ok: standalone"
        now = datetime.now(timezone.utc)
        for namespace in peering.namespaces or (None,):
            try:
                obj = peering.get(self.client, namespace)
            except kubernetes.client.ApiException as e:
                return False, f"paused: cannot read {peering.where(namespace)}: {e.status} {e.reason}"
            except (urllib3.exceptions.HTTPError, OSError) as e:
                return False, f"paused: cannot reach the API server to read {peering.where(namespace)} ({_why(e)})"
            ahead = peers_ahead(obj.get("status") or {}, peering, now)
            if ahead:
                return False, f"paused: {peering.where(namespace)} is held by {', '.join(ahead)}"
        return True, f"ok: acting in peering '{peering.name}' (priority {peering.priority})"

    async def state(self) -> tuple[bool, str]:
        async with self._lock:
            if self._last is None or time.monotonic() - self._last[0] >= self.cache_seconds:
                ok, why = await asyncio.to_thread(self._check)
                if (self._last is None and not ok) or (self._last is not None and self._last[1] != ok):
                    (log.info if ok else log.warning)("%s", why)
                self._last = (time.monotonic(), ok, why)
            return self._last[1], self._last[2]

    async def healthz(self, request: web.Request) -> web.Response:
        ok, why = await self.state()
        return web.Response(status=200 if ok else 503, text=why + "\n")

    async def watch(self, first: float = 3.0, every: float = 30.0) -> None:
        """Say in the log when the operator is paused or resumes, probed or not (kopf says
        nothing while a peering it must join keeps it paused from the start)."""
        await asyncio.sleep(first)
        while True:
            try:
                await self.state()
            except Exception as e:  # a log line is not worth stopping the operator for
                log.warning("cannot check the peering: %s", e)
            await asyncio.sleep(every)

    @staticmethod
    async def livez(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def serve(self, host: str, port: int) -> web.AppRunner:
        app = web.Application()
        app.add_routes([web.get("/healthz", self.healthz), web.get("/livez", self.livez)])
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        return runner


# --- main ------------------------------------------------------------------------------

def watched_namespaces(args: argparse.Namespace) -> list[str]:
    """[] means the whole cluster."""
    if args.all_namespaces and args.namespace:
        raise SystemExit("error: use either --all-namespaces or --namespace, not both")
    if args.all_namespaces:
        return []
    return [n for n in args.namespace or os.environ.get("KUBETUNE_WATCH_NAMESPACES", "").split(",") if n]


def startup_line(namespaces: list[str], prometheus: PrometheusClient | None, peering: Peering | None) -> str:
    watches = f"namespaces {', '.join(namespaces)}" if namespaces else "the whole cluster"
    mode = ("standalone (no peering)" if peering is None else
            f"in peering '{peering.name}' ({peering.kind}, priority {peering.priority}, identity {peering.identity})")
    return f"kubetune operator: watching {watches}; Prometheus {_shown(prometheus)}; {mode}"


def _shown(prometheus: PrometheusClient | None) -> str:
    """The Prometheus URL without any user:password in it."""
    if prometheus is None:
        return "none"
    parts = urllib.parse.urlsplit(prometheus.url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


async def run(args: argparse.Namespace, namespaces: list[str], registry: kopf.OperatorRegistry,
              settings: kopf.OperatorSettings, health: Health, peering: Peering | None) -> None:
    runner = None
    if args.health_port:
        try:
            runner = await health.serve(args.listen_address, args.health_port)
        except OSError as e:
            raise SystemExit(f"error: cannot serve probes on port {args.health_port}: {e.strerror} "
                             "(--health-port 0 turns them off)") from None
    watcher = asyncio.create_task(health.watch()) if peering else None
    try:
        await kopf.operator(
            registry=registry, settings=settings, clusterwide=not namespaces, namespaces=namespaces,
            standalone=peering is None,
            peering_name=peering.name if peering else None,
            priority=peering.priority if peering else None,
            identity=peering.identity if peering else None,  # type: ignore[arg-type]  # kopf's NewType of str
        )
    finally:
        if watcher is not None:
            watcher.cancel()
        if runner is not None:
            await runner.cleanup()


def peering_from_args(args: argparse.Namespace, namespaces: list[str], client: Any) -> Peering | None:
    """None (standalone) unless --peering asks for one; a peering that cannot work exits 1 with one line."""
    if not args.peering:  # "" too: what `--peering=` meant before standalone became the default
        return None
    priority = args.peering_priority if args.peering_priority is not None else random.randint(*PRIORITIES)
    peering = Peering(args.peering, tuple(namespaces), own_identity(), priority)
    retries = logging.getLogger("urllib3.connectionpool")  # its retry warnings would bury the one line
    level = retries.level
    retries.setLevel(logging.ERROR)
    try:
        check_peering(client, peering)
    except PeeringProblem as e:
        raise SystemExit(f"error: {e}") from None
    finally:
        retries.setLevel(level)
    return peering


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log_levels.install()
    # kopf says "Handler ... succeeded" for every watch event at INFO: thousands of lines a
    # minute once events drive the passes, and a good part of the operator's CPU. Its
    # warnings and errors (retries, failures) still show.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    namespaces = watched_namespaces(args)
    try:
        client = api_client()
    except kubernetes.config.ConfigException as e:
        raise SystemExit(f"error: no cluster to connect to ({e}); set KUBECONFIG, or run in a pod "
                         "with a service account") from None
    checker = checking_client(client) if args.peering else client  # reads the peering: at start, then for /healthz
    peering = peering_from_args(args, namespaces, checker)
    prometheus = prometheus_from_env(args.prometheus_url)
    registry, settings = build(args, client, prometheus, namespaces, peering)
    if args.metrics_port:
        try:
            start_http_server(args.metrics_port, addr=args.listen_address, registry=REGISTRY)
        except OSError as e:
            raise SystemExit(f"error: cannot serve metrics on port {args.metrics_port}: {e.strerror} "
                             "(--metrics-port 0 turns them off)") from None
    log.info("%s", startup_line(namespaces, prometheus, peering))
    asyncio.run(run(args, namespaces, registry, settings, Health(checker, peering), peering))
    return 0
