"""Metric polls are paced to the operator's client-side rate: each poll that reads new
points writes the Trial's status, and thousands of running trials polled every 15 s
would write faster than the qps the operator was given."""
from unittest import mock

from kubetune.controller.handlers import OperatorConfig


def _cfg(polls_per_second: float) -> OperatorConfig:
    return OperatorConfig(kube=mock.Mock(), poll_seconds=15.0, polls_per_second=polls_per_second)


def test_a_few_running_trials_are_polled_every_poll_seconds():
    cfg = _cfg(25.0)
    assert cfg.due("ns", "t-0", 1000.0)
    assert not cfg.due("ns", "t-0", 1014.0)
    assert cfg.due("ns", "t-0", 1015.0)
    assert cfg.poll_interval() == 15.0


def test_many_running_trials_are_each_polled_less_often():
    cfg = _cfg(25.0)
    for i in range(3600):  # every trial polled once: 3,600 at 25 polls a second -> every 144 s
        assert cfg.due("ns", f"t-{i}", 1000.0)
    assert cfg.poll_interval() == 144.0
    assert not cfg.due("ns", "t-0", 1015.0)
    assert not cfg.due("ns", "t-0", 1143.0)
    assert cfg.due("ns", "t-0", 1144.0)
    for i in range(3300):  # trials that finished are no longer polled: the pace comes back
        cfg.done_polling("ns", f"t-{i}")
    assert cfg.poll_interval() == 15.0
    assert cfg.due("ns", "t-3500", 1015.0)


def test_no_client_side_limit_no_pacing():
    cfg = _cfg(0.0)
    for i in range(3600):
        cfg.due("ns", f"t-{i}", 1000.0)
    assert cfg.poll_interval() == 15.0 and cfg.due("ns", "t-0", 1015.0)

