"""The Kubernetes API calls the operator makes, each with a timeout, each idempotent."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import kubernetes
from kubernetes.client.rest import ApiException

from ..api import GROUP, VERSION

TIMEOUT = 10  # seconds, for every call


def api_client() -> kubernetes.client.ApiClient:
    """In-cluster service account when running in a pod, KUBECONFIG otherwise."""
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config = kubernetes.client.Configuration()
        kubernetes.config.load_incluster_config(client_configuration=config)
        return kubernetes.client.ApiClient(config)
    return kubernetes.config.new_client_from_config(config_file=os.environ.get("KUBECONFIG"))


@dataclass
class Kube:
    client: kubernetes.client.ApiClient

    @property
    def custom(self) -> kubernetes.client.CustomObjectsApi:
        return kubernetes.client.CustomObjectsApi(self.client)

    @property
    def core(self) -> kubernetes.client.CoreV1Api:
        return kubernetes.client.CoreV1Api(self.client)

    def create_custom(self, plural: str, namespace: str, body: dict[str, Any]) -> bool:
        """Create; False when it already exists (a retried create is a no-op)."""
        try:
            self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body, _request_timeout=TIMEOUT)
            return True
        except ApiException as e:
            if e.status == 409:
                return False
            raise

    def patch_custom_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        try:
            self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, plural, name, {"status": status}, _request_timeout=TIMEOUT
            )
        except ApiException as e:
            if e.status != 404:  # deleted meanwhile: nothing to update
                raise

    def patch_custom_meta(self, plural: str, namespace: str, name: str, metadata: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, name, {"metadata": metadata}, _request_timeout=TIMEOUT
        )

    def create_pod(self, namespace: str, body: dict[str, Any]) -> bool:
        try:
            self.core.create_namespaced_pod(namespace, body, _request_timeout=TIMEOUT)
            return True
        except ApiException as e:
            if e.status == 409:
                return False
            raise

    def delete_pod(self, namespace: str, name: str, grace_seconds: int | None = None) -> None:
        try:
            self.core.delete_namespaced_pod(
                name, namespace, grace_period_seconds=grace_seconds, _request_timeout=TIMEOUT
            )
        except ApiException as e:
            if e.status != 404:
                raise
