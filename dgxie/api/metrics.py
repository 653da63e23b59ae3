"""Prometheus metrics for the API: request counts and latency, nodes by state (read at scrape),
the enrolment batcher's waiters and batches."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dgxie.models import Node


class NodeStateCollector(Collector):
    """`dgxie_nodes{state=...}`, counted in the database at scrape time."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[Metric]:
        g = GaugeMetricFamily("dgxie_nodes", "Nodes by lifecycle state", labels=["state"])
        with self.sessions() as s:
            for state, count in s.execute(select(Node.state, func.count()).group_by(Node.state)):
                g.add_metric([state], count)
        yield g


class EnrollCollector(Collector):
    """`dgxie_enroll_waiting` (single enrolments waiting for the batch writer, their admission
    slots given back), `dgxie_enroll_writing` (in the batch being written now),
    `dgxie_enroll_batches_total` and `dgxie_enroll_batch_rows_total` (nodes written together:
    rows / batches is the mean batch), read off the app's `EnrollBatcher` at
    scrape time (none before the first `POST /api/v1/nodes`: all 0)."""

    def __init__(self, state: Any) -> None:
        self.state = state  # the app's `state`, where `api.v1.nodes` keeps its batcher

    def collect(self) -> Iterator[Metric]:
        batcher = getattr(self.state, "enroll_batcher", None)
        yield GaugeMetricFamily("dgxie_enroll_waiting", "Enrolments waiting for the batch writer",
                                value=batcher.waiting if batcher else 0)
        yield GaugeMetricFamily("dgxie_enroll_writing", "Enrolments in the batch being written",
                                value=batcher.writing if batcher else 0)
        yield CounterMetricFamily("dgxie_enroll_batches", "Enrolment batches written",
                                  value=batcher.batches if batcher else 0)
        yield CounterMetricFamily("dgxie_enroll_batch_rows", "Nodes written by enrolment batches",
                                  value=batcher.rows if batcher else 0)


def route_label(scope: Scope) -> str:
    """The matched route's template with its mount prefix (`/api/v1/nodes/{ref}`), never the raw
    path, so labels stay few."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if template is None:
        return "unmatched"
    fmt = getattr(route, "path_format", template)
    try:
        concrete = fmt.format(**{k: str(v) for k, v in scope.get("path_params", {}).items()})
    except (KeyError, IndexError, ValueError):
        return str(template)
    path = str(scope.get("path", ""))
    prefix = path[: len(path) - len(concrete)] if concrete and path.endswith(concrete) else ""
    return prefix + str(template)


class HttpMetrics:
    """Counts requests by route template and status; times them."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter("dgxie_http_requests", "HTTP requests", ["method", "route", "status"],
                                registry=registry)
        self.latency = Histogram("dgxie_http_request_seconds", "HTTP request latency", ["route"],
                                 registry=registry,
                                 buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def wrapped(msg: Message) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
            await send(msg)

        try:
            await self.app(scope, receive, wrapped)
        finally:
            path = route_label(scope)
            self.requests.labels(scope["method"], path, str(status)).inc()
            self.latency.labels(path).observe(time.perf_counter() - start)
