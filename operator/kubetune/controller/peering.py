"""kopf's peering as this operator uses it, and the gate that holds the operator's own passes
while a peer keeps it paused.

With several replicas (`--peering`), kopf lets one act: a replica that sees a live peer of a
priority at least its own in the peering's status pauses its handlers. The operator's passes
do not run in kopf's handlers, though: its own watches (list_watch.py) and sweeps queue them
in its work queue, which kopf does not know about. Without a gate, a replica paused by a
newer peer of a higher priority (a restarted replica draws a new random one) went on
creating Trials, stopping trials and writing statuses beside the peer that now acts. The
gate watches the same peering objects as kopf and applies kopf's rule (`peers_ahead`); while
paused, the work queue runs no pass (what is queued waits, coalesced, and runs when the gate
opens), and the watches keep their stores current so that a replica that takes over starts
from warm indexes.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping

import kubernetes

log = logging.getLogger("kubetune")

GROUP, VERSION = "kopf.dev", "v1"
CHECK_TIMEOUT = 5.0  # seconds for each try of an API call of the peering check


@dataclass(frozen=True)
class Peering:
    """One object per watched namespace (KopfPeering), or one ClusterKopfPeering when the
    operator watches the whole cluster."""
    name: str
    namespaces: tuple[str, ...]  # () = cluster-wide
    identity: str
    priority: int

    @property
    def kind(self) -> str:
        return "KopfPeering" if self.namespaces else "ClusterKopfPeering"

    @property
    def plural(self) -> str:
        return self.kind.lower() + "s"

    def where(self, namespace: str | None) -> str:
        return f"{self.kind} '{self.name}'" + (f" in namespace {namespace}" if namespace else "")

    def get(self, client: Any, namespace: str | None) -> dict:
        custom = kubernetes.client.CustomObjectsApi(client)
        if namespace:
            return custom.get_namespaced_custom_object(GROUP, VERSION, namespace, self.plural, self.name,
                                                       _request_timeout=CHECK_TIMEOUT)
        return custom.get_cluster_custom_object(GROUP, VERSION, self.plural, self.name,
                                                _request_timeout=CHECK_TIMEOUT)


def peers_ahead(status: Mapping[str, Any], peering: Peering, now: datetime) -> list[str]:
    """The live peers that keep this operator paused, by kopf's rule: any other peer whose
    keep-alive has not expired and whose priority is at least ours (a tie pauses both)."""
    ahead = []
    for identity, info in (status or {}).items():
        if identity == peering.identity or not isinstance(info, dict):
            continue
        try:
            lastseen = datetime.fromisoformat(str(info["lastseen"])) if info.get("lastseen") else now
            lifetime, priority = int(info.get("lifetime", 60)), int(info.get("priority", 0))
        except (TypeError, ValueError):
            continue  # not a peer kopf could parse either
        if lastseen.tzinfo is None:
            lastseen = lastseen.replace(tzinfo=timezone.utc)
        if lastseen + timedelta(seconds=lifetime) > now and priority >= peering.priority:
            ahead.append(f"{identity} (priority {priority})")
    return ahead


class PeeringGate:
    """The peering objects as the watch last saw them (a list_watch.Store), and whether they
    let this operator act. `changed(acting, why)` is called, in the event loop, when that turns."""

    def __init__(self, peering: Peering, changed: Callable[[bool, str], None],
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.peering, self.changed, self.clock = peering, changed, clock
        self._status: dict[str, Mapping[str, Any]] = {}  # namespace ("" cluster-wide) -> the object's status
        self.acting: bool | None = None  # None until the watch has listed

    # --- list_watch.Store ---------------------------------------------------------------
    def put(self, obj: dict[str, Any]) -> Any:
        meta = obj.get("metadata") or {}
        if meta.get("name") != self.peering.name:
            return None  # another operator's peering
        self._status[meta.get("namespace") or ""] = obj.get("status") or {}
        return obj

    def discard(self, namespace: str, name: str) -> Any:
        """A peering object deleted keeps its last word, as kopf judges the deleted object's
        last status: its peers hold this operator until their keep-alives expire."""
        return self._status.get(namespace) if name == self.peering.name else None

    def names(self, namespace: str | None) -> set[tuple[str, str]]:
        return {(ns, self.peering.name) for ns in self._status if namespace is None or ns == namespace}

    # --- the decision -------------------------------------------------------------------
    def held_by(self) -> str:
        """'' when this operator may act; else who holds which peering object."""
        now = self.clock()
        held = []
        for namespace, status in sorted(self._status.items()):
            ahead = peers_ahead(status, self.peering, now)
            if ahead:
                held.append(f"{self.peering.where(namespace or None)} is held by {', '.join(ahead)}")
        return "; ".join(held)

    def decide(self) -> None:
        """Look again (on a peering event, on the watch's first list, and every few seconds:
        a peer that stops renewing its keep-alive expires without an event)."""
        held = self.held_by()
        acting = not held
        if acting != self.acting:
            self.acting = acting
            self.changed(acting, held)

    async def every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            if self.acting is not None:
                self.decide()
