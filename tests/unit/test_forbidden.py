"""A 403 from the API server is the operator's RBAC, not a passing fault: it is named (verb,
resource, namespace, where to grant it), said on the object, and retried slowly."""
import datetime as dt
import json

import kopf
import pytest
from kubernetes.client.rest import ApiException

from kubetune.api.common import get_condition, set_condition
from kubetune.controller.handlers import OperatorConfig, _forbidden, permitted
from kubetune.controller.kube import Forbidden, Kube, classify

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
SAYS = ('pods is forbidden: User "system:serviceaccount:tuning:t-kubetune" cannot create resource "pods" '
        'in API group "" in the namespace "tuning"')


def refused(status: int = 403, message: str = SAYS) -> ApiException:
    e = ApiException(status=status, reason="Forbidden" if status == 403 else "Error")
    e.body = json.dumps({"kind": "Status", "status": "Failure", "message": message, "code": status})
    return e


def test_a_403_names_the_verb_the_resource_the_namespace_and_where_to_grant_it():
    e = classify(refused(), "create", "pods", "tuning")
    assert isinstance(e, Forbidden) and isinstance(e, ApiException) and e.status == 403
    text = str(e)
    assert text.startswith("forbidden: the operator's ServiceAccount may not create pods in namespace tuning")
    assert SAYS in text  # the API server's own words: which user it was
    assert "grant it in the operator's Role" in text and "rbac.yaml" in text
    assert 'apiGroups [""], resources ["pods"], verbs ["create"]' in text
    crd = str(classify(refused(), "patch", "trials/status", "team-a", "kubetune.io"))
    assert "may not patch trials/status in namespace team-a" in crd and 'apiGroups ["kubetune.io"]' in crd


@pytest.mark.parametrize("status", [401, 404, 409, 500, 503])
def test_other_failures_stay_what_they_are(status):
    e = refused(status)
    assert classify(e, "create", "pods", "tuning") is e


def test_a_403_without_a_readable_body_is_still_named():
    e = ApiException(status=403, reason="Forbidden")
    e.body = "<html>proxy says no</html>"
    text = str(classify(e, "delete", "pods", "tuning"))
    assert "may not delete pods in namespace tuning; grant it" in text


class _Refusing:
    def __getattr__(self, name):
        def call(*args, **kwargs):
            raise refused()
        return call


class _Kube(Kube):
    core = property(lambda self: _Refusing())  # type: ignore[assignment]
    custom = property(lambda self: _Refusing())  # type: ignore[assignment]


@pytest.mark.parametrize("call, verb, resource", [
    (lambda k: k.create_pod("tuning", {}), "create", "pods"),
    (lambda k: k.delete_pod("tuning", "p"), "delete", "pods"),
    (lambda k: k.create_custom("trials", "tuning", {}), "create", "trials"),
    (lambda k: k.patch_custom_status("trials", "tuning", "t", {}), "patch", "trials/status"),
    (lambda k: k.patch_custom_meta("rounds", "tuning", "r", {}), "patch", "rounds"),
])
def test_every_call_the_operator_makes_says_what_it_was_refused(call, verb, resource):
    with pytest.raises(Forbidden) as info:
        call(_Kube(client=None))  # type: ignore[arg-type]
    assert (info.value.verb, info.value.resource, info.value.namespace) == (verb, resource, "tuning")


def test_the_object_says_forbidden_and_the_retry_is_slow():
    cfg = OperatorConfig(kube=None, clock=lambda: T0)  # type: ignore[arg-type]
    body = {"kind": "Trial", "metadata": {"name": "r1-0", "generation": 1}, "status": {"phase": "Pending"}}
    patch = kopf.Patch()
    events: list[tuple] = []
    post = lambda obj, **kw: events.append((obj["metadata"]["name"], kw["reason"], kw["message"]))  # noqa: E731
    err = _forbidden(cfg, body, patch, classify(refused(), "create", "pods", "tuning"), post)
    assert isinstance(err, kopf.TemporaryError) and err.delay == 60
    assert "may not create pods in namespace tuning" in str(err) and "retrying in 60 s" in str(err)
    conds = {c["type"]: c for c in patch["status"]["conditions"]}
    cond = conds["Ready"]
    assert (cond["type"], cond["status"], cond["reason"]) == ("Ready", "False", "Forbidden")
    assert (conds["Stalled"]["status"], conds["Stalled"]["reason"]) == ("True", "Forbidden")  # kstatus: Failed
    assert 'verbs ["create"]' in cond["message"]
    assert events == [("r1-0", "Forbidden", cond["message"])]  # `kubectl describe trial` shows it
    # said once: the same refusal again changes nothing on the object
    body["status"]["conditions"] = patch["status"]["conditions"]
    again = kopf.Patch()
    _forbidden(cfg, body, again, classify(refused(), "create", "pods", "tuning"), post)
    assert "status" not in again


def test_once_a_pass_goes_through_the_forbidden_condition_is_gone():
    metrics = set_condition([], "MetricsAvailable", True, "PrometheusQueried", "3 points", T0)
    stuck = set_condition(metrics, "Ready", False, "Forbidden", "forbidden: ...", T0)
    assert permitted(stuck) == metrics
    other = set_condition(metrics, "Ready", False, "InvalidSpec", "min > max", T0)
    assert permitted(other) == other and permitted(metrics) == metrics
    assert get_condition(permitted(stuck), "Ready") is None
