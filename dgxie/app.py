"""FastAPI factory and lifespan: wires configuration, database, routers and servers.

`build_context()` turns validated settings into what the rest of dgxie needs (engine, session
factory, `Site`); the CLI uses it too, so both entry points wire dgxie the same way.
"""

from __future__ import annotations

import logging
import os
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
from dgxie.api import boot, firmware_files, install, ops, registry
from dgxie.api import handoff as handoff_api
from dgxie.api import mirror as mirror_api
from dgxie.api.limits import BodyLimit
from dgxie.api.metrics import HttpMetrics, NodeStateCollector
from dgxie.api.v1 import router as v1_router
from dgxie.bmc.base import Options as BmcOptions
from dgxie.catalog.profiles import sync_config_profiles
from dgxie.config import CONFIG_ENV, Settings
from dgxie.crypto import SecretBox, load_or_create_key
from dgxie.errors import DgxieError
from dgxie.firmware.metrics import FirmwareCollector
from dgxie.handoff.hooks import drain
from dgxie.handoff.runner import BootstrapWorker
from dgxie.handoff.service import check_roles
from dgxie.models import Node
from dgxie.nodes.lifecycle import ReprovisionHooks
from dgxie.nodes.power import reprovision_hook as bmc_reprovision_hook
from dgxie.site import HandoffSpec, InstallSpec, MirrorSpec, ProfileSpec, RoleSpec, Site

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
    h = settings.handoff
    handoff = HandoffSpec(enabled=h.enabled, poll_seconds=h.poll_seconds, concurrency=h.concurrency,
                          timeout_seconds=h.timeout_seconds, hook_timeout_seconds=h.hook_timeout_seconds,
                          output_tail_bytes=h.output_tail_bytes, ansible_playbook=h.ansible_playbook,
                          playbook_dir=h.playbook_dir, inventory_script=h.inventory_script,
                          templates_dir=h.templates_dir, config_path=os.environ.get(CONFIG_ENV))
    common = {"name", "kind", "keep_snapshots", "interval"}
    mirrors = tuple(MirrorSpec(name=m.name, kind=m.kind, keep_snapshots=m.keep_snapshots, interval=m.interval,
                               options=m.model_dump(mode="json", exclude=common)) for m in settings.mirrors)
    b = settings.bmc
    bmc = BmcOptions(timeout=b.timeout, retries=b.retries, per_bmc=b.per_bmc,
                     verify=str(b.ca_file) if b.ca_file else b.tls_verify)
    return Site(box=box, data_dir=settings.data_dir, public_url=settings.public_url,
                subnets=tuple(s.cidr for s in settings.dhcp.subnets), roles=roles, profiles=profiles,
                install=build_install_spec(settings), handoff=handoff, mirrors=mirrors,
                bmc=bmc, bmc_scan_concurrency=b.scan_concurrency, firmware_dir=settings.firmware.baselines,
                discovery=settings.dhcp.discovery, discovery_image=settings.boot.discovery_image)


def build_install_spec(settings: Settings) -> InstallSpec:
    st, ins = settings.site, settings.install
    return InstallSpec(global_vars=dict(settings.vars), site_name=st.name, domain=st.domain,
                       site_vars=dict(st.vars), ssh_authorized_keys=tuple(st.ssh_authorized_keys),
                       timezone=st.timezone, apt_mirrors=tuple(m.name for m in settings.mirrors if m.kind == "apt"),
                       timeout_minutes=ins.timeout_minutes, sweep_seconds=ins.sweep_seconds,
                       callback_max_bytes=ins.callback_max_bytes,
                       progress_interval_seconds=ins.progress_interval_seconds)


def build_context(settings: Settings, *, migrate: bool = True) -> Context:
    """Migrate (by default), connect, and sync config-declared profiles."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    site = build_site(settings)
    check_roles(site)
    if migrate:
        db.upgrade(settings.database_url)
    engine = db.make_engine(settings.database_url)
    ctx = Context(settings=settings, engine=engine, sessions=db.session_factory(engine), site=site)
    with db.session_scope(ctx.sessions) as s:
        sync_config_profiles(s, ctx.site)
    ctx.extras["reprovision_hooks"] = reprovision_hooks()
    return ctx


def reprovision_hooks() -> ReprovisionHooks:
    """What reprovision does around the state change: drain a ready node's scheduler first (a
    failing drain refuses the reprovision); after the commit, PXE-once + power-cycle via the BMC."""

    def drain_first(s: Session, site: Site, node: Node, actor: str) -> None:
        drain(s, site, node, actor)

    return ReprovisionHooks(before=[drain_first], after=[bmc_reprovision_hook])


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
    ctx.registry.register(FirmwareCollector(ctx.sessions, ctx.site))
    app.add_middleware(HttpMetrics, registry=ctx.registry)
    app.add_middleware(BodyLimit, max_bytes=ctx.settings.api.max_body_bytes)
    _errors(app)
    app.include_router(ops.router)
    app.include_router(firmware_files.router)
    app.include_router(v1_router, prefix="/api/v1")
    app.include_router(registry.router)  # OCI mirrors: /v2/ (distribution API, read-only)
    app.include_router(handoff_api.router)  # before install's /boot/n/{token}/{artifact}
    app.include_router(install.router)
    app.include_router(boot.router)  # last: its /boot/{name:path} (iPXE binaries) would shadow /boot/n/...
    if install.start_sweeper not in ctx.extras.setdefault("lifespan_hooks", []):
        ctx.extras["lifespan_hooks"].append(install.start_sweeper)
        ctx.extras.setdefault("shutdown_hooks", []).append(install.stop_sweeper)
    if ctx.site.handoff.enabled:
        worker = BootstrapWorker(ctx.sessions, ctx.site)
        ctx.extras.setdefault("lifespan_hooks", []).append(lambda _c: worker.start())
        ctx.extras.setdefault("shutdown_hooks", []).append(lambda _c: worker.stop())
    app.include_router(mirror_api.router)
    mirror_api.wire(ctx)
    return app
