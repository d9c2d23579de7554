"""Reading Study and Round manifests from files or directory trees, with clear errors.

One reader for `kubetune run` and `kubetune validate`: both see the same documents
(directories are read with their subfolders, as GitOps trees are nested), skip the
same things and say so, and apply the same rules across documents (a Round's Study
must be among the files; their parameter names must not clash).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import yaml

from .api import Round, Study
from .api.validation import InvalidManifest, Problem, describe, foreign, parse
from .space import name_clashes

SUFFIXES = (".yaml", ".yml")


class ManifestError(ValueError):
    """A file that cannot be read as kubetune manifests; the message says what to fix."""


@dataclass
class Documents:
    """The YAML documents under some paths, and what was passed over (each 'path: why')."""

    docs: list[tuple[Path, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[tuple[Path, Any]]:
        return iter(self.docs)

    def __len__(self) -> int:
        return len(self.docs)


def _files(path: Path, skipped: list[str]) -> list[Path]:
    """The YAML files under a directory, subfolders included, in a stable order."""
    found: list[Path] = []
    hidden: list[str] = []
    for top, dirs, names in os.walk(path):
        hidden += [str(Path(top, d)) + "/" for d in dirs if d.startswith(".")]
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # .git and the like: not descended into
        for name in sorted(names):
            p = Path(top, name)
            if name.startswith("."):
                hidden.append(str(p))
            elif p.suffix in SUFFIXES:
                found.append(p)
            else:
                skipped.append(f"{p}: not a *.yaml or *.yml file")
    if hidden:
        skipped.append(f"{', '.join(hidden[:3])}{' ...' if len(hidden) > 3 else ''}: hidden (name starts with '.')")
    return sorted(found)


def read_documents(paths: list[str | Path]) -> Documents:
    """Every YAML document in the files and directory trees given."""
    out = Documents()
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += _files(path, out.skipped)
        elif path.exists():
            files.append(path)
        else:
            raise ManifestError(f"{path}: no such file or directory")
    for f in files:
        try:
            # bytes: YAML's own reader detects UTF-8/16/32 and names a bad byte's position
            found = [doc for doc in yaml.safe_load_all(f.read_bytes()) if doc is not None]
        except yaml.YAMLError as e:
            raise ManifestError(f"{f}: not valid YAML: {e}") from None
        except OSError as e:
            raise ManifestError(f"{f}: cannot be read: {e.strerror}") from None
        if not found:
            out.skipped.append(f"{f}: no YAML documents in it")
        out.docs += [(f, doc) for doc in found]
    if not out.docs:
        where = ", ".join(str(p) for p in paths)
        raise ManifestError(f"no manifests in {where} (directories are read, with their subfolders, "
                            "for *.yaml and *.yml files)")
    return out


def load_documents(paths: list[str | Path]) -> list[tuple[Path, Any]]:
    """The documents alone (see read_documents for what was skipped)."""
    return read_documents(paths).docs


@dataclass
class Objects:
    """The Studies and Rounds among some documents."""

    studies: list[tuple[Path, Study]] = field(default_factory=list)
    rounds: list[tuple[Path, Round]] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)  # 'path: what (apiVersion)' of other APIs' objects

    def study_of(self, rnd: Round) -> Study | None:
        """The Study a Round names: same name, same namespace where both give one."""
        for _, study in self.studies:
            same_ns = not (study.metadata.namespace and rnd.metadata.namespace) \
                or study.metadata.namespace == rnd.metadata.namespace
            if study.metadata.name == rnd.spec.study_ref.name and same_ns:
                return study
        return None

    def round_list(self) -> str:
        return ", ".join(f"{r.metadata.name} ({f})" for f, r in self.rounds) or "none"


def objects(docs: Documents | list[tuple[Path, Any]], strict: bool) -> Objects:
    """The Studies and Rounds among the documents; other APIs' objects are noted (a GitOps
    folder holds them too), and an invalid one is an error, or (not strict) left out."""
    out = Objects()
    for f, doc in docs:
        if foreign(doc):
            out.foreign.append(f"{f}: {describe(doc)} ({doc['apiVersion']}): not a kubetune object")
            continue
        try:
            obj = parse(doc)
        except InvalidManifest as e:
            if strict:
                raise ManifestError(f"{f}: {e}") from None
            continue
        if isinstance(obj, Study):
            out.studies.append((f, obj))
        elif isinstance(obj, Round):
            out.rounds.append((f, obj))
    return out


def round_problems(found: Objects, f: Path, rnd: Round) -> list[str]:
    """What is wrong with a valid Round next to the other documents: `run` refuses it, and
    `validate` reports it, in the same words."""
    study = found.study_of(rnd)
    if study is None:
        names = ", ".join(s.metadata.name for _, s in found.studies) or "none"
        return [f"{f}: Round {rnd.metadata.name!r} refers to Study {rnd.spec.study_ref.name!r}, which none of "
                f"the files defines (Studies found: {names}); give the Study's file too"]
    return [f"{f}: Round {rnd.metadata.name} does not fit its Study: {clash}" for clash in name_clashes(study, rnd.spec)]


def cross_document_problems(docs: Documents | list[tuple[Path, Any]]) -> list[str]:
    """round_problems of every valid Round among the documents (an invalid one is reported on its own)."""
    found = objects(docs, strict=False)
    return [p for f, rnd in found.rounds for p in round_problems(found, f, rnd)]


def pick_round(found: Objects, round_name: str | None) -> tuple[Path, Round]:
    """The Round to run: the one named, or the only one."""
    if not found.rounds:
        studies = ", ".join(f"{s.metadata.name!r} ({f})" for f, s in found.studies)
        if studies:
            raise ManifestError(
                f"the files hold Study {studies} but no Round, and a run needs one: add a Round (kind: Round, "
                "spec.studyRef.name naming the Study; see examples/quickstart/round.yaml)")
        raise ManifestError("the files hold no Round (kind: Round) to run")
    if round_name:
        named = [(f, r) for f, r in found.rounds if r.metadata.name == round_name]
        if not named:
            raise ManifestError(f"no Round named {round_name!r} in the files; the Rounds there: {found.round_list()}")
        return named[0]
    if len(found.rounds) > 1:
        raise ManifestError(f"the files hold {len(found.rounds)} Rounds: {found.round_list()}; "
                            "name the one to run with --round")
    return found.rounds[0]


def load_study_and_round(paths: list[str | Path], round_name: str | None = None,
                         skipped: list[str] | None = None) -> tuple[Study, Round]:
    """The Study and the Round to run, validated as the API server would. What was passed
    over (other APIs' objects, other files) is appended to `skipped` when given."""
    docs = read_documents(paths)
    found = objects(docs, strict=True)
    f, rnd = pick_round(found, round_name)
    wrong = round_problems(found, f, rnd)
    if wrong:
        raise ManifestError("; ".join(wrong))
    if skipped is not None:
        skipped += docs.skipped + found.foreign
        skipped += [f"{g}: Round {r.metadata.name!r}: not the one run (--round {rnd.metadata.name})"
                    for g, r in found.rounds if r is not rnd]
    return found.study_of(rnd), rnd  # type: ignore[return-value]


__all__ = ["Documents", "ManifestError", "Objects", "cross_document_problems", "load_documents",
           "load_study_and_round", "objects", "pick_round", "read_documents", "round_problems",
           "InvalidManifest", "Problem"]
