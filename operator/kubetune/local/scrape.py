"""Read a trial's current step and metrics straight from its SDK endpoint."""
from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from typing import NamedTuple

from prometheus_client.parser import text_string_to_metric_families

from ..sdk import DIVERGED_NAME, METRIC_NAME, STEP_NAME


class Scrape(NamedTuple):
    step: int
    metrics: dict[str, float]
    diverged_step: int | None = None  # where the objective first became NaN or infinite


def scrape(url: str, timeout: float = 2.0) -> Scrape | None:
    """The trial's step and metrics now, or None when the endpoint is not up (yet), or the
    answer was cut short (a trial that exits while it is being read): the next poll, or
    the trial's final result, tells the rest."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (127.0.0.1 only)
            text = resp.read().decode()
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError):
        return None
    step: int | None = None
    diverged: int | None = None
    metrics: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == STEP_NAME:
                    step = int(sample.value)
                elif sample.name == DIVERGED_NAME:
                    diverged = int(sample.value)
                elif sample.name == METRIC_NAME:
                    metrics[sample.labels.get("metric", "")] = float(sample.value)
    except ValueError:  # a truncated line
        return None
    return Scrape(step, metrics, diverged) if step is not None else None
