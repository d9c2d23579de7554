"""The Kubernetes API calls the operator makes, each with a timeout, each idempotent."""
from __future__ import annotations

import datetime
import json
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
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


class RateLimiter:
    """Client-side throttling, as client-go does it: a token bucket that allows `qps` calls
    a second on average and bursts of `burst`. A call over the rate waits in its worker
    thread (never in the event loop); the API server's priority and fairness still has
    the last word (a 429 is retried like any other refusal). `qps` 0 turns it off."""

    def __init__(self, qps: float, burst: int, clock: Any = time.monotonic, sleep: Any = time.sleep):
        self.qps, self.burst = float(qps), max(1, int(burst))
        self._tokens, self._clock, self._sleep = float(self.burst), clock, sleep
        self._last = clock()
        self._lock = threading.Lock()
        self.waited = 0.0  # seconds spent waiting, all calls together

    def acquire(self) -> None:
        if self.qps <= 0:
            return
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
            self._last = now
            self._tokens -= 1.0  # taken now; a negative balance is the wait of this call
            wait = -self._tokens / self.qps if self._tokens < 0 else 0.0
        if wait > 0:
            self.waited += wait
            self._sleep(wait)


_COUNTING = threading.Lock()


@dataclass
class Kube:
    client: kubernetes.client.ApiClient
    limiter: RateLimiter | None = None
    calls: Counter = field(default_factory=Counter)  # by verb and resource: what the benchmark counts
    _discovered: dict[tuple[str, str], tuple[float, str | None]] = field(default_factory=dict)  # resource_for's

    def _call(self, verb: str, resource: str) -> None:
        with _COUNTING:
            self.calls[f"{verb} {resource}"] += 1
        if self.limiter is not None:
            self.limiter.acquire()

    @property
    def custom(self) -> kubernetes.client.CustomObjectsApi:
        return kubernetes.client.CustomObjectsApi(self.client)

    @property
    def core(self) -> kubernetes.client.CoreV1Api:
        return kubernetes.client.CoreV1Api(self.client)

    def watch_clients(self) -> tuple[kubernetes.client.CustomObjectsApi, kubernetes.client.CoreV1Api]:
        """Clients for the watches (list_watch.py), on a connection pool of their own: a watch
        holds its connection for minutes, which must not be one the passes' calls share."""
        own = kubernetes.client.ApiClient(self.client.configuration)
        return kubernetes.client.CustomObjectsApi(own), kubernetes.client.CoreV1Api(own)

    def create_custom(self, plural: str, namespace: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """Create; the object as the API server stored it, or None when it already exists
        (a retried create is a no-op)."""
        self._call("create", plural)
        try:
            return self.custom.create_namespaced_custom_object(  # type: ignore[no-any-return]
                GROUP, VERSION, namespace, plural, body, _request_timeout=TIMEOUT) or {}
        except ApiException as e:
            if e.status == 409:
                return None
            raise classify(e, "create", plural, namespace, GROUP) from None

    def patch_custom_status(self, plural: str, namespace: str, name: str,
                            status: dict[str, Any]) -> dict[str, Any] | None:
        """Merge-patch the status; the object as the API server stored it (None if it is gone)."""
        self._call("patch", f"{plural}/status")
        try:
            return self.custom.patch_namespaced_custom_object_status(  # type: ignore[no-any-return]
                GROUP, VERSION, namespace, plural, name, {"status": status}, _request_timeout=TIMEOUT
            )
        except ApiException as e:
            if e.status != 404:  # deleted meanwhile: nothing to update
                raise classify(e, "patch", f"{plural}/status", namespace, GROUP) from None
            return None

    def json_patch_custom_status(self, plural: str, namespace: str, name: str,
                                 ops: list[dict[str, Any]]) -> dict[str, Any] | None:
        """Apply a JSON patch (RFC 6902: a list of operations, `test` ones included) to the
        status; the object as stored (None if it is gone). A failed `test` raises a 422."""
        self._call("patch", f"{plural}/status")
        try:
            return self.custom.patch_namespaced_custom_object_status(  # type: ignore[no-any-return]
                GROUP, VERSION, namespace, plural, name, ops, _request_timeout=TIMEOUT,
                _content_type="application/json-patch+json",
            )
        except ApiException as e:
            if e.status != 404:
                raise classify(e, "patch", f"{plural}/status", namespace, GROUP) from None
            return None

    def patch_custom_meta(self, plural: str, namespace: str, name: str,
                          metadata: dict[str, Any]) -> dict[str, Any] | None:
        self._call("patch", plural)
        try:
            return self.custom.patch_namespaced_custom_object(  # type: ignore[no-any-return]
                GROUP, VERSION, namespace, plural, name, {"metadata": metadata}, _request_timeout=TIMEOUT
            )
        except ApiException as e:
            raise classify(e, "patch", plural, namespace, GROUP) from None

    def create_pod(self, namespace: str, body: dict[str, Any]) -> bool:
        self._call("create", "pods")
        try:
            # the answer is not read into a V1Pod: the operator does not use it, and building
            # one (models for every field of the pod) was a twentieth of the operator's CPU
            answer = self.core.create_namespaced_pod(namespace, body, _request_timeout=TIMEOUT,
                                                     _preload_content=False)
            answer.read()
            answer.release_conn()
            return True
        except ApiException as e:
            if e.status == 409:
                return False
            raise classify(e, "create", "pods", namespace) from None

    def warn(self, body: dict[str, Any], reason: str, message: str) -> None:
        """A Warning Event about `body` (kubectl describe shows it), posted with this client:
        kopf's own posting works only from kopf's event loop, not from a work-queue thread."""
        meta = body.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "metadata": {"generateName": f"{meta.get('name', 'kubetune')}.", "namespace": namespace},
            "involvedObject": {"apiVersion": body.get("apiVersion"), "kind": body.get("kind"),
                               "name": meta.get("name"), "namespace": namespace, "uid": meta.get("uid")},
            "type": "Warning", "reason": reason, "message": message[:1024],
            "source": {"component": "kubetune"}, "reportingComponent": "kubetune",
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        }
        self._call("create", "events")
        try:
            self.core.create_namespaced_event(namespace, event, _request_timeout=TIMEOUT)
        except ApiException as e:
            raise classify(e, "create", "events", namespace) from None

    def delete_pod(self, namespace: str, name: str, grace_seconds: int | None = None) -> None:
        self._call("delete", "pods")
        try:
            self.core.delete_namespaced_pod(
                name, namespace, grace_period_seconds=grace_seconds, _request_timeout=TIMEOUT
            )
        except ApiException as e:
            if e.status != 404:
                raise classify(e, "delete", "pods", namespace) from None

    # Workloads of any kind (Job, JobSet, PyTorchJob, ...): the custom-objects API serves every
    # group but the core one, which no workload kind is in.

    def resource_for(self, api_version: str, kind: str) -> str | None:
        """The plural a kind is served under (from discovery), or None when the API server does
        not serve it: its CRD is not installed. Found plurals are kept; a miss is asked again
        after 30 s (someone may be installing the CRD)."""
        key = (api_version, kind)
        cache = self._discovered
        found = cache.get(key)
        if found is not None and (found[1] is not None or time.monotonic() - found[0] < 30.0):
            return found[1]
        group, _, version = api_version.rpartition("/")
        self._call("get", f"discovery {api_version}")
        plural: str | None = None
        try:
            resources = self.custom.get_api_resources(group, version, _request_timeout=TIMEOUT)
            plural = next((r.name for r in resources.resources or [] if r.kind == kind and "/" not in r.name), None)
        except ApiException as e:
            if e.status != 404:
                raise classify(e, "get", f"discovery {api_version}", "", group) from None
        cache[key] = (time.monotonic(), plural)
        return plural

    def create_object(self, api_version: str, plural: str, namespace: str, body: dict[str, Any]) -> bool:
        """Create; False when it already exists (a retried create is a no-op)."""
        group, _, version = api_version.rpartition("/")
        self._call("create", plural)
        try:
            self.custom.create_namespaced_custom_object(group, version, namespace, plural, body,
                                                        _request_timeout=TIMEOUT)
            return True
        except ApiException as e:
            if e.status == 409:
                return False
            raise classify(e, "create", plural, namespace, group) from None

    def patch_object(self, api_version: str, plural: str, namespace: str, name: str,
                     patch: dict[str, Any]) -> dict[str, Any] | None:
        """Merge-patch; None when it is gone."""
        group, _, version = api_version.rpartition("/")
        self._call("patch", plural)
        try:
            return self.custom.patch_namespaced_custom_object(  # type: ignore[no-any-return]
                group, version, namespace, plural, name, patch, _request_timeout=TIMEOUT)
        except ApiException as e:
            if e.status == 404:
                return None
            raise classify(e, "patch", plural, namespace, group) from None

    def delete_object(self, api_version: str, plural: str, namespace: str, name: str,
                      grace_seconds: int | None = None) -> None:
        """Delete with its pods (background propagation: the garbage collector removes them,
        each with the grace period of its own pod spec)."""
        group, _, version = api_version.rpartition("/")
        self._call("delete", plural)
        try:
            self.custom.delete_namespaced_custom_object(
                group, version, namespace, plural, name, grace_period_seconds=grace_seconds,
                propagation_policy="Background", _request_timeout=TIMEOUT)
        except ApiException as e:
            if e.status != 404:
                raise classify(e, "delete", plural, namespace, group) from None
