"""`kubetune operator` starting on a real API server: standalone by default, a peering only when
asked, and a peering that cannot work is said in one line at start-up instead of an operator
idling in silence (issue #30)."""
from __future__ import annotations

import asyncio
import contextlib
import json
import datetime as dt
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import yaml

from ..envtest import ROOT
from kubetune.core.round_plan import LABEL_TRIAL

from .conftest import NS, create, live, round_manifest, study_manifest, wait_for
from .kubelet import free_port
from .operator_process import stop_process

PEERING_CRD = ROOT / "charts" / "kubetune" / "crds" / "kopf.dev_peerings.yaml"
STARTUP = "kubetune operator: watching "


def _env(kubeconfig: Path) -> dict[str, str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    env.pop("POD_ID", None)
    return env


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "kubetune.cli", "operator", *args]


@contextlib.contextmanager
def operator_process(kubeconfig: Path, log: Path, *args: str) -> Iterator[subprocess.Popen]:
    """The operator as a real process, its output in `log`; stopped even when the test fails."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(_command(*args), env=_env(kubeconfig), stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        stop_process(proc)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


async def _probe(port: int, path: str, timeout: float = 30) -> tuple[int, str]:
    """The first answer of the probe server (it starts with the operator)."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}{path}")
        if status or time.monotonic() > deadline:
            return status, body
        await asyncio.sleep(0.2)


def _startup_lines(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if STARTUP in line]


def _install_peering_crd(server) -> None:
    server.kubectl("apply", "--server-side", "-f", str(PEERING_CRD))
    server.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                   "crd/kopfpeerings.kopf.dev", "crd/clusterkopfpeerings.kopf.dev")


async def test_the_readme_command_runs_standalone_and_creates_the_first_trial_within_seconds(world, kubeconfig,
                                                                                            tmp_path):
    api, health = world["api"], free_port()
    log = tmp_path / "operator.log"
    # `kubetune operator -n tuning`, as the README says; only the servers moved off the default ports
    with operator_process(kubeconfig, log, "-n", NS, "--listen-address", "127.0.0.1",
                          "--health-port", str(health), "--metrics-port", "0") as proc:
        assert await _probe(health, "/healthz") == (200, "ok: standalone\n"), log.read_text()
        start = time.monotonic()
        await create(api, study_manifest())
        await create(api, round_manifest(max_trials=2, parallelism=1))
        await wait_for(lambda: live(api, "trials"), 20, "the first Trial", detail=lambda: log.read_text()[-2000:])
        print(f"first Trial {time.monotonic() - start:.1f}s after the Round was applied")
        assert await _probe(health, "/livez") == (200, "ok\n")
        assert proc.poll() is None
    lines = _startup_lines(log)
    assert len(lines) == 1, log.read_text()
    assert lines[0].endswith(f"{STARTUP}namespaces {NS}; Prometheus none; standalone (no peering)"), lines[0]
    assert "kopf.dev" not in log.read_text()  # never looked for a peering


def _fails_fast(kubeconfig: Path, *args: str, within: float = 20) -> tuple[str, float]:
    """Run the operator; it must exit 1 within seconds with one line on stderr, no traceback."""
    start = time.monotonic()
    res = subprocess.run(_command("--health-port", "0", "--metrics-port", "0", *args), env=_env(kubeconfig),
                         capture_output=True, text=True, timeout=60)
    took = time.monotonic() - start
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Traceback" not in res.stderr and res.stdout == "", res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "drop --peering to run standalone" in lines[0], lines[0]
    assert took < within, f"took {took:.1f}s"
    return lines[0], took


def test_a_peering_that_cannot_work_stops_the_start_with_one_line(apiserver, kubeconfig):
    line, took = _fails_fast(kubeconfig, "-n", NS, "--peering", "does-not-exist")
    assert "this cluster has no kopfpeerings.kopf.dev CRD" in line and "crds/kopf.dev_peerings.yaml" in line, line
    print(f"no CRD: exit 1 after {took:.1f}s")

    _install_peering_crd(apiserver)
    line, took = _fails_fast(kubeconfig, "-n", NS, "--peering", "does-not-exist")
    assert f"there is no KopfPeering 'does-not-exist' in namespace {NS}" in line, line
    line, _ = _fails_fast(kubeconfig, "--all-namespaces", "--peering", "does-not-exist")
    assert "there is no ClusterKopfPeering 'does-not-exist';" in line, line
    print(f"no peering object: exit 1 after {took:.1f}s")


def test_an_api_server_that_refuses_or_never_answers_is_said_in_one_line_too(tmp_path):
    """The check before kopf starts has a timeout: a silent API server cannot make it hang."""
    config = tmp_path / "kubeconfig"
    with socket.socket() as silent:  # accepts connections (the kernel does), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        config.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{port}"}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}], "users": [{"name": "u", "user": {}}],
        }))
        line, took = _fails_fast(config, "-n", NS, "--peering", "kubetune", within=45)
        assert f"cannot reach the API server at https://127.0.0.1:{port} to check the peering" in line, line
        assert "timed out" in line, line
        print(f"silent API server: exit 1 after {took:.1f}s")
    line, _ = _fails_fast(config, "-n", NS, "--peering", "kubetune")  # the port is closed now
    assert "Connection refused" in line, line


def test_a_peering_it_may_not_read_is_said_with_the_permission_to_grant(apiserver, kubeconfig, tmp_path):
    """A service account without the chart's Role: 403 on the peering, said as such."""
    _install_peering_crd(apiserver)
    apiserver.kubectl("apply", "-f", "-", input=yaml.safe_dump(
        {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "kubetune", "namespace": NS}}))
    apiserver.kubectl("-n", NS, "create", "serviceaccount", "bare")
    token = apiserver.kubectl("-n", NS, "create", "token", "bare").stdout.strip()
    config = yaml.safe_load(kubeconfig.read_text())
    for user in config["users"]:
        user["user"] = {"token": token}
    limited = tmp_path / "bare.kubeconfig"
    limited.write_text(yaml.safe_dump(config))
    line, _ = _fails_fast(limited, "-n", NS, "--peering", "kubetune")
    assert f"not allowed to read KopfPeering 'kubetune' in namespace {NS} (403 Forbidden)" in line, line
    assert "grant get, list, watch and patch on kopfpeerings.kopf.dev" in line, line


async def test_healthz_fails_while_another_peer_holds_the_peering_and_recovers_when_it_goes(world, kubeconfig,
                                                                                           tmp_path):
    api, server, health = world["api"], world["server"], free_port()
    _install_peering_crd(server)
    now = dt.datetime.now(dt.timezone.utc).isoformat()
    server.kubectl("apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "kubetune", "namespace": NS},
        "status": {"other-replica": {"priority": 100, "lifetime": 600, "lastseen": now}}}))
    log = tmp_path / "operator.log"
    with operator_process(kubeconfig, log, "-n", NS, "--peering", "kubetune", "--peering-priority", "10",
                          "--listen-address", "127.0.0.1", "--health-port", str(health), "--metrics-port", "0",
                          "--poll", "1"):
        # said in the log without any probe asking ...
        held = f"paused: KopfPeering 'kubetune' in namespace {NS} is held by other-replica (priority 100)\n"
        await wait_for(lambda: f"WARNING kubetune.operator: {held}" in log.read_text(), 30, "the pause in the log",
                       detail=lambda: log.read_text()[-2000:])
        # ... and by /healthz
        status, body = await _probe(health, "/healthz")
        assert status == 503, (status, body, log.read_text())
        assert body == held
        assert (await _probe(health, "/livez"))[0] == 200  # alive: a standby is not restarted
        # ... and kopf is paused indeed: a Round gets no Trial
        await create(api, study_manifest())
        await create(api, round_manifest(max_trials=2, parallelism=1))
        await asyncio.sleep(8)
        assert not live(api, "trials"), "a paused operator created a Trial"
        peering = server.kubectl("-n", NS, "get", "kopfpeering", "kubetune", "-o", "yaml").stdout
        assert "priority: 10\n" in peering, peering  # it announced itself, waiting its turn

        # the other replica goes: this one acts, and says so
        server.kubectl("-n", NS, "patch", "kopfpeering", "kubetune", "--type=merge",
                       "-p", '{"status": {"other-replica": null}}')
        await wait_for(lambda: live(api, "trials"), 30, "the first Trial after the pause",
                       detail=lambda: log.read_text()[-2000:])
        await wait_for(lambda: _get(f"http://127.0.0.1:{health}/healthz")[0] == 200, 10, "/healthz to answer 200")
        assert _get(f"http://127.0.0.1:{health}/healthz")[1] == "ok: acting in peering 'kubetune' (priority 10)\n"
    assert "INFO kubetune.operator: ok: acting in peering 'kubetune' (priority 10)" in log.read_text()
    lines = _startup_lines(log)
    assert len(lines) == 1, log.read_text()
    assert (f"{STARTUP}namespaces {NS}; Prometheus none; in peering 'kubetune' (KopfPeering, priority 10, "
            f"identity ") in lines[0], lines[0]


def _phases(api) -> dict[str, str | None]:
    return {n: (t.get("status") or {}).get("phase") for n, t in live(api, "trials").items()}


async def test_a_replica_that_a_newer_peer_pauses_starts_no_successor_until_the_peer_goes(world, kubeconfig, tmp_path):
    """A replica restarted with a higher priority takes over from the one acting (kopf's rule):
    the one paused ends nothing and creates nothing meanwhile, though its own watches still see
    its trial's pod end, and takes up where it was once the peer goes."""
    api, server = world["api"], world["server"]
    _install_peering_crd(server)
    server.kubectl("apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "kubetune", "namespace": NS}}))
    # the Round is there before the operator starts (a restart): its passes wait for every
    # watch's first list, the peering's included, and then start it
    await create(api, study_manifest(baseline={"learning_rate": 0.1, "step_seconds": 1.0}))  # 12-s trials
    await create(api, round_manifest(max_trials=2, parallelism=1))
    log, metrics = tmp_path / "operator.log", free_port()
    acting = lambda: _get(f"http://127.0.0.1:{metrics}/metrics")[1].count("\nkubetune_operator_acting 1.0\n")  # noqa: E731
    with operator_process(kubeconfig, log, "-n", NS, "--peering", "kubetune", "--peering-priority", "10",
                          "--listen-address", "127.0.0.1", "--health-port", "0", "--metrics-port", str(metrics),
                          "--poll", "1"):
        await wait_for(lambda: list(_phases(api).values()) == ["Running"], 30, "the first trial running",
                       detail=lambda: (_phases(api), log.read_text()[-2000:]))
        first = next(iter(_phases(api)))
        assert acting() == 1, [line for line in _get(f"http://127.0.0.1:{metrics}/metrics")[1].splitlines() if "acting" in line]

        now = dt.datetime.now(dt.timezone.utc).isoformat()
        server.kubectl("-n", NS, "patch", "kopfpeering", "kubetune", "--type=merge", "-p", json.dumps(
            {"status": {"newer-replica": {"priority": 100, "lifetime": 600, "lastseen": now}}}))
        held = f"passes wait: KopfPeering 'kubetune' in namespace {NS} is held by newer-replica (priority 100)"
        await wait_for(lambda: held in log.read_text(), 5, "the pause in the log", detail=lambda: log.read_text()[-2000:])
        ended = lambda: [(p.get("status") or {}).get("phase") for p in live(api, "pods").values()  # noqa: E731
                         if p["metadata"]["labels"].get(LABEL_TRIAL) == first] == ["Succeeded"]
        await wait_for(ended, 30, "the first trial's pod to end")
        await asyncio.sleep(6)  # a successor comes within a second when the replica acts
        assert _phases(api) == {first: "Running"}, "a paused replica ended the trial or created its successor"
        assert acting() == 0 and "\nkubetune_operator_acting 0.0\n" in _get(f"http://127.0.0.1:{metrics}/metrics")[1]

        server.kubectl("-n", NS, "patch", "kopfpeering", "kubetune", "--type=merge",
                       "-p", '{"status": {"newer-replica": null}}')
        await wait_for(lambda: len(_phases(api)) == 2, 15, "the successor once the peer went",
                       detail=lambda: log.read_text()[-2000:])
        assert _phases(api)[first] == "Succeeded" and acting() == 1
    assert "passes resume: no live peer of priority 10 or more holds KopfPeering 'kubetune'" in log.read_text()
