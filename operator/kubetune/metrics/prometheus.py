"""A small client of the Prometheus HTTP API: raw samples with timeouts, retries, an
optional bearer token and TLS settings, and curves joined from metric and step samples."""
from __future__ import annotations

import http.client
import json
import math
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import NamedTuple

from ..api.trial import CurvePoint
from ..sdk import DIVERGED_NAME, METRIC_NAME, STEP_NAME
from .promql import raw_samples, round_selector


class PrometheusError(RuntimeError):
    """Prometheus could not be reached or refused the query; the message says which."""


@dataclass
class PrometheusClient:
    url: str
    token: str | None = None
    ca_file: str | None = None
    insecure_skip_verify: bool = False
    timeout: float = 5.0
    retries: int = 2
    backoff: float = 0.5

    def _context(self) -> ssl.SSLContext | None:
        if not self.url.startswith("https"):
            return None
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if self.insecure_skip_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _get(self, path: str, params: dict[str, str]) -> dict:
        url = self.url.rstrip("/") + path + "?" + urllib.parse.urlencode(params)
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                req = urllib.request.Request(url, headers=headers)
                with urllib.request.urlopen(req, timeout=self.timeout, context=self._context()) as resp:
                    doc = json.loads(resp.read())
                if doc.get("status") != "success":
                    raise PrometheusError(f"query failed: {doc.get('errorType')}: {doc.get('error')}")
                return doc["data"]
            except urllib.error.HTTPError as e:
                if 400 <= e.code < 500 and e.code != 429:
                    body = e.read()[:300].decode(errors="replace")
                    raise PrometheusError(f"Prometheus refused the query ({e.code}): {body}") from None
                last = e
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
                last = e  # unreachable, reset, or an answer cut short: worth another try
            if attempt < self.retries:
                time.sleep(self.backoff * 2**attempt)
        raise PrometheusError(f"Prometheus at {self.url} is unreachable: {last}")

    def samples(self, selector: str, start: float, end: float) -> list[dict]:
        """Every sample of the series `selector` matches that was scraped after `start` and
        up to `end` (Unix seconds), once each, with its scrape's timestamp."""
        data = self._get("/api/v1/query", {"query": raw_samples(selector, end - start), "time": f"{end:.3f}"})
        return list(data.get("result", []))

    def observe_round(self, namespace: str, round_name: str, metric: str, start: float,
                      end: float) -> dict[str, Observed]:
        """Every trial's curve and diverged step in a Round between start and end (Unix
        seconds), by trial name, from one query."""
        by_trial: dict[str, list[dict]] = {}
        for s in self.samples(round_selector(namespace, round_name, metric), start, end):
            by_trial.setdefault(s.get("metric", {}).get("kubetune_trial", ""), []).append(s)
        return {trial: Observed(join_curve(series), diverged_step(series)) for trial, series in by_trial.items()}


class Observed(NamedTuple):
    curve: list[CurvePoint]
    diverged_step: int | None


def diverged_step(series: list[dict]) -> int | None:
    """The first step at which the objective diverged, from a trial's diverged-step series."""
    found = [int(float(v)) for s in series if s.get("metric", {}).get("__name__") == DIVERGED_NAME
             for _, v in s.get("values", []) if math.isfinite(float(v))]
    return min(found, default=None)


def _scraped_from(series: dict) -> tuple[tuple[str, str], ...]:
    """The target a series was scraped from: its labels less the name and the metric."""
    return tuple(sorted((k, v) for k, v in series.get("metric", {}).items() if k not in ("__name__", "metric")))


def join_curve(series: list[dict]) -> list[CurvePoint]:
    """One trial's curve from its raw samples: each objective sample paired with the step
    scraped with it (one scrape stamps all its samples with one timestamp), per target, so
    a restarted trial's pods are not mixed up; for a step reported more than once (a slow
    step scraped twice, a retried pod) the latest sample wins."""
    steps: dict[tuple, dict[float, int]] = {}
    objectives: list[tuple[tuple, float, float]] = []
    for s in series:
        name, target = s.get("metric", {}).get("__name__"), _scraped_from(s)
        for t, v in s.get("values", []):
            if name == STEP_NAME:
                steps.setdefault(target, {})[float(t)] = int(float(v))
            elif name == METRIC_NAME:
                objectives.append((target, float(t), float(v)))
    latest: dict[int, tuple[float, float]] = {}  # step -> (time, value)
    for target, t, value in objectives:
        step = steps.get(target, {}).get(t)
        if step is not None and math.isfinite(value) and t >= latest.get(step, (-math.inf, 0.0))[0]:
            latest[step] = (t, value)
    return [CurvePoint(step=k, value=latest[k][1]) for k in sorted(latest)]
