"""Trial pods as the operator keeps them (pods.kept: metadata and status, not the spec),
under their namespace and Trial, read the way a kopf index is read:
`index.get((namespace, trial), ())` gives the Trial's pods. Kept current by the operator's
own watch (list_watch.py)."""
from __future__ import annotations

import threading
from typing import Any, Mapping

from .pods import kept


class PodIndex:
    """Kept trial pods under (namespace, trial label). Written by the watch threads, read by
    the passes' threads: each key's entry is a tuple replaced whole, never changed in place,
    so a reader gets a consistent one without a lock."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._by_trial: dict[tuple[str, str], tuple[dict[str, Any], ...]] = {}
        self._trial_of: dict[tuple[str, str], tuple[str, str]] = {}  # (namespace, pod name) -> its key
        self._lock = threading.Lock()  # between watch threads (a relist of one namespace, a watch of another)

    def get(self, key: tuple[str, str], default: Any = ()) -> Any:
        return self._by_trial.get(key, default)

    def __len__(self) -> int:
        return len(self._trial_of)

    def names(self, namespace: str | None) -> set[tuple[str, str]]:
        with self._lock:
            return {k for k in self._trial_of if namespace is None or k[0] == namespace}

    def put(self, pod: Mapping[str, Any]) -> dict[str, Any] | None:
        """Keep the pod (replacing what was kept of it); what is kept, or None for a pod
        without the trial label (it left the watch's selection: dropped instead)."""
        meta = pod.get("metadata") or {}
        namespace, name = meta.get("namespace") or "", meta.get("name") or ""
        trial = (meta.get("labels") or {}).get(self.label)
        if not trial:
            self.discard(namespace, name)
            return None
        entry = kept(pod)
        key = (namespace, trial)
        with self._lock:
            self._remove((namespace, name))
            self._by_trial[key] = (*self._by_trial.get(key, ()), entry)
            self._trial_of[(namespace, name)] = key
        return entry

    def discard(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._remove((namespace, name))

    def _remove(self, pod: tuple[str, str]) -> dict[str, Any] | None:
        key = self._trial_of.pop(pod, None)
        if key is None:
            return None
        held = self._by_trial.get(key, ())
        gone = next((p for p in held if (p.get("metadata") or {}).get("name") == pod[1]), None)
        left = tuple(p for p in held if p is not gone)
        if left:
            self._by_trial[key] = left
        else:
            self._by_trial.pop(key, None)
        return gone
