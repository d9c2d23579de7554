"""Local trials each get a metrics port of their own."""
import pytest

from kubetune.local import process


def test_a_port_given_to_a_running_trial_is_not_given_again(monkeypatch):
    # the kernel may offer a port again once its probe socket is closed, before the trial
    # it was given to has bound it: two trials would then share it, and one would fail
    offers = iter([41000, 41001, 41000, 41002])
    monkeypatch.setattr(process, "_any_port", lambda: next(offers))
    assert process.free_port() == 41000
    assert process.free_port({41000}) == 41001
    assert process.free_port({41000, 41001}) == 41002


def test_no_free_port_is_an_error_not_a_hang(monkeypatch):
    monkeypatch.setattr(process, "_any_port", lambda: 41000)
    with pytest.raises(OSError, match="no free port"):
        process.free_port({41000})

