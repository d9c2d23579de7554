"""The rough edges of `kubetune run`, `validate`, `report` and `adopt` on one machine (issue 27)."""
from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest
import yaml

from kubetune.api import Round, Study
from kubetune.core.settings import resolve
from kubetune.local.progress import Progress, planned_total

from .test_run import ROOT, kubetune, write_manifests


def split(manifest: Path, study_dir: Path, round_dir: Path) -> None:
    """The Study and the Round of write_manifests in two folders, as a GitOps tree keeps them."""
    study, rnd = yaml.safe_load_all(manifest.read_text())
    manifest.unlink()
    for d, doc, name in ((study_dir, study, "study.yaml"), (round_dir, rnd, "round.yaml")):
        d.mkdir(parents=True, exist_ok=True)
        (d / name).write_text(yaml.safe_dump(doc))


def test_run_and_validate_read_subfolders_and_say_what_they_skipped(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    split(write_manifests(tree, max_trials=2, steps=4), tree / "base", tree / "overlays" / "tuning")
    (tree / "README.md").write_text("# how we tune\n")
    (tree / ".git").mkdir()
    (tree / ".git" / "HEAD.yaml").write_text("not: ours\n")
    (tree / "overlays" / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: data}\n")
    res = kubetune("validate", str(tree))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Study 'fast' is valid" in res.stdout and "Round 'fast-r' is valid" in res.stdout
    assert f"skipped {tree / 'README.md'}: not a *.yaml or *.yml file" in res.stdout
    assert f"{tree / '.git'}/: hidden" in res.stdout and "HEAD.yaml" not in res.stdout
    assert "ConfigMap 'data' (v1) skipped: not a kubetune object" in res.stdout
    res = kubetune("run", str(tree), "--output", str(tmp_path / "o"), "--poll", "0.1", "--quiet")
    assert res.returncode == 0 and "Round fast-r Succeeded" in res.stdout, res.stdout + res.stderr
    assert f"skipped {tree / 'README.md'}: not a *.yaml or *.yml file" in res.stdout
    assert f"skipped {tree / 'overlays' / 'cm.yaml'}: ConfigMap 'data' (v1): not a kubetune object" in res.stdout


def test_a_round_that_is_not_there_and_a_study_alone_say_what_the_files_hold(tmp_path):
    manifest = write_manifests(tmp_path)
    res = kubetune("run", str(manifest), "--round", "nope", "--output", str(tmp_path / "o"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert f"no Round named 'nope' in the files; the Rounds there: fast-r ({manifest})" in res.stderr
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump(next(yaml.safe_load_all(manifest.read_text()))))
    res = kubetune("run", str(study), "--output", str(tmp_path / "o"))
    assert res.returncode == 2 and f"the files hold Study 'fast' ({study}) but no Round" in res.stderr, res.stderr
    res = kubetune("validate", str(study))
    assert res.returncode == 0 and "no Round among the files" in res.stdout, res.stdout
    assert not (tmp_path / "o").exists()


def test_validate_applies_the_cross_document_rule_run_applies(tmp_path):
    manifest = write_manifests(tmp_path)
    rnd = tmp_path / "round.yaml"
    rnd.write_text(yaml.safe_dump(list(yaml.safe_load_all(manifest.read_text()))[1]))
    message = f"{rnd}: Round 'fast-r' refers to Study 'fast', which none of the files defines"
    res = kubetune("validate", str(rnd))
    assert res.returncode == 1 and "Round 'fast-r' is valid" in res.stdout and message in res.stdout, res.stdout
    res = kubetune("run", str(rnd), "--output", str(tmp_path / "o"))
    assert res.returncode == 2 and message in res.stderr, res.stderr


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished run at the default output (kubetune-runs/fast-r) of a Round with a re-run."""
    home = tmp_path_factory.mktemp("home")
    manifest = write_manifests(home, max_trials=4, steps=5)
    docs = list(yaml.safe_load_all(manifest.read_text()))
    docs[1]["spec"]["reruns"] = {"topK": 1, "seeds": 1}
    manifest.write_text(yaml.safe_dump_all(docs))
    res = kubetune("run", str(manifest), "--poll", "0.1", cwd=home)
    assert res.returncode == 0, res.stdout + res.stderr
    return home, manifest, res


def test_the_summary_is_for_people_with_searched_parameters_and_re_runs_as_re_runs(finished):
    home, manifest, res = finished
    out = home / "kubetune-runs" / "fast-r"
    s = yaml.safe_load((out / "round.yaml").read_text())["status"]
    lines = res.stdout.splitlines()
    assert "{" not in res.stdout and "counts" not in res.stdout, res.stdout  # no Python dicts
    assert f"Round fast-r Succeeded: {s['progress']} trials finished (" in res.stdout
    assert "of them 1 re-run(s) of the best and 2 run(s) of the baseline with other seeds" in res.stdout
    best = s["bestTrial"]
    i = next(i for i, line in enumerate(lines) if line.startswith("best val_loss = "))
    assert best["name"] in lines[i]
    if best["name"] == "fast-r-4":  # the best trial's re-run
        assert "a re-run of" in lines[i]
    assert lines[i + 1].strip() == f"learning_rate={best['parameters']['learning_rate']:.4g}"  # not step_seconds
    assert f"report: {Path('kubetune-runs/fast-r/report.html')}" in res.stdout


def test_running_a_finished_round_again_says_it_is_finished(finished):
    home, manifest, _ = finished
    before = (home / "kubetune-runs" / "fast-r" / "round.yaml").read_text()
    res = kubetune("run", str(manifest), "--poll", "0.1", "--quiet", cwd=home)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Round fast-r has already finished (Succeeded) in kubetune-runs/fast-r/: nothing to run" in res.stdout
    assert "resum" not in res.stdout and "Round fast-r Succeeded" in res.stdout
    assert (home / "kubetune-runs" / "fast-r" / "round.yaml").read_text() == before


def test_report_of_sources_refuses_and_of_a_name_off_the_cluster_points_at_the_run(finished, tmp_path):
    home, _, _ = finished
    src = tmp_path / "quickstart"
    shutil.copytree(ROOT / "examples" / "quickstart", src)
    res = kubetune("report", str(src))
    assert res.returncode == 2 and "holds manifests, not a run" in res.stderr, res.stderr
    assert sorted(p.name for p in src.iterdir()) == ["round.yaml", "study.yaml"]  # nothing written there
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "no-kubeconfig"), "HOME": str(tmp_path)}
    res = kubetune("report", "fast-r", cwd=home, env=env)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "hint: a local run of Round fast-r is in kubetune-runs/fast-r/" in res.stderr, res.stderr
    res = kubetune("report", "other-r", cwd=home, env=env)
    assert res.returncode == 2 and "give its directory (default: kubetune-runs/<round>" in res.stderr, res.stderr


def test_adopt_of_a_local_run_gives_the_next_round_its_baseline(finished):
    home, manifest, _ = finished
    out = home / "kubetune-runs" / "fast-r"
    rnd = yaml.safe_load((out / "round.yaml").read_text())
    res = kubetune("adopt", str(out), cwd=home)
    assert res.returncode == 0, res.stdout + res.stderr
    study = yaml.safe_load((out / "study.yaml").read_text())
    lr = study["status"]["baseline"]["learning_rate"]
    assert study["status"]["adopted"][0]["round"] == "fast-r"
    assert lr in {t["parameters"]["learning_rate"] for t in rnd["status"]["analysis"]["bestTrials"]}
    assert lr != 0.1  # the spec's baseline
    # the next Round of the Study searches something else: its trials train with the adopted learning rate
    docs = list(yaml.safe_load_all(manifest.read_text()))
    docs[1]["metadata"]["name"] = "fast-next"
    docs[1]["spec"].pop("reruns")
    docs[1]["spec"]["budget"] = {"maxTrials": 2, "parallelism": 2}
    docs[1]["spec"]["nuisance"] = [{"name": "width_penalty", "type": "float", "min": 0.0, "max": 0.01}]
    nxt = home / "next.yaml"
    nxt.write_text(yaml.safe_dump_all(docs))
    res = kubetune("run", str(nxt), "--poll", "0.1", "--quiet", cwd=home)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"Study fast: baseline as adopted from Round fast-r ({out.relative_to(home)})" in res.stdout
    trials = [yaml.safe_load(p.read_text()) for p in (home / "kubetune-runs" / "fast-next" / "trials").glob("*.yaml")]
    assert len(trials) == 2 and all(t["spec"]["parameters"]["learning_rate"] == lr for t in trials)
    res = kubetune("adopt", str(out), cwd=home)
    assert res.returncode == 0 and "adopted already" in res.stdout


def test_the_progress_total_counts_the_re_runs_from_the_start():
    docs = [yaml.safe_load((ROOT / "examples" / "quickstart" / n).read_text()) for n in ("study.yaml", "round.yaml")]
    study, rnd = Study.model_validate(docs[0]), Round.model_validate(docs[1])
    settings = resolve(study, rnd)
    assert settings.rerun_baseline  # the default
    assert planned_total(settings) == 16 + 1 * 2 + 3  # maxTrials, topK x seeds re-runs, the baseline's seeds + 1
    rnd.status.progress = "0/16"  # what the Round says before it knows its best trials
    progress = Progress(quiet=False)
    progress.console.file = io.StringIO()
    with progress:
        progress.update(rnd, settings)
        assert progress._bar.tasks[0].total == 21


def test_the_quickstart_compares_the_baseline_width():
    study = yaml.safe_load((ROOT / "examples" / "quickstart" / "study.yaml").read_text())
    rnd = yaml.safe_load((ROOT / "examples" / "quickstart" / "round.yaml").read_text())
    (width,) = [p for p in rnd["spec"]["scientific"] if p["name"] == "hidden_units"]
    assert study["spec"]["baseline"]["hidden_units"] in width["choices"]
    assert str(study["spec"]["baseline"]["hidden_units"]) in rnd["spec"]["goal"]
