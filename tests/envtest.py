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

    def __init__(self, crds: Path | None = CRDS, controller_manager: bool = True, authz: str | None = None):
        self.crds, self.controller_manager, self.authz = crds, controller_manager, authz
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
        res = subprocess.run(args, capture_output=True, text=True, timeout=180,
                             env={**os.environ, "PATH": _path_with_tools()})
        exports = dict(line.removeprefix("export ").split("=", 1) for line in res.stdout.splitlines()
                       if line.startswith("export "))
        if res.returncode != 0 or "KUBECONFIG" not in exports:
            raise RuntimeError(f"envtest did not start (rc {res.returncode}):\n{res.stderr[-3000:]}")
        self.dir, self.kubeconfig = Path(exports["ENVTEST_DIR"]), Path(exports["KUBECONFIG"])
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

    def restart_apiserver(self, down_seconds: float) -> None:
        """Stop kube-apiserver (etcd keeps the data), wait, and start it again with the same
        flags: every client connection drops, and watches resume against a new watch cache."""
        assert self.dir is not None
        pid = self._pid("kube-apiserver")
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        os.kill(pid, signal.SIGTERM)
        for _ in range(200):
            if not Path(f"/proc/{pid}").exists() or _zombie(pid):
                break
            time.sleep(0.05)
        time.sleep(down_seconds)
        log = open(self.dir / "kube-apiserver.log", "ab")
        proc = subprocess.Popen([a.decode() for a in argv], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        (self.dir / "kube-apiserver.pid").write_text(str(proc.pid))
        self.wait_ready()

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            res = self.kubectl("get", "--raw", "/readyz", check=False)
            if res.stdout.strip() == "ok":
                return
            time.sleep(0.3)
        raise RuntimeError("the API server did not come back")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True
