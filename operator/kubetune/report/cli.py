"""`kubetune report`: the HTML report of a Round, from a local run directory or from the cluster."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..api import Round, Study, Trial
from ..api.trial import round_name
from ..local.store import RunStateError, read, read_trials
from .html import render_report


def load_local(run_dir: Path) -> tuple[Study, Round, list[Trial]]:
    """A `kubetune run` directory, read the way the run itself reads it (without creating anything)."""
    if not (run_dir / "trials").is_dir() and any(run_dir.glob("*.y*ml")):  # a run always has trials/
        raise RunStateError(
            f"{run_dir} holds manifests, not a run: run them first (kubetune run {run_dir} -o OUT), "
            "then report on the run's directory (kubetune report OUT)")
    for name in ("study.yaml", "round.yaml"):
        if not (run_dir / name).is_file():
            raise RunStateError(f"{run_dir} is not a kubetune run directory ({run_dir / name} is missing); "
                                "give the directory `kubetune run` wrote (default: kubetune-runs/<round>)")
    return read(run_dir / "study.yaml", Study), read(run_dir / "round.yaml", Round), read_trials(run_dir / "trials")


def load_cluster(name: str, namespace: str) -> tuple[Study, Round, list[Trial]]:
    from ..api import GROUP, VERSION
    from ..controller.kube import Kube, api_client

    custom = Kube(api_client()).custom
    raw = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "rounds", name, _request_timeout=30)
    rnd = Round.model_validate(raw)
    study = Study.model_validate(custom.get_namespaced_custom_object(
        GROUP, VERSION, namespace, "studies", rnd.spec.study_ref.name, _request_timeout=30))
    items = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "trials", _request_timeout=60)["items"]
    trials = [Trial.model_validate(t) for t in items if round_name(t) == name]
    return study, rnd, trials


def report_cli(args: argparse.Namespace) -> int:
    source = Path(args.source)
    try:
        if source.is_dir():
            study, rnd, trials = load_local(source)
            out = Path(args.output) if args.output else source / "report.html"
        elif source.exists() or "/" in args.source:  # a path; a Round's name has no '/'
            raise RunStateError(f"{source} is not a kubetune run directory")
        else:
            study, rnd, trials = load_cluster(args.source, args.namespace or "default")
            out = Path(args.output or f"report-{rnd.metadata.name}.html")
    except RunStateError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # the cluster: not found, no access, unreachable
        status = getattr(e, "status", None)
        what = {404: "not found", 403: "access denied"}.get(status, type(e).__name__)
        print(f"error: could not read Round {args.source!r} from the cluster: {what}: {getattr(e, 'reason', e)}",
              file=sys.stderr)
        print(local_hint(args.source), file=sys.stderr)
        return 2
    try:
        out.write_text(render_report(study, rnd, trials))
    except OSError as e:
        print(f"error: cannot write the report to {out}: {e.strerror}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


def local_hint(name: str) -> str:
    """Where a Round of that name ran on this machine, for a command given a name off the cluster."""
    default = Path("kubetune-runs") / name
    if (default / "round.yaml").is_file():
        return f"hint: a local run of Round {name} is in {default}/: give that directory (e.g. kubetune report {default})"
    return ("hint: for a run made with `kubetune run`, give its directory "
            f"(default: kubetune-runs/<round>; none is at {default})")


def adopt_local(run_dir: Path) -> int:
    """`kubetune adopt RUN`: what the operator does on the cluster, into the run's state. The
    Study in RUN/study.yaml gets the Round's recommended configuration in status.baseline (with
    the adoption in status.adopted), and `kubetune run` of the Study's next Round, whose run
    directory sits beside this one (as in kubetune-runs/), starts from that baseline."""
    import datetime as dt

    from ..controller.adoption import ADOPT_ANNOTATION, adoption_candidate, plan_study_status
    from ..local.store import RunStore

    try:
        study, rnd, _ = load_local(run_dir)
    except RunStateError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    name = rnd.metadata.name
    if any(a.round == name for a in study.status.adopted):
        print(f"Study {study.metadata.name}: Round {name} is adopted already; baseline: {_params(study.status.baseline)}")
        return 0
    if adoption_candidate(rnd) is None:
        print(f"error: Round {name} has no result to adopt yet (no best trial in {run_dir}/round.yaml)", file=sys.stderr)
        return 2
    if rnd.status.phase != "Succeeded":
        print(f"note: Round {name} is {rnd.status.phase or 'Pending'}, not finished: adopting its best trial so far")
    study.metadata.annotations[ADOPT_ANNOTATION] = name
    study.status = plan_study_status(study, [rnd], dt.datetime.now(dt.timezone.utc))
    try:
        RunStore(run_dir).save_study(study)
    except (OSError, RunStateError) as e:
        print(f"error: cannot write {run_dir / 'study.yaml'}: {e}", file=sys.stderr)
        return 2
    last = study.status.adopted[-1]
    print(f"Study {study.metadata.name}: adopted trial {last.trial} of Round {name} as the new baseline "
          f"({last.evidence})")
    print(f"  changed: {_params(last.parameters)}")
    print(f"  the next `kubetune run` of a Round of Study {study.metadata.name} whose output directory is beside "
          f"{run_dir} (as the default kubetune-runs/<round> is) starts from it")
    return 0


def _params(params: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(params.items())) or "none"


def adopt_cli(args: argparse.Namespace) -> int:
    """Mark a Round's recommended configuration for adoption as the Study's new baseline."""
    if Path(args.round).is_dir() or "/" in args.round:  # a local run; a Round's name has no '/'
        return adopt_local(Path(args.round))
    from ..api import GROUP, VERSION
    from ..controller.adoption import ADOPT_ANNOTATION
    from ..controller.kube import Kube, api_client

    ns = args.namespace or "default"
    try:
        kube = Kube(api_client())  # no kubeconfig is one more way the cluster cannot be reached
        rnd = Round.model_validate(kube.custom.get_namespaced_custom_object(
            GROUP, VERSION, ns, "rounds", args.round, _request_timeout=30))
        kube.patch_custom_meta("studies", ns, rnd.spec.study_ref.name, {"annotations": {ADOPT_ANNOTATION: args.round}})
    except Exception as e:  # noqa: BLE001
        print(f"error: could not adopt Round {args.round!r}: {getattr(e, 'reason', e)}", file=sys.stderr)
        print(local_hint(args.round), file=sys.stderr)
        return 2
    print(f"Study {rnd.spec.study_ref.name}: adopting Round {args.round}; see `kubectl get study "
          f"{rnd.spec.study_ref.name} -o jsonpath={{.status.baseline}}`")
    return 0
