"""Read the reports a local trial's SDK appends, one JSON line per step, from where the
last read stopped: the whole curve, whatever the poll interval."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..api.trial import CurvePoint


@dataclass
class ReportReader:
    path: Path
    metric: str
    offset: int = 0
    diverged_step: int | None = None  # the first step whose objective was NaN or infinite
    _partial: bytes = field(default=b"", repr=False)

    def read_new(self) -> list[CurvePoint]:
        """The objective's finite points reported since the last call."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return []
        self.offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()  # a line the trial is still writing
        points: list[CurvePoint] = []
        for line in lines:
            try:
                doc = json.loads(line)
                step, value = int(doc["step"]), float(doc["metrics"][self.metric])
            except (ValueError, KeyError, TypeError):
                continue  # another metric's line, or not ours to read
            if math.isfinite(value):
                points.append(CurvePoint(step=step, value=value))
            elif self.diverged_step is None:
                self.diverged_step = step
        return points
