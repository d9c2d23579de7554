"""Trials as local processes: the pod's command with the env the operator injects."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ..api import Study, Trial
from ..core.trial_plan import PodView
from ..workload import trial_env, training_container_spec

GRACE_SECONDS = 10.0


def _any_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port(taken: frozenset[int] | set[int] = frozenset()) -> int:
    """A free port on 127.0.0.1 that is not one of `taken`: the ports handed to trials
    that have not bound theirs yet are free too, and the kernel may offer one again."""
    for _ in range(100):
        port = _any_port()
        if port not in taken:
            return port
    raise OSError("no free port on 127.0.0.1 outside those given to running trials")


def command_of(study: Study) -> list[str]:
    """The training container's command and args, with `python` meaning this interpreter."""
    container = training_container_spec(study)
    argv = [*container.get("command", []), *container.get("args", [])]
    if not argv:
        raise ValueError(
            f"container {container['name']!r} has no command: locally kubetune runs the template's command and args "
            "(it cannot run an image's entrypoint)"
        )
    if argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    return [str(a) for a in argv]


class LocalPod:
    """One attempt of a trial, running as a process group of its own."""

    def __init__(self, name: str, study: Study, trial: Trial, logs: Path, pods: Path,
                 taken: frozenset[int] | set[int] = frozenset()):
        self.name = name
        self.port = free_port(taken)  # taken: the ports of the other running trials
        self.termination = pods / f"{name}.term"
        self.termination.unlink(missing_ok=True)
        self.reports = pods / f"{name}.reports.jsonl"  # every step the SDK reported (local/reports.py)
        self.reports.unlink(missing_ok=True)
        container = training_container_spec(study)
        env = dict(os.environ)
        env.update({e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e})
        env.update(trial_env(study, trial))
        env.update({
            "KUBETUNE_METRICS_PORT": str(self.port),
            "KUBETUNE_METRICS_ADDR": "127.0.0.1",
            "KUBETUNE_TERMINATION_PATH": str(self.termination),
            "KUBETUNE_REPORTS_PATH": str(self.reports),
            "PYTHONUNBUFFERED": "1",
        })
        self.log_path = logs / f"{name}.log"
        self._log = open(self.log_path, "ab")
        self.started_at = time.time()
        argv = command_of(study)
        self.proc: subprocess.Popen | None = None
        self.start_error: str | None = None
        try:
            self.proc = subprocess.Popen(  # an argv list: no shell ever sees a parameter
                argv, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        except OSError as e:  # no such program, not executable: what a kubelet reports as it cannot start
            self.start_error = f"cannot run {argv[0]!r}: {e.strerror or e}"
            self._log.close()
        self._term_sent: float | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def termination_message(self) -> str | None:
        """What the process left at its termination-message path, as the kubelet reads it
        (bytes that are not UTF-8 replaced, not fatal)."""
        return self.termination.read_text(errors="replace") if self.termination.exists() else None

    def view(self) -> PodView:
        if self.proc is None:
            return PodView(name=self.name, phase="Pending", waiting_reason="CreateContainerError",
                           waiting_message=self.start_error)
        code = self.proc.poll()
        if code is None:
            self._escalate()
            return PodView(name=self.name, phase="Running")
        self._log.close()
        message = self.termination_message()
        if message is None:
            message = _tail(self.log_path)
        return PodView(
            name=self.name,
            phase="Succeeded" if code == 0 else "Failed",
            exit_code=code if code >= 0 else 128 - code,
            reason="Error" if code else "Completed",
            termination_message=message,
        )

    def terminate(self) -> None:
        """SIGTERM (the SDK writes its termination message), SIGKILL after the grace period."""
        if self.proc is not None and self.proc.poll() is None and self._term_sent is None:
            self._term_sent = time.time()
            _signal_group(self.proc.pid, signal.SIGTERM)

    def _escalate(self) -> None:
        if self.proc is not None and self._term_sent is not None and time.time() - self._term_sent > GRACE_SECONDS:
            _signal_group(self.proc.pid, signal.SIGKILL)

    def kill_now(self) -> None:
        if self.proc is None:
            return
        self.terminate()
        try:
            self.proc.wait(GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            _signal_group(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._log.close()


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(path: Path, limit: int = 2000) -> str | None:
    try:
        data = path.read_bytes()[-limit:]
    except OSError:
        return None
    return data.decode(errors="replace") or None
