"""PromQL for trial curves, with every label value escaped."""
from __future__ import annotations

import math
import re

from ..sdk import DIVERGED_NAME, METRIC_NAME, STEP_NAME


def escape(value: str) -> str:
    """A PromQL string literal body: backslash, double quote and newlines escaped, so no
    parameter, trial name or metric name can close the string and change the query."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")


def round_selector(namespace: str, round_name: str, metric: str) -> str:
    """The series of every trial of a Round: the objective, the step and the diverged step
    (one series per trial, name and scraped pod). Only the objective series carry a
    `metric` label; the `"<metric>|"` regex also keeps the series without one (the step
    series), so one selector brings all three names and a poll costs one query per Round,
    however many trials it runs."""
    sel = f'kubetune_namespace="{escape(namespace)}",kubetune_round="{escape(round_name)}"'
    names = "|".join((METRIC_NAME, STEP_NAME, DIVERGED_NAME))
    return f'{{__name__=~"{names}",{sel},metric=~"{escape(re.escape(metric))}|"}}'


def raw_samples(selector: str, seconds: float) -> str:
    """The samples scraped in the last `seconds` (to the query's time), each once, at its
    scrape's timestamp: a range vector, asked as an instant query. A range query would
    evaluate every series at each of its steps instead, repeating the latest sample at
    every step until the next scrape (at 1-s steps and a 30-s scrape, 30 copies of each)."""
    return f"{selector}[{max(1, math.ceil(seconds * 1000))}ms]"
