"""`kubetune operator` as a real process, as a user starts it: SIGKILL is real, its output
goes to a file (a pipe nobody reads would block it), probes and metrics on 127.0.0.1."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .conftest import NS, wait_for
from .kubelet import free_port


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, grace: float = 20) -> None:
    """Ask a process to stop (SIGTERM; SIGINT for Ctrl-C), SIGKILL it after `grace` seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class OperatorProcess:
    def __init__(self, kubeconfig: Path, log: Path, *args: str):
        self.kubeconfig, self.log_path, self.args = kubeconfig, log, args
        self.proc: subprocess.Popen | None = None
        self.health = self.metrics = 0

    def start(self) -> "OperatorProcess":
        """Start it (again): new ports, the log appended to."""
        self.health, self.metrics = free_port(), free_port()
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        env.pop("KUBERNETES_SERVICE_HOST", None)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kubetune.cli", "operator", "--namespace", NS, "--poll", "1",
                 "--health-port", str(self.health), "--metrics-port", str(self.metrics),
                 "--listen-address", "127.0.0.1", *self.args],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self

    async def started(self, timeout: float = 60) -> float:
        """Wait until the operator answers its liveness probe; the seconds it took."""
        began = time.monotonic()
        await wait_for(lambda: self._healthy() or self.proc.poll() is not None, timeout,  # type: ignore[union-attr]
                       "the operator to start")
        assert self.proc is not None and self.proc.poll() is None, f"the operator exited:\n{self.log()[-3000:]}"
        return time.monotonic() - began

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health}/livez", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def metric(self, line_start: str) -> float:
        """The sum of the operator's metric samples whose line starts so (NaN: not served)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return float("nan")
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start))

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
