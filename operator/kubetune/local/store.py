"""The local run directory: the Study, the Round and its Trials as YAML, like the cluster keeps them."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

import yaml

from ..api import Round, Study, Trial
from ..api.common import Model

M = TypeVar("M", bound=Model)


def read(path: Path, model: type[M]) -> M:
    return model.model_validate(yaml.safe_load(path.read_text()))


def read_trials(directory: Path) -> list[Trial]:
    return [read(p, Trial) for p in sorted(directory.glob("*.yaml"))]


class RunStore:
    def __init__(self, root: Path):
        self.root = root
        self.trials_dir = root / "trials"
        self.logs = root / "logs"
        self.pods = root / "pods"
        for d in (self.root, self.trials_dir, self.logs, self.pods):
            d.mkdir(parents=True, exist_ok=True)
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
