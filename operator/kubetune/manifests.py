"""Reading Study and Round manifests from files or directories, with clear errors."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import yaml

from .api import Round, Study
from .api.validation import InvalidManifest, Problem, foreign, parse
from .space import name_clashes


class ManifestError(ValueError):
    """A file that cannot be read as kubetune manifests; the message says what to fix."""


def load_documents(paths: list[str | Path]) -> list[tuple[Path, dict[str, Any]]]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        elif path.exists():
            files.append(path)
        else:
            raise ManifestError(f"{path}: no such file or directory")
    docs = []
    for f in files:
        try:
            # bytes: YAML's own reader detects UTF-8/16/32 and names a bad byte's position
            for doc in yaml.safe_load_all(f.read_bytes()):
                if doc is not None:
                    docs.append((f, doc))
        except yaml.YAMLError as e:
            raise ManifestError(f"{f}: not valid YAML: {e}") from None
        except OSError as e:
            raise ManifestError(f"{f}: cannot be read: {e.strerror}") from None
    if not docs:
        where = ", ".join(str(p) for p in paths)
        raise ManifestError(f"no manifests in {where} (directories are read for *.yaml and *.yml files)")
    return docs


def _ours(docs: list[tuple[Path, dict[str, Any]]], strict: bool) -> Iterator[tuple[Path, Study | Round]]:
    """The Studies and Rounds among the documents; other APIs' objects are skipped (a
    GitOps folder holds them too), and an invalid one is an error, or (not strict) skipped."""
    for f, doc in docs:
        if foreign(doc):
            continue
        try:
            obj = parse(doc)
        except InvalidManifest as e:
            if strict:
                raise ManifestError(f"{f}: {e}") from None
            continue
        if isinstance(obj, (Study, Round)):
            yield f, obj


def load_study_and_round(paths: list[str | Path], round_name: str | None = None) -> tuple[Study, Round]:
    """The Study and the Round to run, validated as the API server would."""
    studies: dict[str, Study] = {}
    rounds: list[Round] = []
    for _, obj in _ours(load_documents(paths), strict=True):
        if isinstance(obj, Study):
            studies[obj.metadata.name] = obj
        else:
            rounds.append(obj)
    if round_name:
        rounds = [r for r in rounds if r.metadata.name == round_name]
    if len(rounds) != 1:
        names = ", ".join(r.metadata.name for r in rounds) or "none"
        raise ManifestError(f"expected exactly one Round (found {names}); name one with --round")
    rnd = rounds[0]
    study = studies.get(rnd.spec.study_ref.name)
    if study is None:
        raise ManifestError(
            f"Round {rnd.metadata.name!r} refers to Study {rnd.spec.study_ref.name!r}, which none of the files defines"
        )
    clashes = name_clashes(study, rnd.spec)
    if clashes:
        raise ManifestError(f"Round {rnd.metadata.name!r}: " + "; ".join(clashes))
    return study, rnd


def clashes_between(docs: list[tuple[Path, dict[str, Any]]]) -> list[tuple[Path, str, str]]:
    """(file, Round, what clashes) for every valid Round whose parameter names clash with
    the baseline of a valid Study among the same documents: each is fine alone, the
    pair is not (the API server sees them one at a time; the operator says so in the
    Round's Ready condition)."""
    studies: dict[tuple[str, str], Study] = {}
    rounds: list[tuple[Path, Round]] = []
    for f, obj in _ours(docs, strict=False):  # an invalid one is reported on its own
        if isinstance(obj, Study):
            studies[(obj.metadata.namespace or "", obj.metadata.name)] = obj
        else:
            rounds.append((f, obj))
    out = []
    for f, rnd in rounds:
        study = studies.get((rnd.metadata.namespace or "", rnd.spec.study_ref.name))
        for clash in name_clashes(study, rnd.spec) if study else []:
            out.append((f, rnd.metadata.name, clash))
    return out


__all__ = ["ManifestError", "clashes_between", "load_documents", "load_study_and_round", "InvalidManifest", "Problem"]
