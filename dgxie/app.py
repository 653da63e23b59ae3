"""FastAPI factory and lifespan: wires configuration, database, routers and servers.

`build_context()` turns validated settings into what the rest of dgxie needs (engine, session
factory, `Site`); the CLI uses it too, so both entry points wire dgxie the same way.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from dgxie import __version__, db
from dgxie.api import boot, ops
from dgxie.api.limits import BodyLimit
from dgxie.api.metrics import HttpMetrics, NodeStateCollector
from dgxie.api.v1 import router as v1_router
from dgxie.boot.profiles import sync_config_profiles
from dgxie.config import Settings
from dgxie.crypto import SecretBox, load_or_create_key
from dgxie.errors import DgxieError
from dgxie.site import ProfileSpec, RoleSpec, Site

log = logging.getLogger("dgxie")


@dataclass
class Context:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    site: Site
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    extras: dict[str, Any] = field(default_factory=dict)


def build_site(settings: Settings) -> Site:
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    box = SecretBox(load_or_create_key(settings.data_dir, secret))
    roles = {n: RoleSpec(name=n, groups=tuple(r.groups), bootstrap=r.bootstrap, playbook=r.playbook,
                         script=r.script, drain=r.drain, resume=r.resume) for n, r in settings.roles.items()}
    profiles = tuple(ProfileSpec(name=n, image=p.image, template=p.template, role=p.role,
                                 description=p.description, vars=p.vars) for n, p in settings.profiles.items())
    return Site(box=box, data_dir=settings.data_dir, public_url=settings.public_url,
                subnets=tuple(s.cidr for s in settings.dhcp.subnets), roles=roles, profiles=profiles,
                discovery=settings.dhcp.discovery, discovery_image=settings.boot.discovery_image)


def build_context(settings: Settings, *, migrate: bool = True) -> Context:
    """Migrate (by default), connect, and sync config-declared profiles."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if migrate:
        db.upgrade(settings.database_url)
    engine = db.make_engine(settings.database_url)
    ctx = Context(settings=settings, engine=engine, sessions=db.session_factory(engine), site=build_site(settings))
    with db.session_scope(ctx.sessions) as s:
        sync_config_profiles(s, ctx.site)
    return ctx


def _errors(app: FastAPI) -> None:
    @app.exception_handler(DgxieError)
    async def _dgxie(_: Request, exc: DgxieError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type", "")}
                  for e in exc.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse({"detail": "internal error"}, status_code=500)


def create_app(ctx: Context) -> FastAPI:
    """The ASGI app for one context. Servers (DHCP, TFTP, ...) attach in the lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hooks = ctx.extras.get("lifespan_hooks", [])
        for start in hooks:
            await start(ctx)
        try:
            yield
        finally:
            for stop in ctx.extras.get("shutdown_hooks", []):
                await stop(ctx)

    app = FastAPI(title="dgxie", version=__version__, lifespan=lifespan,
                  description="Bare-metal provisioning for GPU clusters")
    app.state.ctx = ctx
    ctx.registry.register(NodeStateCollector(ctx.sessions))
    app.add_middleware(HttpMetrics, registry=ctx.registry)
    app.add_middleware(BodyLimit, max_bytes=ctx.settings.api.max_body_bytes)
    _errors(app)
    app.include_router(ops.router)
    app.include_router(boot.router)
    app.include_router(v1_router, prefix="/api/v1")
    return app
