"""The trial SDK in real subprocesses: gauges over HTTP, termination messages at every kind of exit."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

SCRIPT = """
import sys, time
from kubetune import sdk
for step in range(1, 100):
    sdk.report(step, val_loss={value}, val_accuracy=0.5)
    if {crash} and step == 3:
        raise ValueError("boom")
    if sdk.diverged():
        break
    time.sleep({sleep})
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(tmp_path, value="1.0 / step", crash=False, sleep=0.0, wait=True):
    port = free_port()
    term = tmp_path / "term"
    env = {**os.environ, "KUBETUNE_METRICS_PORT": str(port), "KUBETUNE_METRICS_ADDR": "127.0.0.1",
           "KUBETUNE_TERMINATION_PATH": str(term), "KUBETUNE_OBJECTIVE": "val_loss", "KUBETUNE_TRIAL": 'odd"name',
           "KUBETUNE_NAMESPACE": "ns"}
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT.format(value=value, crash=crash, sleep=sleep)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if wait:
        proc.wait(30)
    return proc, port, term


def test_final_metrics_are_written_at_normal_exit(tmp_path):
    proc, _, term = run(tmp_path)
    doc = json.loads(term.read_text())
    assert proc.returncode == 0 and doc["step"] == 99
    assert doc["min"]["val_loss"] == pytest.approx(1 / 99) and doc["max"]["val_loss"] == 1.0
    assert doc["diverged"] is False and doc["error"] is None


def test_an_exception_is_recorded(tmp_path):
    proc, _, term = run(tmp_path, crash=True)
    doc = json.loads(term.read_text())
    assert proc.returncode == 1 and doc["step"] == 3 and doc["error"] == "ValueError: boom"


def test_nan_marks_the_run_diverged(tmp_path):
    proc, _, term = run(tmp_path, value="float('nan') if step > 4 else 1.0")
    doc = json.loads(term.read_text())
    assert doc["diverged"] is True and doc["step"] == 5 and doc["last"]["val_loss"] == "nan"


def test_gauges_are_served_and_sigterm_still_writes_the_result(tmp_path):
    proc, port, term = run(tmp_path, sleep=0.05, wait=False)
    try:
        text = ""
        for _ in range(100):
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1).read().decode()
                if "kubetune_trial_step" in text:
                    break
            except OSError:
                time.sleep(0.05)
        assert 'kubetune_trial_metric{kubetune_namespace="ns"' in text
        assert 'kubetune_trial="odd\\"name"' in text  # label values are escaped by the client library
        assert 'metric="val_loss"' in text
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    doc = json.loads(term.read_text())
    assert proc.returncode == 143 and doc["step"] >= 1


def test_a_trial_that_trains_on_after_nan_says_at_which_step_it_diverged(tmp_path):
    """Training code that never checks sdk.diverged(): the step of the first NaN is kept,
    served as a gauge (the operator and kubetune run end the trial at their next look) and
    written to the termination message."""
    script = SCRIPT.replace("    if sdk.diverged():\n        break\n", "")
    port = free_port()
    term = tmp_path / "term"
    env = {**os.environ, "KUBETUNE_METRICS_PORT": str(port), "KUBETUNE_METRICS_ADDR": "127.0.0.1",
           "KUBETUNE_TERMINATION_PATH": str(term), "KUBETUNE_OBJECTIVE": "val_loss"}
    code = script.format(value="float('nan') if step >= 3 else 1.0", crash=False, sleep=0.02)
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        text = ""
        for _ in range(200):
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1).read().decode()
                if "kubetune_trial_diverged_step" in text:
                    break
            except OSError:
                pass
            time.sleep(0.02)
        line = next(ln for ln in text.splitlines() if ln.startswith("kubetune_trial_diverged_step{"))
        assert float(line.rsplit(" ", 1)[1]) == 3.0
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    doc = json.loads(term.read_text())
    assert doc["diverged"] is True and doc["divergedStep"] == 3 and doc["step"] == 99
