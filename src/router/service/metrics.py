"""Prometheus metrics of the service, safe with several worker processes.

With ``PROMETHEUS_MULTIPROC_DIR`` set (``router serve`` sets it to a fresh directory
when it starts more than one worker), every worker writes its samples there and
``/metrics`` on any worker reports the sum over all of them; without it, this process's.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

__all__ = ["CONFLICT_RETRIES", "DECISIONS", "IDEMPOTENT_REPLAYS", "LEDGER_FAILURES", "observe", "render"]

REQUESTS = Counter("router_http_requests", "HTTP requests by endpoint and status", ["method", "endpoint", "status"])
LATENCY = Histogram(
    "router_http_request_seconds",
    "HTTP request latency by endpoint",
    ["method", "endpoint"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
)
DECISIONS = Counter("router_decisions", "Decisions recorded, by strategy, status and fallback cause", ["strategy", "status", "fallback"])
CONFLICT_RETRIES = Counter("router_reserve_conflict_retries", "Decisions taken again because another writer took the stock")
LEDGER_FAILURES = Counter("router_ledger_write_failures", "Requests that failed because the ledger could not be written")
IDEMPOTENT_REPLAYS = Counter("router_idempotent_replays", "Requests answered from a stored Idempotency-Key response")


def observe(method: str, endpoint: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method=method, endpoint=endpoint, status=str(status)).inc()
    LATENCY.labels(method=method, endpoint=endpoint).observe(seconds)


def render() -> tuple[bytes, str]:
    """The exposition text of every worker (or of this process without a multiprocess directory)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
