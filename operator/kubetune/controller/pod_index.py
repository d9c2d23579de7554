"""Trial pods as the operator keeps them (pods.kept: metadata and status, not the spec),
under their namespace and Trial, read the way a kopf index is read:
`index.get((namespace, trial), ())` gives the Trial's pods. Kept current by the operator's
own watch (list_watch.py)."""
from __future__ import annotations

from typing import Any, Mapping

from .list_watch import Grouped
from .pods import kept


class PodIndex(Grouped):
    """Kept trial pods under (namespace, trial label); a pod without the label (it left the
    watch's selection) is dropped."""

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def group(self, pod: Mapping[str, Any]) -> tuple[str, str] | None:
        meta = pod.get("metadata") or {}
        trial = (meta.get("labels") or {}).get(self.label)
        return (meta.get("namespace") or "", trial) if trial else None

    def entry(self, pod: dict[str, Any]) -> dict[str, Any]:
        return kept(pod)
