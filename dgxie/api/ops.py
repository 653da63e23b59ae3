"""Operational endpoints: `/healthz` and `/metrics` (Prometheus text format)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dgxie import __version__
from dgxie.api.deps import get_ctx
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


@router.get("/metrics",
            responses={200: {"content": {"text/plain": {"example": 'dgxie_nodes{state="ready"} 12.0\n'}}}})
def metrics(request: Request) -> Response:
    """Prometheus metrics in the text exposition format: HTTP requests, nodes by state, boot path,
    firmware, mirrors."""
    return Response(generate_latest(get_ctx(request).registry), media_type=CONTENT_TYPE_LATEST)
