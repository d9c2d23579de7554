"""`kubetune export ROUND`: a Round and all its trials as YAML or CSV, from the cluster
(the live Round and Trials, completed by the Study's archive, or the archive alone once
the Round was deleted) or from a `kubetune run` directory."""
from __future__ import annotations

import argparse
import csv
import io
import math
import sys
from pathlib import Path
from typing import Any

import yaml

from .api import Round, Study, Trial
from .api.trial import round_name
from .core.archive import decode

FORMATS = ("yaml", "csv")


def to_yaml(rnd: Round, trials: list[Trial]) -> str:
    """The Round, then each Trial, as documents of one YAML stream (what `kubectl get -o yaml` shows)."""
    docs = [rnd.wire(), *(t.wire() for t in trials)]
    return yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True)


def _cell(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value


def to_csv(rnd: Round, trials: list[Trial]) -> str:
    """One row per trial: identity, outcome, then one column per parameter and final metric."""
    params = sorted({k for t in trials for k in t.spec.parameters})
    finals = sorted({k for t in trials for k in t.status.final})
    head = ["round", "trial", "number", "purpose", "rerun_of", "seed", "phase", "objective", "last_step",
            "stop_rule", "stop_step", "start_time", "completion_time"]
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(head + params + [f"final.{k}" for k in finals])
    for t in trials:
        s = t.status
        row = [rnd.metadata.name, t.metadata.name, t.spec.number, t.spec.purpose, t.spec.rerun_of, t.spec.seed,
               s.phase or "Pending", s.objective, s.last_step, s.stop_reason.rule if s.stop_reason else None,
               s.stop_reason.step if s.stop_reason else None, s.start_time, s.completion_time]
        row += [t.spec.parameters.get(k) for k in params] + [s.final.get(k) for k in finals]
        w.writerow([_cell(v) for v in row])
    return out.getvalue()


def load_local(run_dir: Path) -> tuple[Round, list[Trial]]:
    from .report.cli import load_local as load

    _, rnd, trials = load(run_dir)
    return rnd, sorted(trials, key=lambda t: t.spec.number)


def load_cluster(name: str, namespace: str, study: str | None = None) -> tuple[Round, list[Trial], str]:
    """The Round and its Trials: live ones, and those only the Study's archive still has.
    Returns also where they came from, for the user."""
    from kubernetes.client.rest import ApiException

    from .api import GROUP, VERSION
    from .controller.kube import Kube, api_client

    custom = Kube(api_client()).custom
    live: Round | None = None
    try:
        live = Round.model_validate(custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, "rounds", name, _request_timeout=30))
    except ApiException as e:
        if e.status != 404:
            raise
    if study is None and live is not None:
        study = live.spec.study_ref.name
    studies = ([custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "studies", study, _request_timeout=30)]
               if study else custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "studies",
                                                                  _request_timeout=60)["items"])
    entries = [(s["metadata"]["name"], a) for s in studies for a in Study.model_validate(s).status.archive
               if a.round == name and (live is None or not a.uid or a.uid == live.metadata.uid)]
    if len(entries) > 1:
        raise LookupError(f"Studies {', '.join(s for s, _ in entries)} each archived a Round {name!r}; "
                          "say which with --study")
    archived: list[Trial] = []
    rnd = live
    if entries:
        arch_round, archived = decode(entries[0][1].data)
        rnd = rnd or arch_round
    if rnd is None:
        raise LookupError(f"Round {name!r} is not in namespace {namespace}, and no Study there archived it")
    trials: dict[str, Trial] = {t.metadata.name: t for t in archived}
    if live is not None:
        items = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "trials", _request_timeout=60)["items"]
        for t in items:
            if round_name(t) == name:
                trial = Trial.model_validate(t)
                trials[trial.metadata.name] = trial
    where = ("the cluster" if live is not None else f"Study {entries[0][0]}'s archive") + (
        f" (+ {sum(1 for t in archived if t.metadata.name in trials)} archived)" if live is not None and archived else "")
    return rnd, sorted(trials.values(), key=lambda t: t.spec.number), where


def export_cli(args: argparse.Namespace) -> int:
    source = Path(args.round)
    try:
        if source.is_dir():
            rnd, trials = load_local(source)
            where = str(source)
        elif source.exists() or "/" in args.round:
            print(f"error: {source} is not a kubetune run directory", file=sys.stderr)
            return 2
        else:
            rnd, trials, where = load_cluster(args.round, args.namespace or "default", args.study)
    except LookupError as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - the cluster: no access, unreachable; the run directory: unreadable
        status = getattr(e, "status", None)
        what = {404: "not found", 403: "access denied"}.get(status, type(e).__name__)
        print(f"error: could not read Round {args.round!r}: {what}: {getattr(e, 'reason', None) or e}",
              file=sys.stderr)
        return 2
    fmt = args.format or ("csv" if args.output and args.output.endswith(".csv") else "yaml")
    text = to_csv(rnd, trials) if fmt == "csv" else to_yaml(rnd, trials)
    if not args.output or args.output == "-":
        sys.stdout.write(text)
        return 0
    try:
        Path(args.output).write_text(text)
    except OSError as e:
        print(f"error: cannot write {args.output}: {e.strerror}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}: Round {rnd.metadata.name} and {len(trials)} trials from {where}", file=sys.stderr)
    return 0
