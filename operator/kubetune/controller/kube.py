"""The Kubernetes API calls the operator makes, each with a timeout, each idempotent."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import kubernetes
from kubernetes.client.rest import ApiException

from ..api import GROUP, VERSION

TIMEOUT = 10  # seconds, for every call


class Forbidden(ApiException):
    """The API server refused a call for lack of permission (HTTP 403). That is the
    operator's RBAC, not a passing fault: retrying soon cannot help, so the handlers set a
    `Ready=False`/`Forbidden` condition and retry slowly. The message names the verb, the
    resource and the namespace, and says where to grant them."""

    def __init__(self, verb: str, resource: str, namespace: str, group: str = "", detail: str = ""):
        super().__init__(status=403, reason="Forbidden")
        self.verb, self.resource, self.namespace, self.group, self.detail = verb, resource, namespace, group, detail

    def __str__(self) -> str:
        said = f" ({self.detail})" if self.detail else ""
        return (f"forbidden: the operator's ServiceAccount may not {self.verb} {self.resource} in namespace "
                f"{self.namespace}{said}; grant it in the operator's Role (its ClusterRole with watch.clusterWide; "
                f"Helm chart: templates/rbac.yaml): "
                f"apiGroups [{json.dumps(self.group)}], resources [{json.dumps(self.resource)}], "
                f"verbs [{json.dumps(self.verb)}]")


def classify(e: ApiException, verb: str, resource: str, namespace: str, group: str = "") -> ApiException:
    """A 403 becomes `Forbidden` (with the API server's own reason); anything else stays as it is."""
    if e.status != 403:
        return e
    detail = ""
    try:
        detail = str(json.loads(e.body or "{}").get("message") or "")
    except (ValueError, AttributeError):
        pass
    return Forbidden(verb, resource, namespace, group, detail)


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
            raise classify(e, "create", plural, namespace, GROUP) from None

    def patch_custom_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        try:
            self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, plural, name, {"status": status}, _request_timeout=TIMEOUT
            )
        except ApiException as e:
            if e.status != 404:  # deleted meanwhile: nothing to update
                raise classify(e, "patch", f"{plural}/status", namespace, GROUP) from None

    def patch_custom_meta(self, plural: str, namespace: str, name: str, metadata: dict[str, Any]) -> None:
        try:
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name, {"metadata": metadata}, _request_timeout=TIMEOUT
            )
        except ApiException as e:
            raise classify(e, "patch", plural, namespace, GROUP) from None

    def create_pod(self, namespace: str, body: dict[str, Any]) -> bool:
        try:
            self.core.create_namespaced_pod(namespace, body, _request_timeout=TIMEOUT)
            return True
        except ApiException as e:
            if e.status == 409:
                return False
            raise classify(e, "create", "pods", namespace) from None

    def delete_pod(self, namespace: str, name: str, grace_seconds: int | None = None) -> None:
        try:
            self.core.delete_namespaced_pod(
                name, namespace, grace_period_seconds=grace_seconds, _request_timeout=TIMEOUT
            )
        except ApiException as e:
            if e.status != 404:
                raise classify(e, "delete", "pods", namespace) from None
