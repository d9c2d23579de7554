"""kopf's retried requests are warnings; a request that finally fails stays an error."""
import logging

from kubetune.log_levels import RetriedRequests


def _record(name: str, level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


def test_a_retried_request_is_a_warning_and_the_last_attempt_an_error():
    f = RetriedRequests()
    retried = _record("kopf.objects", logging.ERROR, "Request attempt 2/9 failed; will retry: GET /x -> ClientConnectorError()")
    assert f.filter(retried) and retried.levelno == logging.WARNING and retried.levelname == "WARNING"
    final = _record("kopf.objects", logging.ERROR, "Request attempt 9/9 failed; escalating: GET /x -> ClientConnectorError()")
    assert f.filter(final) and final.levelno == logging.ERROR
    ours = _record("kubetune", logging.ERROR, "Request attempt 2/9 failed; will retry: not kopf's")
    assert f.filter(ours) and ours.levelno == logging.ERROR
