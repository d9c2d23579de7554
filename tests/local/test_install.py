"""`pip install -e .` without extras, in a fresh virtual environment that sees nothing of this
one (no --system-site-packages), gives a `kubetune run` that runs a Round to the end and
analyzes it: importance (fANOVA, scikit-learn) included, no warning in its output.

The package is installed from a copy of its sources, so the editable build's egg-info does
not land in the working tree. It needs a package index (pip's own configuration is used);
it takes one to three minutes, most of it pip."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

TRAINER = textwrap.dedent("""
    import math, random, time
    from kubetune import sdk

    p = sdk.params()
    rng = random.Random(sdk.seed())
    lr, momentum = float(p["learning_rate"]), float(p["momentum"])
    floor = 0.1 + 0.2 * (math.log10(lr) + 2) ** 2 + 0.05 * momentum
    for step in range(1, sdk.max_steps() + 1):
        sdk.report(step, val_loss=floor + 1.0 / step + 0.002 * rng.random())
        time.sleep(0.02)
""")


def manifests(tmp: Path) -> Path:
    study = {
        "apiVersion": "kubetune.io/v1alpha1", "kind": "Study", "metadata": {"name": "install"},
        "spec": {"objective": {"metric": "val_loss", "goal": "minimize"}, "maxSteps": 10,
                 "baseline": {"learning_rate": 0.1, "momentum": 0.5},
                 "template": {"spec": {"containers": [
                     {"name": "t", "image": "x", "command": ["python", str(tmp / "trainer.py")]}]}}},
    }
    rnd = {
        "apiVersion": "kubetune.io/v1alpha1", "kind": "Round", "metadata": {"name": "install-r"},
        "spec": {"studyRef": {"name": "install"}, "goal": "does a clean install run a Round?",
                 "nuisance": [{"name": "learning_rate", "type": "float", "min": 1e-4, "max": 1.0, "log": True},
                              {"name": "momentum", "type": "float", "min": 0.0, "max": 0.99}],
                 "algorithm": {"name": "sobol", "seed": 1},
                 "budget": {"maxTrials": 8, "parallelism": 4}},
    }
    (tmp / "trainer.py").write_text(TRAINER)
    path = tmp / "round.yaml"
    path.write_text(yaml.safe_dump_all([study, rnd]))
    return path


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_an_install_without_extras_runs_a_round_with_its_analysis(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "operator", src / "operator", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py, env = venv / "bin" / "python", {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    pip = subprocess.run([str(py), "-m", "pip", "install", "--quiet", "-e", str(src)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
    # nothing of the test's own environment leaks in
    where = subprocess.run([str(py), "-c", "import kubetune, sys; print(kubetune.__file__); print(sys.prefix)"],
                           env=env, capture_output=True, text=True, check=True).stdout.split()
    assert where == [str(src / "operator" / "kubetune" / "__init__.py"), str(venv)]

    out = tmp_path / "out"
    res = subprocess.run([str(venv / "bin" / "kubetune"), "run", str(manifests(tmp_path)), "--output", str(out),
                          "--poll", "0.1"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    text = res.stdout + res.stderr
    assert res.returncode == 0, text
    assert "Round install-r Succeeded" in text
    assert not any(w in text for w in ("Warning", "warn(", "Traceback")), text
    analysis = yaml.safe_load((out / "round.yaml").read_text())["status"]["analysis"]
    assert set(analysis["importance"]) == {"learning_rate", "momentum"}, analysis
    assert (out / "report.html").is_file()
