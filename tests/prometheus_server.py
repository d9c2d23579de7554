"""A real Prometheus for the tests: Debian's binary on 127.0.0.1, scraping file-discovered targets."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import yaml


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrometheusServer:
    def __init__(self, workdir: Path, scrape_interval: str = "1s"):
        self.binary = shutil.which("prometheus")
        self.workdir = workdir
        self.targets = workdir / "targets.json"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.scrape_interval = scrape_interval
        self.proc: subprocess.Popen | None = None

    def start(self) -> "PrometheusServer":
        if not self.targets.exists():
            self.targets.write_text("[]")
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": self.scrape_interval, "evaluation_interval": self.scrape_interval},
            "scrape_configs": [{
                "job_name": "kubetune-trials",
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "file_sd_configs": [{"files": [str(self.targets)], "refresh_interval": "1s"}],
            }],
        }))
        (self.workdir / "tsdb").mkdir(exist_ok=True)
        self.log = open(self.workdir / "prometheus.log", "wb")
        self.proc = subprocess.Popen([
            self.binary, f"--config.file={config}", f"--storage.tsdb.path={self.workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1h",
            "--query.lookback-delta=3s",
        ], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"prometheus did not become ready; see {self.workdir / 'prometheus.log'}")

    def set_targets(self, targets: list[str]) -> None:
        self.targets.write_text(json.dumps([{"targets": targets}]))

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
