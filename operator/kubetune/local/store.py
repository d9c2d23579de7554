"""The local run directory: the Study, the Round and its Trials as YAML, like the cluster keeps them."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

import pydantic
import yaml

from ..api import Round, Study, Trial
from ..api.study import StudyStatus
from ..api.common import Model
from ..api.validation import model_problems

M = TypeVar("M", bound=Model)


class RunStateError(ValueError):
    """The run directory cannot hold this Round's state; the message says what to do."""


def read(path: Path, model: type[M]) -> M:
    try:
        return model.model_validate(yaml.safe_load(path.read_bytes()))
    except (OSError, yaml.YAMLError, pydantic.ValidationError) as e:
        raise RunStateError(
            f"{path}: the saved state of this run cannot be read ({_why(e)}); repair or remove that file"
        ) from None


def _why(e: Exception) -> str:
    if isinstance(e, OSError):
        return str(e.strerror)
    if isinstance(e, pydantic.ValidationError):
        return "; ".join(str(p) if p.path else f"the document: {p.message}" for p in model_problems(e)[:3])
    return " ".join(str(e).split())  # YAML's message and where, on one line


def foreign_state(saved: Round | None, trials: list[Trial], rnd: Round) -> str | None:
    """Why a run directory's saved state belongs to another Round, or None.

    Resuming reads every saved Trial as one of this Round's; another Round's trials
    there would be counted as its own (and its round.yaml overwritten)."""
    mine = (rnd.spec.study_ref.name, rnd.metadata.name)
    if saved is not None and (saved.spec.study_ref.name, saved.metadata.name) != mine:
        return f"Round {saved.metadata.name} of Study {saved.spec.study_ref.name}"
    for t in trials:
        if (t.spec.study_ref.name, t.spec.round_ref.name) != mine:
            return f"Trial {t.metadata.name} of Round {t.spec.round_ref.name} (Study {t.spec.study_ref.name})"
    return None


def read_trials(directory: Path) -> list[Trial]:
    return [read(p, Trial) for p in sorted(directory.glob("*.yaml"))]


class RunStore:
    def __init__(self, root: Path):
        self.root = root
        self.trials_dir = root / "trials"
        self.logs = root / "logs"
        self.pods = root / "pods"
        for d in (self.root, self.trials_dir, self.logs, self.pods):
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise RunStateError(
                    f"{d}: cannot be the run's directory ({e.strerror}); give another --output"
                ) from None
        self._written: dict[Path, str] = {}

    def _write(self, path: Path, obj: Model) -> None:
        text = yaml.safe_dump(obj.wire(), sort_keys=False, allow_unicode=True)
        if self._written.get(path) == text:
            return  # the runner saves every pass; only changes reach the disk
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)  # atomic: an interrupted write never leaves half a file
        self._written[path] = text

    def save_study(self, study: Study) -> None:
        self._write(self.root / "study.yaml", study)

    def save_round(self, rnd: Round) -> None:
        self._write(self.root / "round.yaml", rnd)

    def save_trial(self, trial: Trial) -> None:
        self._write(self.trials_dir / f"{trial.metadata.name}.yaml", trial)

    def load_round(self) -> Round | None:
        path = self.root / "round.yaml"
        return read(path, Round) if path.exists() else None

    def load_trials(self) -> list[Trial]:
        return read_trials(self.trials_dir)


def adopted_status(runs: list[Path], study_name: str) -> tuple[Path, StudyStatus] | None:
    """The Study status with the latest adoption among run directories (`kubetune adopt RUN`
    writes it into RUN/study.yaml), so the next Round of that Study starts from the adopted
    baseline, as on a cluster where it lives in the Study's status. Unreadable ones are passed over."""
    latest: tuple[str, Path, StudyStatus] | None = None
    for run in runs:
        path = run / "study.yaml"
        if not path.is_file():
            continue
        try:
            study = read(path, Study)
        except RunStateError:
            continue
        if study.metadata.name != study_name or not study.status.adopted:
            continue
        when = max(a.time for a in study.status.adopted)
        if latest is None or when > latest[0]:
            latest = (when, run, study.status)
    return (latest[1], latest[2]) if latest else None
