"""The FastAPI app for one `Context`: routers, middleware, error mapping, metrics, lifespan.

The context is built by the composition root (`dgxie.compose.build_context`); this module only
turns it into an ASGI app. The lifespan starts the context's background services through one
`Supervisor` (in order) and stops them in reverse when the server shuts down.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from dgxie import __version__, db, web
from dgxie.api import agent as agent_api
from dgxie.api import answers, boot, firmware_files, install, openapi, ops, readers, registry
from dgxie.api import handoff as handoff_api
from dgxie.api import mirror as mirror_api
from dgxie.api.admission import Admission, Gate
from dgxie.api.fastpath import BootFastPath, fast_protocol
from dgxie.api.hotpath import HotPath
from dgxie.api.limits import BodyLimit, RefuseNul
from dgxie.api.metrics import EnrollCollector, HttpMetrics, NodeStateCollector
from dgxie.api.v1 import router as v1_router
from dgxie.background import Supervisor
from dgxie.context import Context
from dgxie.errors import DgxieError
from dgxie.firmware.metrics import FirmwareCollector
from dgxie.mirror.queries import MirrorCollector
from dgxie.validation import describe_errors

log = logging.getLogger("dgxie")


def _errors(app: FastAPI, ctx: Context) -> None:
    async def _db_unavailable(_: Request, exc: Exception) -> JSONResponse:
        return answers.db_unavailable(ctx, exc)

    for cls in db.UNAVAILABLE:
        app.add_exception_handler(cls, _db_unavailable)

    @app.exception_handler(DgxieError)
    async def _dgxie(_: Request, exc: DgxieError) -> JSONResponse:
        return answers.dgxie_error(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # the same `{"detail": str}` as every other error (docs/api.md), e.g. `query.limit: ...`
        return JSONResponse({"detail": describe_errors(exc.errors())}, status_code=422)

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse({"detail": "internal error"}, status_code=500)


def create_app(ctx: Context) -> FastAPI:
    """The ASGI app for one context; its lifespan runs `ctx.services`. An instance whose role is
    `boot` serves what nodes fetch (boot, install, agent, handoff, mirrors, firmware files) and
    /healthz, /readyz, /metrics, but not the admin API (/api/v1) nor the dashboard: those are the
    `api` instances' (docs/configuration.md, "Instances")."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # sync routes and dependencies run in AnyIO's threads; max_inflight of them are admitted
        anyio.to_thread.current_default_thread_limiter().total_tokens = ctx.settings.api.threads
        supervisor = Supervisor(ctx.services)
        await supervisor.start()
        try:
            yield
        finally:
            readers.close(app.state)  # their kept connections back to the pool
            await supervisor.stop()

    app = FastAPI(title="dgxie", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Bare-metal provisioning for GPU clusters",
                  # dgxie's metrics are Prometheus's (/metrics); FastAPI's own OpenTelemetry check
                  # read the environment on every request (~3% of a trivial route, py-spy)
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    app.state.ctx = ctx
    for collector in (NodeStateCollector(ctx.sessions), EnrollCollector(app.state),
                      FirmwareCollector(ctx.sessions, ctx.site),
                      MirrorCollector(ctx.sessions)):
        ctx.registry.register(collector)
    api = ctx.settings.api
    admin = ctx.settings.instance.role != "boot"  # a boot instance serves nodes, not operators
    if admin:  # innermost: inside the gate and the metrics, before the router
        app.add_middleware(HotPath, ctx=ctx)
    app.add_middleware(HttpMetrics, registry=ctx.registry)  # counts and times admitted requests
    app.add_middleware(Admission, gate=Gate(api.max_inflight, api.queue, api.queue_wait, api.retry_after,
                                            api.retry_after_max), registry=ctx.registry,
                       ungated_prefixes=web.UNGATED_PREFIXES)
    app.add_middleware(BodyLimit, max_bytes=api.max_body_bytes)  # outermost: refuses before queueing
    app.add_middleware(RefuseNul)  # NUL in a path or query: 422 before anything reads it
    _errors(app, ctx)
    app.include_router(ops.router)
    app.include_router(firmware_files.router)
    if admin:
        app.include_router(v1_router, prefix="/api/v1")
    app.include_router(registry.router)  # OCI mirrors: /v2/ (distribution API, read-only)
    app.include_router(mirror_api.router)
    app.include_router(agent_api.router)
    app.include_router(handoff_api.router)  # before install's /boot/n/{token}/{artifact}
    app.include_router(install.router)
    if admin:
        web.install(app)  # the dashboard (/ui/) and the offline API docs (/docs)
    app.include_router(boot.router)  # last: its /boot/{name:path} (iPXE binaries) would shadow /boot/n/...
    openapi.install(app)  # roles, every error status, the one Error body (dgxie/api/openapi.py)
    return app


def http_protocol(ctx: Context) -> type[Any]:
    """uvicorn's HTTP protocol class with the boot fast path in front (dgxie/api/fastpath.py)."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol as base  # type: ignore[assignment]
    return fast_protocol(base, BootFastPath(ctx))
