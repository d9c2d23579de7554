"""Keys of the indexes (kopf's, and the operator's own). An index may file an object under
several keys: a Round under its Study (a Study's Rounds) and under its own name (kopf's
round index, one handler for both: kopf's machinery around each handler call, not the
handler, is most of an index's cost), a Trial under its Round (a Round's Trials) and its
name under the Round's (trial_index.py)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ByName:
    """One object by its namespace and name. Unequal to the (namespace, group) tuples the
    same index files objects under, so a Trial named like its Round is no clash."""

    namespace: str
    name: str
