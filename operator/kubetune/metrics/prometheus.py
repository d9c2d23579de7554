"""A small client of the Prometheus HTTP API: range queries with timeouts, retries,
an optional bearer token and TLS settings, and curves joined from metric and step samples."""
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
from ..sdk import DIVERGED_NAME, METRIC_NAME
from .promql import curve_queries, round_query


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

    def query_range(self, query: str, start: float, end: float, step: float) -> list[dict]:
        data = self._get(
            "/api/v1/query_range",
            {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"},
        )
        return list(data.get("result", []))

    def observe(self, namespace: str, trial: str, metric: str, start: float, end: float) -> Observed:
        """The trial's objective curve between start and end (Unix seconds), and the step
        at which the objective diverged, if the trial reported one."""
        step = resolution(start, end)
        mq, sq = curve_queries(namespace, trial, metric)
        steps = self.query_range(sq, start, end, step)
        return Observed(join_curve(self.query_range(mq, start, end, step), steps), diverged_step(steps))

    def observe_round(self, namespace: str, round_name: str, metric: str, start: float,
                      end: float) -> dict[str, Observed]:
        """Every trial's curve and diverged step in a Round between start and end (Unix
        seconds), by trial name, from one range query."""
        by_trial: dict[str, list[dict]] = {}
        for s in self.query_range(round_query(namespace, round_name, metric), start, end, resolution(start, end)):
            by_trial.setdefault(s.get("metric", {}).get("kubetune_trial", ""), []).append(s)
        out = {}
        for trial, series in by_trial.items():
            metric_series = [s for s in series if s.get("metric", {}).get("__name__") == METRIC_NAME]
            steps = [s for s in series if s.get("metric", {}).get("__name__") != METRIC_NAME]
            out[trial] = Observed(join_curve(metric_series, steps), diverged_step(steps))
        return out

    def curve(self, namespace: str, trial: str, metric: str, start: float, end: float) -> list[CurvePoint]:
        """The trial's objective curve between start and end (Unix seconds)."""
        return self.observe(namespace, trial, metric, start, end).curve


class Observed(NamedTuple):
    curve: list[CurvePoint]
    diverged_step: int | None


def resolution(start: float, end: float) -> float:
    """The query step: 1 s, coarser when the range would pass 10,000 points (Prometheus
    refuses more than 11,000 per series)."""
    return max(1.0, math.ceil((end - start) / 10000))


def diverged_step(step_series: list[dict]) -> int | None:
    """The first step at which the objective diverged, from the diverged-step series."""
    found = [int(float(v)) for s in step_series if s.get("metric", {}).get("__name__") == DIVERGED_NAME
             for _, v in s.get("values", []) if math.isfinite(float(v))]
    return min(found, default=None)


def join_curve(metric_series: list[dict], step_series: list[dict]) -> list[CurvePoint]:
    """Pair each metric sample with the step reported at the same evaluation time; the
    latest value for a step wins."""
    steps = {float(t): int(float(v)) for s in step_series if s.get("metric", {}).get("__name__") != DIVERGED_NAME
             for t, v in s.get("values", [])}
    by_step: dict[int, float] = {}
    for s in metric_series:
        for t, v in s.get("values", []):
            step = steps.get(float(t))
            value = float(v)
            if step is not None and math.isfinite(value):
                by_step[step] = value
    return [CurvePoint(step=k, value=by_step[k]) for k in sorted(by_step)]
