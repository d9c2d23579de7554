"""Prometheus cost per poll (issue #24): one range query per Round, against one per trial.

A real Prometheus (tests/prometheus_server.py: Debian's binary on 127.0.0.1, the test
scrape config, no relabelling) scrapes a stand-in for Rounds x trials running trials: a
few HTTP exporters on 127.0.0.1, each serving its share of the Rounds with the SDK's
metric names and labels (kubetune/sdk.py: `kubetune_trial_step`,
`kubetune_trial_metric{metric=...}`, `kubetune_trial_diverged_step`, labelled
kubetune_namespace / _study / _round / _trial, exactly as a trial process publishes them),
every trial one step further at every scrape. One trial per Round diverges (NaN
objective) so all three series names are in the answers.

After letting Prometheus scrape for a while, the same run measures one poll of every
trial, over the same time window, two ways:

  (a) kubetune: `RoundCurves.observe` for every trial (the operator's code path), which
      sends one `round_query` per Round through `PrometheusClient.observe_round`;
  (b) per trial, as peers poll: the same PromQL narrowed to one trial
      (`kubetune_trial="..."` added to the selector), one range query per trial;

and prints queries per poll, wall seconds per poll, the Prometheus process's CPU seconds
(utime+stime from /proc/<pid>/stat, raw and net of the scrape load measured while idle),
bytes transferred (response bytes from Prometheus' own
`prometheus_http_response_size_bytes_sum{handler="/api/v1/query_range"}`, plus the query
strings sent), and the ratio. kubetune's first poll reads the whole window; its next polls read what is
new since the Round's slowest reader (a minute of overlap), as the operator does, and the
operator merges them into each trial's status curve: merged, they must hold every trial
with every scraped step, the same curves the per-trial way reads whole each poll, or the
bench fails.

    nice python bench/prometheus_cost.py --out bench/results/prometheus_cost.txt
    python bench/prometheus_cost.py --rounds 10 --trials 30 --scrape-seconds 20   # quick

Compare ratios within one run: the absolute numbers move with the machine's load.
"""
from __future__ import annotations

import argparse
import http.server
import json
import math
import os
import platform
import shutil
import socket
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest  # noqa: E402
from prometheus_client.core import GaugeMetricFamily  # noqa: E402

from kubetune.controller.round_curves import RoundCurves  # noqa: E402
from kubetune.core.curves import merge  # noqa: E402
from kubetune.metrics.prometheus import Observed, PrometheusClient, diverged_step, join_curve, resolution  # noqa: E402
from kubetune.metrics.promql import escape, round_query  # noqa: E402
from kubetune.sdk import DIVERGED_NAME, LABELS, METRIC_NAME, STEP_NAME  # noqa: E402
from tests.prometheus_server import PrometheusServer  # noqa: E402

NS, STUDY, OBJECTIVE = "bench", "cost", "val_loss"
DIVERGE_AT = 20  # the last trial of every Round reports a NaN objective from this step on


def round_name(r: int) -> str:
    return f"r{r:03d}"


def trial_name(r: int, t: int) -> str:
    return f"{round_name(r)}-{t}"


def loss(r: int, t: int, step: int) -> float:
    return 0.05 + 0.001 * t + 0.0001 * r + 1.0 / math.sqrt(step)


class TrialsExporter:
    """Serves the metrics of many trials as their SDKs would (same families, names, help
    texts, labels; see kubetune.sdk._Collector), all one step further at every scrape."""

    def __init__(self, rounds: range, trials: int, diverging: bool):
        self.rounds, self.trials, self.diverging = rounds, trials, diverging
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
                    exporter.step += 1
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

    def start(self) -> "TrialsExporter":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class CountingClient(PrometheusClient):
    """The real client; only counts the query strings it sends."""

    sent_bytes = 0
    sent = 0

    def _get(self, path: str, params: dict[str, str]) -> dict:
        self.sent += 1
        self.sent_bytes += len(path) + 1 + len(urllib.parse.urlencode(params))
        return super()._get(path, params)


def trial_query(namespace: str, rnd: str, trial: str, metric: str) -> str:
    """kubetune's Round query narrowed to one trial: the same PromQL, one more matcher."""
    q = round_query(namespace, rnd, metric)
    sel = f'kubetune_round="{escape(rnd)}"'
    assert q.count(sel) == 1, q
    return q.replace(sel, f'{sel},kubetune_trial="{escape(trial)}"')


def observe_trial(client: PrometheusClient, namespace: str, rnd: str, trial: str, metric: str,
                  start: float, end: float) -> Observed:
    """One trial's curve from one range query, split as observe_round splits a Round's."""
    series = client.query_range(trial_query(namespace, rnd, trial, metric), start, end, resolution(start, end))
    metric_series = [s for s in series if s.get("metric", {}).get("__name__") == METRIC_NAME]
    steps = [s for s in series if s.get("metric", {}).get("__name__") != METRIC_NAME]
    return Observed(join_curve(metric_series, steps), diverged_step(steps))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def prom_counters(url: str) -> dict[str, float]:
    """Prometheus' own counters for the range-query handler: requests and response bytes."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {"requests": 0.0, "bytes": 0.0}
    for line in text.splitlines():
        if 'handler="/api/v1/query_range"' not in line:
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
    """Bytes of HTTP framing per range query, besides the query string and the response body:
    (request line and headers as urllib sends them, response status line and headers as
    Prometheus sends them), the latter read from one real answer."""
    host = url.split("//", 1)[1]
    path = "/api/v1/query_range?" + urllib.parse.urlencode({"query": "vector(1)", "start": "0", "end": "1",
                                                            "step": "1"})
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


def measure(prom: PrometheusServer, client: CountingClient, run) -> dict[str, float]:
    pid = prom.proc.pid
    before, cpu0, sent0 = prom_counters(prom.url), cpu_seconds(pid), client.sent_bytes
    t0, own0 = time.perf_counter(), time.thread_time()
    result = run()
    wall, own = time.perf_counter() - t0, time.thread_time() - own0
    cpu1, after = cpu_seconds(pid), prom_counters(prom.url)
    return {"wall": wall, "cpu": cpu1 - cpu0, "client": own, "requests": after["requests"] - before["requests"],
            "resp_bytes": after["bytes"] - before["bytes"], "req_bytes": client.sent_bytes - sent0,
            "result": result}


def expected_steps(exporters: list[TrialsExporter], r: int, end: float) -> tuple[set[int], set[int]]:
    """Steps served to scrapes that began at or before `end` (Prometheus stamps a sample with
    its scrape's start): (certain, possible) — a scrape within a second of `end` may or may not
    be in the window."""
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
            want_div = DIVERGE_AT if diverges and DIVERGE_AT in certain else None
            if want_div is not None and got.diverged_step != want_div:
                problems.append(f"{tn}: diverged step {got.diverged_step}, not {want_div}")
            if not diverges and got.diverged_step is not None:
                problems.append(f"{tn}: a diverged step {got.diverged_step} it never reported")
            (diverging if diverges else counts).append(len(got.curve))
    if problems:
        raise SystemExit(f"{name}: incomplete answers ({len(problems)} trials), e.g. " + "; ".join(problems[:5]))
    return min(counts), max(counts), min(diverging), max(diverging)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=120)
    ap.add_argument("--trials", type=int, default=30, help="running trials per Round")
    ap.add_argument("--exporters", type=int, default=4, help="HTTP exporters (scrape targets) sharing the Rounds")
    ap.add_argument("--scrape-interval", default="1s")
    ap.add_argument("--scrape-seconds", type=float, default=90, help="how long Prometheus scrapes before the polls")
    ap.add_argument("--idle-seconds", type=float, default=10, help="scrape-only window to measure Prometheus' "
                    "background CPU, subtracted from the polls' CPU for the net column")
    ap.add_argument("--round-polls", type=int, default=5, help="polls the per-Round way (averaged)")
    ap.add_argument("--trial-polls", type=int, default=1, help="polls the per-trial way (averaged)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if shutil.which("prometheus") is None:
        raise SystemExit("needs Debian's prometheus binary (scripts/test.sh installs it)")

    lines: list[str] = []

    def say(s: str = "") -> None:
        print(s, flush=True)
        lines.append(s)

    rounds, trials = args.rounds, args.trials
    per = math.ceil(rounds / args.exporters)
    exporters = [TrialsExporter(range(i, min(i + per, rounds)), trials, diverging=True)
                 for i in range(0, rounds, per)]
    with tempfile.TemporaryDirectory(prefix="kubetune-promcost-") as tmp:
        prom = PrometheusServer(Path(tmp), scrape_interval=args.scrape_interval)
        try:
            for e in exporters:
                e.start()
            prom.start()
            began = time.time()  # the trials' start, as the operator sees it
            prom.set_targets([e.target for e in exporters])
            deadline = time.time() + 60
            while not all(s["value"][1] == "1" for s in instant(prom.url, 'up{job="kubetune-trials"}')) \
                    or len(instant(prom.url, 'up{job="kubetune-trials"}')) < len(exporters):
                if time.time() > deadline:
                    raise SystemExit("Prometheus never scraped every exporter; see prometheus.log")
                time.sleep(0.5)
            cpu0 = cpu_seconds(prom.proc.pid)
            t0 = time.time()
            while time.time() - t0 < args.scrape_seconds:
                time.sleep(1)
            scrape_cpu_rate = (cpu_seconds(prom.proc.pid) - cpu0) / (time.time() - t0)
            series = head_series(prom.url)
            scrape_s = [float(s["value"][1]) for s in instant(prom.url, 'scrape_duration_seconds{job="kubetune-trials"}')]
            samples = [float(s["value"][1]) for s in instant(prom.url, 'scrape_samples_scraped{job="kubetune-trials"}')]

            # the window both ways read: as the operator asks (the earliest running trial's start
            # minus 60 s, to now), fixed so both ways read the same points
            end = time.time()
            start = began - 60
            client = CountingClient(prom.url, timeout=60, retries=0)
            curves_at = [0.0]
            poll_seconds = 10.0
            curves = RoundCurves(client, poll_seconds, clock=lambda: curves_at[0])

            def per_round() -> dict[str, Observed]:
                curves_at[0] += poll_seconds  # a new poll interval: each Round's first trial asks again
                q0 = curves.queries
                out = {}
                for r in range(rounds):
                    for t in range(trials):
                        out[trial_name(r, t)] = curves.observe(NS, round_name(r), trial_name(r, t), OBJECTIVE,
                                                               start, end)
                assert curves.queries - q0 == rounds, (curves.queries - q0, rounds)
                return out

            def per_trial() -> dict[str, Observed]:
                return {trial_name(r, t): observe_trial(client, NS, round_name(r), trial_name(r, t), OBJECTIVE,
                                                        start, end)
                        for r in range(rounds) for t in range(trials)}

            def idle() -> None:
                time.sleep(args.idle_seconds)

            base1 = measure(prom, client, idle)
            a = [measure(prom, client, per_round) for _ in range(args.round_polls)]
            b = [measure(prom, client, per_trial) for _ in range(args.trial_polls)]
            base2 = measure(prom, client, idle)
            framing = sum(header_bytes(prom.url))
            idle_rate = (base1["cpu"] + base2["cpu"]) / (base1["wall"] + base2["wall"])

            # the operator merges each poll's points into the trial's status curve
            # (core.trial_plan); the per-Round way's first poll reads the whole window, the
            # next ones what is new since (with a minute of overlap): merged, they must be
            # every point the per-trial way reads in full each time
            merged: dict[str, Observed] = {}
            for m in a:
                for name, o in m["result"].items():
                    old = merged.get(name, Observed([], None))
                    found = [x for x in (old.diverged_step, o.diverged_step) if x is not None]
                    merged[name] = Observed(merge(old.curve, o.curve), min(found) if found else None)
            pa = check("per Round", merged, exporters, rounds, trials, end)
            check("per trial", b[-1]["result"], exporters, rounds, trials, end)
            if merged != b[-1]["result"]:
                raise SystemExit("the per-Round and per-trial answers differ")
        finally:
            prom.stop()
            for e in exporters:
                e.stop()

    def avg(ms: list[dict], key: str) -> float:
        return sum(m[key] for m in ms) / len(ms)

    rows = []
    for label, ms in (("(a) kubetune, first poll (whole window)", a[:1]),
                      ("(a) kubetune, next polls (what is new)", a[1:] or a[:1]),
                      ("(b) per trial: one query per trial", b)):
        wall, cpu = avg(ms, "wall"), avg(ms, "cpu")
        rows.append({"label": label, "queries": avg(ms, "requests"), "wall": wall, "cpu": cpu,
                     "net": max(0.0, cpu - idle_rate * wall),
                     "client": avg(ms, "client"),
                     "resp": avg(ms, "resp_bytes"), "req": avg(ms, "req_bytes"),
                     "http": avg(ms, "requests") * framing})
        rows[-1]["bytes"] = rows[-1]["resp"] + rows[-1]["req"] + rows[-1]["http"]
    for row, ms, n in ((rows[0], a, rounds), (rows[-1], b, rounds * trials)):
        assert all(m["requests"] == n for m in ms), ([m["requests"] for m in ms], n)

    say(f"# Prometheus cost per poll, {rounds} Rounds x {trials} running trials = {rounds * trials} trials")
    say(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.node()}; {os.cpu_count()} CPUs; "
        f"load average {os.getloadavg()[0]:.1f} (shared machine: read the ratios)")
    ver = prom.binary and os.popen(f"{prom.binary} --version 2>&1").readline().strip()
    say(f"# {ver}; scrape interval {args.scrape_interval}, {len(exporters)} exporters (targets), "
        f"{series} head series, {int(sum(samples))} samples per scrape round, "
        f"scrape duration max {max(scrape_s):.2f} s")
    say(f"# window {end - start:.0f} s at {resolution(start, end):g} s resolution (the operator's: earliest "
        f"running trial's start - 60 s, to now); trials had run {end - began:.0f} s")
    say(f"# Prometheus CPU while only scraping: {scrape_cpu_rate:.3f} s/s during the scrape phase, "
        f"{idle_rate:.3f} s/s in the idle windows (subtracted for 'net')")
    say(f"# polls averaged: (a) {len(a)}, (b) {len(b)}; queries sequential, one client thread; "
        f"answers checked complete: every trial, {pa[0]}-{pa[1]} points per trial "
        f"(diverging at step {DIVERGE_AT}: {pa[2]}-{pa[3]}), values exact, diverged steps, (a) == (b)")
    say()
    say(f"# bytes: response bodies (Prometheus' prometheus_http_response_size_bytes_sum) + query strings + "
        f"HTTP request/response lines and headers ({framing} B per query)")
    say()
    cols = [("queries", "queries/poll", "{:,.0f}"), ("wall", "wall s/poll", "{:.2f}"),
            ("cpu", "Prom CPU s", "{:.2f}"), ("net", "net CPU s", "{:.2f}"),
            ("client", "client CPU s", "{:.2f}"), ("bytes", "bytes/poll", "{:,.0f}"),
            ("resp", "resp bodies", "{:,.0f}"), ("req", "queries", "{:,.0f}"), ("http", "headers", "{:,.0f}")]
    head = f"{'way':<36}" + "".join(f" {title:>12}" for _, title, _ in cols)
    say(head)
    say("-" * len(head))
    for row in rows:
        say(f"{row['label']:<36}" + "".join(f" {fmt.format(row[k]):>12}" for k, _, fmt in cols))
    rb = rows[-1]
    for ra, which in ((rows[0], "first"), (rows[1], "next")):
        say(f"{f'ratio (b)/(a) {which} poll':<36}" + "".join(
            f" {(f'{rb[k] / ra[k]:.1f}x' if ra[k] > 0 else 'n/a'):>12}" for k, _, _ in cols))
    say()
    say("# Prom CPU: the Prometheus process's utime+stime over the poll; net: less its scrape-only rate x wall.")
    say("# client CPU: this process's polling thread (the operator's side: HTTP, JSON, joining curves).")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
