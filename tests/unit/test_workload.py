import json

from kubetune.core.round_plan import label_value
from kubetune.workload import render_pod

from .factories import study, trial


def test_parameters_reach_the_pod_as_env_never_through_a_shell():
    s = study()
    t = trial(3, {"learning_rate": 0.1, "cmd": "$(rm -rf /); `id`", "flag": True})
    pod = render_pod(s, t, "r-3-a1", 1)
    c = pod["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert json.loads(env["KUBETUNE_PARAMS"])["cmd"] == "$(rm -rf /); `id`"
    assert env["KUBETUNE_PARAM_CMD"] == "$(rm -rf /); `id`" and env["KUBETUNE_PARAM_FLAG"] == "true"
    assert c["command"] == ["python", "t.py"]  # untouched: no shell wrapper, no interpolation
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "Trial"
    assert pod["metadata"]["labels"]["kubetune.io/trial"] == "r-3"


def test_the_template_passes_through_untouched():
    s = study(template={"metadata": {"labels": {"kueue.x-k8s.io/queue-name": "gpu"}, "annotations": {"a": "b"}},
                        "spec": {"priorityClassName": "high", "nodeSelector": {"gpu": "a100"},
                                 "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
                                 "securityContext": {"runAsUser": 1000},
                                 "containers": [{"name": "train", "image": "img", "command": ["python"],
                                                 "env": [{"name": "KUBETUNE_SEED", "value": "spoof"}, {"name": "X", "value": "1"}],
                                                 "resources": {"limits": {"nvidia.com/gpu": 2}}}]}})
    pod = render_pod(s, trial(0, {}), "p", 1)
    assert pod["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu"
    assert pod["spec"]["priorityClassName"] == "high" and pod["spec"]["nodeSelector"] == {"gpu": "a100"}
    assert pod["spec"]["securityContext"] == {"runAsUser": 1000}
    c = pod["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["X"] == "1" and env["KUBETUNE_SEED"] == "0"  # ours win
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "2"


def test_long_names_make_valid_unique_label_values():
    a, b = label_value("x" * 80), label_value("x" * 79 + "y")
    assert len(a) <= 63 and len(b) <= 63 and a != b
