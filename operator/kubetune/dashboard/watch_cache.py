"""One kind of kubetune object in one namespace, kept current in memory by a watch: the
live dashboard reads the cluster the way an operator does, a list and then its changes,
instead of listing everything on every page request."""
from __future__ import annotations

import logging
import threading
from typing import Any

import kubernetes
from kubernetes.client.rest import ApiException

from ..api import GROUP, VERSION

log = logging.getLogger(__name__)


class WatchCache:
    def __init__(self, custom: kubernetes.client.CustomObjectsApi, namespace: str, plural: str,
                 watch_seconds: int = 240):
        self.custom, self.namespace, self.plural, self.watch_seconds = custom, namespace, plural, watch_seconds
        self._items: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.synced = threading.Event()  # the first list has arrived
        self.error: Exception | None = None  # the last failure, while there is one
        self._watch: kubernetes.watch.Watch | None = None
        self._thread = threading.Thread(target=self._run, name=f"watch-{plural}", daemon=True)
        self._thread.start()

    def items(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._items.values())

    def get(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._items.get(name)

    def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                version = self._relist()
                while not self._stop.is_set():  # each watch ends after watch_seconds; go on from where it was
                    version = self._follow(version)
            except ApiException as e:
                if e.status != 410:  # 410 Gone: the watch expired; list again
                    self._failed(e)
            except Exception as e:  # noqa: BLE001 - unreachable API server: keep what we have, retry
                self._failed(e)

    def _failed(self, e: Exception) -> None:
        self.error = e
        log.warning("watching %s in %s: %s; retrying", self.plural, self.namespace, e)
        self._stop.wait(2.0)

    def _relist(self) -> str:
        got = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, self.plural,
                                                        _request_timeout=30)
        with self._lock:
            self._items = {o["metadata"]["name"]: o for o in got["items"]}
        self.error = None
        self.synced.set()
        return str(got["metadata"]["resourceVersion"])

    def _follow(self, version: str) -> str:
        self._watch = kubernetes.watch.Watch()
        for event in self._watch.stream(self.custom.list_namespaced_custom_object, GROUP, VERSION, self.namespace,
                                        self.plural, resource_version=version, allow_watch_bookmarks=True,
                                        timeout_seconds=self.watch_seconds, _request_timeout=self.watch_seconds + 30):
            kind, obj = event["type"], event["object"]
            if kind == "ERROR":
                code = obj.get("code") if isinstance(obj, dict) else None
                raise ApiException(status=code or 500, reason=str(obj))
            meta = obj.get("metadata") or {}
            version = str(meta.get("resourceVersion") or version)
            if kind == "BOOKMARK":
                continue
            with self._lock:
                if kind == "DELETED":
                    self._items.pop(meta.get("name"), None)
                else:
                    self._items[meta["name"]] = obj
        return version
