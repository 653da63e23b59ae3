"""The app's error answers, one home for the router's exception handlers (`app._errors`) and the
hot path ahead of it (`api.hotpath`): every error is `{"detail": str}` (docs/api.md)."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from dgxie.context import Context
from dgxie.errors import DgxieError


def dgxie_error(exc: DgxieError) -> JSONResponse:
    """A refusal of dgxie's own (`DgxieError`): its status and detail."""
    return JSONResponse({"detail": exc.detail}, status_code=exc.status)


def db_unavailable(ctx: Context, exc: Exception) -> JSONResponse:
    """The one place a database outage becomes an answer: 503 + Retry-After, and one log line per
    outage (`Availability.down`), not a traceback per request."""
    ctx.db_health.down(exc)
    return JSONResponse({"detail": "database unavailable"}, status_code=503,
                        headers={"Retry-After": str(ctx.settings.api.retry_after)})
