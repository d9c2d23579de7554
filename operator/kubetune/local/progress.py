"""Live progress for `kubetune run`: a rich progress bar on a terminal, plain lines otherwise."""
from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn

from ..api import Round
from ..core.settings import RoundSettings


class Progress:
    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.console = Console(stderr=False, highlight=False)
        self._bar: RichProgress | None = None
        self._task: Any = None

    def __enter__(self) -> "Progress":
        if not self.quiet:
            self._bar = RichProgress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), console=self.console,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("trials", total=None, detail="starting")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar:
            self._bar.__exit__(*exc)

    def log(self, message: str) -> None:
        if self._bar:
            self._bar.console.print(message, markup=False)
        else:
            print(message, flush=True)

    def update(self, rnd: Round, s: RoundSettings) -> None:
        st = rnd.status
        c = st.counts
        done, total = (int(x) for x in (st.progress or "0/0").split("/"))
        best = f"best {s.metric}={st.best_value:.4g}" if st.best_value is not None else "no result yet"
        detail = (f"running {c.running + c.pending} · done {c.succeeded} · stopped {c.early_stopped} · "
                  f"infeasible {c.infeasible} · failed {c.failed} · {best}")
        if self._bar:
            self._bar.update(self._task, completed=done, total=max(total, planned_total(s)), detail=detail)

    def stop(self, why: str) -> None:
        """Leave the bar saying why it stopped (its counts would otherwise still show trials running)."""
        if self._bar:
            self._bar.update(self._task, detail=why)


def planned_total(s: RoundSettings) -> int:
    """Every trial the Round will run, re-runs included, known from the start: the Round's
    own count adds the re-runs only once it knows which trials are best, and a bar whose
    total jumps from 16 to 18 near the end looks like a bug."""
    reruns = s.rerun_top_k * s.rerun_seeds + (s.rerun_seeds + 1 if s.rerun_baseline else 0)
    return s.max_trials + reruns
