"""The Helm chart, rendered by the real helm binary and checked object by object."""
from __future__ import annotations

import kubernetes_validate
import pytest

from .helm import CHART, ROOT, allows, helm, render

VARIANTS = {
    "default": [],
    "cluster-wide-ha": ["watch.clusterWide=true", "replicas=2", "prometheus.url=http://prom:9090",
                        "prometheus.bearerTokenSecret=prom-token", "prometheus.caSecret=prom-ca"],
    "namespaces-and-monitors": ["watch.namespaces={team-a,team-b}", "trials.podMonitor=true",
                                "operatorMetrics.serviceMonitor=true"],
}


def test_lint_strict():
    res = helm("lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in res.stdout


@pytest.mark.parametrize("variant", VARIANTS)
def test_rendered_objects_are_valid_kubernetes(variant):
    docs = render(*VARIANTS[variant])
    kinds = [d["kind"] for d in docs]
    assert "Deployment" in kinds and "ServiceAccount" in kinds and "Service" in kinds
    for d in docs:
        if d["apiVersion"].startswith(("monitoring.coreos.com", "kopf.dev")):
            continue  # not in the Kubernetes schemas; shape checked below
        kubernetes_validate.validate(d, "1.30", strict=True)


def test_the_operator_runs_unprivileged_with_probes_and_limits():
    (dep,) = [d for d in render() if d["kind"] == "Deployment"]
    pod = dep["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    # a replica paused by the peering is alive (/livez) but not ready (/healthz answers 503)
    assert c["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert c["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["resources"]["limits"]["memory"] and c["resources"]["requests"]["cpu"]
    # one replica runs standalone: no --peering at all (an absent peering would pause it forever)
    assert "--namespace=tuning" in c["args"] and not any(a.startswith("--peering") for a in c["args"])


def test_the_operator_args_are_ones_the_command_accepts():
    from kubetune.cli import build_parser

    for variant in VARIANTS:
        (dep,) = [d for d in render(*VARIANTS[variant]) if d["kind"] == "Deployment"]
        args = build_parser().parse_args(dep["spec"]["template"]["spec"]["containers"][0]["args"])
        assert args.command == "operator" and args.health_port == 8080
        assert args.peering == ("kubetune" if variant == "cluster-wide-ha" else None), variant


def test_ha_turns_on_peering_and_cluster_wide_uses_a_cluster_role():
    docs = render(*VARIANTS["cluster-wide-ha"])
    (dep,) = [d for d in docs if d["kind"] == "Deployment"]
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--peering=kubetune" in args and "--all-namespaces" in args
    (peering,) = [d for d in docs if d["kind"] == "ClusterKopfPeering"]
    assert peering["metadata"]["name"] == "kubetune"  # the one --peering names
    env_list = dep["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "POD_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in env_list
    assert any(d["kind"] == "ClusterRole" for d in docs) and not any(d["kind"] == "Role" for d in docs)
    env = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["KUBETUNE_PROMETHEUS_URL"] == "http://prom:9090" and env["KUBETUNE_PROMETHEUS_TOKEN_FILE"]


def test_one_role_per_watched_namespace_and_monitors():
    docs = render(*VARIANTS["namespaces-and-monitors"])
    roles = {d["metadata"]["namespace"] for d in docs if d["kind"] == "Role"}
    assert roles == {"team-a", "team-b"}
    (pm,) = [d for d in docs if d["kind"] == "PodMonitor"]
    assert pm["spec"]["selector"]["matchExpressions"][0]["key"] == "kubetune.io/trial"
    assert pm["spec"]["namespaceSelector"]["matchNames"] == ["team-a", "team-b"]
    assert any(d["kind"] == "ServiceMonitor" for d in docs)


@pytest.mark.parametrize("variant", VARIANTS)
def test_rbac_is_least_privilege(variant):
    for d in render(*VARIANTS[variant]):
        if d["kind"] not in ("Role", "ClusterRole"):
            continue
        for rule in d["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], f"wildcard in {rule}"
            assert "secrets" not in rule["resources"] and "configmaps" not in rule["resources"]
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])
        rules = d["rules"]
        assert allows(rules, "kubetune.io", "trials", "create")
        assert not allows(rules, "kubetune.io", "rounds", "create")  # the operator never creates user objects
        assert not allows(rules, "kubetune.io", "studies", "delete")
        assert not allows(rules, "", "pods", "patch")


def test_values_schema_refuses_bad_values():
    for bad in ["replicas=0", "watch.namespaces={Bad_NS}", "prometheus.url=prom:9090", "image.pullPolicy=Sometimes",
                "unknownKey=1"]:
        res = helm("template", "t", str(CHART), "--set", bad, check=False)
        assert res.returncode != 0, bad
        assert "schema" in res.stderr.lower() or "values don't meet" in res.stderr.lower(), res.stderr


def test_chart_crds_are_the_generated_ones():
    for path in (ROOT / "crds").glob("*.yaml"):
        assert (CHART / "crds" / path.name).read_text() == path.read_text(), f"copy {path} into the chart"


def test_notes_tell_the_user_what_to_do_next():
    res = helm("install", "--dry-run", "t", str(CHART), "-n", "tuning")
    assert "kubectl get tuning -n tuning" in res.stdout and "prometheus.url is empty" in res.stdout
    assert "It runs standalone" in res.stdout
    res = helm("install", "--dry-run", "t", str(CHART), "-n", "tuning", "--set", "replicas=3")
    assert 'It runs 3 replicas in kopf\'s peering "kubetune"' in res.stdout
