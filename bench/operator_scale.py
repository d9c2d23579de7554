"""Operator scale benchmark (issue #24): the real operator, as a process, against a real
kube-apiserver (tests/envtest.py: etcd + kube-apiserver), with a kubelet stand-in that
only flips pod phases.

Per level (Rounds x parallel trials per Round) it applies one Study and the Rounds at
once, and measures:

- successor latency: from a trial pod's end (the stand-in's Succeeded status patch
  returned) to the next pod of the same Round appearing in the watch, p50 and p99;
- the first wave: seconds until Rounds x parallel pods existed, and pods per second;
- the operator process's CPU (seconds and average cores) and peak RSS (VmHWM);
- API requests per trial the operator made (counted by the API server's audit log,
  by user agent: the operator's Kubernetes client and kopf), and how many per verb;
- Prometheus queries per poll: the operator polls a stand-in Prometheus that counts
  queries and answers with each running trial's curve (a step every 30 s, scraped every
  15 s; the samples it answered a query are printed too; --no-metrics: no data, as if
  the trials reported nothing).

    python bench/operator_scale.py                       # 10x10 (30 trials each), then 40x30 and 120x30 (45 each),
                                                         # then 120x30 with 5-minute pods (300 s +-50%)
    python bench/operator_scale.py --levels 10x10 --trials-per-round 30 --trial-seconds 8
    python bench/operator_scale.py --workers 1           # passes one at a time (blocking calls)
    python bench/operator_scale.py --levels 120x30x45@300:0.5 --first-wave-only   # 3,600 pods requested: how fast
    python bench/operator_scale.py --ideal --qps 0 --workers 64   # the floor: bench/ideal_operator.py, which makes
                                                         # only the three calls a successor needs, unthrottled

Targets (issue #24): successor p50 <= 1 s, p99 <= 3 s.
"""
from __future__ import annotations

import argparse
import collections
import datetime as dt
import heapq
import http.server
import json
import math
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import kubernetes
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.envtest import ApiServer, missing  # noqa: E402
from kubetune.sdk import METRIC_NAME, STEP_NAME  # noqa: E402

NS = "bench"
MAX_STEPS = 10  # the bench Study's maxSteps
STEP_SECONDS = 30.0  # how often a stand-in trial reports a new step
SCRAPE_SECONDS = 15.0  # how often the stand-in Prometheus scrapes a pod (its raw samples)
GROUP, VERSION = "kubetune.io", "v1alpha1"


class StandInKubelet:
    """Watches trial pods; a new pod turns Running at once and Succeeded `seconds` later,
    with the status patches a kubelet makes (phase, startTime, container states, a
    termination message with the final metric). `jitter`: each pod runs `seconds` times a
    factor drawn uniformly from [1 - jitter, 1 + jitter] (seeded): training times differ,
    so trials that started together do not all end in the same instant."""

    def __init__(self, client: Any, seconds: float, writers: int = 4, jitter: float = 0.0):
        client.user_agent = "bench-kubelet"
        self.core = kubernetes.client.CoreV1Api(client)
        self.seconds, self.jitter = seconds, jitter
        self._rng = random.Random(0)
        self.added: dict[str, float] = {}  # pod -> when the watch showed it
        self.ended: dict[str, float] = {}  # pod -> when its Succeeded patch returned
        self.round_of: dict[str, str] = {}
        self._due: list[tuple[float, str, str]] = []
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(writers)
        self.errors: list[str] = []

    def start(self) -> "StandInKubelet":
        threading.Thread(target=self._watch, daemon=True).start()
        threading.Thread(target=self._clock, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _watch(self) -> None:
        rv = None
        while not self._stop.is_set():
            try:
                w = kubernetes.watch.Watch()
                for ev in w.stream(self.core.list_namespaced_pod, NS, resource_version=rv, timeout_seconds=60,
                                   _request_timeout=90):
                    pod = ev["object"]
                    rv = pod.metadata.resource_version
                    name = pod.metadata.name
                    if ev["type"] == "ADDED" and name not in self.added:
                        now = time.monotonic()
                        self.added[name] = now
                        self.round_of[name] = (pod.metadata.labels or {}).get("kubetune.io/round", "")
                        self._at(now, name, "Running")
                        run = self.seconds * (1 + self.jitter * (2 * self._rng.random() - 1))
                        self._at(now + run, name, "Succeeded")
                    if self._stop.is_set():
                        return
            except Exception as e:  # noqa: BLE001 - a watch ends; start again from where it was
                self.errors.append(f"watch: {e}"[:200])
                rv = None
                time.sleep(0.2)

    def _at(self, when: float, name: str, phase: str) -> None:
        with self._lock:
            heapq.heappush(self._due, (when, name, phase))
            self._lock.notify()

    def _clock(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                while not self._due or self._due[0][0] > time.monotonic():
                    if self._stop.is_set():
                        return
                    self._lock.wait(timeout=max(0.0, self._due[0][0] - time.monotonic()) if self._due else 0.5)
                _, name, phase = heapq.heappop(self._due)
            self._pool.submit(self._patch, name, phase)

    def _patch(self, name: str, phase: str) -> None:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if phase == "Running":
            status = {"phase": "Running", "startTime": now, "podIP": "127.0.0.1", "containerStatuses": [
                {"name": "train", "image": "bench", "imageID": "", "ready": True, "restartCount": 0,
                 "state": {"running": {"startedAt": now}}}]}
        else:
            message = json.dumps({"step": 10, "last": {"val_loss": 0.5}, "min": {"val_loss": 0.5},
                                  "max": {"val_loss": 0.5}, "diverged": False, "divergedStep": None,
                                  "infeasible": False, "error": None})
            status = {"phase": "Succeeded", "containerStatuses": [
                {"name": "train", "image": "bench", "imageID": "", "ready": False, "restartCount": 0,
                 "state": {"terminated": {"exitCode": 0, "reason": "Completed", "message": message,
                                          "startedAt": now, "finishedAt": now}}}]}
        try:
            self.core.patch_namespaced_pod_status(name, NS, {"status": status}, _request_timeout=30)
            if phase == "Succeeded":
                self.ended[name] = time.monotonic()
        except kubernetes.client.ApiException as e:
            if e.status != 404:
                self.errors.append(f"{name} {phase}: {e.status}")
        except Exception as e:  # noqa: BLE001
            self.errors.append(f"{name} {phase}: {e}"[:200])


class CountingPrometheus(http.server.ThreadingHTTPServer):
    """Counts range queries. With `kubelet` (a StandInKubelet) it answers a Round's query
    as Prometheus would while its trials report: each pod the stand-in started has an
    objective series and a step series, one step every STEP_SECONDS of its run, MAX_STEPS
    at most (the Study's maxSteps); without, every query gets no data."""

    def __init__(self, kubelet: "StandInKubelet | None" = None) -> None:
        self.queries = 0
        self.samples = 0  # samples answered, all queries together
        self.started = time.monotonic()
        self.kubelet = kubelet
        bench = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                url = urllib.parse.urlsplit(self.path)
                result: list[dict[str, Any]] = []
                if url.path in ("/api/v1/query_range", "/api/v1/query"):
                    bench.queries += 1
                    result = bench.answer(urllib.parse.parse_qs(url.query))
                    bench.samples += sum(len(s["values"]) for s in result)
                body = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def answer(self, q: dict[str, list[str]]) -> list[dict[str, Any]]:
        """A range query (the operator before 2026-12-02: a value at every `step`, each the
        latest sample) or an instant query of a range vector (raw samples: one per scrape,
        every SCRAPE_SECONDS of a pod's run, at the pod's own scrape offset)."""
        query = q.get("query", [""])[0]
        found = re.search(r'kubetune_round="([^"]+)"', query)
        if self.kubelet is None or found is None:
            return []
        if "time" in q:
            end = float(q["time"][0])
            start, step = end - int(re.search(r"\[(\d+)ms\]$", query).group(1)) / 1000, SCRAPE_SECONDS
        else:
            start, end, step = (float(q[k][0]) for k in ("start", "end", "step"))
        wall = time.time() - time.monotonic()  # the stand-in's monotonic times as Unix seconds
        out = []
        for pod, rnd in list(self.kubelet.round_of.items()):
            if rnd != found.group(1):
                continue
            began = self.kubelet.added[pod] + wall
            stopped = self.kubelet.ended.get(pod)
            until = min(end, stopped + wall if stopped is not None else end)
            if "time" in q:  # scrapes at began + k * SCRAPE_SECONDS, in (start, end]
                first = began + max(0, math.floor((start - began) / step) + 1) * step
            else:
                first = math.ceil(max(start, began))
            ts = [first + i * step for i in range(int((until - first) // step) + 1)] if until >= first else []
            if not ts:
                continue
            steps = [min(MAX_STEPS, 1 + int((t - began) // STEP_SECONDS)) for t in ts]
            trial = pod.rsplit("-", 1)[0]
            out.append({"metric": {"__name__": STEP_NAME, "kubetune_trial": trial, "pod": pod},
                        "values": [[t, str(k)] for t, k in zip(ts, steps)]})
            out.append({"metric": {"__name__": METRIC_NAME, "kubetune_trial": trial, "pod": pod, "metric": "val_loss"},
                        "values": [[t, str(1.0 / k + 0.01 * (len(trial) + int(trial.rsplit("-", 1)[1]) % 7))] for t, k in zip(ts, steps)]})
        return out

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


def manifests(rounds: int, parallel: int, per_round: int) -> list[dict]:
    study = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Study", "metadata": {"name": "s", "namespace": NS},
             "spec": {"objective": {"metric": "val_loss", "goal": "minimize"}, "maxSteps": MAX_STEPS,
                      "baseline": {"learning_rate": 0.1},
                      "template": {"spec": {"containers": [{"name": "train", "image": "bench"}]}}}}
    out = [study]
    for i in range(rounds):
        out.append({"apiVersion": f"{GROUP}/{VERSION}", "kind": "Round", "metadata": {"name": f"r{i}", "namespace": NS},
                    "spec": {"studyRef": {"name": "s"}, "goal": "bench",
                             "nuisance": [{"name": "learning_rate", "type": "float", "min": 1e-3, "max": 1, "log": True}],
                             "algorithm": {"name": "random", "seed": i},
                             "budget": {"maxTrials": per_round, "parallelism": parallel, "maxFailedTrials": 3}}})
    return out


def proc_stats(pid: int) -> tuple[float, float]:
    """(CPU seconds, peak RSS MiB) of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    hwm = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmHWM"))
    return cpu, hwm / 1024


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> str:
    """The operator's /metrics ("" if it does not answer)."""
    import urllib.request
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return ""


def put_offs(text: str) -> dict[str, int]:
    """Per kind, passes put off until what the object's last pass created was in the watch."""
    out = {}
    for line in text.splitlines():
        if line.startswith("kubetune_passes_put_off_total{"):
            labels, value = line.rsplit(" ", 1)
            out[labels.split('kind="')[1].split('"')[0]] = int(float(value))
    return out


def queue_waits(text: str) -> dict[str, tuple[float, float, int]]:
    """Per kind, (p50, p99, passes) of the work queue's wait, from the operator's histogram
    buckets (upper bounds: a p50 of 0.05 means half the keys waited 50 ms or less)."""
    buckets: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
    for line in text.splitlines():
        if line.startswith("kubetune_workqueue_queue_duration_seconds_bucket{"):
            labels, value = line.rsplit(" ", 1)
            kind = labels.split('kind="')[1].split('"')[0]
            if 'priority="' in labels:
                kind += " " + labels.split('priority="')[1].split('"')[0]
            le = labels.split('le="')[1].split('"')[0]
            buckets[kind].append((float(le), float(value)))
    out = {}
    for kind, bs in buckets.items():
        bs.sort()
        total = bs[-1][1] or 1.0
        q = lambda f: next(le for le, n in bs if n >= f * total)  # noqa: E731
        out[kind] = (q(0.5), q(0.99), int(bs[-1][1]))
    return out


def stages(entries: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """Where a successor's latency goes, from the audit log's timestamps, per Round: a pod's
    end (the kubelet's Succeeded patch answered) -> the operator's next write of that
    Trial's status (it saw the end) -> the Round's next Trial created -> that Trial's pod
    created. (p50, p99) of each step, seconds."""
    at = _seconds
    ends: dict[str, float] = {}
    kubelet_patches: collections.Counter[str] = collections.Counter()
    patches: dict[str, list[float]] = collections.defaultdict(list)
    trials: dict[str, list[tuple[float, str]]] = collections.defaultdict(list)
    pods: dict[str, float] = {}
    for e in entries:
        if e.get("stage") != "ResponseComplete" or (e.get("responseStatus") or {}).get("code", 200) >= 300:
            continue
        ref, agent, verb = e.get("objectRef") or {}, e.get("userAgent", ""), e.get("verb")
        name, res, sub = ref.get("name") or "", ref.get("resource"), ref.get("subresource")
        if agent.startswith("bench-kubelet") and res == "pods" and sub == "status":
            kubelet_patches[name] += 1  # the first says Running, the second Succeeded
            if kubelet_patches[name] == 2:  # a pod still running at the end of the run did not end
                ends[name] = at(e["stageTimestamp"])
        elif agent.startswith("OpenAPI") or agent.startswith("kopf"):
            if res == "trials" and sub == "status" and verb == "patch":
                patches[name].append(at(e["requestReceivedTimestamp"]))
            elif res == "trials" and verb == "create":
                created = (e.get("responseObject") or {}).get("metadata", {}).get("name") or name
                trials[created.rsplit("-", 1)[0]].append((at(e["requestReceivedTimestamp"]), created))
            elif res == "pods" and verb == "create":
                pods.setdefault(name.rsplit("-", 1)[0], at(e["requestReceivedTimestamp"]))
    seen, created, started = [], [], []
    for pod, end in ends.items():
        trial = pod.rsplit("-", 1)[0]
        after = [t for t in patches.get(trial, []) if t > end]
        if not after:
            continue
        seen.append(after[0] - end)
        following = sorted(x for x in trials.get(trial.rsplit("-", 1)[0], []) if x[0] > after[0])
        if following:
            created.append(following[0][0] - after[0])
            if following[0][1] in pods:
                started.append(pods[following[0][1]] - following[0][0])
    return {"pod end -> Trial status written": (pct(seen, 50), pct(seen, 99)),
            "-> successor Trial created": (pct(created, 50), pct(created, 99)),
            "-> its pod created": (pct(started, 50), pct(started, 99))}


def _seconds(stamp: str) -> float:
    """An audit timestamp (RFC 3339, microseconds) as seconds since the epoch."""
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def child_pid(pid: int) -> int:
    """The operator's pid under py-spy."""
    return int(Path(f"/proc/{pid}/task/{pid}/children").read_text().split()[0])


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def successor_latencies(kubelet: StandInKubelet, parallel: int) -> list[float]:
    """Per Round: the i-th pod end after the first wave is followed by the (parallel+i)-th pod."""
    out = []
    by_round: dict[str, list[str]] = collections.defaultdict(list)
    for name, r in kubelet.round_of.items():
        by_round[r].append(name)
    for names in by_round.values():
        added = sorted(kubelet.added[n] for n in names)
        ended = sorted(kubelet.ended[n] for n in names if n in kubelet.ended)
        for i, end in enumerate(ended):
            if parallel + i < len(added):
                out.append(added[parallel + i] - end)
    return out


def parse_level(level: str, a: argparse.Namespace) -> tuple[int, int, int, float, float, str]:
    """ROUNDSxPARALLEL[xTRIALS][@SECONDS[:JITTER]] -> (rounds, parallel, trials per Round,
    pod seconds, jitter, the level's label); what a level leaves out comes from the options."""
    shape, _, pods = level.partition("@")
    rounds, parallel, *per_round = (int(x) for x in shape.split("x"))
    seconds, _, jitter = pods.partition(":")
    label = f"{rounds}x{parallel}" + (f" {float(seconds):g}s" if seconds else "") + (
        f"±{float(jitter):.0%}" if jitter else "")
    return (rounds, parallel, per_round[0] if per_round else a.trials_per_round,
            float(seconds) if seconds else a.trial_seconds, float(jitter) if jitter else a.jitter, label)


def run_level(a: argparse.Namespace, level: str, workdir: Path) -> dict[str, Any]:
    rounds, parallel, per_round, seconds, jitter, label = parse_level(level, a)
    audit = workdir / "audit"
    audit.mkdir(parents=True, exist_ok=True)
    (audit / "audit.log").unlink(missing_ok=True)
    (audit / "policy.yaml").write_text(yaml.safe_dump({
        "apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
        "rules": [{"level": "Metadata"}]}))
    server = ApiServer(controller_manager=False, flags=[
        f"--audit-policy-file={audit / 'policy.yaml'}", f"--audit-log-path={audit / 'audit.log'}",
        "--audit-log-mode=batch", "--audit-log-format=json", "--max-requests-inflight=800",
        "--max-mutating-requests-inflight=400"]).start()
    prom = CountingPrometheus()
    op = None
    kubelet = None
    try:
        client = server.client()
        client.user_agent = "bench-user"
        kubernetes.client.CoreV1Api(client).create_namespace({"metadata": {"name": NS}})
        kubelet = StandInKubelet(server.client(), seconds, jitter=jitter).start()
        prom.kubelet = None if a.no_metrics else kubelet
        env = {**os.environ, "KUBECONFIG": str(server.kubeconfig), "PYTHONPATH": str(ROOT / "operator")}
        env.pop("KUBERNETES_SERVICE_HOST", None)
        log = open(workdir / "operator.log", "wb")
        profile = ["py-spy", "record", "--nonblocking", "--gil", "-r", "40", "--format", "raw",
                   "-o", str(workdir / "profile.txt"), "--"] if a.profile else []
        metrics_port = free_port()
        limits = ["--workers", str(a.workers), "--kube-qps", str(a.qps), "--kube-burst", str(a.burst)]
        command = ([sys.executable, str(ROOT / "bench" / "ideal_operator.py"), "--namespace", NS, *limits] if a.ideal
                   else [sys.executable, "-m", "kubetune.cli", "operator", "--namespace", NS, "--health-port", "0",
                         "--metrics-port", str(metrics_port), "--prometheus-url", prom.url, "--poll", str(a.poll),
                         "--resync", str(a.resync), *limits])
        op = subprocess.Popen([*profile, *command], env=env, stdout=log, stderr=subprocess.STDOUT)
        time.sleep(4)  # the operator's start-up (imports, first listing) is not what is measured
        pid = child_pid(op.pid) if a.profile else op.pid
        cpu0, _ = proc_stats(pid)
        server_cpu0 = {n: proc_stats(server._pid(n))[0] for n in ("kube-apiserver", "etcd")}
        custom = kubernetes.client.CustomObjectsApi(client)
        applied = time.monotonic()
        for body in manifests(rounds, parallel, per_round):
            plural = "studies" if body["kind"] == "Study" else "rounds"
            custom.create_namespaced_custom_object(GROUP, VERSION, NS, plural, body)
        first_wave = rounds * parallel
        total = rounds * per_round
        wave_s = None
        deadline = applied + max(a.timeout, seconds * (1 + jitter) + 50)  # long pods: past their first wave's end
        prom_from, prom_q0 = None, 0
        while time.monotonic() < deadline:
            if wave_s is None and len(kubelet.added) >= first_wave:
                wave_s = max(sorted(kubelet.added.values())[:first_wave]) - applied
            if prom_from is None and len(kubelet.added) >= first_wave:
                prom_from, prom_q0 = time.monotonic(), prom.queries
            if len(kubelet.ended) >= total or (a.first_wave_only and wave_s is not None):
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - applied
        prom_window = time.monotonic() - prom_from if prom_from else 0.0
        prom_queries = prom.queries - prom_q0
        cpu1, peak = proc_stats(pid)
        server_cpu = {n: proc_stats(server._pid(n))[0] - c for n, c in server_cpu0.items()}
        metrics = "" if a.ideal else scrape(metrics_port)
        queue, put_off = queue_waits(metrics), put_offs(metrics)
        time.sleep(2)  # the audit log's batch is flushed
        calls: collections.Counter = collections.Counter()
        busy: collections.Counter = collections.Counter()  # seconds the API server took, summed per request kind
        entries = [json.loads(line) for line in (audit / "audit.log").read_text().splitlines()]
        for e in entries:
            agent = e.get("userAgent", "")
            if e.get("stage") != "ResponseComplete" or not (agent.startswith("OpenAPI") or agent.startswith("kopf")):
                continue
            ref = e.get("objectRef") or {}
            sub = "/" + ref["subresource"] if ref.get("subresource") else ""
            kind = f"{e['verb']} {ref.get('resource', '?')}{sub}"
            calls[kind] += 1
            if e["verb"] != "watch":
                busy[kind] += _seconds(e["stageTimestamp"]) - _seconds(e["requestReceivedTimestamp"])
        sizes = {plural: max((len(json.dumps(o)) for o in custom.list_namespaced_custom_object(
                     GROUP, VERSION, NS, plural)["items"]), default=0) / 1024
                 for plural in ("trials", "rounds", "studies")}
        lat = successor_latencies(kubelet, parallel)
        trials = len(kubelet.added)
        return {
            "level": label + (" ideal" if a.ideal else ""), "trials": trials, "finished": len(kubelet.ended), "elapsed": elapsed,
            "wave_s": wave_s, "wave_pods_s": first_wave / wave_s if wave_s else float("nan"),
            "p50": pct(lat, 50), "p99": pct(lat, 99), "successors": len(lat),
            "cpu_s": cpu1 - cpu0, "cores": (cpu1 - cpu0) / elapsed, "rss_mib": peak,
            "requests_per_trial": sum(v for k, v in calls.items() if not k.startswith("watch")) / max(1, trials),
            "calls": dict(calls.most_common()),
            "prom_per_poll": prom_queries / (prom_window / a.poll) if prom_window > a.poll else float("nan"),
            "prom_samples_per_query": prom.samples / max(1, prom.queries),
            "kubelet_errors": kubelet.errors[:3],
            "server_cpu": server_cpu, "trial_kb": sizes["trials"], "round_kb": sizes["rounds"],
            "study_kb": sizes["studies"], "busy": {k: (v, calls[k]) for k, v in busy.most_common(4)},
            "queue": queue, "put_off": put_off, "stages": stages(entries),
        }
    finally:
        if op is not None:
            if a.profile:
                os.kill(child_pid(op.pid), 15)  # py-spy writes its profile when the operator exits
            else:
                op.terminate()
            try:
                op.wait(60 if a.profile else 20)
            except subprocess.TimeoutExpired:
                op.kill()
        if kubelet is not None:
            kubelet.stop()
        prom.shutdown()
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", nargs="+", default=["10x10", "40x30x45", "120x30x45", "120x30x45@300:0.5"],
                    help="ROUNDSxPARALLEL[xTRIALS][@SECONDS[:JITTER]]: TRIALS per Round (else --trials-per-round), "
                         "pods that run SECONDS +-JITTER (else --trial-seconds and --jitter)")
    ap.add_argument("--trials-per-round", type=int, default=30)
    ap.add_argument("--trial-seconds", type=float, default=8.0, help="how long each stand-in pod runs")
    ap.add_argument("--jitter", type=float, default=0.0,
                    help="pods run trial-seconds x U(1-jitter, 1+jitter); 0: every pod of a wave ends at once "
                         "(the worst case for successor latency: all of a wave's successors in one burst)")
    ap.add_argument("--no-metrics", action="store_true",
                    help="the stand-in Prometheus answers every query with no data (trials report nothing)")
    ap.add_argument("--poll", type=float, default=5.0)
    ap.add_argument("--resync", type=float, default=30.0)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--qps", type=float, default=200.0, help="the operator's --kube-qps (its default)")
    ap.add_argument("--burst", type=int, default=400, help="the operator's --kube-burst (its default)")
    ap.add_argument("--timeout", type=float, default=300.0,
                    help="seconds per level at most (at least the first wave's pods' longest run + 50 s)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/kubetune-operator-scale"))
    ap.add_argument("--first-wave-only", action="store_true",
                    help="end each level once its first wave's pods exist (no successors measured): the first wave's "
                         "time, CPU and requests alone, in a minute or two")
    ap.add_argument("--profile", action="store_true",
                    help="sample the operator with py-spy (`pip install py-spy`; collapsed stacks in WORKDIR/LEVEL/profile.txt; "
                         "only the thread holding the GIL, so the samples are where its CPU goes, not where it waits)")
    ap.add_argument("--ideal", action="store_true",
                    help="instead of kubetune's operator, bench/ideal_operator.py: only the calls a successor cannot "
                         "do without (the ended Trial's status, the next Trial, its pod), no thinking; the floor the "
                         "API server, etcd and the kubelet stand-in set on this machine")
    ap.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run each level this many times, one after the other, and print the runs' medians "
                         "(on 2 shared cores one run's successor p50 at 40x30 varies 2-fold from the next)")
    a = ap.parse_args()
    why = missing()
    if why:
        raise SystemExit(f"no API server to measure against: {why}")
    print(f"# python bench/operator_scale.py {' '.join(sys.argv[1:])}")
    print(f"# {a.trials_per_round} trials per Round, pods run {a.trial_seconds:g} s"
          + (f" +-{a.jitter:.0%}" if a.jitter else " (all alike)") + " unless a level says @SECONDS:JITTER"
          + f", poll {a.poll:g} s, "
          f"resync {a.resync:g} s, {a.workers} workers, kube qps {a.qps:g} burst {a.burst}; {os.cpu_count()} cores; "
          + ("trials report no metrics" if a.no_metrics else f"trials report a step every {STEP_SECONDS:g} s, scraped every {SCRAPE_SECONDS:g} s"))
    head = (f"{'level':>11} {'trials':>6} {'successor p50':>13} {'p99':>6} {'first wave':>10} {'pods/s':>6} "
            f"{'CPU s':>6} {'cores':>5} {'peak RSS':>8} {'API req/trial':>13} {'Prom q/poll':>11} {'Trial KB':>8} {'Round KB':>8}")
    print(head, flush=True)
    results, medians = [], []
    for level in a.levels:
        runs = []
        for i in range(max(1, a.repeat)):
            r = run_level(a, level, a.workdir / (level.replace(":", "-") + (f"-{i + 1}" if a.repeat > 1 else "")))
            runs.append(r)
            print(f"{r['level']:>11} {r['trials']:>6} {r['p50']:>11.2f} s {r['p99']:>4.2f} s {r['wave_s'] or float('nan'):>8.1f} s "
                  f"{r['wave_pods_s']:>6.1f} {r['cpu_s']:>6.1f} {r['cores']:>5.2f} {r['rss_mib']:>4.0f} MiB "
                  f"{r['requests_per_trial']:>13.1f} {r['prom_per_poll']:>11.1f} {r['trial_kb']:>8.1f} {r['round_kb']:>8.1f}",
                  flush=True)
        results += runs
        if len(runs) > 1:
            medians.append(f"# {level}, median of {len(runs)} runs: successor p50 "
                           f"{statistics.median(r['p50'] for r in runs):.2f} s, p99 {statistics.median(r['p99'] for r in runs):.2f} s, "
                           f"first wave {statistics.median(r['wave_s'] or float('nan') for r in runs):.1f} s")
    for line in medians:
        print(line)
    for r in results:
        print(f"# {r['level']}: {r['finished']}/{r['trials']} pods finished in {r['elapsed']:.0f} s, "
              f"{r['successors']} successors measured; operator API calls: "
              + ", ".join(f"{k} {v}" for k, v in r["calls"].items()))
        print(f"#   CPU s of the API server {r['server_cpu']['kube-apiserver']:.1f}, etcd {r['server_cpu']['etcd']:.1f} "
              f"(operator {r['cpu_s']:.1f}); work-queue wait p50/p99 (bucket bounds) and passes: "
              + ", ".join(f"{k} {p50:g}/{p99:g} s ({n})" for k, (p50, p99, n) in sorted(r["queue"].items()))
              + "; passes put off for their creations: "
              + (", ".join(f"{k} {n}" for k, n in sorted(r.get("put_off", {}).items())) or "none"))
        print("#   the operator's requests the API server took longest to answer (seconds in all, requests, "
              "ms each): " + ", ".join(f"{k} {v:.0f} s / {n} / {1000 * v / n:.0f} ms" for k, (v, n) in r["busy"].items())
              + f"; the Study at the end {r['study_kb']:.0f} KB; Prometheus answered "
              f"{r['prom_samples_per_query']:.0f} samples a query")
        print("#   a successor's path, p50/p99: " + "; ".join(f"{k} {p50:.2f}/{p99:.2f} s" for k, (p50, p99) in r["stages"].items()))
        if r["kubelet_errors"]:
            print(f"#   stand-in kubelet errors: {r['kubelet_errors']}")
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
