"""Where the dashboard reads Rounds from: local run directories, or the cluster's API server.

A source lists the Rounds it knows (with their Study) and loads one Round with its
Study and Trials. Each Round also has a *version*, a string that changes whenever
anything the page shows may have changed; the page polls it and reloads only then.
Sources only read.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..api import Round, Study, Trial
from ..api.trial import round_name
from ..local.store import RunStateError, read, read_trials


@dataclass(frozen=True)
class RoundEntry:
    study: str
    name: str
    phase: str
    progress: str
    goal: str


class Source(Protocol):
    def describe(self) -> str: ...
    def rounds(self) -> list[RoundEntry]: ...
    def load(self, name: str) -> tuple[Study, Round, list[Trial]]: ...
    def version(self, name: str) -> str: ...


class NotFound(LookupError):
    """No Round of that name here."""


class LocalSource:
    """A `kubetune run` directory, or a folder of them (./kubetune-runs holds one per Round)."""

    def __init__(self, root: Path):
        self.root = root

    def describe(self) -> str:
        return f"local runs in {self.root}"

    def _dirs(self) -> dict[str, Path]:
        """Round name → its run directory (a directory with a round.yaml)."""
        candidates = [self.root] + (sorted(p for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else [])
        out: dict[str, Path] = {}
        for d in candidates:
            if (d / "round.yaml").is_file() and (d / "study.yaml").is_file() and (d / "trials").is_dir():
                try:
                    out.setdefault(read(d / "round.yaml", Round).metadata.name, d)
                except RunStateError:
                    continue  # being written for the first time, or not ours: listed once readable
        return out

    def rounds(self) -> list[RoundEntry]:
        out = []
        for name, d in self._dirs().items():
            rnd = read(d / "round.yaml", Round)
            out.append(RoundEntry(study=rnd.spec.study_ref.name, name=name, phase=rnd.status.phase or "Pending",
                                  progress=rnd.status.progress, goal=rnd.spec.goal))
        return out

    def load(self, name: str) -> tuple[Study, Round, list[Trial]]:
        d = self._dirs().get(name)
        if d is None:
            raise NotFound(name)
        return read(d / "study.yaml", Study), read(d / "round.yaml", Round), read_trials(d / "trials")

    def version(self, name: str) -> str:
        d = self._dirs().get(name)
        if d is None:
            raise NotFound(name)
        h = hashlib.sha1()
        for p in [d / "study.yaml", d / "round.yaml", *sorted((d / "trials").glob("*.yaml"))]:
            try:
                st = p.stat()
            except OSError:
                continue
            h.update(f"{p.name}:{st.st_mtime_ns}:{st.st_size};".encode())
        return h.hexdigest()[:16]


class ClusterSource:
    """Studies, Rounds and Trials of one namespace, from the API server with the kubeconfig
    (KUBECONFIG or ~/.kube/config), kept current by a watch per kind (watch_cache.py): a
    page request reads memory, not the API server. The version is the resourceVersions of
    the Round and of its Trials, so the page reloads only when one of them changed."""

    def __init__(self, namespace: str, sync_seconds: float = 30.0):
        from ..controller.kube import Kube, api_client
        from .watch_cache import WatchCache

        self.namespace, self.sync_seconds = namespace, sync_seconds
        custom = Kube(api_client()).custom
        self.caches = {plural: WatchCache(custom, namespace, plural) for plural in ("studies", "rounds", "trials")}

    def describe(self) -> str:
        return f"the cluster, namespace {self.namespace} (watched)"

    def _items(self, plural: str) -> list[dict]:
        cache = self.caches[plural]
        if not cache.synced.wait(self.sync_seconds):
            raise ConnectionError(f"cannot list {plural} in namespace {self.namespace}: {cache.error}")
        return cache.items()

    def _raw_round(self, name: str) -> dict:
        self._items("rounds")
        raw = self.caches["rounds"].get(name)
        if raw is None:
            raise NotFound(name)
        return raw

    def rounds(self) -> list[RoundEntry]:
        out = []
        for raw in self._items("rounds"):
            rnd = Round.model_validate(raw)
            out.append(RoundEntry(study=rnd.spec.study_ref.name, name=rnd.metadata.name,
                                  phase=rnd.status.phase or "Pending", progress=rnd.status.progress, goal=rnd.spec.goal))
        return sorted(out, key=lambda r: (r.study, r.name))

    def _trials(self, name: str) -> list[dict]:
        return [t for t in self._items("trials") if round_name(t) == name]

    def load(self, name: str) -> tuple[Study, Round, list[Trial]]:
        rnd = Round.model_validate(self._raw_round(name))
        self._items("studies")
        study_raw = self.caches["studies"].get(rnd.spec.study_ref.name)
        if study_raw is None:
            raise NotFound(f"{name}: its Study {rnd.spec.study_ref.name!r} is not in namespace {self.namespace}")
        return Study.model_validate(study_raw), rnd, [Trial.model_validate(t) for t in self._trials(name)]

    def version(self, name: str) -> str:
        parts = [self._raw_round(name)["metadata"].get("resourceVersion", "")]
        parts += sorted(f"{t['metadata']['name']}@{t['metadata'].get('resourceVersion', '')}" for t in self._trials(name))
        return hashlib.sha1(";".join(parts).encode()).hexdigest()[:16]
