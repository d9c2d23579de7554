"""`kubetune run` with workloads: a Job runs locally as its pod template does; a JobSet or a
PyTorchJob is refused with one line that says why."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from .test_run import ROOT, TRAINER, kubetune


def _manifests(tmp: Path, workload: dict, in_round: bool = False) -> Path:
    study = {
        "apiVersion": "kubetune.io/v1alpha1", "kind": "Study", "metadata": {"name": "jobs"},
        "spec": {"objective": {"metric": "val_loss", "goal": "minimize"}, "maxSteps": 6,
                 "baseline": {"learning_rate": 0.1, "step_seconds": 0.02}},
    }
    rnd = {
        "apiVersion": "kubetune.io/v1alpha1", "kind": "Round", "metadata": {"name": "jobs-r"},
        "spec": {"studyRef": {"name": "jobs"}, "goal": "lr",
                 "nuisance": [{"name": "learning_rate", "type": "float", "min": 0.001, "max": 1.0, "log": True}],
                 "budget": {"maxTrials": 2, "parallelism": 2}},
    }
    if in_round:  # the Round's workload replaces the Study's template
        study["spec"]["template"] = {"spec": {"containers": [{"name": "t", "image": "x", "command": ["false"]}]}}
        rnd["spec"]["workload"] = workload
    else:
        study["spec"]["workload"] = workload
    path = tmp / "jobs.yaml"
    path.write_text(yaml.safe_dump_all([study, rnd]))
    return path


JOB = {"apiVersion": "batch/v1", "kind": "Job", "container": "train", "spec": {"template": {"spec": {
    "restartPolicy": "Never", "containers": [
        {"name": "sidecar", "image": "busybox", "command": ["false"]},
        {"name": "train", "image": "x", "command": ["python", str(TRAINER)]}]}}}}


def test_a_job_workload_runs_locally_as_its_pod_template_does(tmp_path):
    for in_round in (False, True):
        out = tmp_path / f"out-{in_round}"
        res = kubetune("run", str(_manifests(tmp_path, JOB, in_round)), "--output", str(out), "--quiet")
        assert res.returncode == 0, res.stdout + res.stderr
        trials = [json.loads(p.read_text()) if p.suffix == ".json" else yaml.safe_load(p.read_text())
                  for p in sorted((out / "trials").glob("*"))]
        assert len(trials) == 2 and all(t["status"]["phase"] == "Succeeded" for t in trials), trials


def test_a_pytorchjob_or_jobset_is_refused_in_one_line():
    for example in ("pytorchjob-study.yaml", "jobset-study.yaml"):
        path = ROOT / "examples" / "workloads" / example
        res = kubetune("run", str(path))
        assert res.returncode == 2, res.stdout + res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and "needs a cluster" in lines[0] and "kubectl" in lines[0], res.stderr
