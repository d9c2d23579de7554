"""Run a Round on this machine with the operator's own decisions.

The loop is the operator's reconcile pass with processes instead of pods:
plan_round -> create trials; for each trial: observe its process, scrape its
curve, ask the stopping rule, plan_trial -> start / stop processes. State lives in
the run directory, so Ctrl-C and the same command again resume the Round.
"""
from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
from pathlib import Path

from ..analysis import Analysis
from ..analysis.cache import AnalysisCache
from ..api import FINISHED, Round, Study, Trial
from ..api.common import rfc3339
from ..api.trial import CurvePoint
from ..core.round_plan import phase_of, plan_round
from ..core.settings import resolve
from ..core.stopping_policy import stop_decision
from ..core.trial_plan import plan_trial, read_termination
from ..core.curves import merge
from ..manifests import ManifestError, load_study_and_round
from ..sampling import AlgorithmUnavailable
from ..space import ParameterNameClash
from ..report.html import render_report
from .interrupts import Interrupts
from .process import LocalPod
from .reports import ReportReader
from .scrape import scrape
from .store import RunStateError, RunStore, foreign_state

NAMESPACE = "local"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class LocalRun:
    def __init__(self, study: Study, rnd: Round, out: Path, poll: float = 0.5, echo=print):
        self.study, self.store, self.poll, self.echo = study, RunStore(out), poll, echo
        saved, trials = self.store.load_round(), self.store.load_trials()
        other = foreign_state(saved, trials, rnd)
        if other:
            raise RunStateError(
                f"{out} holds the run of {other}, not of Round {rnd.metadata.name} of Study "
                f"{rnd.spec.study_ref.name}; give another --output, or remove {out} to discard that run"
            )
        if saved is not None:
            rnd.status = saved.status  # resume: the spec may have changed (e.g. parallelism), the status not
        rnd.metadata.namespace = NAMESPACE
        rnd.metadata.uid = rnd.metadata.uid or f"local-{rnd.metadata.name}"
        study.metadata.namespace = NAMESPACE
        self.round = rnd
        self.settings = resolve(study, rnd)
        self.trials: dict[str, Trial] = {t.metadata.name: t for t in trials}
        self.pods: dict[str, LocalPod] = {}
        self.reports: dict[str, ReportReader] = {}  # pod name -> its SDK's per-step reports
        self.analyses = AnalysisCache()
        self.store.save_study(study)

    # -- one pass -----------------------------------------------------------
    def step(self) -> bool:
        """One reconcile pass; False once the Round has ended and nothing runs."""
        now = utcnow()
        plan = plan_round(self.study, self.round, list(self.trials.values()), now)
        self.round.status = plan.status
        for t in plan.create:
            t.metadata.uid = f"local-{t.metadata.name}"
            self.trials[t.metadata.name] = t
            self.store.save_trial(t)
        ending = dict(plan.stop)
        for name, trial in list(self.trials.items()):
            self._reconcile_trial(trial, ending.get(name), now)
        self.round.status.analysis = self.analyses.of(self.study, self.round, list(self.trials.values()))
        self.store.save_round(self.round)
        live = any(p.running for p in self.pods.values())
        return self.round.status.phase not in ("Succeeded", "Failed") or live

    def _reconcile_trial(self, trial: Trial, end: str | None, now: dt.datetime) -> None:
        pod = self.pods.get(trial.status.pod_name or "")
        if phase_of(trial) in FINISHED and (pod is None or not pod.running):
            return
        view = pod.view() if pod else None
        fresh, diverged = self._read_curve(trial, pod) if pod else ([], None)
        stop = None
        if view is not None and view.phase == "Running" and trial.status.phase == "Running" and diverged is None:
            stop = stop_decision(self.settings, trial, merge(trial.status.curve, fresh), list(self.trials.values()))
        before = trial.status.phase
        tp = plan_trial(
            trial, view, metric=self.settings.metric, direction=self.settings.direction,
            strategy=self.settings.strategy, max_retries=self.settings.max_retries, now=now,
            curve=fresh or None, stop=stop, end=end, diverged_step=diverged,
        )
        trial.status = tp.status
        if tp.delete_pod and tp.delete_pod in self.pods:
            self.pods[tp.delete_pod].terminate()
        if tp.create_pod:
            taken = {p.port for p in self.pods.values() if p.running}
            self.pods[tp.create_pod] = LocalPod(
                tp.create_pod, self.study, trial, self.store.logs, self.store.pods, taken
            )
            trial.status.phase = "Running"  # a local process starts at once
            trial.status.start_time = trial.status.start_time or rfc3339(now)
        if trial.status.phase != before and trial.status.phase in FINISHED:
            self.echo(f"{trial.metadata.name}: {trial.status.phase} — {trial.status.message}")
        self.store.save_trial(trial)

    def _read_curve(self, trial: Trial, pod: LocalPod) -> tuple[list[CurvePoint], int | None]:
        """The points reported since the last poll, and the step where the objective
        diverged, if it did. The SDK writes every report to a file; a trainer that does not
        (another SDK) is scraped, which sees only the step of the moment."""
        reader = self.reports.setdefault(pod.name, ReportReader(pod.reports, self.settings.metric))
        points = reader.read_new()
        if reader.offset:
            return points, reader.diverged_step
        got = scrape(pod.url) if pod.running else None
        metric = self.settings.metric
        points: list[CurvePoint] = []
        if got and metric in got.metrics and math.isfinite(got.metrics[metric]):
            points.append(CurvePoint(step=got.step, value=got.metrics[metric]))
        elif not pod.running and (message := pod.termination_message()) is not None:
            # the last point of a run that ended between two scrapes
            doc = read_termination(message)
            value = (doc.get("last") or {}).get(metric)
            if isinstance(value, (int, float)) and isinstance(doc.get("step"), int):
                points.append(CurvePoint(step=doc["step"], value=float(value)))
        return points, (got.diverged_step if got else None)

    # -- the whole run ------------------------------------------------------
    def interrupt(self) -> None:
        """Ctrl-C: stop running processes, keep finished trials, let the next run restart the rest."""
        for pod in self.pods.values():
            pod.terminate()
        for pod in self.pods.values():
            pod.kill_now()
        for t in self.trials.values():
            if phase_of(t) not in FINISHED:
                t.status.phase = "Pending"
                t.status.pod_name = None
                t.status.curve = []
                t.status.last_step = None
                t.status.message = "interrupted; restarts when the run resumes"
                self.store.save_trial(t)
        self.store.save_round(self.round)

    def finish(self) -> Path:
        report = self.store.root / "report.html"
        analysis = Analysis.model_validate(self.round.status.analysis) if self.round.status.analysis else None
        report.write_text(render_report(self.study, self.round, list(self.trials.values()), analysis))
        return report


def default_output(rnd: Round) -> Path:
    return Path("kubetune-runs") / rnd.metadata.name


def run_cli(args: argparse.Namespace) -> int:
    try:
        study, rnd = load_study_and_round(args.paths, args.round)
    except ManifestError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.output) if args.output else default_output(rnd)
    from .progress import Progress

    try:
        run = LocalRun(study, rnd, out, poll=args.poll, echo=print)
    except RunStateError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with Progress(quiet=args.quiet or not sys.stdout.isatty()) as progress, Interrupts() as ctrl_c:
        run.echo = progress.log
        try:
            progress.log(f"Round {rnd.metadata.name}: {rnd.spec.goal}")
            progress.log(f"state and results: {out}/ (run the same command again to resume)")
            while not ctrl_c.requested and run.step():
                progress.update(run.round, run.settings)
                ctrl_c.sleep(run.poll)
        except (AlgorithmUnavailable, ParameterNameClash) as e:
            run.interrupt()
            print(f"error: {e}", file=sys.stderr)
            return 2
        if ctrl_c.requested:
            run.interrupt()
            progress.log("interrupted: running trials stopped, finished trials kept; run the same command to resume")
            return 130
        progress.update(run.round, run.settings)
    report = run.finish()
    s = run.round.status
    print(f"Round {rnd.metadata.name} {s.phase}: {s.progress} trials, counts {s.counts.wire()}")
    if s.best_trial:
        print(f"best {run.settings.metric} = {s.best_trial.value:.6g} ({s.best_trial.name}: {s.best_trial.parameters})")
    for msg in (s.analysis or {}).get("messages", []):
        print(f"  - {msg}")
    print(f"wrote {out}/round.yaml, {out}/trials/, and the report {report}")
    return 0 if s.phase == "Succeeded" else 1
