"""`kubetune dashboard`: a Round's report page, served live on localhost."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .server import serve
from .sources import ClusterSource, LocalSource

__all__ = ["dashboard_cli", "serve", "LocalSource", "ClusterSource"]


def dashboard_cli(args: argparse.Namespace) -> int:
    if args.source:
        root = Path(args.source)
        if not root.is_dir():
            print(f"error: {root} is not a directory: give a `kubetune run` output directory (or the folder "
                  "holding several), or no argument to read the cluster", file=sys.stderr)
            return 2
        source = LocalSource(root)
    else:
        try:
            source = ClusterSource(args.namespace or "default")  # type: ignore[assignment]
        except Exception as e:  # noqa: BLE001 - no kubeconfig, unreadable kubeconfig
            print(f"error: cannot reach a cluster ({getattr(e, 'reason', e)}); for a local run give its directory: "
                  "kubetune dashboard ./kubetune-runs", file=sys.stderr)
            return 2
    try:
        server = serve(source, args.address, args.port)
    except OSError as e:
        print(f"error: cannot listen on {args.address}:{args.port}: {e.strerror}; try another --port",
              file=sys.stderr)
        return 2
    host, port = server.server_address[:2]
    print(f"kubetune dashboard: {source.describe()} at http://{host}:{port}/ (read-only; Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
