"""`kubetune dashboard`: the report page, served live.

A small read-only HTTP server (the standard library's, one thread per request) bound to
127.0.0.1 by default: `/` lists the Studies and their Rounds, `/round/NAME` is the
Round's report page, which polls `/api/round/NAME/version` every two seconds and swaps
in the new content when the Round changed. Pages are rendered once per version.
"""
from __future__ import annotations

import json
import threading
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from ..report.html import CSS, render_report
from .sources import NotFound, Source

PLOTLY = "/static/plotly.min.js"


class Dashboard:
    """What the server shows: pages from a source, cached per Round version."""

    def __init__(self, source: Source):
        self.source = source
        self._cache: dict[str, tuple[str, str]] = {}  # round -> (version, page)
        self._lock = threading.Lock()
        self._plotly: bytes | None = None

    def plotly_js(self) -> bytes:
        if self._plotly is None:
            from plotly.offline import get_plotlyjs

            self._plotly = get_plotlyjs().encode()
        return self._plotly

    def index(self) -> str:
        rounds = self.source.rounds()
        by_study: dict[str, list[Any]] = {}
        for r in rounds:
            by_study.setdefault(r.study, []).append(r)
        h = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><link rel='icon' href='data:,'><title>kubetune dashboard</title>"
             f"<style>{CSS}</style></head><body><h1>kubetune dashboard</h1>"
             f"<p class='meta'>Showing {escape(self.source.describe())}. Read-only.</p>"]
        if not rounds:
            h.append("<p>No Rounds yet. This page does not update itself: reload it once a run has started.</p>")
        for study, rs in sorted(by_study.items()):
            h.append(f"<h2>Study {escape(study)}</h2><table class='rounds'><tr><th>Round</th><th>phase</th>"
                     "<th>trials</th><th>goal</th></tr>")
            for r in sorted(rs, key=lambda r: r.name):
                h.append(f"<tr><td><a href='/round/{escape(r.name)}'>{escape(r.name)}</a></td><td>{escape(r.phase)}"
                         f"</td><td>{escape(r.progress)}</td><td>{escape(r.goal)}</td></tr>")
            h.append("</table>")
        h.append("</body></html>")
        return "".join(h)

    def version(self, name: str) -> str:
        return self.source.version(name)

    def round_page(self, name: str) -> str:
        version = self.source.version(name)
        with self._lock:
            cached = self._cache.get(name)
        if cached and cached[0] == version:
            return cached[1]
        study, rnd, trials = self.source.load(name)
        nav = "<p class='meta'><a href='/'>← all Rounds</a></p>"
        page = render_report(study, rnd, trials, plotly_src=PLOTLY, live=f"/api/round/{name}/version",
                             version=version, nav=nav)
        with self._lock:
            self._cache[name] = (version, page)
        return page


def handler_for(dash: Dashboard) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "kubetune-dashboard"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet: the terminal is the user's
            pass

        def _send(self, code: int, body: bytes, ctype: str, cache: str = "no-store") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", cache)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            path = unquote(self.path.split("?", 1)[0])
            try:
                if path == "/":
                    self._send(200, dash.index().encode(), "text/html; charset=utf-8")
                elif path == PLOTLY:
                    self._send(200, dash.plotly_js(), "application/javascript", cache="max-age=86400")
                elif path.startswith("/api/round/") and path.endswith("/version"):
                    name = path[len("/api/round/"):-len("/version")]
                    self._send(200, json.dumps({"version": dash.version(name)}).encode(), "application/json")
                elif path.startswith("/round/"):
                    self._send(200, dash.round_page(path[len("/round/"):]).encode(), "text/html; charset=utf-8")
                else:
                    self._send(404, b"not found", "text/plain")
            except NotFound as e:
                self._send(404, f"no Round {e} here".encode(), "text/plain; charset=utf-8")
            except Exception as e:  # noqa: BLE001 - one bad read is a 500 for one request, not a dead server
                self._send(500, f"{type(e).__name__}: {e}".encode(), "text/plain; charset=utf-8")

        def do_POST(self) -> None:  # noqa: N802
            self._send(405, b"read-only", "text/plain")

        do_PUT = do_DELETE = do_PATCH = do_POST

    return Handler


def serve(source: Source, host: str = "127.0.0.1", port: int = 8765) -> ThreadingHTTPServer:
    """A started-but-not-serving server (call serve_forever, or run it in a thread)."""
    server = ThreadingHTTPServer((host, port), handler_for(Dashboard(source)))
    server.daemon_threads = True
    return server
