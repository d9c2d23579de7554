"""PromQL for trial curves, with every label value escaped."""
from __future__ import annotations

import re

from ..sdk import DIVERGED_NAME, METRIC_NAME, STEP_NAME


def escape(value: str) -> str:
    """A PromQL string literal body: backslash, double quote and newlines escaped, so no
    parameter, trial name or metric name can close the string and change the query."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")


def selector(namespace: str, trial: str) -> str:
    return f'kubetune_namespace="{escape(namespace)}",kubetune_trial="{escape(trial)}"'


def curve_queries(namespace: str, trial: str, metric: str) -> tuple[str, str]:
    """(metric query, step query) of one trial. `max by` folds series of restarted pods.
    The step query also brings the step at which the objective diverged, when the SDK has
    reported one, as a series of its own name: no extra query per poll."""
    sel = selector(namespace, trial)
    return (
        f'max by (kubetune_trial) ({METRIC_NAME}{{{sel},metric="{escape(metric)}"}})',
        f'max by (kubetune_trial, __name__) ({{__name__=~"{STEP_NAME}|{DIVERGED_NAME}",{sel}}})',
    )


def round_query(namespace: str, round_name: str, metric: str) -> str:
    """One query for the curves of every trial of a Round: the objective, the step and the
    diverged step, one series per trial and name (`max by` folds restarted pods). Only
    the objective series carry a `metric` label; the `"<metric>|"` regex also keeps the
    series without one (the step series), so one selector brings all three names and a
    poll costs one query per Round, however many trials it runs."""
    sel = f'kubetune_namespace="{escape(namespace)}",kubetune_round="{escape(round_name)}"'
    names = "|".join((METRIC_NAME, STEP_NAME, DIVERGED_NAME))
    return (f'max by (kubetune_trial, __name__) ({{__name__=~"{names}",{sel},'
            f'metric=~"{escape(re.escape(metric))}|"}})')
