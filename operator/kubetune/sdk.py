"""The trial SDK: what training code imports to report to kubetune.

Light on purpose: it needs prometheus-client only, so a trial image does not pull
kopf, optuna or the Kubernetes client.

    from kubetune import sdk
    params = sdk.params()                      # the configuration of this trial
    for step in range(1, sdk.max_steps() + 1):
        ...
        sdk.report(step, val_loss=loss, val_accuracy=acc)

Metrics are served as Prometheus gauges (names in METRIC_NAME / STEP_NAME) on
port $KUBETUNE_METRICS_PORT (default 8000). At exit — normal, exception, or the
SIGTERM of an early stop — the final metrics go to the pod's termination message
($KUBETUNE_TERMINATION_PATH, default /dev/termination-log), so a missed scrape
never loses a result.
"""
from __future__ import annotations

import atexit
import json
import math
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from typing import Any

METRIC_NAME = "kubetune_trial_metric"
STEP_NAME = "kubetune_trial_step"
DIVERGED_NAME = "kubetune_trial_diverged_step"
TERMINATION_LIMIT = 4096
LABELS = ("kubetune_namespace", "kubetune_study", "kubetune_round", "kubetune_trial")
"""Labels on every sample. Prefixed so they never clash with the target labels Prometheus adds
(namespace, pod, ...); Prometheus would otherwise rename them to exported_*."""

_lock = threading.Lock()
_state: dict[str, Any] = {"step": None, "last": {}, "min": {}, "max": {}, "diverged": False,
                          "diverged_step": None, "infeasible": None, "error": None}
_started = False
_finished = False


def params() -> dict[str, Any]:
    """This trial's parameters (Study baseline + Round fixed values + sampled values)."""
    return json.loads(os.environ.get("KUBETUNE_PARAMS", "{}"))


def seed() -> int:
    return int(os.environ.get("KUBETUNE_SEED", "0"))


def max_steps(default: int = 100) -> int:
    """The step the Round expects the training to reach (Study/Round maxSteps)."""
    return int(os.environ.get("KUBETUNE_MAX_STEPS", default))


def report(step: int, **metrics: float) -> None:
    """Publish the metrics of one step. A NaN or infinite objective marks the run diverged,
    at this step: the operator (or `kubetune run`) ends it as Infeasible at its next look,
    whether or not the training code checks `diverged()`."""
    _ensure_started()
    objective = os.environ.get("KUBETUNE_OBJECTIVE")
    with _lock:
        _state["step"] = int(step)
        for name, value in metrics.items():
            value = float(value)
            _state["last"][name] = value
            if math.isfinite(value):
                _state["min"][name] = min(_state["min"].get(name, value), value)
                _state["max"][name] = max(_state["max"].get(name, value), value)
            elif name == objective or objective is None:
                _state["diverged"] = True
                if _state["diverged_step"] is None:
                    _state["diverged_step"] = int(step)
        _append_report(int(step), metrics)


_reports: Any = None


def _append_report(step: int, metrics: dict[str, float]) -> None:
    """Every report, one JSON line each, to KUBETUNE_REPORTS_PATH when it is set: `kubetune
    run` reads them, so a local curve has every step however fast the trial reports and
    however slowly it is polled. (On a cluster, Prometheus' scrape resolution stays.)"""
    global _reports
    path = os.environ.get("KUBETUNE_REPORTS_PATH")
    if not path:
        return
    if _reports is None:
        _reports = open(path, "a", buffering=1, encoding="utf-8")
    values = {k: _json_number(float(v)) for k, v in metrics.items()}
    _reports.write(json.dumps({"step": step, "metrics": values}, separators=(",", ":")) + "\n")


def diverged() -> bool:
    """Has the objective become NaN or infinite? Training code should stop then."""
    return bool(_state["diverged"])


def infeasible(reason: str) -> None:
    """Declare this configuration infeasible (e.g. out of GPU memory); the trial ends Infeasible."""
    with _lock:
        _state["infeasible"] = reason[:500]


def termination_message() -> str:
    """The JSON the operator reads from the pod's termination message."""
    with _lock:
        doc = {
            "step": _state["step"],
            "last": {k: _json_number(v) for k, v in _state["last"].items()},
            "min": dict(_state["min"]),
            "max": dict(_state["max"]),
            "diverged": _state["diverged"],
            "divergedStep": _state["diverged_step"],
            "infeasible": _state["infeasible"],
            "error": _state["error"],
        }
    text = json.dumps(doc, separators=(",", ":"))
    if len(text) > TERMINATION_LIMIT:  # keep the objective, drop the rest
        obj = os.environ.get("KUBETUNE_OBJECTIVE", "")
        for key in ("last", "min", "max"):
            doc[key] = {k: v for k, v in doc[key].items() if k == obj}
        doc["error"] = (doc["error"] or "")[:1000] or None
        text = json.dumps(doc, separators=(",", ":"))
    return text


def _json_number(v: float) -> float | str:
    return v if math.isfinite(v) else str(v)


class _Collector:
    """Yields the step and every metric from one snapshot, so a scrape never pairs a
    new value with an old step."""

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        labels = {k: os.environ.get(k.upper(), "") for k in LABELS}
        with _lock:
            step, last, diverged_step = _state["step"], dict(_state["last"]), _state["diverged_step"]
        if step is None:
            return
        g_step = GaugeMetricFamily(STEP_NAME, "Last training step reported by the trial.", labels=list(labels))
        g_step.add_metric(list(labels.values()), step)
        g_metric = GaugeMetricFamily(
            METRIC_NAME, "Last value of each metric reported by the trial.", labels=[*labels, "metric"]
        )
        for name, value in sorted(last.items()):
            g_metric.add_metric([*labels.values(), name], value)
        yield g_step
        yield g_metric
        if diverged_step is not None:
            g_div = GaugeMetricFamily(DIVERGED_NAME, "First step at which the objective was NaN or infinite.",
                                      labels=list(labels))
            g_div.add_metric(list(labels.values()), diverged_step)
            yield g_div


def _ensure_started() -> None:
    global _started
    if _started:
        return
    _started = True
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry()
    registry.register(_Collector())  # type: ignore[arg-type]
    port = int(os.environ.get("KUBETUNE_METRICS_PORT", "8000"))
    addr = os.environ.get("KUBETUNE_METRICS_ADDR", "0.0.0.0")
    start_http_server(port, addr=addr, registry=registry)
    atexit.register(_finish)
    previous_hook = sys.excepthook

    def hook(tp: type[BaseException], value: BaseException, tb: Any) -> None:
        with _lock:
            _state["error"] = "".join(traceback.format_exception_only(tp, value)).strip()[-1500:]
        _finish()
        previous_hook(tp, value, tb)

    sys.excepthook = hook
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, frame: Any) -> None:
    _finish()
    os._exit(143)


def _finish() -> None:
    """Write the termination message once."""
    global _finished
    if _finished:
        return
    _finished = True
    path = os.environ.get("KUBETUNE_TERMINATION_PATH", "/dev/termination-log")
    try:
        with open(path, "w") as f:
            f.write(termination_message())
    except OSError as e:  # outside a pod the default path may not exist
        print(f"kubetune.sdk: could not write the termination message to {path}: {e}", file=sys.stderr)
