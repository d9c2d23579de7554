"""`kubetune operator`: run the kopf operator with kubetune's handlers."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os

import kopf
import kubernetes
from prometheus_client import start_http_server

from .controller.handlers import OperatorConfig, register
from .controller.kube import Kube, api_client
from .metrics.operator_metrics import REGISTRY
from .metrics.prometheus import PrometheusClient


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


def build(args: argparse.Namespace) -> tuple[kopf.OperatorRegistry, kopf.OperatorSettings]:
    registry = kopf.OperatorRegistry()
    cfg = OperatorConfig(kube=Kube(api_client()), prometheus=prometheus_from_env(args.prometheus_url),
                         poll_seconds=args.poll, reconcile_seconds=min(args.poll, 5.0))
    register(registry, cfg)
    settings = kopf.OperatorSettings()
    settings.persistence.finalizer = "kubetune.io/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="kubetune.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="kubetune.io")
    settings.posting.level = logging.WARNING
    settings.scanning.disabled = True  # no access to CustomResourceDefinitions needed (least privilege)
    settings.watching.server_timeout = 270
    settings.networking.request_timeout = 60
    return registry, settings


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.all_namespaces and args.namespace:
        raise SystemExit("error: use either --all-namespaces or --namespace, not both")
    if args.all_namespaces:
        namespaces: list[str] = []
    else:
        namespaces = [n for n in args.namespace or os.environ.get("KUBETUNE_WATCH_NAMESPACES", "").split(",") if n]
    try:
        registry, settings = build(args)
    except kubernetes.config.ConfigException as e:
        raise SystemExit(f"error: no cluster to connect to ({e}); set KUBECONFIG, or run in a pod "
                         "with a service account") from None
    if args.metrics_port:
        try:
            start_http_server(args.metrics_port, registry=REGISTRY)
        except OSError as e:
            raise SystemExit(f"error: cannot serve metrics on port {args.metrics_port}: {e.strerror} "
                             "(--metrics-port 0 turns them off)") from None
    asyncio.run(kopf.operator(
        registry=registry,
        settings=settings,
        clusterwide=not namespaces,
        namespaces=namespaces,
        standalone=not args.peering,
        peering_name=args.peering or None,
        liveness_endpoint=f"http://0.0.0.0:{args.health_port}/healthz" if args.health_port else None,
    ))
    return 0
