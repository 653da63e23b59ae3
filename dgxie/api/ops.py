"""Operational endpoints: `/healthz` and `/metrics` (Prometheus text format)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from dgxie import __version__
from dgxie.api.deps import get_ctx

router = APIRouter(tags=["ops"])


@router.get("/healthz", responses={
    200: {"content": {"application/json": {"example": {"status": "ok", "version": __version__}}}},
    503: {"description": "The database does not answer.", "content": {"application/json": {
        "schema": {"type": "object", "properties": {"status": {"type": "string"}, "database": {"type": "string"}}},
        "example": {"status": "unhealthy", "database": "OperationalError"}}}}})
def healthz(request: Request) -> JSONResponse:
    """200 when the database answers, 503 otherwise."""
    try:
        with get_ctx(request).engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return JSONResponse({"status": "unhealthy", "database": exc.__class__.__name__}, status_code=503)
    return JSONResponse({"status": "ok", "version": __version__})


@router.get("/metrics",
            responses={200: {"content": {"text/plain": {"example": 'dgxie_nodes{state="ready"} 12.0\n'}}}})
def metrics(request: Request) -> Response:
    """Prometheus metrics in the text exposition format: HTTP requests, nodes by state, boot path,
    firmware, mirrors."""
    return Response(generate_latest(get_ctx(request).registry), media_type=CONTENT_TYPE_LATEST)
