"""Analysis is recomputed only when a Round's trials changed (it runs fANOVA)."""
from __future__ import annotations

import hashlib
from typing import Any

from ..api import Round, Study, Trial
from ..core.round_plan import phase_of, round_key
from ..memo import Memo


def fingerprint(study: Study, rnd: Round, trials: list[Trial]) -> tuple[Any, ...]:
    """What the analysis depends on; the trials' part as a digest (kept per Round, it would
    otherwise hold a tuple per trial)."""
    seen = repr([(t.metadata.name, phase_of(t), t.status.objective, len(t.status.curve)) for t in trials])
    return (rnd.metadata.generation, rnd.spec.model_dump_json(), study.metadata.generation,
            hashlib.blake2b(seen.encode(), digest_size=16).digest())


class AnalysisCache(Memo[dict[str, Any]]):
    """One analysis per Round, keyed by round_key."""

    def of(self, study: Study, rnd: Round, trials: list[Trial]) -> dict[str, Any]:
        """Round.status.analysis for these trials, computed once per change."""
        from . import analyze_round

        return self.get(round_key(rnd.metadata.namespace, rnd.metadata.name), fingerprint(study, rnd, trials),
                        lambda: analyze_round(study, rnd, trials).wire())
