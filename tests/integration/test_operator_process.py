"""`kubetune operator` as a real process: logs in from KUBECONFIG, serves probes and metrics, reconciles."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import urllib.request

from .kubelet import free_port
from .conftest import NS, create, live, round_manifest, study_manifest, wait_for
from .operator_process import stop_process


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status, r.read().decode()
    except OSError:
        return 0, ""


async def test_the_operator_command_serves_probes_and_metrics_and_runs_a_round(world, kubeconfig):
    api = world["api"]
    health, metrics = free_port(), free_port()
    log = open(world["tmp"] / "operator.log", "wb")  # a pipe nobody reads would block the operator
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubetune.cli", "operator", "--namespace", NS, "--listen-address", "127.0.0.1",
         "--health-port", str(health), "--metrics-port", str(metrics), "--poll", "1"],
        env={**os.environ, "KUBECONFIG": str(kubeconfig)}, stdout=log, stderr=subprocess.STDOUT)
    try:
        await create(api, study_manifest())
        await create(api, round_manifest(max_trials=3, parallelism=3))
        for _ in range(100):
            if _get(f"http://127.0.0.1:{health}/healthz")[0] == 200:
                break
            await asyncio.sleep(0.2)
        assert _get(f"http://127.0.0.1:{health}/healthz")[0] == 200
        await wait_for(lambda: ((live(api, "rounds")["r1"].get("status") or {}).get("phase")) == "Succeeded",
                       90, "the Round to succeed")
        status, text = _get(f"http://127.0.0.1:{metrics}/metrics")
        assert status == 200
        assert "kubetune_reconcile_duration_seconds_count" in text
        assert 'kubetune_trials{namespace="tuning",phase="succeeded",round="r1"} 3.0' in text
        assert "kubetune_trials_created_total 3.0" in text
        # kopf keeps no diff base here (operator_main.NoDiffBase): nothing of it on the objects,
        # and the Round's deletion handler still archives and lets the Round go
        for plural in ("rounds", "trials"):
            for obj in live(api, plural).values():
                assert not any("last-handled" in k for k in obj["metadata"].get("annotations") or {}), obj
        resp = await api.delete(f"/apis/kubetune.io/v1alpha1/namespaces/{NS}/rounds/r1")
        assert resp.status in (200, 202), await resp.text()
        await wait_for(lambda: "r1" not in live(api, "rounds"), 60, "the Round to go, its finalizer released")
        archived = live(api, "studies")["demo"]["status"]["archive"]
        assert [(a["round"], a["trials"]) for a in archived] == [("r1", 3)]
    finally:
        stop_process(proc)
        log.close()


async def _kubetune(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """The CLI as a real process; asynchronous, because the emulator answers it from this loop."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kubetune.cli", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode, out.decode(), err.decode()


async def test_report_and_adopt_reach_a_round_on_the_cluster(world, kubeconfig, tmp_path):
    from .conftest import start_operator

    api = world["api"]
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    await start_operator(world)
    await create(api, study_manifest())
    await create(api, round_manifest(max_trials=3, parallelism=3))
    await wait_for(lambda: ((live(api, "rounds")["r1"].get("status") or {}).get("phase")) == "Succeeded",
                   90, "the Round to succeed")
    best = live(api, "rounds")["r1"]["status"]["bestTrial"]

    report = tmp_path / "r1.html"
    rc, out, err = await _kubetune("report", "r1", "-n", NS, "-o", str(report), env=env)
    assert rc == 0, out + err
    html = report.read_text()
    assert "<html" in html.lower() and best["name"] in html  # the cluster's Round and its trials
    rc, out, err = await _kubetune("report", "no-such-round", "-n", NS, env=env)
    assert rc == 2 and "could not read Round 'no-such-round' from the cluster: not found" in err, out + err

    rc, out, err = await _kubetune("adopt", "r1", "-n", NS, env=env)
    assert rc == 0, out + err
    # the operator, not the command, moves the baseline: into status, the spec untouched
    await wait_for(lambda: (live(api, "studies")["demo"].get("status") or {}).get("adopted"), 30, "the adoption")
    study = live(api, "studies")["demo"]
    assert study["status"]["adopted"][0]["round"] == "r1" and study["status"]["adopted"][0]["trial"] == best["name"]
    assert study["status"]["baseline"]["learning_rate"] == best["parameters"]["learning_rate"]
    assert study["spec"]["baseline"] == study_manifest()["spec"]["baseline"]


def test_the_operator_command_says_what_is_missing_instead_of_a_traceback(tmp_path):
    import socket

    import yaml

    def operator(*args: str, kubeconfig: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "KUBECONFIG": kubeconfig}
        env.pop("KUBERNETES_SERVICE_HOST", None)
        return subprocess.run([sys.executable, "-m", "kubetune.cli", "operator", "-n", NS, "--health-port", "0", *args],
                              env=env, capture_output=True, text=True, timeout=60)

    res = operator("--metrics-port", "0", kubeconfig=str(tmp_path / "none"))
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    assert "error: no cluster to connect to" in res.stderr and "set KUBECONFIG" in res.stderr
    config = tmp_path / "kubeconfig"  # a valid file; the server is never reached before the port is taken
    config.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}], "users": [{"name": "u", "user": {}}],
    }))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = operator("--metrics-port", str(port), kubeconfig=str(config))
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    assert f"error: cannot serve metrics on port {port}" in res.stderr
