"""`kubetune dashboard` on a local run directory: the pages, the version that changes when the
run writes, read-only, bound to localhost."""
from __future__ import annotations

import json
import math
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from kubetune.cli import build_parser
from kubetune.dashboard import LocalSource, serve
from kubetune.local.store import RunStore
from tests.unit.factories import round_, study, trial

NUISANCE = [{"name": "learning_rate", "type": "float", "min": 1e-4, "max": 1.0, "log": True},
            {"name": "momentum", "type": "float", "min": 0.0, "max": 0.99}]


def make_trial(i: int, phase: str = "Succeeded"):
    lr, mom = 10 ** (-4 + 4 * ((i * 0.618) % 1)), (i * 0.37) % 0.99
    final = (math.log10(lr) + 2) ** 2 + 0.1 * mom + 0.05
    last = 20 if phase == "Succeeded" else 6
    curve = [(s, final + 1.0 / s) for s in range(1, last + 1)]
    t = trial(i, {"learning_rate": lr, "momentum": mom}, phase, min(v for _, v in curve), curve)
    t.status.last_step = last
    return t


def make_run(root: Path, n: int = 8) -> RunStore:
    """A run directory as `kubetune run` writes it, with n trials (every third early-stopped)."""
    store = RunStore(root)
    store.save_study(study())
    rnd = round_(nuisance=NUISANCE, budget={"maxTrials": 30, "parallelism": 2})
    store.save_round(rnd)
    for i in range(n):
        store.save_trial(make_trial(i, "EarlyStopped" if i % 3 == 2 else "Succeeded"))
    return store


class Server:
    def __init__(self, root: Path):
        self.server = serve(LocalSource(root), "127.0.0.1", 0)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def dashboard(tmp_path):
    make_run(tmp_path / "runs" / "r")
    srv = Server(tmp_path / "runs")
    try:
        yield srv, tmp_path / "runs" / "r"
    finally:
        srv.stop()


def test_index_lists_studies_and_rounds_and_the_round_page_is_the_report(dashboard):
    srv, _ = dashboard
    assert srv.server.server_address[0] == "127.0.0.1"
    code, index = srv.get("/")
    assert code == 200 and "Study s" in index and "href='/round/r'" in index
    code, page = srv.get("/round/r")
    assert code == 200 and "id='recommendation'" in page and "id='trials'" in page
    assert "src='/static/plotly.min.js'" in page and "data-live='/api/round/r/version'" in page
    code, js = srv.get("/static/plotly.min.js")
    assert code == 200 and len(js) > 1_000_000
    assert srv.get("/round/nothing")[0] == 404 and srv.get("/api/round/nothing/version")[0] == 404


def test_the_version_changes_when_the_run_writes_a_trial(dashboard):
    srv, run = dashboard
    before = json.loads(srv.get("/api/round/r/version")[1])["version"]
    assert json.loads(srv.get("/api/round/r/version")[1])["version"] == before  # stable while nothing changes
    assert "r-8" not in srv.get("/round/r")[1]
    RunStore(run).save_trial(make_trial(8))
    after = json.loads(srv.get("/api/round/r/version")[1])["version"]
    assert after != before
    assert ">r-8<" in srv.get("/round/r")[1]


def test_the_dashboard_is_read_only(dashboard):
    srv, _ = dashboard
    req = urllib.request.Request(srv.url("/round/r"), data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 405


def test_cli_defaults_to_localhost_and_has_help_on_every_argument():
    args = build_parser().parse_args(["dashboard", "runs"])
    assert args.address == "127.0.0.1" and args.port == 8765
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        for action in p._actions:
            if action.dest != "help":
                assert action.help, f"kubetune {name} {action.dest} has no help"


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("kubetune ")
