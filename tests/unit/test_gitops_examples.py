"""examples/gitops: a Flux Kustomization and an Argo CD Application that apply one Study and
two Rounds, valid offline."""
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from kubetune.api.validation import foreign, problems
from kubetune.cli import main

ROOT = Path(__file__).resolve().parents[2]
GITOPS = ROOT / "examples" / "gitops"


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_the_synced_folder_holds_a_study_and_two_rounds_of_it():
    kustomization = _docs(GITOPS / "tuning" / "kustomization.yaml")[0]
    docs = [d for name in kustomization["resources"] for d in _docs(GITOPS / "tuning" / name)]
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == ["Round", "Round", "Study"]
    (study,) = [d for d in docs if d["kind"] == "Study"]
    assert all(d["spec"]["studyRef"]["name"] == study["metadata"]["name"] for d in docs if d["kind"] == "Round")
    assert all(problems(d) == [] for d in docs)
    assert sorted(p.name for p in (GITOPS / "tuning").glob("*.yaml")) == sorted(
        ["kustomization.yaml", *kustomization["resources"]]), "a file in the folder the kustomization leaves out"


def test_flux_and_argocd_sync_that_folder_with_server_side_apply_and_prune():
    (flux,) = _docs(GITOPS / "flux-kustomization.yaml")
    (app,) = _docs(GITOPS / "argocd-application.yaml")
    assert foreign(flux) and foreign(app)
    assert flux["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1" and flux["kind"] == "Kustomization"
    assert (ROOT / flux["spec"]["path"] / "kustomization.yaml").is_file() and flux["spec"]["prune"] is True
    assert app["apiVersion"] == "argoproj.io/v1alpha1" and app["kind"] == "Application"
    assert (ROOT / app["spec"]["source"]["path"] / "kustomization.yaml").is_file()
    assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]
    assert app["spec"]["syncPolicy"]["automated"]["prune"] is True


def test_kubetune_validate_accepts_the_folder_and_skips_the_foreign_kinds(capsys):
    assert main(["validate", str(GITOPS)]) == 0  # subfolders are read
    out = capsys.readouterr().out
    assert out.count("skipped: not a kubetune object") == 3 and out.count("is valid") == 3


def test_kustomize_renders_the_folder_into_the_namespace():
    kubectl = shutil.which("kubectl", path=f"{ROOT / '.tools' / 'bin'}")
    if kubectl is None:
        pytest.skip("no kubectl in .tools/bin (scripts/get-helm.sh puts one there)")
    out = subprocess.run([kubectl, "kustomize", str(GITOPS / "tuning")], capture_output=True, text=True, check=True)
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert sorted(d["kind"] for d in docs) == ["Round", "Round", "Study"]
    assert {d["metadata"]["namespace"] for d in docs} == {"tuning"} and all(problems(d) == [] for d in docs)
