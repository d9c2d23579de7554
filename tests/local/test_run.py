"""`kubetune run` end to end: real processes, real scraping, real analysis and report."""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from kubetune.stopping import CurveFitRule

ROOT = Path(__file__).resolve().parents[2]
TRAINER = ROOT / "tests" / "integration" / "trainer.py"


def kubetune(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kubetune.cli", *args], capture_output=True, text=True,
                          timeout=600, cwd=kw.pop("cwd", ROOT), **kw)


def processes_started_by(out: Path) -> list[str]:
    """Live processes whose environment points into this run's directory (every trial
    process gets its termination path there), as 'pid: command line'."""
    mark = f"KUBETUNE_TERMINATION_PATH={out}".encode()
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if mark in (proc / "environ").read_bytes():
                argv = (proc / "cmdline").read_bytes().split(b"\0")
                found.append(f"{proc.name}: {b' '.join(argv).decode(errors='replace')}")
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def write_manifests(tmp: Path, max_trials: int = 6, step_seconds: float = 0.05, steps: int = 12,
                    stopping: dict | None = None) -> Path:
    study = {
        "apiVersion": "kubetune.io/v1alpha1", "kind": "Study", "metadata": {"name": "fast"},
        "spec": {"objective": {"metric": "val_loss", "goal": "minimize"}, "maxSteps": steps,
                 "baseline": {"learning_rate": 0.1, "step_seconds": step_seconds},
                 "template": {"spec": {"containers": [{"name": "t", "image": "x", "command": ["python", str(TRAINER)]}]}}},
    }
    rnd = {
        "apiVersion": "kubetune.io/v1alpha1", "kind": "Round", "metadata": {"name": "fast-r"},
        "spec": {"studyRef": {"name": "fast"}, "goal": "lr",
                 "nuisance": [{"name": "learning_rate", "type": "float", "min": 0.0001, "max": 10.0, "log": True}],
                 "algorithm": {"name": "sobol", "seed": 4},
                 "budget": {"maxTrials": max_trials, "parallelism": 2},
                 "earlyStopping": stopping or {"rule": "median", "startStep": 3, "minTrials": 2}},
    }
    path = tmp / "fast.yaml"
    path.write_text(yaml.safe_dump_all([study, rnd]))
    return path


def test_curve_fitting_stops_trials_with_a_calibrated_prediction_as_evidence(tmp_path):
    manifest = write_manifests(tmp_path, max_trials=20, step_seconds=0.05, steps=20,
                               stopping={"rule": "curvefit", "startStep": 4, "minTrials": 2})
    # learning rates within two decades of the best: enough trials stay competitive and
    # finish (6-8 of 20) that later ones are judged on five finished look-alikes; over the
    # default five decades only 4-5 finished and every stop could be uncalibrated
    docs = list(yaml.safe_load_all(manifest.read_text()))
    docs[1]["spec"]["nuisance"][0].update(min=0.001, max=0.1)
    manifest.write_text(yaml.safe_dump_all(docs))
    out = tmp_path / "out"
    res = kubetune("run", str(manifest), "--output", str(out), "--poll", "0.1")
    assert res.returncode == 0, res.stdout + res.stderr
    trials = [yaml.safe_load(p.read_text()) for p in (out / "trials").glob("*.yaml")]
    stopped = [t for t in trials if t["status"]["phase"] == "EarlyStopped"]
    assert stopped, [t["status"]["phase"] for t in trials]
    best = yaml.safe_load((out / "round.yaml").read_text())["status"]["bestTrial"]
    assert best["name"] not in {t["metadata"]["name"] for t in stopped}
    for t in stopped:
        reason = t["status"]["stopReason"]
        e = reason["evidence"]
        assert reason["rule"] == "curvefit" and 4 <= reason["step"] < 20
        assert e["lower"] <= e["predicted"] <= e["upper"] and e["probability"] < e["threshold"]
        # the default threshold; a higher one below the median of the trials at the step, a
        # lower one among the best tenth of them
        leader = "best tenth" in reason["message"]
        default = CurveFitRule(final_step=20)
        assert e["threshold"] == (default.median_probability if "median" in e else
                                  default.leader_probability if leader else default.probability), reason
        if "finishedShare" in e:  # below the median: the finished look-alikes' chance, weighed by the stopped ones
            assert 0 < e["finishedShare"] < 1 and e["probability"] == pytest.approx(e["finishedProbability"] * e["finishedShare"])
        else:
            assert e["predicted"] > e["best"]  # expected to end worse than the best seen
        assert "90% interval" in reason["message"]
    # once enough trials have finished, the predictions are calibrated on them
    assert any(t["status"]["stopReason"]["evidence"]["calibrationTrials"] >= 5 for t in stopped), sorted((t["metadata"]["name"], t["status"]["phase"], t["status"].get("stopReason", {}).get("step"), t["status"].get("stopReason", {}).get("evidence", {}).get("calibrationTrials")) for t in trials)


def test_a_round_runs_locally_with_stopping_analysis_and_report(tmp_path):
    manifest = write_manifests(tmp_path, max_trials=8, step_seconds=0.15)
    out = tmp_path / "out"
    res = kubetune("run", str(manifest), "--output", str(out), "--poll", "0.1")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Round fast-r Succeeded" in res.stdout
    rnd = yaml.safe_load((out / "round.yaml").read_text())
    assert rnd["status"]["phase"] == "Succeeded" and rnd["status"]["progress"] == "8/8"
    trials = [yaml.safe_load(p.read_text()) for p in (out / "trials").glob("*.yaml")]
    assert len(trials) == 8
    assert any(t["status"]["phase"] == "EarlyStopped" for t in trials), [t["status"]["phase"] for t in trials]
    best = rnd["status"]["bestTrial"]
    assert best["value"] == min(t["status"]["objective"] for t in trials if t["status"]["phase"] == "Succeeded")
    assert rnd["status"]["analysis"]["bestTrials"][0]["name"] == best["name"]
    html = (out / "report.html").read_text()
    assert "Plotly.newPlot" in html and "id='recommendation'" in html and "fast-r" in html and "learning_rate" in html
    assert str(out / "report.html") in res.stdout


def test_with_the_last_value_as_objective_an_overfitting_trial_counts_where_it_ended(tmp_path):
    manifest = write_manifests(tmp_path, max_trials=3, step_seconds=0.02, steps=10, stopping={"rule": "none"})
    docs = list(yaml.safe_load_all(manifest.read_text()))
    docs[0]["spec"]["objective"]["strategy"] = "last"
    docs[0]["spec"]["baseline"]["overfit_from"] = 5  # best at step 5, then worse every step
    manifest.write_text(yaml.safe_dump_all(docs))
    out = tmp_path / "out"
    res = kubetune("run", str(manifest), "--output", str(out), "--poll", "0.1")
    assert res.returncode == 0, res.stdout + res.stderr
    trials = [yaml.safe_load(p.read_text()) for p in (out / "trials").glob("*.yaml")]
    assert [t["status"]["phase"] for t in trials] == ["Succeeded"] * 3
    for t in trials:
        lr = t["spec"]["parameters"]["learning_rate"]
        best = 0.05 + (math.log10(lr) + 2.0) ** 2 * 0.1 + 1.0 / math.sqrt(5)  # the trainer's value at step 5
        assert t["status"]["objective"] == pytest.approx(best + 0.5)  # five steps of 0.1 worse: step 10
    rnd = yaml.safe_load((out / "round.yaml").read_text())["status"]
    assert rnd["bestTrial"]["value"] == min(t["status"]["objective"] for t in trials)


def test_ctrl_c_stops_cleanly_and_the_same_command_resumes(tmp_path):
    manifest = write_manifests(tmp_path, max_trials=6, step_seconds=0.3, steps=10)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "kubetune.cli", "run", str(manifest), "--output", str(out), "--poll", "0.1", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            done = [p for p in (out / "trials").glob("*.yaml")
                    if yaml.safe_load(p.read_text())["status"].get("phase") in ("Succeeded", "EarlyStopped")]
            if done:
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, output
    last = output.strip().splitlines()[-1]  # the last line says what happened, with the counts
    assert last.startswith("interrupted: ") and "finished trial(s) kept" in last and "resume" in last, output
    states = {p.stem: yaml.safe_load(p.read_text())["status"] for p in (out / "trials").glob("*.yaml")}
    kept = {n for n, s in states.items() if s.get("phase") in ("Succeeded", "EarlyStopped")}
    assert kept and all(s.get("phase") in ("Succeeded", "EarlyStopped", "Pending") for s in states.values())
    # no trial process of this run survives the interrupt
    assert not processes_started_by(out), processes_started_by(out)
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"resuming the run in {out}/: {len(kept)} trial(s) finished" in res.stdout, res.stdout
    after = {p.stem: yaml.safe_load(p.read_text()) for p in (out / "trials").glob("*.yaml")}
    assert sorted(after) == sorted(f"fast-r-{i}" for i in range(6))
    for name in kept:  # finished trials were kept, not rerun
        assert after[name]["status"]["completionTime"] == states[name]["completionTime"]


def test_bad_manifests_get_the_same_clear_errors_as_on_the_cluster(tmp_path):
    manifest = write_manifests(tmp_path)
    docs = list(yaml.safe_load_all(manifest.read_text()))
    docs[1]["spec"]["nuisance"][0]["min"] = 0.0
    manifest.write_text(yaml.safe_dump_all(docs))
    res = kubetune("run", str(manifest), "--output", str(tmp_path / "o"))
    assert res.returncode == 2
    assert "spec.nuisance[0].min: a log domain needs min > 0" in res.stderr
    assert "Traceback" not in res.stderr
    res = kubetune("run", str(tmp_path / "missing.yaml"))
    assert res.returncode == 2 and "no such file" in res.stderr


def test_a_round_spelling_a_baseline_parameter_in_another_case_is_refused_before_it_runs(tmp_path):
    manifest = write_manifests(tmp_path)
    docs = list(yaml.safe_load_all(manifest.read_text()))
    docs[1]["spec"]["nuisance"][0]["name"] = "Learning_Rate"  # the baseline says learning_rate
    manifest.write_text(yaml.safe_dump_all(docs))
    # each is valid alone; together a trial would read both from KUBETUNE_PARAM_LEARNING_RATE
    res = kubetune("validate", str(manifest))
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Round 'fast-r' is valid" in res.stdout
    assert ("Round fast-r does not fit its Study: the Round's parameter 'Learning_Rate' and the Study "
            "baseline's 'learning_rate' differ only in case") in res.stdout
    res = kubetune("run", str(manifest), "--output", str(tmp_path / "o"))
    assert res.returncode == 2 and "'Learning_Rate'" in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert not (tmp_path / "o").exists()


def test_a_manifest_that_is_not_utf8_text_is_a_clear_error(tmp_path):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("metadata: {name: caf\u00e9}\n".encode("latin-1"))
    for cmd in ("run", "validate"):
        res = kubetune(cmd, str(bad))
        assert res.returncode == 2, res.stdout + res.stderr
        assert "latin1.yaml: not valid YAML" in res.stderr and "Traceback" not in res.stderr, res.stderr


def test_an_output_directory_holding_another_rounds_run_is_refused_and_kept(tmp_path):
    manifest = write_manifests(tmp_path, max_trials=2, steps=4)
    out = tmp_path / "out"
    res = kubetune("run", str(manifest), "--output", str(out), "--poll", "0.1", "--quiet")
    assert res.returncode == 0, res.stdout + res.stderr
    before = {p: p.read_bytes() for p in out.rglob("*.yaml")}
    other = tmp_path / "other.yaml"
    other.write_text(manifest.read_text().replace("name: fast-r", "name: other-r"))
    res = kubetune("run", str(other), "--output", str(out), "--poll", "0.1", "--quiet")
    # before this check the other Round "succeeded" at once with fast-r's trials as its own
    assert res.returncode == 2, res.stdout + res.stderr
    assert f"{out} holds the run of Round fast-r of Study fast, not of Round other-r" in res.stderr
    assert {p: p.read_bytes() for p in out.rglob("*.yaml")} == before  # nothing of that run lost


def test_report_rewrites_a_local_runs_report_and_says_what_is_wrong_otherwise(tmp_path):
    manifest = write_manifests(tmp_path, max_trials=2, steps=4)
    out = tmp_path / "out"
    assert kubetune("run", str(manifest), "--output", str(out), "--poll", "0.1", "--quiet").returncode == 0
    best = yaml.safe_load((out / "round.yaml").read_text())["status"]["bestTrial"]["name"]
    res = kubetune("report", str(out), "-o", str(tmp_path / "again.html"))
    assert res.returncode == 0 and best in (tmp_path / "again.html").read_text(), res.stdout + res.stderr
    cases = {  # (arguments, what the one-line error must say)
        "manifests": ((str(tmp_path),), f"{tmp_path} holds manifests, not a run: run them first"),
        "not a run": ((str(out / "logs"),),
                      f"{out / 'logs'} is not a kubetune run directory ({out / 'logs'}/study.yaml is missing)"),
        "no such path": (("nothing/here",), "nothing/here is not a kubetune run directory"),
        "unwritable": ((str(out), "-o", str(tmp_path / "no" / "dir" / "r.html")), "cannot write the report to"),
    }
    for what, (args, message) in cases.items():
        res = kubetune("report", *args)
        assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr, (what, res.stderr)


def test_unreadable_saved_state_or_output_path_is_a_clear_error(tmp_path):
    manifest = write_manifests(tmp_path)
    out = tmp_path / "out"
    (out / "trials").mkdir(parents=True)
    broken = out / "trials" / "fast-r-0.yaml"
    broken.write_text("status: [\n")  # e.g. edited by hand
    res = kubetune("run", str(manifest), "--output", str(out), "--quiet")
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stdout + res.stderr
    assert f"{broken}: the saved state of this run cannot be read" in res.stderr
    assert broken.read_text() == "status: [\n"
    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    res = kubetune("run", str(manifest), "--output", str(a_file), "--quiet")
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stdout + res.stderr
    assert "cannot be the run's directory" in res.stderr and a_file.read_text() == "mine"


def test_a_command_that_cannot_run_fails_trials_clearly_and_then_the_round(tmp_path):
    manifest = write_manifests(tmp_path, max_trials=6)
    docs = list(yaml.safe_load_all(manifest.read_text()))
    docs[0]["spec"]["template"]["spec"]["containers"][0]["command"] = ["no-such-trainer-kt", "--fast"]
    docs[1]["spec"]["budget"]["maxFailedTrials"] = 2
    manifest.write_text(yaml.safe_dump_all(docs))
    res = kubetune("run", str(manifest), "--output", str(tmp_path / "o"), "--quiet")
    assert "Traceback" not in res.stderr, res.stderr
    assert res.returncode == 1, res.stdout + res.stderr
    assert "cannot run 'no-such-trainer-kt': No such file or directory" in res.stdout
    assert "Round fast-r Failed" in res.stdout
    failed = [t for t in (tmp_path / "o" / "trials").glob("*.yaml")
              if yaml.safe_load(t.read_text())["status"]["phase"] == "Failed"]
    assert 2 <= len(failed) < 6  # the Round stops starting trials once maxFailedTrials have failed


def test_a_termination_message_that_is_not_text_fails_the_trial_not_the_run(tmp_path):
    manifest = write_manifests(tmp_path, max_trials=2)
    docs = list(yaml.safe_load_all(manifest.read_text()))
    docs[0]["spec"]["template"]["spec"]["containers"][0]["command"] = [
        sys.executable, "-c", "import os; open(os.environ['KUBETUNE_TERMINATION_PATH'], 'wb').write(bytes([255, 254, 123]))"]
    manifest.write_text(yaml.safe_dump_all(docs))
    res = kubetune("run", str(manifest), "--output", str(tmp_path / "o"), "--quiet")
    assert "Traceback" not in res.stderr, res.stderr
    assert "fast-r-0: Failed — the trial exited successfully but never reported val_loss" in res.stdout, res.stdout


def test_validate_names_every_object_and_refuses_what_is_not_one(tmp_path):
    res = kubetune("validate", str(ROOT / "examples" / "quickstart"))
    assert res.returncode == 0
    assert "Study 'digits' is valid" in res.stdout and "Round 'digits-width' is valid" in res.stdout
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    res = kubetune("validate", str(tmp_path / "list.yaml"))
    assert res.returncode == 1 and "a document that is not a Kubernetes object is invalid" in res.stdout
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    for cmd in ("validate", "run"):  # an empty file is a mistake, not a pass
        res = kubetune(cmd, str(tmp_path / "empty.yaml"), "-o", str(tmp_path / "o")) if cmd == "run" \
            else kubetune(cmd, str(tmp_path / "empty.yaml"))
        assert res.returncode == 2 and "no manifests in" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.slow
def test_the_quickstart_trains_the_real_model(tmp_path):
    """With scikit-learn, on the CPU, as after `pip install -e .`: no PyTorch needed."""
    qs = ROOT / "examples" / "quickstart"
    rnd = yaml.safe_load((qs / "round.yaml").read_text())
    rnd["spec"]["budget"] = {"maxTrials": 8, "parallelism": 2, "maxFailedTrials": 2}
    rnd["spec"]["fixed"]["step_seconds"] = 0.1
    rnd["spec"]["reruns"] = {"topK": 1, "seeds": 1}
    (tmp_path / "round.yaml").write_text(yaml.safe_dump(rnd))
    study = yaml.safe_load((qs / "study.yaml").read_text())
    study["spec"]["maxSteps"] = 15
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study))
    out = tmp_path / "out"
    res = kubetune("run", str(tmp_path), "--output", str(out), "--poll", "0.1")
    assert res.returncode == 0, res.stdout + res.stderr
    r = yaml.safe_load((out / "round.yaml").read_text())
    assert r["status"]["phase"] == "Succeeded" and r["status"]["bestValue"] < 0.5  # a real model learned digits
    a = r["status"]["analysis"]
    assert a["isolation"] and a["reruns"]["groups"] and a["bestTrials"]
    logs = [p.read_text() for p in (out / "logs").glob("*.log")]  # scikit-learn, torch installed or not
    assert any("backend=sklearn" in text for text in logs) and not any("backend=torch" in text for text in logs)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(tmp_path / "no-torch"), os.environ.get("PYTHONPATH", "")])}
    (tmp_path / "no-torch").mkdir()
    (tmp_path / "no-torch" / "torch.py").write_text("raise ImportError('torch is not installed')\n")
    res = subprocess.run([sys.executable, "-c", "import kubetune.demo.digits as d; "
                          "print(d.train({'step_seconds': 0}, 1, 3, lambda s, m: print(m) or True))"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip().endswith("sklearn"), res.stdout + res.stderr


def test_crds_are_written_where_asked_or_a_clear_error(tmp_path):
    res = kubetune("crds", "-o", str(tmp_path / "crds"))
    assert res.returncode == 0, res.stderr
    committed = {p.name: p.read_text() for p in (ROOT / "crds").glob("*.yaml")}  # what the chart installs
    assert len(committed) == 3 and {p.name: p.read_text() for p in (tmp_path / "crds").iterdir()} == committed
    (tmp_path / "a-file").write_text("mine")
    res = kubetune("crds", "-o", str(tmp_path / "a-file"))
    assert res.returncode == 2 and "cannot write the CRDs to" in res.stderr and "Traceback" not in res.stderr
    assert (tmp_path / "a-file").read_text() == "mine"


def test_a_poll_interval_must_be_a_positive_number_of_seconds(tmp_path):
    manifest = write_manifests(tmp_path)
    for bad in ("nan", "0", "-1"):  # nan crashed the run; 0 and below spun a core
        res = kubetune("run", str(manifest), "--output", str(tmp_path / "o"), "--poll", bad)
        assert res.returncode == 2 and f"expected a positive number of seconds, not '{bad}'" in res.stderr
        assert "Traceback" not in res.stderr and not (tmp_path / "o").exists()


def test_a_gitops_folder_with_other_objects_validates_and_runs_what_is_ours(tmp_path):
    folder = tmp_path / "gitops"
    folder.mkdir()
    write_manifests(folder, max_trials=2, steps=4)
    (folder / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [fast.yaml]\n")
    (folder / "config.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: data}\ndata: {a: b}\n")
    res = kubetune("validate", str(folder))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ConfigMap 'data' (v1) skipped: not a kubetune object" in res.stdout
    assert "Round 'fast-r' is valid" in res.stdout and "Study 'fast' is valid" in res.stdout
    res = kubetune("run", str(folder), "--output", str(tmp_path / "o"), "--poll", "0.1", "--quiet")
    assert res.returncode == 0 and "Round fast-r Succeeded" in res.stdout, res.stdout + res.stderr
    # our kinds under another apiVersion are mistakes, not someone else's objects
    (folder / "typo.yaml").write_text("apiVersion: kubetune.io/v1\nkind: Study\nmetadata: {name: typo}\n")
    res = kubetune("validate", str(folder))
    assert res.returncode == 1 and "apiVersion: expected kubetune.io/v1alpha1, got 'kubetune.io/v1'" in res.stdout


def test_a_trial_that_trains_on_after_nan_is_ended_infeasible_at_the_next_poll(tmp_path):
    """Its code never calls sdk.diverged(): kubetune run ends it, naming the step of the first NaN."""
    manifest = write_manifests(tmp_path, max_trials=2, step_seconds=0.1, steps=60, stopping={"rule": "none"})
    docs = list(yaml.safe_load_all(manifest.read_text()))
    docs[0]["spec"]["baseline"].update(nan_at=3, train_on_nan=True)
    manifest.write_text(yaml.safe_dump_all(docs))
    out = tmp_path / "out"
    res = kubetune("run", str(manifest), "--output", str(out), "--poll", "0.2")
    assert res.returncode == 0, res.stdout + res.stderr
    trials = [yaml.safe_load(p.read_text()) for p in (out / "trials").glob("*.yaml")]
    assert len(trials) == 2
    for t in trials:
        assert t["status"]["phase"] == "Infeasible", t["status"]
        assert t["status"]["message"] == "val_loss diverged (NaN or infinite) at step 3"
        assert t["status"].get("lastStep", 0) < 30  # ended long before step 60
    assert not processes_started_by(out)


def test_every_reported_step_reaches_the_curve_whatever_the_poll_interval(tmp_path):
    """20 steps in 1.5 s, polled every second: the Trial still has all 20 points."""
    manifest = write_manifests(tmp_path, max_trials=2, step_seconds=0.075, steps=20, stopping={"rule": "none"})
    out = tmp_path / "out"
    res = kubetune("run", str(manifest), "--output", str(out), "--poll", "1")
    assert res.returncode == 0, res.stdout + res.stderr
    for path in (out / "trials").glob("*.yaml"):
        t = yaml.safe_load(path.read_text())
        lr = t["spec"]["parameters"]["learning_rate"]
        floor = 0.05 + (math.log10(lr) + 2.0) ** 2 * 0.1  # the trainer's curve
        assert [p["step"] for p in t["status"]["curve"]] == list(range(1, 21)), path.name
        for p in t["status"]["curve"]:
            assert p["value"] == pytest.approx(floor + 1.0 / math.sqrt(p["step"]))
