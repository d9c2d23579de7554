"""The per-step reports a local trial's SDK appends, read as they grow."""
from kubetune.local.reports import ReportReader


def test_lines_are_read_once_a_half_written_one_waits_and_nan_marks_the_step(tmp_path):
    path = tmp_path / "r.jsonl"
    reader = ReportReader(path, "val_loss")
    assert reader.read_new() == [] and reader.offset == 0  # nothing written yet
    path.write_text('{"step":1,"metrics":{"val_loss":0.9}}\n{"step":2,"metrics":{"val_lo')
    assert [(p.step, p.value) for p in reader.read_new()] == [(1, 0.9)]
    with open(path, "a") as f:
        f.write('ss":0.8,"acc":0.5}}\n{"step":3,"metrics":{"acc":0.6}}\nnot json\n'
                '{"step":4,"metrics":{"val_loss":"nan"}}\n{"step":5,"metrics":{"val_loss":"inf"}}\n')
    assert [(p.step, p.value) for p in reader.read_new()] == [(2, 0.8)]
    assert reader.diverged_step == 4
    assert reader.read_new() == []
