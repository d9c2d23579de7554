"""End-to-end tests against a real API server: the cluster named by KUBECONFIG (kind is the
documented way), or, without one, a throwaway kube-apiserver from ../shared/envtest.

Tests that need more than an API server (nodes that run images, the operator installed
by Helm) skip, with one line saying why, when they only have envtest."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Iterator

import pytest

from ..envtest import ApiServer, missing


@dataclass
class Cluster:
    client: Any
    version: Any
    envtest: bool  # an API server only: no nodes, no images, no operator


@pytest.fixture(scope="session")
def k8s() -> Iterator[Cluster]:
    kubernetes = pytest.importorskip("kubernetes")
    config = os.environ.get("KUBECONFIG")
    if config or os.path.exists(os.path.expanduser("~/.kube/config")):
        try:
            client = kubernetes.config.new_client_from_config(config_file=config)
            version = kubernetes.client.VersionApi(client).get_code(_request_timeout=5)
        except Exception as e:  # noqa: BLE001 - any failure to reach a cluster means: skip
            pytest.skip(f"no reachable cluster in KUBECONFIG: {type(e).__name__}")
        yield Cluster(client, version, envtest=False)
        return
    why = missing()
    if why:
        pytest.skip(f"no cluster: KUBECONFIG is not set (see README: kind create cluster), and {why}")
    server = ApiServer(crds=None, controller_manager=False).start()
    try:
        client = server.client()
        yield Cluster(client, kubernetes.client.VersionApi(client).get_code(_request_timeout=5), envtest=True)
    finally:
        server.stop()


def apply_and_finish(custom: Any, ns: str, study: dict, rnd: dict, timeout: float = 900) -> dict:
    """Create `study` and `rnd` as a user would and wait for the Round to end; the Round as it ended."""
    custom.create_namespaced_custom_object("kubetune.io", "v1alpha1", ns, "studies", study)
    custom.create_namespaced_custom_object("kubetune.io", "v1alpha1", ns, "rounds", rnd)
    deadline, obj = time.time() + timeout, {}
    while time.time() < deadline:
        obj = custom.get_namespaced_custom_object("kubetune.io", "v1alpha1", ns, "rounds", rnd["metadata"]["name"])
        if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            break
        time.sleep(5)
    return obj
