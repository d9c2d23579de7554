"""A real Kubernetes API server for the tests: etcd, kube-apiserver and, when asked,
kube-controller-manager (garbage collector, namespaces, service accounts), started by
`../shared/envtest/up.sh` on 127.0.0.1 and stopped by `down.sh`, whatever the test did.

There is no kubelet: pods stay Pending unless a test drives them
(`tests/integration/kubelet.py`). `KUBETUNE_ENVTEST` points at another envtest folder;
`KUBEBUILDER_ASSETS` at other binaries (up.sh honours it).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ENVTEST = Path(os.environ.get("KUBETUNE_ENVTEST", ROOT.parent / "shared" / "envtest"))
CRDS = ROOT / "crds"


def missing() -> str | None:
    """Why no API server can be started here, or None."""
    if not (ENVTEST / "up.sh").exists():
        return f"no envtest at {ENVTEST} (set KUBETUNE_ENVTEST)"
    if not shutil.which("etcd") and not os.environ.get("KUBEBUILDER_ASSETS"):
        return "no etcd binary (apt-get install etcd-server; scripts/test.sh does)"
    if not shutil.which("kubectl", path=_path_with_tools()):
        return "no kubectl (scripts/get-helm.sh puts one in .tools/bin)"
    return None


def _path_with_tools() -> str:
    return f"{ROOT / '.tools' / 'bin'}:{os.environ.get('PATH', '')}"


class ApiServer:
    """One throwaway API server. `start()` returns once it is ready (and the CRDs are
    Established); `stop()` stops exactly what it started."""

    def __init__(self, crds: Path | None = CRDS, controller_manager: bool = True, authz: str | None = None,
                 flags: list[str] | None = None):
        """`flags`: extra kube-apiserver flags (an audit log, say)."""
        self.crds, self.controller_manager, self.authz = crds, controller_manager, authz
        self.flags = list(flags or [])
        self.dir: Path | None = None
        self.kubeconfig: Path | None = None

    def start(self) -> "ApiServer":
        args = [str(ENVTEST / "up.sh")]
        if self.controller_manager:
            args.append("--with-controller-manager")
        if self.crds is not None:
            args += ["--crds", str(self.crds)]
        if self.authz:
            args += ["--authz", self.authz]
        if self.flags:
            args += ["--", *self.flags]
        res = subprocess.run(args, capture_output=True, text=True, timeout=180,
                             env={**os.environ, "PATH": _path_with_tools()})
        exports = dict(line.removeprefix("export ").split("=", 1) for line in res.stdout.splitlines()
                       if line.startswith("export "))
        if "ENVTEST_DIR" in exports:
            self.dir = Path(exports["ENVTEST_DIR"])
        if res.returncode != 0 or "KUBECONFIG" not in exports:
            self.stop()
            raise RuntimeError(f"envtest did not start (rc {res.returncode}):\n{res.stderr[-3000:]}")
        self.kubeconfig = Path(exports["KUBECONFIG"])
        return self

    def stop(self) -> None:
        if self.dir is not None and self.dir.exists():
            subprocess.run([str(ENVTEST / "down.sh"), str(self.dir)], capture_output=True, timeout=60)
        self.dir = None

    def client(self) -> Any:
        import kubernetes

        return kubernetes.config.new_client_from_config(config_file=str(self.kubeconfig))

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["kubectl", f"--kubeconfig={self.kubeconfig}", *args], input=input,
                              capture_output=True, text=True, timeout=60, check=check,
                              env={**os.environ, "PATH": _path_with_tools()})

    def _pid(self, name: str) -> int:
        assert self.dir is not None
        return int((self.dir / f"{name}.pid").read_text())

    def restart_apiserver(self, down_seconds: float) -> float:
        """Stop kube-apiserver (etcd keeps the data), keep it down for `down_seconds`, and
        start it again with the same flags: every client connection drops, and watches
        resume against a new watch cache (so a watch resumed from an old resourceVersion
        gets 410 Gone). Returns the seconds nothing answered on the port (the down time
        plus the start-up until /readyz).

        On SIGTERM kube-apiserver stops listening at once but then drains long-running
        requests (watches) for up to a minute; that drain is not waited for: the process
        is killed once it no longer listens (etcd has every acknowledged write)."""
        assert self.dir is not None
        pid = self._pid("kube-apiserver")
        argv = [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")]
        port = int(next(a.split("=", 1)[1] for a in argv if a.startswith("--secure-port=")))
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while _alive(pid) and _listening(port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"kube-apiserver ({pid}) still listens 20 s after SIGTERM")
            time.sleep(0.05)
        stopped = time.monotonic()
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"kube-apiserver ({pid}) survived SIGKILL")
                time.sleep(0.05)
        time.sleep(max(0.0, down_seconds - (time.monotonic() - stopped)))
        with open(self.dir / "kube-apiserver.log", "ab") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        (self.dir / "kube-apiserver.pid").write_text(str(proc.pid))
        self.wait_ready()
        return time.monotonic() - stopped

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            res = self.kubectl("get", "--raw", "/readyz", check=False)
            if res.stdout.strip() == "ok":
                return
            time.sleep(0.3)
        raise RuntimeError("the API server did not come back")


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and not _zombie(pid)


def _listening(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True
