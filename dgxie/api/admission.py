"""Admission control in front of database work: a bounded number of requests in flight, a short
bounded queue, and a fast `503` with `Retry-After` for the rest.

Why: every request that reaches a route may take a database connection and a worker thread.
Without a bound, 200 concurrent clients queued on the connection pool for its whole 30 s timeout
and then got 500s. `Gate` admits at most `api.max_inflight` requests at once (the pool holds one
connection for each, plus a reserve: `ApiConfig.pool_size`); up to `api.queue` more wait, first
in first out, at most `api.queue_wait` seconds; any other request is answered at once with
`503 {"detail": "server busy, retry later"}` and `Retry-After: api.retry_after`.

A request whose client has gone while it waited is dropped when its turn comes, before any
database work (`client_gone`). `/healthz` and `/metrics` are not gated: they must answer while the
API is busy.
Everything here runs on the event loop thread; nothing locks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque

import anyio
from prometheus_client import CollectorRegistry, Counter, Gauge
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Answered while the API is saturated (their few database queries use the pool's reserve).
UNGATED = frozenset({"/healthz", "/metrics"})


class Gate:
    """A FIFO limit on concurrent work: `limit` holders, at most `queue` waiters of `wait` s each."""

    def __init__(self, limit: int, queue: int, wait: float) -> None:
        self.limit, self.queue, self.wait = limit, queue, wait
        self.inflight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self) -> str | None:
        """None once a slot is held (release it with `release()`), else why not: "queue full"
        (refused at once) or "wait" (no slot came free within `wait` seconds)."""
        if self.inflight < self.limit and not self._waiters:
            self.inflight += 1
            return None
        if len(self._waiters) >= self.queue:
            return "queue full"
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            async with asyncio.timeout(self.wait):
                await fut
        except TimeoutError:
            if fut.done() and not fut.cancelled():
                return None  # a slot was handed over just as the wait ran out: use it
            self._forget(fut)
            return "wait"
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # handed a slot we will not use: pass it on
            else:
                self._forget(fut)
            raise
        return None

    def release(self) -> None:
        """Hand the slot to the oldest live waiter, or free it."""
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        self.inflight -= 1

    def _forget(self, fut: asyncio.Future[None]) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(fut)


async def _now(receive: Receive) -> Message | None:
    """The next ASGI message if it is already there, else None (never waits)."""
    with anyio.CancelScope() as scope:
        scope.cancel()
        return await receive()
    return None


async def client_gone(receive: Receive) -> tuple[bool, Receive]:
    """Whether the client has disconnected, without losing what it sent: the messages read to
    find out are replayed by the returned `receive`. A body still arriving counts as present."""
    seen: list[Message] = []
    first = await _now(receive)
    if first is not None:
        seen.append(first)
        if first["type"] == "http.disconnect":
            return True, receive
        if not first.get("more_body", False):
            second = await _now(receive)  # after the whole request only a disconnect can come
            if second is not None:
                if second["type"] == "http.disconnect":
                    return True, receive
                seen.append(second)

    async def replay() -> Message:
        return seen.pop(0) if seen else await receive()

    return False, replay


def busy_response(retry_after: int) -> tuple[Message, Message]:
    """The ASGI messages of the deliberate 503 (same JSON shape as every dgxie error)."""
    body = json.dumps({"detail": "server busy, retry later"}).encode()
    start: Message = {"type": "http.response.start", "status": 503, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(retry_after).encode())]}
    return start, {"type": "http.response.body", "body": body}


class Admission:
    """Pure ASGI middleware: every HTTP request but `UNGATED` passes the `Gate` first."""

    def __init__(self, app: ASGIApp, gate: Gate, retry_after: int, registry: CollectorRegistry) -> None:
        self.app, self.gate, self.retry_after = app, gate, retry_after
        self.shed = Counter("dgxie_http_shed", "Requests refused with 503 by admission control", ["reason"],
                            registry=registry)
        self.gone = Counter("dgxie_http_client_gone", "Admitted requests dropped: the client had gone",
                            registry=registry)
        Gauge("dgxie_http_inflight", "Requests doing work now", registry=registry).set_function(
            lambda: gate.inflight)
        Gauge("dgxie_http_queued", "Requests waiting for admission", registry=registry).set_function(
            lambda: gate.waiting)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNGATED:
            await self.app(scope, receive, send)
            return
        refused = await self.gate.acquire()
        if refused is not None:
            self.shed.labels(refused).inc()
            for msg in busy_response(self.retry_after):
                await send(msg)
            return
        try:
            gone, receive = await client_gone(receive)
            if gone:
                self.gone.inc()
                return
            await self.app(scope, receive, send)
        finally:
            self.gate.release()
