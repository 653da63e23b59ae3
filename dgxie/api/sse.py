"""Server-Sent Events of the event log: one generator shared by the API's per-node stream and the
dashboard's fleet stream.

The stream polls the events table by id (bounded: one query per `poll` seconds, at most 1000 rows
each), sends a comment heartbeat every 15 s so proxies keep it open, and resumes after the id in
`Last-Event-ID` (or `after`). It ends after `timeout` seconds or when the client goes away;
EventSource clients reconnect by themselves with Last-Event-ID.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from dgxie.api.limits import MAX_INT
from dgxie.errors import Invalid
from dgxie.events import EventOut

HEARTBEAT_SECONDS = 15.0
BATCH = 1000


def sse(ev: EventOut) -> str:
    """One Server-Sent Events message (WHATWG HTML, server-sent events): id, event type, JSON data."""
    return f"id: {ev.id}\nevent: {ev.kind}\ndata: {json.dumps(ev.model_dump(mode='json'))}\n\n"


def resume_after(after: int, last_event_id: str | None) -> int:
    """The id to stream after: the larger of `after` and a valid `Last-Event-ID` (else 422)."""
    if last_event_id:
        if not last_event_id.isdigit() or len(last_event_id) > 10 or int(last_event_id) > MAX_INT:
            raise Invalid("Last-Event-ID: must be an event id")
        after = max(after, int(last_event_id))
    return after


def unnamed(ev: EventOut) -> str:
    """One message without an event type (EventSource's `onmessage` gets every kind)."""
    return f"id: {ev.id}\ndata: {json.dumps(ev.model_dump(mode='json'))}\n\n"


def event_stream(request: Request, fetch: Callable[[int, int], list[EventOut]], *, after: int, timeout: float,
                 poll: float, fmt: Callable[[EventOut], str] = sse,
                 on_close: Callable[[], None] | None = None) -> StreamingResponse:
    """The events `fetch(after_id, limit)` returns, as an SSE response (each message made by `fmt`);
    `fetch` runs in the thread pool; `on_close` is called once when the stream ends, however."""

    async def gen() -> AsyncIterator[str]:
        try:
            last, deadline = after, time.monotonic() + timeout
            beat = time.monotonic()
            yield f"retry: {int(poll * 1000)}\n\n"
            while time.monotonic() < deadline and not await request.is_disconnected():
                batch = await run_in_threadpool(fetch, last, BATCH)
                for ev in batch:
                    last = ev.id
                    yield fmt(ev)
                if time.monotonic() - beat >= HEARTBEAT_SECONDS:
                    beat = time.monotonic()
                    yield ": heartbeat\n\n"
                if len(batch) < BATCH:
                    await asyncio.sleep(poll)
        finally:
            if on_close is not None:
                on_close()

    return StreamingResponse(gen(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
