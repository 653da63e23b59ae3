"""Operational endpoints: `/healthz` and `/metrics` (Prometheus text format)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from dgxie import __version__
from dgxie.api.deps import get_ctx
from dgxie.db import UNAVAILABLE

router = APIRouter(tags=["ops"])


@router.get("/healthz")
def healthz(request: Request) -> JSONResponse:
    """200 when the database answers, 503 (with Retry-After) otherwise. Not behind admission
    control (dgxie.api.admission): it answers while the API is saturated, on a reserved connection
    and worker thread (ApiConfig: `pool_size`, `threads`)."""
    ctx = get_ctx(request)
    try:
        with ctx.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        if isinstance(exc, UNAVAILABLE):
            ctx.db_health.down(exc)
        return JSONResponse({"status": "unhealthy", "database": exc.__class__.__name__}, status_code=503,
                            headers={"Retry-After": str(ctx.settings.api.retry_after)})
    return JSONResponse({"status": "ok", "version": __version__})


@router.get("/metrics")
def metrics(request: Request) -> Response:
    return Response(generate_latest(get_ctx(request).registry), media_type=CONTENT_TYPE_LATEST)
