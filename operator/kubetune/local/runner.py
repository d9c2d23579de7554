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
from .workloads import NeedsCluster, local_study
from ..api.common import rfc3339
from ..api.trial import CurvePoint
from ..core.round_plan import phase_of, plan_round
from ..core.settings import resolve
from ..core.stopping_policy import stop_decision
from ..core.trial_plan import plan_trial, read_termination
from ..core.curves import merge
from ..manifests import ManifestError, load_study_and_round
from ..sampling import AlgorithmUnavailable
from ..space import ParameterNameClash, SearchSpace
from ..report.html import render_report
from .interrupts import Interrupts
from .process import LocalPod
from .reports import ReportReader
from .scrape import scrape
from .store import RunStateError, RunStore, adopted_status, foreign_state

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
        self.resumed = saved is not None
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


def _value(v: object) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _params(params: dict, names: list[str]) -> str:
    return ", ".join(f"{k}={_value(params[k])}" for k in names if k in params)


def _counts(c) -> str:
    parts = [(c.succeeded, "succeeded"), (c.early_stopped, "stopped early"), (c.infeasible, "infeasible"),
             (c.failed, "failed"), (c.running, "running"), (c.pending, "pending")]
    return ", ".join(f"{n} {what}" for n, what in parts if n) or "no trials"


def summary(run: "LocalRun") -> list[str]:
    """The end of `kubetune run`, for people: counts in words, the best trial's searched
    parameters (the fixed ones and the baseline are the same in every trial), re-runs as re-runs."""
    rnd, s = run.round, run.round.status
    trials = list(run.trials.values())
    reruns = [t for t in trials if t.spec.purpose == "rerun"]
    base = sum(1 for t in reruns if t.spec.rerun_of == "baseline")
    parts = ([f"{len(reruns) - base} re-run(s) of the best"] if len(reruns) > base else []) \
        + ([f"{base} run(s) of the baseline"] if base else [])
    lines = [f"Round {rnd.metadata.name} {s.phase}: {s.progress} trials finished ({_counts(s.counts)})"
             + (f", of them {' and '.join(parts)} with other seeds" if parts else "")]
    best = run.trials.get(s.best_trial.name) if s.best_trial else None
    if s.best_trial:
        names = [p.name for p in SearchSpace.of(rnd.spec).parameters]
        of = ""
        if best is not None and best.spec.purpose == "rerun":
            of = f", a re-run of {best.spec.rerun_of} with seed {best.spec.seed}"
        lines.append(f"best {run.settings.metric} = {s.best_trial.value:.6g}: {s.best_trial.name}{of}")
        if names:
            lines.append(f"  {_params(s.best_trial.parameters, names)}")
    for msg in (s.analysis or {}).get("messages", []):
        lines.append(f"  - {msg}")
    if ((s.analysis or {}).get("reruns") or {}).get("recommendation") == "adopt":
        lines.append(f"to make it the Study's baseline for its next Round: kubetune adopt {run.store.root}")
    return lines


def _state(run: "LocalRun") -> str:
    """What a resumed run starts from, read from its trials (the saved counts predate the interrupt)."""
    done = sum(1 for t in run.trials.values() if phase_of(t) in FINISHED)
    restart = len(run.trials) - done
    return f"{done} trial(s) finished" + (f", {restart} to restart" if restart else "")


def run_cli(args: argparse.Namespace) -> int:
    skipped: list[str] = []
    try:
        study, rnd = load_study_and_round(args.paths, args.round, skipped)
    except ManifestError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        study = local_study(study, rnd)  # a Job runs as its pod template does; a JobSet or PyTorchJob cannot
    except NeedsCluster as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.output) if args.output else default_output(rnd)
    from .progress import Progress

    for why in skipped:
        print(f"skipped {why}")
    runs = [out] + (sorted(p for p in out.parent.iterdir() if p.is_dir() and p != out) if out.parent.is_dir() else [])
    adopted = adopted_status(runs, study.metadata.name)
    if adopted:
        study.status = adopted[1]
        last = adopted[1].adopted[-1]
        print(f"Study {study.metadata.name}: baseline as adopted from Round {last.round} ({adopted[0]}): "
              + _params(adopted[1].baseline, sorted(adopted[1].baseline)))
    try:
        run = LocalRun(study, rnd, out, poll=args.poll, echo=print)
    except RunStateError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finished = run.resumed and run.round.status.phase in ("Succeeded", "Failed")
    interrupted = False
    if finished:
        print(f"Round {rnd.metadata.name} has already finished ({run.round.status.phase}) in {out}/: nothing to run; "
              f"its results follow. To run it again, remove {out} or give another --output.")
    else:
        with Progress(quiet=args.quiet or not sys.stdout.isatty()) as progress, Interrupts() as ctrl_c:
            run.echo = progress.log
            try:
                progress.log(f"Round {rnd.metadata.name}: {rnd.spec.goal}")
                if run.resumed:
                    progress.log(f"resuming the run in {out}/: {_state(run)}")
                else:
                    progress.log(f"state and results: {out}/ (run the same command again to resume)")
                while not ctrl_c.requested and run.step():
                    progress.update(run.round, run.settings)
                    ctrl_c.sleep(run.poll)
            except (AlgorithmUnavailable, ParameterNameClash) as e:
                run.interrupt()
                progress.stop("error")
                print(f"error: {e}", file=sys.stderr)
                return 2
            if ctrl_c.requested:
                stopped = sum(1 for t in run.trials.values() if phase_of(t) not in FINISHED)
                run.interrupt()
                progress.stop("interrupted")
                interrupted = True
            else:
                progress.update(run.round, run.settings)
    if interrupted:  # after the bar has gone: this is the last line on the terminal
        kept = sum(1 for t in run.trials.values() if phase_of(t) in FINISHED)
        print(f"interrupted: {kept} finished trial(s) kept, {stopped} running or pending stopped; "
              "run the same command to resume")
        return 130
    report = run.finish()
    for line in summary(run):
        print(line)
    print(f"report: {report}  (state: {out}/round.yaml, {out}/trials/)")
    return 0 if run.round.status.phase == "Succeeded" else 1
