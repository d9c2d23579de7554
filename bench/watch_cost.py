"""The CPU an operator spends per watch event: kopf's index and event handler against the
operator's own list and watch (kubetune.controller.list_watch), on the same trial pods.

Each side runs in its own process against one envtest API server: kopf with an index handler
and an event handler on pods labelled kubetune.io/trial (what the operator registered before
session 28), or a ListWatch filling a PodIndex and handing each change to an asyncio loop
(what the operator runs now). The bench creates PODS pods and patches each one Running (two
events a pod), waits until the process has seen every event, and reads the process's CPU
time. Sides alternate, ROUNDS times.

    python bench/watch_cost.py [--pods 1500] [--rounds 2]
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "operator"))

from tests.envtest import ApiServer, missing  # noqa: E402

LABEL = "kubetune.io/trial"

KOPF_SIDE = textwrap.dedent("""
    import os, time, kopf
    N = int(os.environ["EVENTS"]); seen = [0]
    @kopf.on.login()
    def login(**kw): return kopf.login_with_kubeconfig(**kw)
    @kopf.index("", "v1", "pods", labels={"kubetune.io/trial": kopf.PRESENT})
    async def pod_index(namespace, labels, body, **_):
        return {(namespace, labels.get("kubetune.io/trial")): {"status": dict(body.get("status") or {})}}
    @kopf.on.event("", "v1", "pods", labels={"kubetune.io/trial": kopf.PRESENT})
    async def pod_event(type, namespace, name, labels, status, body, **_):
        seen[0] += 1
        if seen[0] == N: print("DONE", flush=True)
""")

OWN_SIDE = textwrap.dedent("""
    import asyncio, functools, os, kubernetes
    from kubetune.controller.handlers import _list_pods
    from kubetune.controller.list_watch import ListWatch
    from kubetune.controller.pod_index import PodIndex
    N = int(os.environ["EVENTS"])
    async def main():
        loop, done, seen = asyncio.get_running_loop(), asyncio.Event(), [0]
        def changed(kind, pod):  # in the loop, as handlers.pod_changed runs
            seen[0] += 1
            if seen[0] == N: done.set()
        client = kubernetes.config.new_client_from_config(config_file=os.environ["KUBECONFIG"])
        watch = ListWatch("pods", functools.partial(_list_pods, kubernetes.client.CoreV1Api(client)), ["bench"],
                          PodIndex("kubetune.io/trial"), label_selector="kubetune.io/trial",
                          deliver=lambda kind, pod: loop.call_soon_threadsafe(changed, kind, pod)).start()
        await done.wait()
        print("DONE", flush=True)
        watch.stop()
    asyncio.run(main())
""")


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (float(fields[11]) + float(fields[12])) / os.sysconf("SC_CLK_TCK")


def one(core, env: dict, side: str, pods: int, tag: str) -> tuple[float, float]:
    script = Path(env["WORKDIR"]) / f"side_{side}.py"  # not kopf.py: it would shadow the package
    script.write_text(KOPF_SIDE if side == "kopf" else OWN_SIDE)
    cmd = ([sys.executable, "-m", "kopf", "run", "--standalone", "-n", "bench", str(script)] if side == "kopf"
           else [sys.executable, str(script)])
    proc = subprocess.Popen(cmd, env={**env, "EVENTS": str(2 * pods)}, stdout=subprocess.PIPE,
                            stderr=open(Path(env["WORKDIR"]) / f"{side}.log", "w"), text=True)
    try:
        time.sleep(6)  # imports and the first (empty) list: not what is measured
        before = cpu_seconds(proc.pid)

        def make(i: int) -> None:
            name = f"{tag}-{i}"
            core.create_namespaced_pod("bench", {
                "metadata": {"name": name, "labels": {LABEL: name}},
                "spec": {"containers": [{"name": "train", "image": "kubetune/trial:bench",
                                         "env": [{"name": f"E{k}", "value": "v"} for k in range(8)]}]}},
                _preload_content=False).read()
            core.patch_namespaced_pod_status(name, "bench", {"status": {"phase": "Running"}},
                                             _preload_content=False).read()

        started = time.monotonic()
        with cf.ThreadPoolExecutor(8) as ex:
            list(ex.map(make, range(pods)))
        if proc.stdout.readline().strip() != "DONE":
            raise SystemExit(f"the {side} side ended before seeing every event")
        return cpu_seconds(proc.pid) - before, time.monotonic() - started
    finally:
        proc.kill()
        proc.wait()
        core.delete_collection_namespaced_pod("bench", label_selector=LABEL, grace_period_seconds=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pods", type=int, default=1500)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/kubetune-watch-cost"))
    a = ap.parse_args()
    why = missing()
    if why:
        raise SystemExit(f"no API server to measure against: {why}")
    import kubernetes
    a.workdir.mkdir(parents=True, exist_ok=True)
    server = ApiServer(crds=None, controller_manager=False).start()
    try:
        client = server.client()
        core = kubernetes.client.CoreV1Api(client)
        core.create_namespace({"metadata": {"name": "bench"}})
        env = {**os.environ, "KUBECONFIG": str(server.kubeconfig), "WORKDIR": str(a.workdir),
               "PYTHONPATH": str(ROOT / "operator")}
        print(f"# python bench/watch_cost.py --pods {a.pods} --rounds {a.rounds}: {2 * a.pods} events a run "
              f"(each pod created, then patched Running); {os.cpu_count()} cores shared with the API server and etcd")
        print(f"{'round':>5} {'side':>28} {'CPU s':>6} {'ms/event':>8} {'wall s':>6}")
        for r in range(1, a.rounds + 1):
            for side, label in (("kopf", "kopf index + event handler"), ("own", "kubetune ListWatch")):
                cpu, wall = one(core, env, side, a.pods, f"{side}{r}")
                print(f"{r:>5} {label:>28} {cpu:>6.2f} {1000 * cpu / (2 * a.pods):>8.2f} {wall:>6.1f}", flush=True)
                time.sleep(3)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
