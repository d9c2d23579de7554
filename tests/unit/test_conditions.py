import datetime as dt

from kubetune.api.common import get_condition, set_condition

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
T1 = T0 + dt.timedelta(minutes=5)


def test_transition_time_moves_only_when_the_status_changes():
    c = set_condition([], "Ready", True, "Valid", "ok", T0, 1)
    c = set_condition(c, "Ready", True, "Valid", "still ok", T1, 2)
    ready = get_condition(c, "Ready")
    assert ready.last_transition_time == "2026-01-01T00:00:00Z" and ready.message == "still ok"
    assert ready.observed_generation == 2
    c = set_condition(c, "Ready", False, "InvalidSpec", "min > max", T1, 3)
    assert get_condition(c, "Ready").last_transition_time == "2026-01-01T00:05:00Z"
    assert len(c) == 1


def test_messages_are_truncated_for_people_not_for_the_api_server():
    c = set_condition([], "Ready", False, "InvalidSpec", "x" * 5000, T0)
    assert len(get_condition(c, "Ready").message) == 1024
