"""The `kubetune` command."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _crds(args: argparse.Namespace) -> int:
    from .api.crdgen import render_all

    rendered = render_all()
    if args.output:
        for target in args.output:
            out = Path(target)
            try:
                out.mkdir(parents=True, exist_ok=True)
                for name, text in rendered.items():
                    (out / name).write_text(text)
                    print(f"wrote {out / name}")
            except OSError as e:
                print(f"error: cannot write the CRDs to {out}: {e.strerror}", file=sys.stderr)
                return 2
    else:
        sys.stdout.write("---\n".join(rendered.values()))
    return 0


def _validate(args: argparse.Namespace) -> int:
    from .api.validation import describe, foreign, problems
    from .manifests import ManifestError, cross_document_problems, objects, read_documents

    try:
        docs = read_documents(args.paths)
    except ManifestError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for why in docs.skipped:
        print(f"skipped {why}")
    bad = 0
    for path, doc in docs:
        what = describe(doc)
        if foreign(doc):
            print(f"{path}: {what} ({doc['apiVersion']}) skipped: not a kubetune object")
            continue
        found = problems(doc)
        if found:
            bad += 1
            print(f"{path}: {what} is invalid:")
            for p in found:
                print(f"  - {p}")
        else:
            print(f"{path}: {what} is valid")
    across = cross_document_problems(docs)  # the rules `kubetune run` applies, in its words
    for problem in across:
        print(problem)
    ours = objects(docs, strict=False)
    if ours.studies and not ours.rounds and not bad:
        print("note: no Round among the files: Studies alone are valid, but there is nothing for `kubetune run` to run")
    return 1 if bad or across else 0


def _run(args: argparse.Namespace) -> int:
    from .local.runner import run_cli

    return run_cli(args)


def _operator(args: argparse.Namespace) -> int:
    from .operator_main import main as operator_main

    return operator_main(args)


def _report(args: argparse.Namespace) -> int:
    from .report.cli import report_cli

    return report_cli(args)


def _dashboard(args: argparse.Namespace) -> int:
    from .dashboard import dashboard_cli

    return dashboard_cli(args)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kubetune")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _adopt(args: argparse.Namespace) -> int:
    from .report.cli import adopt_cli

    return adopt_cli(args)


def seconds(text: str) -> float:
    """A positive, finite number of seconds (a poll of 0 would spin a core)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, not {text!r}")
    return value


def _export(args: argparse.Namespace) -> int:
    from .export import export_cli

    return export_cli(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kubetune", description="Hyperparameter tuning, the whole process.")
    parser.add_argument("--version", action="version", version=f"kubetune {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run a Round on this machine, no cluster needed")
    p.add_argument("paths", nargs="+", help="Study and Round manifests (files or directories)")
    p.add_argument("--round", help="which Round to run when the files hold several")
    p.add_argument("--output", "-o", help="where state, results and the report go (default: ./kubetune-runs/<round>)")
    p.add_argument("--poll", type=seconds, default=0.5, help="seconds between metric scrapes (default 0.5)")
    p.add_argument("--quiet", action="store_true", help="no progress bar; one line per finished trial")
    p.set_defaults(func=_run)

    p = sub.add_parser("validate", help="check manifests as the API server would")
    p.add_argument("paths", nargs="+", help="Study and Round manifests (files or directories)")
    p.set_defaults(func=_validate)

    p = sub.add_parser("crds", help="print or write the CustomResourceDefinitions")
    p.add_argument("--output", "-o", action="append",
                   help="directory to write one YAML file per CRD (repeatable: crds and charts/kubetune/crds)")
    p.set_defaults(func=_crds)

    p = sub.add_parser("operator", help="run the operator (in a cluster or against KUBECONFIG)")
    p.add_argument("--namespace", "-n", action="append", default=[], help="watch this namespace (repeatable)")
    p.add_argument("--all-namespaces", "-A", action="store_true", help="watch the whole cluster")
    p.add_argument("--prometheus-url", default=None, help="Prometheus HTTP API base URL")
    p.add_argument("--health-port", type=int, default=8080,
                   help="probes: /healthz (503 while paused by a peer), /livez (0: off)")
    p.add_argument("--metrics-port", type=int, default=9100, help="operator metrics (0: off)")
    p.add_argument("--listen-address", default="0.0.0.0", help="address the probe and metrics servers bind to")
    p.add_argument("--peering", default=None, metavar="NAME",
                   help="take part in kopf's peering NAME (several replicas, one acting); default: standalone")
    p.add_argument("--peering-priority", type=int, default=None, metavar="N",
                   help="with --peering: the live peer with the highest priority acts (default: random)")
    p.add_argument("--poll", type=seconds, default=15.0, help="seconds between metric polls of running trials")
    p.add_argument("--resync", type=seconds, default=30.0,
                   help="seconds between the safety-net passes over each Round and Trial (events start passes at once)")
    p.add_argument("--workers", type=int, default=8, help="reconcile passes that run at once (threads)")
    p.add_argument("--kube-qps", type=float, default=200.0,
                   help="Kubernetes API calls per second the passes make on average (0: no client-side limit)")
    p.add_argument("--kube-burst", type=int, default=400, help="calls allowed at once above --kube-qps")
    p.set_defaults(func=_operator)

    p = sub.add_parser("report", help="write the HTML report of a Round")
    p.add_argument("source", help="a local run directory, or a Round name on the cluster")
    p.add_argument("--namespace", "-n", default=None, help="the Round's namespace on the cluster (default: default)")
    p.add_argument("--output", "-o", default=None, help="HTML file to write")
    p.set_defaults(func=_report)

    p = sub.add_parser("export", help="write a Round and all its trials to YAML or CSV (cluster, archive or local run)")
    p.add_argument("round", help="a Round name on the cluster (also one pruned: its Study's archive), or a run directory")
    p.add_argument("--namespace", "-n", default=None, help="the Round's namespace on the cluster (default: default)")
    p.add_argument("--study", default=None, help="the Study that archived the Round (when several could have)")
    p.add_argument("--format", "-f", choices=["yaml", "csv"], default=None, help="default: csv for -o *.csv, else yaml")
    p.add_argument("--output", "-o", default=None, help="file to write (default: standard output)")
    p.set_defaults(func=_export)

    p = sub.add_parser("adopt", help="adopt a Round's recommended configuration as its Study's new baseline")
    p.add_argument("round", help="the Round name on the cluster, or a `kubetune run` output directory "
                                 "(the baseline is then written into that run's study.yaml, for the next Round's run)")
    p.add_argument("--namespace", "-n", default=None, help="with the cluster: the Round's namespace (default: default)")
    p.set_defaults(func=_adopt)

    p = sub.add_parser("dashboard", help="serve the live report of local runs or of the cluster's Rounds (read-only)")
    p.add_argument("source", nargs="?", default=None,
                   help="a `kubetune run` output directory, or the folder holding several (e.g. ./kubetune-runs); "
                        "none: the cluster of the kubeconfig (KUBECONFIG or ~/.kube/config)")
    p.add_argument("--namespace", "-n", default=None, help="with the cluster: the namespace to show (default: default)")
    p.add_argument("--port", "-p", type=int, default=8765, help="port to listen on (default 8765; 0: any free port)")
    p.add_argument("--address", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; the page has no login)")
    p.set_defaults(func=_dashboard)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
