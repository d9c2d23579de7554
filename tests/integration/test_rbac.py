"""RBAC for real: the operator runs as a ServiceAccount with exactly the Role the Helm chart
renders (helm template -> kubectl apply -> `kubectl create token`), against an API server
with RBAC authorization on, and completes a Round; a request outside the Role is refused;
and a permission the operator needs but lacks is named clearly and retried slowly, not in
a hot loop. Refused requests are counted on the API server's side, from its audit log.
"""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any, Iterator

import kubernetes
import pytest
import yaml

from ..chart.helm import render
from ..envtest import ApiServer
from .conftest import NS, create, live, round_manifest, serving, study_manifest, wait_for
from .operator_process import OperatorProcess

RBAC_KINDS = ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")


class AuditedApiServer(ApiServer):
    """ApiServer (RBAC,Node) that also writes an audit log of every request a ServiceAccount
    of the test namespace makes, so refused requests are counted where they are refused."""

    def __init__(self, audit_dir: Path):
        audit_dir.mkdir(parents=True, exist_ok=True)
        self.audit_log = audit_dir / "audit.log"
        policy = audit_dir / "policy.yaml"
        policy.write_text(yaml.safe_dump({
            "apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
            "rules": [{"level": "Metadata", "userGroups": [f"system:serviceaccounts:{NS}"]}, {"level": "None"}],
        }))
        super().__init__(flags=[f"--audit-policy-file={policy}", f"--audit-log-path={self.audit_log}",
                                "--audit-log-mode=blocking", "--audit-log-format=json"])

    def refused(self, user: str) -> list[dict]:
        """The requests of `user` the API server answered 403, oldest first."""
        if not self.audit_log.exists():
            return []
        events = (json.loads(line) for line in self.audit_log.read_text().splitlines() if line.strip())
        return [e for e in events if e.get("stage") == "ResponseComplete" and e["user"]["username"] == user
                and (e.get("responseStatus") or {}).get("code") == 403]


@pytest.fixture()
def apiserver(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[AuditedApiServer]:
    """This module's API server: the conftest one plus the audit log (the `world` fixture uses it)."""
    with serving(AuditedApiServer(tmp_path / "audit"), monkeypatch) as server:
        yield server  # type: ignore[misc]


def chart_rbac() -> list[dict]:
    """What `helm template` renders for a release in NS with default values, RBAC kinds only."""
    return [d for d in render(namespace=NS) if d["kind"] in RBAC_KINDS]


def install(server: ApiServer, docs: list[dict], tmp_path: Path) -> tuple[str, Path]:
    """kubectl apply the documents as the admin, get the ServiceAccount a token with
    `kubectl create token`, and write a kubeconfig that logs in with it (nothing else)."""
    server.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    (sa,) = [d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"]
    token = server.kubectl("create", "token", sa, "-n", NS, "--duration=1h").stdout.strip()
    admin = yaml.safe_load(server.kubeconfig.read_text())  # type: ignore[union-attr]
    cluster = admin["clusters"][0]["cluster"]
    config = tmp_path / "operator.kubeconfig"
    config.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "operator",
        "clusters": [{"name": "envtest", "cluster": {"server": cluster["server"],
                                                     "certificate-authority": cluster["certificate-authority"]}}],
        "users": [{"name": sa, "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "envtest", "user": sa, "namespace": NS}}],
    }))
    config.chmod(0o600)
    return f"system:serviceaccount:{NS}:{sa}", config


def _phase(api: Any, round_name: str = "r1") -> str | None:
    return (live(api, "rounds").get(round_name, {}).get("status") or {}).get("phase")


def _ready(obj: dict) -> dict:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"), {})


async def test_the_charts_role_is_enough_for_a_round_and_nothing_more(world, tmp_path):
    api, server = world["api"], world["server"]
    docs = chart_rbac()
    assert {d["kind"] for d in docs} == {"ServiceAccount", "Role", "RoleBinding"}  # namespaced install
    user, config = install(server, docs, tmp_path)
    as_operator = kubernetes.config.new_client_from_config(config_file=str(config))
    who = kubernetes.client.AuthenticationV1Api(as_operator).create_self_subject_review({})
    assert who.status.user_info.username == user  # the token, not the admin's certificate

    op = OperatorProcess(config, tmp_path / "operator.log").start()
    try:
        await create(api, study_manifest())
        started = time.monotonic()
        await create(api, round_manifest(max_trials=3, parallelism=3))
        await wait_for(lambda: _phase(api) == "Succeeded", 90, "the Round to succeed",
                       detail=lambda: (_phase(api), op.log()[-3000:]))
        took = time.monotonic() - started
        assert len(live(api, "trials")) == 3
        assert op.metric("kubetune_pods_created_total") == 3
        # the Round went through without a single refused request: the Role is sufficient
        # (a refused Event or finalizer patch would not stop a Round; the audit log sees it)
        assert server.refused(user) == [], server.refused(user)
        print(f"\nRound of 3 trials as {user}: {took:.1f} s, 0 requests refused")
    finally:
        op.stop()

    # outside the Role: refused by the API server, whatever the client
    core = kubernetes.client.CoreV1Api(as_operator)
    custom = kubernetes.client.CustomObjectsApi(as_operator)
    refusals = {
        "list secrets": lambda: core.list_namespaced_secret(NS, _request_timeout=10),
        "delete a Study": lambda: custom.delete_namespaced_custom_object(
            "kubetune.io", "v1alpha1", NS, "studies", "demo", _request_timeout=10),
        "create a Round": lambda: custom.create_namespaced_custom_object(
            "kubetune.io", "v1alpha1", NS, "rounds", round_manifest("r2"), _request_timeout=10),
        "patch a pod": lambda: core.patch_namespaced_pod(
            "r1-0", NS, {"metadata": {"labels": {"x": "y"}}},
            _request_timeout=10),
        "list pods in another namespace": lambda: core.list_namespaced_pod("default", _request_timeout=10),
    }
    for what, call in refusals.items():
        with pytest.raises(kubernetes.client.ApiException) as info:
            call()
        assert info.value.status == 403, what
    assert "demo" in live(api, "studies")
    assert len(server.refused(user)) == len(refusals)


async def test_a_missing_permission_is_named_and_retried_slowly_not_in_a_hot_loop(world, tmp_path):
    api, server = world["api"], world["server"]
    docs = chart_rbac()
    (role,) = [d for d in docs if d["kind"] == "Role"]
    full_rules = json.loads(json.dumps(role["rules"]))
    pods = next(r for r in role["rules"] if r["apiGroups"] == [""] and "pods" in r["resources"])
    pods["verbs"] = [v for v in pods["verbs"] if v != "create"]  # the chart's Role, less `create` on pods
    user, config = install(server, docs, tmp_path)

    op = OperatorProcess(config, tmp_path / "operator.log").start()
    try:
        await create(api, study_manifest())
        await create(api, round_manifest(max_trials=2, parallelism=2))
        await wait_for(lambda: server.refused(user), 60, "the first refused request",
                       detail=lambda: op.log()[-3000:])
        first = time.monotonic()

        # (a) said clearly: on each Trial, in the operator's log and in an Event
        def stuck() -> list[dict]:
            return [t for t in live(api, "trials").values() if _ready(t).get("reason") == "Forbidden"]
        await wait_for(lambda: len(stuck()) == 2, 20, "Ready=False/Forbidden on both Trials",
                       detail=lambda: live(api, "trials"))
        for trial in stuck():
            ready = _ready(trial)
            assert ready["status"] == "False"
            assert ready["message"].startswith(
                f"forbidden: the operator's ServiceAccount may not create pods in namespace {NS}")
            assert f'User "{user}" cannot create resource "pods"' in ready["message"]  # the API server's words
            assert "grant it in the operator's Role" in ready["message"]
            assert 'resources ["pods"], verbs ["create"]' in ready["message"]
        assert "may not create pods in namespace tuning" in op.log()
        assert "Traceback" not in op.log()

        def events() -> list[tuple]:
            return [(e.type, e.reason, e.involved_object.kind, e.involved_object.name, e.message)
                    for e in api.core.list_namespaced_event(NS, _request_timeout=10).items]
        await wait_for(lambda: {(kind, name) for type_, reason, kind, name, message in events()
                                if type_ == "Warning" and reason == "Forbidden" and "may not create pods" in message}
                       == {("Trial", t) for t in live(api, "trials")}, 20,
                       "a Warning Event on each Trial (kubectl describe)", detail=events)

        # (b) no hot loop: what the API server refused over the next seconds, by its audit log
        await asyncio.sleep(max(0.0, first + 15 - time.monotonic()))
        window = time.monotonic() - first
        refused = server.refused(user)
        print(f"\n{len(refused)} requests refused in {window:.1f} s: "
              f"{sorted({(e['verb'], e['objectRef']['resource']) for e in refused})}")
        assert {(e["verb"], e["objectRef"]["resource"]) for e in refused} == {("create", "pods")}
        assert 1 <= len(refused) <= 2  # one attempt per Trial; a 5 s retry would have made 6 or more
        assert op.metric('kubetune_reconcile_errors_total{kind="Trial"}') <= 2
        assert _phase(api) != "Succeeded" and not api.list("pods")

        # granted: the next (slow) retry goes through without a restart, and the condition goes
        role["rules"] = full_rules
        server.kubectl("apply", "-f", "-", input=yaml.safe_dump(role))
        await wait_for(lambda: _phase(api) == "Succeeded", 120, "the Round to succeed once granted",
                       detail=lambda: (_phase(api), op.log()[-3000:]))
        assert not stuck()
        assert op.proc is not None and op.proc.poll() is None
        recovered = time.monotonic() - first
        # no fast retry went through: the next pass was the safety-net resync (30 s) or the 403's slow retry (60 s)
        assert recovered >= 25
        assert len(server.refused(user)) == len(refused)
        print(f"recovered {recovered:.0f} s after the first refusal, without a restart")
    finally:
        op.stop()
