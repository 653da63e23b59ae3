"""Admission control in front of database work: a bounded number of requests in flight, a short
bounded queue, and a fast `503` with `Retry-After` for the rest.

Why: every request that reaches a route may take a database connection and a worker thread.
Without a bound, 200 concurrent clients queued on the connection pool for its whole 30 s timeout
and then got 500s. `Gate` admits at most `api.max_inflight` requests at once (the pool holds one
connection for each, plus a reserve: `ApiConfig.pool_size`); up to `api.queue` more wait, first
in first out, at most `api.queue_wait` seconds; any other request is answered at once with
`503 {"detail": "server busy, retry later"}` and a `Retry-After` of `api.retry_after` seconds,
stretched up to `api.retry_after_max` while refusals outnumber answers (`Gate.retry_after`).

A request whose client has gone while it waited is dropped when its turn comes, before any
database work (`client_gone`; only after a wait of `GONE_CHECK_AFTER` seconds or more: the check
cost ~10% of the CPU of a node read, and a client gives up after seconds, not milliseconds).
`/healthz` and `/metrics` are not gated: they must answer while the API is busy.

A request that stops doing database work of its own before it ends gives its slot back early
(`give_back`): a `POST /api/v1/nodes` parked in the enrolment batcher waits for a writer that holds
its own connection (`nodes.enroll_batch`), so the slot it held would only keep the batch small.
Everything here runs on the event loop thread; nothing locks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections import deque

import anyio
from prometheus_client import CollectorRegistry, Counter, Gauge
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Answered while the API is saturated (their few database queries use the pool's reserve).
UNGATED = frozenset({"/healthz", "/readyz", "/metrics"})
GONE_CHECK_AFTER = 0.25  # seconds in the queue after which an admitted request is checked for a gone client
# Paths under these prefixes are not gated either: files with no database work, and long-lived
# event streams, which would otherwise hold a slot each for minutes (8 open dashboard pages would
# take every slot); their own bound is elsewhere (`dgxie.web.StreamSlots`). Given by the app.


class Gate:
    """A FIFO limit on concurrent work: `limit` holders, at most `queue` waiters of `wait` s each,
    and no more waiters than the measured completion rate clears in `wait` seconds (a request
    that would time out in the queue anyway is refused at once, without occupying it).

    It also says how long a refused client should wait (`retry_after()`): at least `backoff`
    seconds, more while refusals outnumber half the requests completed in the last second, and
    twice the limit (every second, the wait is scaled by that ratio, at most doubled or halved,
    within `backoff` and `backoff_max`). Refusing is cheap but not free: under 1,000 clients a fixed 2 s sent ~400
    retries a second, and answering them took the CPU the admitted requests needed."""

    def __init__(self, limit: int, queue: int, wait: float, backoff: int = 1, backoff_max: int = 30) -> None:
        self.limit, self.queue, self.wait = limit, queue, wait
        self.backoff, self.backoff_max = backoff, max(backoff, backoff_max)
        self.inflight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._retry = float(backoff)
        self._window = self._rate_since = time.monotonic()
        self._done = self._refused = self._rate_done = 0
        self.rate = 0.0  # admitted requests completed per second (moving average; 0 until measured)
        self._busy = False  # a request waited since the rate window started

    def retry_after(self) -> int:
        """Seconds for the `Retry-After` of a refusal now (counts that refusal)."""
        self._refused += 1
        now = time.monotonic()
        if now - self._window >= 1.0:
            ratio = self._refused / max(self._done / 2, 2.0 * self.limit)  # a few refusals are no load
            self._retry = min(max(self._retry * min(max(ratio, 0.5), 2.0), self.backoff), self.backoff_max)
            self._window, self._done, self._refused = now, 0, 0
        return math.ceil(self._retry)

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @property
    def free(self) -> bool:
        """Whether `acquire()` would admit at once (no wait)."""
        return self.inflight < self.limit and not self._waiters

    async def acquire(self) -> str | None:
        """None once a slot is held (release it with `release()`), else why not: "queue full"
        (refused at once) or "wait" (no slot came free within `wait` seconds)."""
        if self.free:
            self.inflight += 1
            return None
        if len(self._waiters) >= self.queue or (self.rate and len(self._waiters) >= self.rate * self.wait):
            return "queue full"  # or so long that, at the measured rate, it would not move within `wait`
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self._busy = True
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
        self._rate_done += 1
        now = time.monotonic()
        if now - self._rate_since >= 1.0:
            # Only a busy second measures what the API clears: completions after a quiet spell
            # (1 in 60 s) would read as a rate of 0.02/s and refuse every waiter of the next burst.
            if self._busy and now - self._rate_since <= 2.0:
                measured = self._rate_done / (now - self._rate_since)
                self.rate = measured if not self.rate else (self.rate + measured) / 2
            self._rate_since, self._rate_done, self._busy = now, 0, bool(self._waiters)
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                self._done += 1
                return
        self.inflight -= 1
        self._done += 1

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


SLOT = "dgxie.admission.slot"  # the scope key of an admitted request's `Slot`


class Slot:
    """An admitted request's hold on the gate, released once: by `give_back` or at its end."""

    __slots__ = ("_gate",)

    def __init__(self, gate: Gate) -> None:
        self._gate: Gate | None = gate

    def release(self) -> None:
        if self._gate is not None:
            gate, self._gate = self._gate, None
            gate.release()


def give_back(scope: Scope) -> None:
    """Release the request's admission slot now: it does no more database work on a connection
    of its own (no-op for an ungated request, or one that gave it back already)."""
    slot = scope.get(SLOT)
    if slot is not None:
        slot.release()


def busy_response(retry_after: int) -> tuple[Message, Message]:
    """The ASGI messages of the deliberate 503 (same JSON shape as every dgxie error)."""
    body = json.dumps({"detail": "server busy, retry later"}).encode()
    start: Message = {"type": "http.response.start", "status": 503, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(retry_after).encode())]}
    return start, {"type": "http.response.body", "body": body}


class Admission:
    """Pure ASGI middleware: every HTTP request but `UNGATED` and `ungated_prefixes` passes the `Gate` first."""

    def __init__(self, app: ASGIApp, gate: Gate, registry: CollectorRegistry,
                 ungated_prefixes: tuple[str, ...] = ()) -> None:
        self.app, self.gate, self.ungated_prefixes = app, gate, ungated_prefixes
        self.shed = Counter("dgxie_http_shed", "Requests refused with 503 by admission control", ["reason"],
                            registry=registry)
        self.gone = Counter("dgxie_http_client_gone", "Admitted requests dropped: the client had gone",
                            registry=registry)
        Gauge("dgxie_http_inflight", "Requests doing work now", registry=registry).set_function(
            lambda: gate.inflight)
        Gauge("dgxie_http_queued", "Requests waiting for admission", registry=registry).set_function(
            lambda: gate.waiting)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNGATED or scope["path"].startswith(self.ungated_prefixes):
            await self.app(scope, receive, send)
            return
        # A request admitted at once, or after a short wait, is not checked for a gone client:
        # the check cost ~10% of the CPU of a node read, and a client gives up after seconds.
        since = None if self.gate.free else time.monotonic()
        refused = await self.gate.acquire()
        if refused is not None:
            self.shed.labels(refused).inc()
            for msg in busy_response(self.gate.retry_after()):
                await send(msg)
            return
        slot = scope[SLOT] = Slot(self.gate)
        try:
            if since is not None and time.monotonic() - since >= GONE_CHECK_AFTER:
                gone, receive = await client_gone(receive)
                if gone:
                    self.gone.inc()
                    return
            await self.app(scope, receive, send)
        finally:
            slot.release()
