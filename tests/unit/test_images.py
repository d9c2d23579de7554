"""What can be checked of the images without a Docker engine: non-root, the right entrypoints."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _instructions(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def test_images_run_as_a_non_root_user():
    for dockerfile in (ROOT / "Dockerfile", ROOT / "trial_image" / "Dockerfile"):
        users = [i for i in _instructions(dockerfile) if i.startswith("USER ")]
        assert users and users[-1].split()[1].split(":")[0] not in ("0", "root"), dockerfile


def test_the_trial_image_runs_the_demo_that_the_examples_name():
    cmd = [i for i in _instructions(ROOT / "trial_image" / "Dockerfile") if i.startswith("CMD")][-1]
    assert "kubetune.demo.digits" in cmd
    for example in (ROOT / "examples").rglob("study*.yaml"):
        assert "kubetune.demo.digits" in example.read_text()
    assert "--no-deps" in (ROOT / "trial_image" / "Dockerfile").read_text()  # the SDK alone, no operator deps
