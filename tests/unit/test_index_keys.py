"""Each index files each object under every key the passes look it up by: a Round under
its Study and its name (kopf's index handler), a Trial under its Round and (its Round's
name) under its own (the operator's TrialIndex). Names may repeat across kinds and groups without a clash."""
from __future__ import annotations

import asyncio
import copy
from collections import defaultdict
from typing import Any
from unittest import mock

import kopf

from kubetune.controller import handlers
from kubetune.controller.handlers import OperatorConfig
from kubetune.controller.sweep import rounds, unfinished_trials

from .factories import round_, study, trial


def _body(model) -> dict:
    return model.model_dump(by_alias=True, mode="json", exclude_none=True)


def _indexes(cfg: OperatorConfig, objects: dict[str, list[dict]]) -> dict[str, Any]:
    """The indexes as kopf fills them from the registered index handlers: key -> values."""
    registry = kopf.OperatorRegistry()
    handlers.register(registry, cfg)
    by_id = {h.id: h.fn for h in registry._indexing.get_all_handlers()}
    out: dict[str, Any] = {}
    for index, bodies in objects.items():
        if index == "trial_index":  # the operator's own (trial_index.py), as its watch fills it
            for body in bodies:
                cfg.trial_store.put(copy.deepcopy(body))
            out[index] = cfg.trial_store
            continue
        filed: dict[Any, list] = defaultdict(list)
        for body in bodies:
            meta = body["metadata"]
            found = asyncio.run(by_id[index](namespace=meta["namespace"], name=meta["name"], body=body,
                                             spec=body.get("spec", {}), status=body.get("status", {}),
                                             labels=meta.get("labels", {})))
            for key, value in found.items():
                filed[key].append(value)
        out[index] = dict(filed)
    return out


def test_a_trial_named_like_a_round_is_found_as_itself_and_never_taken_for_the_round():
    cfg = OperatorConfig(kube=mock.Mock())  # type: ignore[arg-type]
    r, other = _body(round_()), _body(round_("other"))
    running = _body(trial(0, {"learning_rate": 0.01}))
    running["status"] = {"phase": "Running"}
    done = _body(trial(1, {"learning_rate": 0.02}, phase="Succeeded", objective=0.5))
    named_r = _body(trial(0, {"learning_rate": 0.03}, round_name="other"))
    named_r["metadata"]["name"] = "r"  # a Trial of Round "other" that is named like Round "r"
    cfg.indexes = _indexes(cfg, {"study_index": [_body(study())], "round_index": [r, other],
                                 "trial_index": [running, done, named_r], "pod_index": []})

    assert handlers._current(cfg, ("Round", "ns", "r"))["kind"] == "Round"
    assert handlers._current(cfg, ("Trial", "ns", "r"))["spec"]["roundRef"]["name"] == "other"
    assert handlers._current(cfg, ("Trial", "ns", "r-0"))["status"]["phase"] == "Running"
    assert handlers._current(cfg, ("Trial", "ns", "nope")) is None

    assert sorted(rounds(cfg.indexes)) == [("Round", "ns", "other"), ("Round", "ns", "r")]
    assert sorted(unfinished_trials(cfg.indexes)) == [("Trial", "ns", "r"), ("Trial", "ns", "r-0")]

    taken = handlers._Others(cfg.indexes["trial_index"], "ns", "r")  # names Round r may not use
    assert "r" in taken and "r-0" not in taken and "r-7" not in taken
