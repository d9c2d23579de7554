"""A Round's results in its Study's archive: complete, merged across writes, within budget."""
import datetime as dt

import pytest

from kubetune.api.round import ArchiveState
from kubetune.core import archive
from kubetune.core.round_plan import plan_round
from kubetune.export import to_csv, to_yaml

from .factories import round_, study, trial

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def _trials(n, points=200):
    out = []
    for i in range(n):
        curve = [(s, 1.0 / (s + 1) + 0.001 * i + 0.0001 * (s % 7)) for s in range(points)]
        t = trial(i, {"learning_rate": 0.001 * (i + 1), "optimizer": "sgd"}, "Succeeded", 0.1 + i, curve)
        t.status.final = {"val_loss": 0.1 + i, "val_accuracy": 0.9}
        out.append(t)
    return out


def _round(trials):
    rnd = round_()
    rnd.status = plan_round(study(), rnd, trials, NOW).status
    return rnd


def test_an_entry_decodes_to_the_round_and_every_trial():
    trials = _trials(5)
    e = archive.entry(_round(trials), trials, "minimize", NOW)
    assert e is not None and e.trials == 5 and e.curve_points == 200 and e.best_trial == "r-0"
    rnd, back = archive.decode(e.data)
    assert rnd.metadata.name == "r" and rnd.spec.nuisance[0].name == "learning_rate"
    assert [(t.metadata.name, t.spec.parameters, t.spec.seed, t.status.objective, t.status.final, t.status.curve)
            for t in back] == [(t.metadata.name, t.spec.parameters, t.spec.seed, t.status.objective, t.status.final,
                                t.status.curve) for t in trials]


def test_curves_are_thinned_until_the_entry_fits_and_results_are_always_kept():
    trials = _trials(40)
    full = archive.entry(_round(trials), trials, "minimize", NOW)
    tight = archive.entry(_round(trials), trials, "minimize", NOW, room=len(full.data) // 3)
    assert tight is not None and tight.curve_points < 200 and len(tight.data) <= len(full.data) // 3
    _, back = archive.decode(tight.data)
    assert [t.status.objective for t in back] == [t.status.objective for t in trials]
    for t, orig in zip(back, trials):  # the best point survives thinning
        assert min(p.value for p in t.status.curve) == min(p.value for p in orig.status.curve)
    assert archive.entry(_round(trials), trials, "minimize", NOW, room=100) is None


def test_trials_archived_before_stay_when_they_are_gone_now():
    trials = _trials(4)
    rnd = _round(trials)
    rnd.metadata.uid = "u-r"
    first = archive.entry(rnd, trials[:3], "minimize", NOW)
    kept = archive.merged(first, rnd, trials[2:])  # the garbage collector took r-0 and r-1 already
    assert [t.metadata.name for t in kept] == ["r-0", "r-1", "r-2", "r-3"]
    other = rnd.model_copy(deep=True)
    other.metadata.uid = "u-new"  # a new Round that reuses the name starts its own archive
    assert [t.metadata.name for t in archive.merged(first, other, trials[3:])] == ["r-3"]


def test_a_study_budget_leaves_room_for_the_others():
    trials = _trials(3)
    e = archive.entry(_round(trials), trials, "minimize", NOW)
    big = e.model_copy(update={"round": "old", "data": "x" * (archive.STUDY_LIMIT - 1000)})
    assert archive.room_for([big], "r") == 1000
    assert archive.room_for([big], "old") == archive.ROUND_LIMIT


@pytest.mark.parametrize("state, phase, seconds, expected", [
    (None, "Running", 0, True),  # a first trial finished
    (ArchiveState(study="s", trials=2, phase="Running", time="2026-01-01T00:00:00Z"), "Running", 5, False),
    (ArchiveState(study="s", trials=2, phase="Running", time="2026-01-01T00:00:00Z"), "Running", 60, True),
    (ArchiveState(study="s", trials=2, phase="Running", time="2026-01-01T00:00:00Z"), "Succeeded", 1, True),
    (ArchiveState(study="s", trials=3, phase="Succeeded", time="2026-01-01T00:00:00Z"), "Succeeded", 999, False),
])
def test_archive_writes_follow_finished_trials_not_every_pass(state, phase, seconds, expected):
    trials = [trial(i, {"learning_rate": 0.1}, "Succeeded", 1.0) for i in range(3)]
    assert archive.due(state, trials, phase, NOW + dt.timedelta(seconds=seconds)) is expected
    assert archive.due(None, [trial(0, {"learning_rate": 0.1}, "Running")], "Running", NOW) is False


def test_a_study_shared_by_many_rounds_is_written_less_often_by_each():
    """Every archive write sends the whole Study: with 120 running Rounds in one Study each
    Round writes every 10 minutes, not every 30 s; a Round that ended still writes at once."""
    trials = [trial(i, {"learning_rate": 0.1}, "Succeeded", 1.0) for i in range(3)]
    state = ArchiveState(study="s", trials=2, phase="Running", time="2026-01-01T00:00:00Z")
    later = lambda s: NOW + dt.timedelta(seconds=s)  # noqa: E731
    assert archive.due(state, trials, "Running", later(60), rounds=3)
    assert not archive.due(state, trials, "Running", later(60), rounds=120)
    assert not archive.due(state, trials, "Running", later(599), rounds=120)
    assert archive.due(state, trials, "Running", later(600), rounds=120)
    assert archive.due(state, trials, "Succeeded", later(1), rounds=120)
    assert archive.due(None, trials, "Running", NOW, rounds=120)  # its first finished trial


def test_export_writes_every_trial_as_yaml_and_csv():
    trials = _trials(3, points=5)
    rnd = _round(trials)
    text = to_csv(rnd, trials)
    lines = text.splitlines()
    assert lines[0].startswith("round,trial,number,purpose") and "learning_rate" in lines[0]
    assert "final.val_accuracy" in lines[0] and len(lines) == 4 and lines[1].startswith("r,r-0,0,search")
    import yaml

    docs = list(yaml.safe_load_all(to_yaml(rnd, trials)))
    assert [d["kind"] for d in docs] == ["Round", "Trial", "Trial", "Trial"]
    assert docs[1]["status"]["curve"][0] == {"step": 0, "value": 1.0}


def test_export_reads_a_local_run_directory(tmp_path, capsys):
    from kubetune.cli import main
    from kubetune.local.store import RunStore

    trials = _trials(2, points=3)
    store = RunStore(tmp_path / "run")
    store.save_study(study())
    store.save_round(_round(trials))
    for t in trials:
        store.save_trial(t)
    assert main(["export", str(tmp_path / "run"), "--format", "csv"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert len(rows) == 3 and rows[1].startswith("r,r-0,0,search,,0,Succeeded,0.1,")
    assert main(["export", str(tmp_path / "nothing-here/")]) == 2
