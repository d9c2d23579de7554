"""Metrics: reading trial curves from Prometheus, and the operator's own metrics."""
