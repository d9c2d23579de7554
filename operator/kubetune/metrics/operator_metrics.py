"""The operator's own Prometheus metrics, served for the chart's ServiceMonitor to scrape."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()

RECONCILE_SECONDS = Histogram(
    "kubetune_reconcile_duration_seconds", "Time spent in one reconcile pass.", ["kind"], registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RECONCILE_ERRORS = Counter(
    "kubetune_reconcile_errors_total", "Reconcile passes that raised an error.", ["kind"], registry=REGISTRY
)
TRIALS = Gauge(
    "kubetune_trials", "Trials of each Round by phase.", ["namespace", "round", "phase"], registry=REGISTRY
)
STOP_DECISIONS = Counter(
    "kubetune_stop_decisions_total", "Trials stopped early, by rule.", ["rule"], registry=REGISTRY
)
PROMETHEUS_ERRORS = Counter(
    "kubetune_prometheus_query_errors_total", "Failed queries to Prometheus.", registry=REGISTRY
)
TRIALS_CREATED = Counter("kubetune_trials_created_total", "Trials created.", registry=REGISTRY)
PODS_CREATED = Counter("kubetune_pods_created_total", "Trial pods created.", registry=REGISTRY)
QUEUE_WAIT = Histogram(
    "kubetune_workqueue_queue_duration_seconds",
    "Time a key waited in the work queue before its pass started "
    "(priority: a successor's next step, an event's key, or the sweep's).",
    ["kind", "priority"], registry=REGISTRY, buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
QUEUE_DEPTH = Gauge("kubetune_workqueue_depth", "Keys waiting in the work queue.", registry=REGISTRY)
ACTING = Gauge(
    "kubetune_operator_acting",
    "1 while this replica runs passes; 0 while a peer holds the peering (or before it was read). "
    "Across the replicas of one peering, the sum is 1.",
    registry=REGISTRY,
)
PUT_OFF = Counter(
    "kubetune_passes_put_off_total",
    "Passes put off until what the object's last pass created reached the watch (its expectations).",
    ["kind"], registry=REGISTRY,
)
