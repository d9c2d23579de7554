"""Analysis is recomputed only when a Round's trials changed (it runs fANOVA)."""
from __future__ import annotations

from typing import Any

from ..api import Round, Study, Trial
from ..core.round_plan import phase_of, round_key


def fingerprint(study: Study, rnd: Round, trials: list[Trial]) -> tuple[Any, ...]:
    return (rnd.metadata.generation, rnd.spec.model_dump_json(), study.metadata.generation,
            tuple((t.metadata.name, phase_of(t), t.status.objective, len(t.status.curve)) for t in trials))


class AnalysisCache:
    def __init__(self) -> None:
        self._items: dict[str, tuple[Any, dict[str, Any]]] = {}

    def get(self, study: Study, rnd: Round, trials: list[Trial]) -> dict[str, Any]:
        """Round.status.analysis for these trials, computed once per change."""
        from . import analyze_round

        key = round_key(rnd.metadata.namespace, rnd.metadata.name)
        fp = fingerprint(study, rnd, trials)
        hit = self._items.get(key)
        if hit is None or hit[0] != fp:
            hit = (fp, analyze_round(study, rnd, trials).wire())
            self._items[key] = hit
        return hit[1]

    def forget(self, key: str) -> None:
        """Drop a deleted Round's analysis."""
        self._items.pop(key, None)

    def __contains__(self, key: str) -> bool:
        return key in self._items
