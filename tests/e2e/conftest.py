"""End-to-end tests against the real cluster named by KUBECONFIG (kind is the documented way).

They skip, with one line saying why, when no cluster is reachable."""
from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def k8s():
    kubernetes = pytest.importorskip("kubernetes")
    if not os.environ.get("KUBECONFIG") and not os.path.exists(os.path.expanduser("~/.kube/config")):
        pytest.skip("no cluster: KUBECONFIG is not set (see README: kind create cluster)")
    try:
        client = kubernetes.config.new_client_from_config(config_file=os.environ.get("KUBECONFIG"))
        version = kubernetes.client.VersionApi(client).get_code(_request_timeout=5)
    except Exception as e:  # noqa: BLE001 - any failure to reach a cluster means: skip
        pytest.skip(f"no reachable cluster in KUBECONFIG: {type(e).__name__}")
    return client, version
