"""An API server that cannot serve now (restarting, overloaded) is not an error of the operator's."""
import urllib3
from kubernetes.client.rest import ApiException

from kubetune.controller.handlers import _unavailable


def test_5xx_429_and_no_answer_are_unavailable_a_bad_request_is_not():
    assert _unavailable(ApiException(status=503, reason="Service Unavailable"))
    assert _unavailable(ApiException(status=429, reason="Too Many Requests"))
    assert _unavailable(urllib3.exceptions.MaxRetryError(None, "/", "refused"))
    assert _unavailable(ConnectionRefusedError())
    assert not _unavailable(ApiException(status=422, reason="Invalid"))
    assert not _unavailable(ApiException(status=404, reason="Not Found"))
