"""Prometheus cost per poll (issue #24): kubetune's raw-sample query per Round, against the
range query per Round it sent before, and against one query per trial.

A real Prometheus (tests/prometheus_server.py: Debian's binary on 127.0.0.1, the test
scrape config, no relabelling; run here with Prometheus' default lookback delta of 5 min,
not the tests' 3 s, as a cluster's Prometheus runs) scrapes a stand-in for Rounds x trials
running trials: a few HTTP exporters on 127.0.0.1, each serving its share of the Rounds
with the SDK's metric names and labels (kubetune/sdk.py: `kubetune_trial_step`,
`kubetune_trial_metric{metric=...}`, `kubetune_trial_diverged_step`, labelled
kubetune_namespace / _study / _round / _trial, exactly as a trial process publishes
them). Every trial trains one step per `--step-seconds`, whether or not it is scraped, so
a scrape sees the step reached by then: steps between two scrapes are never in
Prometheus, as with a real trial. One trial per Round diverges (NaN objective) so all
three series names are in the answers.

After letting Prometheus scrape for a while (`--scrape-interval`, 15 s by default, as
Prometheus' default and the operator's default poll), the same run measures polls of
every trial, over the same time window, three ways:

  (a) kubetune now: `RoundCurves.observe` for every trial (the operator's code path),
      which sends one query per Round through `PrometheusClient.observe_round`: an
      instant query of a range vector (`{selector}[<N>ms]`, promql.raw_samples), which
      answers each scraped sample once, at its scrape's timestamp;
  (b) kubetune before: the same RoundCurves, but each Round's query the range query it
      sent until the raw samples (`max by (kubetune_trial, __name__) ({...})` over
      `/api/v1/query_range` at 1-s resolution, joined by evaluation time), reimplemented
      here (RangeClient): Prometheus answers every series at every second of the window,
      repeating the last sample until the next scrape;
  (c) per trial, as peers poll: one query per trial, reading the trial's whole window
      every poll; by default the raw samples of (a)'s selector narrowed to the trial
      (`--per-trial range`: (b)'s range query narrowed to the trial).

and prints queries per poll, values per poll (sample values in the answers), wall
seconds per poll, the Prometheus process's CPU seconds (utime+stime from
/proc/<pid>/stat, raw and net of the scrape load measured while idle), the polling
thread's CPU seconds, bytes transferred (response bytes from Prometheus' own
`prometheus_http_response_size_bytes_sum` of both handlers, `/api/v1/query` and
`/api/v1/query_range`, plus the query strings sent and the HTTP framing), and the ratios.
(a) and (b) poll as the operator does: the first poll reads the whole window, the next
polls what is new since the Round's slowest reader (a minute of overlap; the window's end
is fixed, so a next poll reads that minute), and the operator merges them into each
trial's status curve: merged, each way must hold every trial with every step a scrape
caught (and no other), exact values and the diverged step, the same curves (c) reads
whole each poll, or the bench fails.

    nice python bench/prometheus_cost.py --out bench/results/prometheus_cost.txt
    nice python bench/prometheus_cost.py --scrape-interval 1s --scrape-seconds 120 \
        --out bench/results/prometheus_cost.txt --append     # at 1 s the raw samples equal (b)'s points
    python bench/prometheus_cost.py --rounds 10 --trials 30   # quick (3 min, mostly the scrape phase)

At a 15-s scrape, (b) answers each sample about 15 times (once per second of the window
until the next scrape) and (a) once; at a 1-s scrape both answer about as many values, and
(a)'s answer is a little larger, as a raw series keeps all its labels where (b)'s `max by`
kept two.

Compare ratios within one run: the absolute numbers move with the machine's load.
"""
from __future__ import annotations

import argparse
import http.server
import json
import math
import os
import platform
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest  # noqa: E402
from prometheus_client.core import GaugeMetricFamily  # noqa: E402

from kubetune.api.trial import CurvePoint  # noqa: E402
from kubetune.controller.round_curves import RoundCurves  # noqa: E402
from kubetune.core.curves import merge  # noqa: E402
from kubetune.metrics.prometheus import Observed, PrometheusClient, diverged_step, join_curve  # noqa: E402
from kubetune.metrics.promql import escape, round_selector  # noqa: E402
from kubetune.sdk import DIVERGED_NAME, LABELS, METRIC_NAME, STEP_NAME  # noqa: E402
from tests.prometheus_server import PrometheusServer  # noqa: E402

NS, STUDY, OBJECTIVE = "bench", "cost", "val_loss"
DIVERGE_AT = 20  # the last trial of every Round reports a NaN objective from this step on
HANDLERS = ("/api/v1/query", "/api/v1/query_range")


def round_name(r: int) -> str:
    return f"r{r:03d}"


def trial_name(r: int, t: int) -> str:
    return f"{round_name(r)}-{t}"


def loss(r: int, t: int, step: int) -> float:
    return 0.05 + 0.001 * t + 0.0001 * r + 1.0 / math.sqrt(step)


class TrialsExporter:
    """Serves the metrics of many trials as their SDKs would (same families, names, help
    texts, labels; see kubetune.sdk._Collector). The trials train one step per
    `step_seconds` from `began`, scraped or not: a scrape serves the step reached by then."""

    def __init__(self, rounds: range, trials: int, diverging: bool, step_seconds: float):
        self.rounds, self.trials, self.diverging = rounds, trials, diverging
        self.step_seconds = step_seconds
        self.began = time.time()  # reset when the trials start (start())
        self.step = 0
        self.served: list[tuple[float, int]] = []  # (time the scrape began, step served)
        self.lock = threading.Lock()
        registry = CollectorRegistry()
        registry.register(self)  # type: ignore[arg-type]
        exporter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                began = time.time()
                with exporter.lock:
                    exporter.step = 1 + int((began - exporter.began) / exporter.step_seconds)
                    body = generate_latest(registry)
                    step = exporter.step
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # Prometheus gave up on this scrape (or is stopping): not served
                    return
                with exporter.lock:
                    exporter.served.append((began, step))

            def log_message(self, *a: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.target = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def diverges(self, t: int) -> bool:
        return self.diverging and t == self.trials - 1

    def collect(self):  # the SDK's _Collector, for every trial this exporter stands in for
        step = self.step
        names = list(LABELS)
        g_step = GaugeMetricFamily(STEP_NAME, "Last training step reported by the trial.", labels=names)
        g_metric = GaugeMetricFamily(METRIC_NAME, "Last value of each metric reported by the trial.",
                                     labels=[*names, "metric"])
        g_div = GaugeMetricFamily(DIVERGED_NAME, "First step at which the objective was NaN or infinite.",
                                  labels=names)
        for r in self.rounds:
            for t in range(self.trials):
                labels = dict(kubetune_namespace=NS, kubetune_study=STUDY, kubetune_round=round_name(r),
                              kubetune_trial=trial_name(r, t))
                values = [labels[k] for k in LABELS]
                nan = self.diverges(t) and step >= DIVERGE_AT
                value = math.nan if nan else loss(r, t, step)
                g_step.add_metric(values, step)
                # sorted by metric name, as the SDK does
                g_metric.add_metric([*values, "val_accuracy"], 0.5 if nan else 1.0 - value / 3)
                g_metric.add_metric([*values, OBJECTIVE], value)
                if nan:
                    g_div.add_metric(values, DIVERGE_AT)
        yield g_step
        yield g_metric
        if g_div.samples:
            yield g_div

    def start(self, began: float) -> "TrialsExporter":
        self.began = began
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class BenchPrometheus(PrometheusServer):
    """The tests' Prometheus, with the lookback delta a cluster's has (Prometheus' default,
    5 min) instead of the tests' 3 s: a range query repeats a series' last sample at each of
    its steps for up to the lookback delta, so with the tests' 3 s and a 15-s scrape it would
    send 3 copies of each sample instead of the 15 a cluster's Prometheus sends."""

    def __init__(self, workdir: Path, scrape_interval: str, lookback_delta: str):
        super().__init__(workdir, scrape_interval=scrape_interval)
        self.lookback_delta = lookback_delta

    def start(self) -> "BenchPrometheus":
        popen = subprocess.Popen
        flag = "--query.lookback-delta="

        def with_lookback(args: list[str], **kw: Any) -> subprocess.Popen:
            return popen([a for a in args if not a.startswith(flag)] + [flag + self.lookback_delta], **kw)

        with mock.patch.object(subprocess, "Popen", with_lookback):
            super().start()
        return self


class CountingClient(PrometheusClient):
    """The real client; only counts the query strings it sends and the sample values it gets."""

    sent_bytes = 0
    sent = 0
    values = 0

    def _get(self, path: str, params: dict[str, str]) -> dict:
        self.sent += 1
        self.sent_bytes += len(path) + 1 + len(urllib.parse.urlencode(params))
        data = super()._get(path, params)
        self.values += sum(len(s.get("values", [])) for s in data.get("result", []))
        return data

    def query_range(self, query: str, start: float, end: float, step: float) -> list[dict]:
        """The previous way's request, (b) and (c) with --per-trial range: the operator no longer sends it."""
        data = self._get("/api/v1/query_range",
                         {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"})
        return list(data.get("result", []))


# (b): kubetune's Round query until the raw samples, as it was (promql.round_query,
# prometheus.resolution, prometheus.join_curve), for the comparison.

def range_round_query(namespace: str, rnd: str, metric: str) -> str:
    """One query for the curves of every trial of a Round: the objective, the step and the
    diverged step, one series per trial and name (`max by` folds restarted pods)."""
    sel = f'kubetune_namespace="{escape(namespace)}",kubetune_round="{escape(rnd)}"'
    names = "|".join((METRIC_NAME, STEP_NAME, DIVERGED_NAME))
    return (f'max by (kubetune_trial, __name__) ({{__name__=~"{names}",{sel},'
            f'metric=~"{escape(re.escape(metric))}|"}})')


def range_resolution(start: float, end: float) -> float:
    """The range query's step: 1 s, coarser when the range would pass 10,000 points."""
    return max(1.0, math.ceil((end - start) / 10000))


def range_join_curve(metric_series: list[dict], step_series: list[dict]) -> list[CurvePoint]:
    """Pair each metric value with the step at the same evaluation time; the latest value
    for a step wins."""
    steps = {float(t): int(float(v)) for s in step_series if s.get("metric", {}).get("__name__") != DIVERGED_NAME
             for t, v in s.get("values", [])}
    by_step: dict[int, float] = {}
    for s in metric_series:
        for t, v in s.get("values", []):
            step = steps.get(float(t))
            value = float(v)
            if step is not None and math.isfinite(value):
                by_step[step] = value
    return [CurvePoint(step=k, value=by_step[k]) for k in sorted(by_step)]


def range_observed(series: list[dict]) -> Observed:
    metric_series = [s for s in series if s.get("metric", {}).get("__name__") == METRIC_NAME]
    steps = [s for s in series if s.get("metric", {}).get("__name__") != METRIC_NAME]
    return Observed(range_join_curve(metric_series, steps), diverged_step(steps))


class RangeClient(CountingClient):
    """(b): observe_round as it was, one range query per Round at 1-s resolution."""

    def observe_round(self, namespace: str, round_name: str, metric: str, start: float,
                      end: float) -> dict[str, Observed]:
        by_trial: dict[str, list[dict]] = {}
        for s in self.query_range(range_round_query(namespace, round_name, metric), start, end,
                                  range_resolution(start, end)):
            by_trial.setdefault(s.get("metric", {}).get("kubetune_trial", ""), []).append(s)
        return {trial: range_observed(series) for trial, series in by_trial.items()}


def narrowed(query: str, rnd: str, trial: str) -> str:
    """A Round's query narrowed to one trial: the same PromQL, one more matcher."""
    sel = f'kubetune_round="{escape(rnd)}"'
    assert query.count(sel) == 1, query
    return query.replace(sel, f'{sel},kubetune_trial="{escape(trial)}"')


def observe_trial(client: CountingClient, how: str, namespace: str, rnd: str, trial: str, metric: str,
                  start: float, end: float) -> Observed:
    """(c): one trial's curve from one query, its whole window."""
    if how == "raw":
        series = client.samples(narrowed(round_selector(namespace, rnd, metric), rnd, trial), start, end)
        return Observed(join_curve(series), diverged_step(series))
    q = narrowed(range_round_query(namespace, rnd, metric), rnd, trial)
    return range_observed(client.query_range(q, start, end, range_resolution(start, end)))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def prom_counters(url: str) -> dict[str, float]:
    """Prometheus' own counters for the two query handlers: requests and response bytes."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {"requests": 0.0, "bytes": 0.0}
    handlers = tuple(f'handler="{h}"' for h in HANDLERS)
    for line in text.splitlines():
        if not any(h in line for h in handlers):
            continue
        if line.startswith("prometheus_http_requests_total{"):
            out["requests"] += float(line.rsplit(" ", 1)[1])
        elif line.startswith("prometheus_http_response_size_bytes_sum{"):
            out["bytes"] += float(line.rsplit(" ", 1)[1])
    return out


def head_series(url: str) -> int:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as r:  # Prometheus does not scrape itself here
        return next(int(float(line.split()[1])) for line in r.read().decode().splitlines()
                    if line.startswith("prometheus_tsdb_head_series "))


def header_bytes(url: str) -> tuple[int, int]:
    """Bytes of HTTP framing per query, besides the query string and the response body:
    (request line and headers as urllib sends them, response status line and headers as
    Prometheus sends them), the latter read from one real answer."""
    host = url.split("//", 1)[1]
    path = "/api/v1/query?" + urllib.parse.urlencode({"query": "vector(1)", "time": "1"})
    request = (f"GET {path} HTTP/1.1\r\nAccept-Encoding: identity\r\nHost: {host}\r\n"
               f"User-Agent: Python-urllib/{sys.version_info[0]}.{sys.version_info[1]}\r\n"
               f"Accept: application/json\r\nConnection: close\r\n\r\n")
    h, p = host.rsplit(":", 1)
    with socket.create_connection((h, int(p)), timeout=10) as sock:
        sock.sendall(request.encode())
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head = raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    return len(request) - len(path), len(head)


def instant(url: str, query: str) -> list[dict]:
    q = urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(f"{url}/api/v1/query?{q}", timeout=10) as r:
        return json.loads(r.read())["data"]["result"]


def measure(prom: PrometheusServer, client: CountingClient, run: Callable[[], Any]) -> dict[str, Any]:
    assert prom.proc is not None
    pid = prom.proc.pid
    before, cpu0, sent0, values0 = prom_counters(prom.url), cpu_seconds(pid), client.sent_bytes, client.values
    t0, own0 = time.perf_counter(), time.thread_time()
    result = run()
    wall, own = time.perf_counter() - t0, time.thread_time() - own0
    cpu1, after = cpu_seconds(pid), prom_counters(prom.url)
    return {"wall": wall, "cpu": cpu1 - cpu0, "client": own, "requests": after["requests"] - before["requests"],
            "resp_bytes": after["bytes"] - before["bytes"], "req_bytes": client.sent_bytes - sent0,
            "values": client.values - values0, "result": result}


def expected_steps(exporters: list[TrialsExporter], r: int, end: float) -> tuple[set[int], set[int]]:
    """Steps served to scrapes that began at or before `end` (Prometheus stamps a sample with
    its scrape's start): (certain, possible) — a scrape within a second of `end` may or may not
    be in the window. Steps no scrape caught are in neither: they never reached Prometheus."""
    for e in exporters:
        if r in e.rounds:
            with e.lock:
                served = list(e.served)
            return ({s for at, s in served if at <= end - 1.0}, {s for at, s in served if at <= end + 1.0})
    raise KeyError(r)


def check(name: str, answers: dict[str, Observed], exporters: list[TrialsExporter], rounds: int, trials: int,
          end: float) -> tuple[int, int, int, int]:
    """Every trial present, every scraped step there with its value, the diverged step where
    one was reported. Returns the fewest and most points of a trial's curve, then of a diverging trial's."""
    problems, counts, diverging = [], [], []
    for r in range(rounds):
        certain, possible = expected_steps(exporters, r, end)
        for t in range(trials):
            tn = trial_name(r, t)
            got = answers.get(tn)
            if got is None:
                problems.append(f"{tn}: missing")
                continue
            diverges = t == trials - 1
            want_c = {s for s in certain if not (diverges and s >= DIVERGE_AT)}
            want_p = {s for s in possible if not (diverges and s >= DIVERGE_AT)}
            steps = {p.step for p in got.curve}
            if not want_c <= steps <= want_p:
                problems.append(f"{tn}: steps missing {sorted(want_c - steps)[:5]} extra {sorted(steps - want_p)[:5]}")
            bad = [p for p in got.curve if p.value != loss(r, t, p.step)]
            if bad:
                problems.append(f"{tn}: wrong values at steps {[p.step for p in bad[:5]]}")
            # a scrape at any step from DIVERGE_AT on carries the diverged-step series
            want_div = DIVERGE_AT if diverges and max(certain, default=0) >= DIVERGE_AT else None
            if want_div is not None and got.diverged_step != want_div:
                problems.append(f"{tn}: diverged step {got.diverged_step}, not {want_div}")
            if not diverges and got.diverged_step is not None:
                problems.append(f"{tn}: a diverged step {got.diverged_step} it never reported")
            (diverging if diverges else counts).append(len(got.curve))
    if problems:
        raise SystemExit(f"{name}: incomplete answers ({len(problems)} trials), e.g. " + "; ".join(problems[:5]))
    return min(counts), max(counts), min(diverging), max(diverging)


def merged(polls: list[dict[str, Any]]) -> dict[str, Observed]:
    """The polls' points merged, as the operator merges them into each trial's status curve
    (core.trial_plan)."""
    out: dict[str, Observed] = {}
    for m in polls:
        for name, o in m["result"].items():
            old = out.get(name, Observed([], None))
            found = [x for x in (old.diverged_step, o.diverged_step) if x is not None]
            out[name] = Observed(merge(old.curve, o.curve), min(found) if found else None)
    return out


def seconds(interval: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", interval)
    if not m:
        raise SystemExit(f"--scrape-interval {interval!r}: write it as Prometheus does, e.g. 15s, 1m")
    return float(m.group(1)) * units[m.group(2)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=120)
    ap.add_argument("--trials", type=int, default=30, help="running trials per Round")
    ap.add_argument("--exporters", type=int, default=4, help="HTTP exporters (scrape targets) sharing the Rounds")
    ap.add_argument("--scrape-interval", default="15s", help="Prometheus' scrape interval (its default: 15s)")
    ap.add_argument("--step-seconds", type=float, default=2.0, help="seconds per training step of every trial")
    ap.add_argument("--scrape-seconds", type=float, default=None,
                    help="how long Prometheus scrapes before the polls (default: 8 scrape intervals, "
                         "at least 60 s)")
    ap.add_argument("--lookback-delta", default="5m", help="Prometheus' --query.lookback-delta (its default: 5m)")
    ap.add_argument("--idle-seconds", type=float, default=10, help="scrape-only window to measure Prometheus' "
                    "background CPU, subtracted from the polls' CPU for the net column")
    ap.add_argument("--round-polls", type=int, default=5, help="polls of each per-Round way, (a) and (b)")
    ap.add_argument("--trial-polls", type=int, default=1, help="polls of the per-trial way, (c)")
    ap.add_argument("--per-trial", choices=("raw", "range"), default="raw",
                    help="(c)'s query: raw samples as (a), or the range query of (b), narrowed to the trial")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--append", action="store_true", help="append the table to --out instead of replacing it")
    args = ap.parse_args()
    if shutil.which("prometheus") is None:
        raise SystemExit("needs Debian's prometheus binary (scripts/test.sh installs it)")
    interval = seconds(args.scrape_interval)
    scrape_seconds = args.scrape_seconds if args.scrape_seconds is not None else max(60.0, 8 * interval)

    lines: list[str] = []

    def say(s: str = "") -> None:
        print(s, flush=True)
        lines.append(s)

    rounds, trials = args.rounds, args.trials
    per = math.ceil(rounds / args.exporters)
    exporters = [TrialsExporter(range(i, min(i + per, rounds)), trials, diverging=True,
                                step_seconds=args.step_seconds)
                 for i in range(0, rounds, per)]
    with tempfile.TemporaryDirectory(prefix="kubetune-promcost-") as tmp:
        prom = BenchPrometheus(Path(tmp), args.scrape_interval, args.lookback_delta)
        try:
            prom.start()
            assert prom.proc is not None
            began = time.time()  # the trials' start, as the operator sees it
            for e in exporters:
                e.start(began)
            prom.set_targets([e.target for e in exporters])
            deadline = time.time() + 30 + 2 * interval
            while not all(s["value"][1] == "1" for s in instant(prom.url, 'up{job="kubetune-trials"}')) \
                    or len(instant(prom.url, 'up{job="kubetune-trials"}')) < len(exporters):
                if time.time() > deadline:
                    raise SystemExit("Prometheus never scraped every exporter; see prometheus.log")
                time.sleep(0.5)
            cpu0 = cpu_seconds(prom.proc.pid)
            t0 = time.time()
            while time.time() - t0 < scrape_seconds:
                time.sleep(1)
            scrape_cpu_rate = (cpu_seconds(prom.proc.pid) - cpu0) / (time.time() - t0)
            series = head_series(prom.url)
            scrape_s = [float(s["value"][1]) for s in instant(prom.url, 'scrape_duration_seconds{job="kubetune-trials"}')]
            samples = [float(s["value"][1]) for s in instant(prom.url, 'scrape_samples_scraped{job="kubetune-trials"}')]

            # the window every way reads: as the operator asks (the earliest running trial's
            # start minus 60 s, to now), fixed so every way reads the same points
            end = time.time()
            start = began - 60
            poll_seconds = 15.0

            def per_round(client: CountingClient) -> Callable[[], dict[str, Observed]]:
                at = [0.0]
                curves = RoundCurves(client, poll_seconds, clock=lambda: at[0])

                def poll() -> dict[str, Observed]:
                    at[0] += poll_seconds  # a new poll interval: each Round's first trial asks again
                    q0 = curves.queries
                    out = {}
                    for r in range(rounds):
                        for t in range(trials):
                            out[trial_name(r, t)] = curves.observe(NS, round_name(r), trial_name(r, t), OBJECTIVE,
                                                                   start, end)
                    assert curves.queries - q0 == rounds, (curves.queries - q0, rounds)
                    return out
                return poll

            client_a = CountingClient(prom.url, timeout=120, retries=0)
            client_b = RangeClient(prom.url, timeout=120, retries=0)
            client_c = CountingClient(prom.url, timeout=120, retries=0)

            def per_trial() -> dict[str, Observed]:
                return {trial_name(r, t): observe_trial(client_c, args.per_trial, NS, round_name(r),
                                                        trial_name(r, t), OBJECTIVE, start, end)
                        for r in range(rounds) for t in range(trials)}

            def idle() -> None:
                time.sleep(args.idle_seconds)

            base1 = measure(prom, client_a, idle)
            poll_a, poll_b = per_round(client_a), per_round(client_b)
            a = [measure(prom, client_a, poll_a) for _ in range(args.round_polls)]
            b = [measure(prom, client_b, poll_b) for _ in range(args.round_polls)]
            c = [measure(prom, client_c, per_trial) for _ in range(args.trial_polls)]
            base2 = measure(prom, client_a, idle)
            framing = sum(header_bytes(prom.url))
            idle_rate = (base1["cpu"] + base2["cpu"]) / (base1["wall"] + base2["wall"])

            # (a) and (b): the first poll reads the whole window, the next ones what is new
            # since (with a minute of overlap); merged, they must be every point (c) reads in
            # full each time
            ma, mb = merged(a), merged(b)
            pa = check("(a) kubetune now", ma, exporters, rounds, trials, end)
            pb = check("(b) kubetune before", mb, exporters, rounds, trials, end)
            pc = check("(c) per trial", c[-1]["result"], exporters, rounds, trials, end)
            if not ma == mb == c[-1]["result"]:
                raise SystemExit("the three ways' answers differ")
            with exporters[0].lock:
                last_step = exporters[0].step
        finally:
            prom.stop()
            for e in exporters:
                e.stop()

    def avg(ms: list[dict], key: str) -> float:
        return sum(m[key] for m in ms) / len(ms)

    rows = []
    for label, ms in (("(a) now: raw samples/Round, first poll", a[:1]),
                      ("(a) now: raw samples/Round, next polls", a[1:] or a[:1]),
                      ("(b) before: range/Round, first poll", b[:1]),
                      ("(b) before: range/Round, next polls", b[1:] or b[:1]),
                      (f"(c) per trial ({args.per_trial}), whole window", c)):
        wall, cpu = avg(ms, "wall"), avg(ms, "cpu")
        rows.append({"label": label, "queries": avg(ms, "requests"), "values": avg(ms, "values"),
                     "wall": wall, "cpu": cpu, "net": max(0.0, cpu - idle_rate * wall),
                     "client": avg(ms, "client"),
                     "resp": avg(ms, "resp_bytes"), "req": avg(ms, "req_bytes"),
                     "http": avg(ms, "requests") * framing})
        rows[-1]["bytes"] = rows[-1]["resp"] + rows[-1]["req"] + rows[-1]["http"]
    for ms, n in ((a, rounds), (b, rounds), (c, rounds * trials)):
        assert all(m["requests"] == n for m in ms), ([m["requests"] for m in ms], n)

    say(f"# Prometheus cost per poll, {rounds} Rounds x {trials} running trials = {rounds * trials} trials; "
        f"scrape interval {args.scrape_interval}")
    say("# " + shlex.join(["python3", "bench/prometheus_cost.py", *sys.argv[1:]]))
    say(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.node()}; {os.cpu_count()} CPUs; "
        f"load average {os.getloadavg()[0]:.1f} (shared machine: read the ratios)")
    ver = prom.binary and os.popen(f"{prom.binary} --version 2>&1").readline().strip()
    say(f"# {ver}; scrape interval {args.scrape_interval}, lookback delta {args.lookback_delta}, "
        f"{len(exporters)} exporters (targets), {series} head series, {int(sum(samples))} samples per scrape "
        f"round, scrape duration max {max(scrape_s):.2f} s")
    say(f"# trials train a step every {args.step_seconds:g} s (step {last_step} at the end); they had run "
        f"{end - began:.0f} s; window {end - start:.0f} s (the operator's: earliest running trial's start "
        f"- 60 s, to now), (b)'s at {range_resolution(start, end):g} s resolution")
    say(f"# Prometheus CPU while only scraping: {scrape_cpu_rate:.3f} s/s during the scrape phase, "
        f"{idle_rate:.3f} s/s in the idle windows (subtracted for 'net')")
    say(f"# polls averaged: (a) {len(a)}, (b) {len(b)}, (c) {len(c)}; queries sequential, one client thread; "
        f"answers checked complete: every trial, every step a scrape caught and no other, points per trial "
        f"(a) {pa[0]}-{pa[1]}, (b) {pb[0]}-{pb[1]}, (c) {pc[0]}-{pc[1]} (diverging at step {DIVERGE_AT}: "
        f"{pa[2]}-{pa[3]}), values exact, diverged steps, (a) == (b) == (c)")
    say()
    say(f"# bytes: response bodies (Prometheus' prometheus_http_response_size_bytes_sum, handlers "
        f"{' and '.join(HANDLERS)}) + query strings + HTTP request/response lines and headers "
        f"({framing} B per query)")
    say()
    cols = [("queries", "queries/poll", "{:,.0f}"), ("values", "values/poll", "{:,.0f}"),
            ("wall", "wall s/poll", "{:.2f}"), ("cpu", "Prom CPU s", "{:.2f}"), ("net", "net CPU s", "{:.2f}"),
            ("client", "client CPU s", "{:.2f}"), ("bytes", "bytes/poll", "{:,.0f}"),
            ("resp", "resp bodies", "{:,.0f}"), ("req", "queries", "{:,.0f}"), ("http", "headers", "{:,.0f}")]
    width = 42
    head = f"{'way':<{width}}" + "".join(f" {title:>12}" for _, title, _ in cols)
    say(head)
    say("-" * len(head))
    for row in rows:
        say(f"{row['label']:<{width}}" + "".join(f" {fmt.format(row[k]):>12}" for k, _, fmt in cols))
    say("-" * len(head))
    for (num, den), what in (((2, 0), "(b)/(a) first poll"), ((3, 1), "(b)/(a) next polls"),
                             ((4, 0), "(c)/(a) first poll"), ((4, 1), "(c)/(a) next polls")):
        rn, rd = rows[num], rows[den]
        say(f"{'ratio ' + what:<{width}}" + "".join(
            f" {(f'{rn[k] / rd[k]:.1f}x' if rd[k] > 0 else 'n/a'):>12}" for k, _, _ in cols))
    say()
    say("# values: sample values in the answers (a range query's value at each step, or each raw sample).")
    say("# Prom CPU: the Prometheus process's utime+stime over the poll; net: less its scrape-only rate x wall.")
    say("# client CPU: this process's polling thread (the operator's side: HTTP, JSON, joining curves).")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if args.append and args.out.exists():
            with args.out.open("a") as f:
                f.write("\n" + "\n".join(lines) + "\n")
        else:
            args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
