"""`kubetune dashboard` on a cluster: a real API server, read through watches; a Trial the
operator writes shows up on the page, a deleted Round leaves it."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request

from .conftest import NS, create, round_manifest, study_manifest, wait_for
from .kubelet import free_port
from .operator_process import stop_process


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


async def _trial(api, n: int, value: float) -> None:
    name = f"r1-{n}"
    await create(api, {"apiVersion": "kubetune.io/v1alpha1", "kind": "Trial",
                       "metadata": {"name": name, "namespace": NS},
                       "spec": {"studyRef": {"name": "demo"}, "roundRef": {"name": "r1"}, "number": n, "seed": n,
                                "parameters": {"learning_rate": 0.01 * (n + 1)}}})
    resp = await api.patch(f"/apis/kubetune.io/v1alpha1/namespaces/{NS}/trials/{name}/status", json={"status": {
        "phase": "Succeeded", "objective": value, "lastStep": 3,
        "curve": [{"step": s, "value": value + 1.0 / s} for s in (1, 2, 3)]}})
    assert resp.status == 200, await resp.text()


async def test_the_dashboard_watches_the_cluster_and_shows_a_new_trial(world, kubeconfig, tmp_path):
    api = world["api"]
    await create(api, study_manifest())
    await create(api, round_manifest(max_trials=8, parallelism=2))
    for n in range(3):
        await _trial(api, n, 0.5 + 0.1 * n)
    port = free_port()
    log = open(tmp_path / "dashboard.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "kubetune.cli", "dashboard", "-n", NS, "--port", str(port)],
                            env={**os.environ, "KUBECONFIG": str(kubeconfig)}, stdout=log, stderr=subprocess.STDOUT)
    try:
        await wait_for(lambda: _get(port, "/")[0] == 200 or proc.poll() is not None, 30, "the dashboard to serve")
        code, index = _get(port, "/")
        assert code == 200 and "href='/round/r1'" in index, (index[:2000], (tmp_path / "dashboard.log").read_text())
        before = json.loads(_get(port, "/api/round/r1/version")[1])["version"]
        assert json.loads(_get(port, "/api/round/r1/version")[1])["version"] == before  # stable while nothing changes
        code, page = _get(port, "/round/r1")
        assert code == 200 and ">r1-2<" in page and ">r1-3<" not in page

        await _trial(api, 3, 0.2)  # what the operator writes, through the API server: the watch brings it
        await wait_for(lambda: json.loads(_get(port, "/api/round/r1/version")[1] or "{}").get("version") != before,
                       10, "the version to change")
        assert ">r1-3<" in _get(port, "/round/r1")[1]

        resp = await api.delete(f"/apis/kubetune.io/v1alpha1/namespaces/{NS}/rounds/r1")
        assert resp.status == 200
        await wait_for(lambda: _get(port, "/round/r1")[0] == 404, 10, "the deleted Round to leave the dashboard")
        assert "Traceback" not in (tmp_path / "dashboard.log").read_text()
    finally:
        stop_process(proc, signal.SIGINT, grace=10)
        log.close()
