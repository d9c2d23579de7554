"""`kubetune report`: the HTML report of a Round, from a local run directory or from the cluster."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..api import Round, Study, Trial
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
            raise RunStateError(f"{run_dir} is not a kubetune run directory ({run_dir / name} is missing)")
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
    trials = [Trial.model_validate(t) for t in items if (t.get("spec") or {}).get("roundRef", {}).get("name") == name]
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
        return 2
    try:
        out.write_text(render_report(study, rnd, trials))
    except OSError as e:
        print(f"error: cannot write the report to {out}: {e.strerror}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


def adopt_cli(args: argparse.Namespace) -> int:
    """Mark a Round's recommended configuration for adoption as the Study's new baseline."""
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
        return 2
    print(f"Study {rnd.spec.study_ref.name}: adopting Round {args.round}; see `kubectl get study "
          f"{rnd.spec.study_ref.name} -o jsonpath={{.status.baseline}}`")
    return 0
