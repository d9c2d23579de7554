"""Trials as the operator keeps them, read the way a kopf index is read: under
(namespace, Round name) a Round's Trials, and under ByName(namespace, Trial name) the name
of the Round a Trial names (a Round's next trial name may be held by a Trial that is not
the Round's: made by hand, or another Round's). An unfinished Trial is kept as its body
(less metadata.managedFields, which nothing reads); a finished one as its parse
(trial_models.TrialModels.settle), so a long Round's Trials are not held twice. Kept
current by the operator's own watch (list_watch.py)."""
from __future__ import annotations

from typing import Any, Hashable, Mapping

from ..api import FINISHED, Trial
from . import trial_models
from .index_keys import ByName
from .list_watch import Grouped
from .trial_models import Entry, TrialModels


class TrialIndex(Grouped):
    """Trials under (namespace, Round name); `items()` gives those groups, not the ByName keys."""

    def __init__(self, trials: TrialModels) -> None:
        super().__init__()
        self.trials = trials

    def get(self, key: Hashable, default: Any = ()) -> Any:
        if isinstance(key, ByName):
            found = self._held.get((key.namespace, key.name))
            return (found[0][1],) if found is not None else default
        return super().get(key, default)

    def group(self, body: Mapping[str, Any]) -> tuple[str, str | None]:
        return ((body.get("metadata") or {}).get("namespace") or "", trial_models.round_name(body))

    def entry(self, body: dict[str, Any]) -> Entry:
        (body.get("metadata") or {}).pop("managedFields", None)
        if (body.get("status") or {}).get("phase") in FINISHED:
            like = next((e for e in reversed(self.get(self.group(body))) if isinstance(e, Trial)), None)
            return self.trials.settle(body, like)
        return body
