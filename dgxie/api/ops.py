"""Operational endpoints: `/healthz` (liveness), `/readyz` (readiness) and `/metrics` (Prometheus
text format)."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dgxie import __version__, db
from dgxie.api.deps import get_ctx
from dgxie.api.openapi import ERROR_REF
from dgxie.context import Context
from dgxie.db import PROBE_FRESH

router = APIRouter(tags=["ops"])


def health_answer(error: str | None) -> tuple[int, dict[str, str]]:
    """/healthz's status and body for a probe's result (the route and the boot fast path)."""
    if error is None:
        return 200, {"status": "ok", "version": __version__}
    return 503, {"status": "unhealthy", "database": error}


@router.get("/healthz", responses={
    200: {"content": {"application/json": {"example": {"status": "ok", "version": __version__}}}},
    503: {"description": "The database does not answer.", "content": {"application/json": {
        "schema": {"type": "object", "properties": {"status": {"type": "string"}, "database": {"type": "string"}}},
        "example": {"status": "unhealthy", "database": "OperationalError"}}}}})
async def healthz(request: Request) -> JSONResponse:
    """200 when the database answers, 503 (with Retry-After) otherwise: 200 from the background
    probe's last `SELECT 1` if it answered at most `db.PROBE_FRESH` s ago, else from one run now. Not
    behind admission control (dgxie.api.admission) and, in `dgxie serve`, answered by the boot fast
    path before the ASGI stack, so it answers while the API is saturated."""
    ctx = get_ctx(request)
    fresh, error = ctx.db_probe.last(PROBE_FRESH)
    if not fresh or error is not None:  # "ok" may be PROBE_FRESH s old; "unhealthy" is checked live
        error = await run_in_threadpool(ctx.db_probe.check)
    status, body = health_answer(error)
    headers = {"Retry-After": str(ctx.settings.api.retry_after)} if status != 200 else None
    return JSONResponse(body, status_code=status, headers=headers)


READY_FRESH = 1.0  # s a /readyz answer is reused: a probe storm costs one query a second at most


def readiness(ctx: Context) -> str | None:
    """None when the database answers and its schema is at `db.SCHEMA_HEAD`, else why not (the
    503's `detail`). One `SELECT` on alembic_version (`db.schema_revision`), no Alembic import."""
    try:
        found = db.schema_revision(ctx.engine)
    except db.UNAVAILABLE as exc:
        ctx.db_probe.health.down(exc)  # the outage's one log line, as a failing request would log it
        return "database unavailable"
    if found == db.SCHEMA_HEAD:
        return None
    if found is None:
        return f"database schema missing: run `dgxie db upgrade` (this dgxie needs revision {db.SCHEMA_HEAD})"
    if db.schema_behind(found):
        return (f"database schema behind: revision {found}, this dgxie needs {db.SCHEMA_HEAD} "
                "(run `dgxie db upgrade`)")
    return f"database schema ahead: revision {found} is newer than this dgxie ({db.SCHEMA_HEAD})"


class ReadyCache:
    """The last readiness answer, reused for READY_FRESH s; concurrent probes share one check."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.last: tuple[float, str | None] | None = None

    async def answer(self, ctx: Context) -> str | None:
        async with self.lock:
            hit = self.last
            if hit is None or time.monotonic() - hit[0] > READY_FRESH:
                hit = (time.monotonic(), await run_in_threadpool(readiness, ctx))
                self.last = hit
            return hit[1]


READY_EXAMPLE = {"detail": "database schema behind: revision 0011, this dgxie needs 0012 (run `dgxie db upgrade`)"}


@router.get("/readyz", responses={
    200: {"content": {"application/json": {"example": {"status": "ready"}}}},
    503: {"description": "The database does not answer, or its schema is not this dgxie's.",
          "content": {"application/json": {"schema": ERROR_REF, "example": READY_EXAMPLE}}}})
async def readyz(request: Request) -> JSONResponse:
    """200 `{"status": "ready"}` when the database answers and its schema is at this code's head
    revision, else 503 `{"detail": why}` with Retry-After (database unavailable, schema missing,
    behind or ahead). For a load balancer or Kubernetes readiness probe; `/healthz` is liveness
    (the database answers). The answer is reused for READY_FRESH s; not gated by admission control,
    not on the boot fast path (one cached check a second is cheap enough)."""
    ctx = get_ctx(request)
    cache = getattr(request.app.state, "ready_cache", None)
    if cache is None:
        cache = request.app.state.ready_cache = ReadyCache()
    reason = await cache.answer(ctx)
    if reason is None:
        return JSONResponse({"status": "ready"})
    return JSONResponse({"detail": reason}, status_code=503,
                        headers={"Retry-After": str(ctx.settings.api.retry_after)})


@router.get("/metrics",
            responses={200: {"content": {"text/plain": {"example": 'dgxie_nodes{state="ready"} 12.0\n'}}}})
def metrics(request: Request) -> Response:
    """Prometheus metrics in the text exposition format: HTTP requests, nodes by state, boot path,
    firmware, mirrors."""
    return Response(generate_latest(get_ctx(request).registry), media_type=CONTENT_TYPE_LATEST)
