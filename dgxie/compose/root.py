"""The composition root: validated settings in, one wired `Context` out.

Both entry points call `build_context()` (the CLI for every command, `dgxie serve` before the
app), so dgxie is wired one way. Everything long-lived is made here and only here: the database
engine, the `Site`, the caches, the metrics, the reprovision hooks and the background services
(in the order the app's lifespan starts them). `dgxie serve` then adds the boot servers
(`compose.servers.add_boot_servers`), which bind privileged ports and so only it runs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import timedelta

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.orm import Session, sessionmaker

from dgxie import db
from dgxie.background import Periodic, Service
from dgxie.catalog.profiles import sync_config_profiles
from dgxie.changes import ChangeListener, conninfo
from dgxie.compose.site import build_site
from dgxie.config import CONFIG_ENV, Settings
from dgxie.context import Context
from dgxie.filemodes import loosened, private_dir, secret_config
from dgxie.firmware import update_worker as firmware_updates
from dgxie.handoff.checks import check_roles
from dgxie.handoff.hooks import drain
from dgxie.handoff.runner import BootstrapWorker
from dgxie.ipxe.cache import ScriptCache
from dgxie.jobs.instances import InstanceBeat
from dgxie.jobs.leader import Leader, Singleton
from dgxie.jobs.worker import JobKinds, JobWorker
from dgxie.mirror import service as mirror_service
from dgxie.mirror.oci.store import OciReader
from dgxie.mirror.schedule import Scheduler
from dgxie.models import Node
from dgxie.netboot.downloads import DownloadGate
from dgxie.netboot.metrics import BootMetrics
from dgxie.nodes import power_jobs
from dgxie.nodes.lifecycle import sweep_install_timeouts
from dgxie.nodes.power import reprovision_hook as bmc_reprovision_hook
from dgxie.nodes.reprovision import ReprovisionHooks
from dgxie.site import Site
from dgxie.tokens import TokenCache

log = logging.getLogger("dgxie")
Executed = Callable[[str], None]


def reprovision_hooks() -> ReprovisionHooks:
    """What reprovision does around the state change: drain a ready node's scheduler first (a
    failing drain refuses the reprovision); after the commit, PXE-once + power-cycle via the BMC."""

    def drain_first(s: Session, site: Site, node: Node, actor: str) -> None:
        drain(s, site, node, actor)

    return ReprovisionHooks(before=[drain_first], after=[bmc_reprovision_hook])


def install_sweeper(sessions: sessionmaker[Session], site: Site, on_execute: Executed | None = None) -> Singleton:
    """Marks `failed` the installs silent for longer than `install.timeout_minutes` (once per site)."""
    timeout = timedelta(minutes=site.install.timeout_minutes)

    def sweep() -> list[str]:
        with db.session_scope(sessions) as s:
            failed = sweep_install_timeouts(s, timeout=timeout)
        for name in failed:
            log.warning("install of %s timed out: marked failed", name)
        return failed

    return Singleton("install-timeout-sweep", sweep, site.install.sweep_seconds, sessions, site.instance,
                     on_execute=on_execute)


def background(sessions: sessionmaker[Session], site: Site, probe: db.Probe, kinds: JobKinds,
               on_execute: Executed | None = None) -> list[Service]:
    """The background services this instance runs, in start order. Every instance probes the
    database and writes its heartbeat; unless its role is `boot` it also runs the job worker and
    the site-wide work, each under a leader lease so it runs on one instance of the site at a time
    (docs/architecture.md, "Jobs and instances")."""
    inst = site.instance
    services: list[Service] = [Periodic("db-probe", probe.check, db.PROBE_EVERY), InstanceBeat(sessions, inst)]
    if not inst.runs_jobs:
        return services
    services += [install_sweeper(sessions, site, on_execute),
                 Leader("mirror-scheduler", lambda: Scheduler(sessions, site), sessions, inst),
                 JobWorker(sessions, inst, kinds, concurrency=inst.job_concurrency, on_execute=on_execute)]
    if site.handoff.enabled:
        services.append(Leader("handoff-worker", lambda: BootstrapWorker(sessions, site), sessions, inst))
    return services


def job_metrics(registry: CollectorRegistry) -> Executed:
    """`dgxie_job_executions_total{kind}`: handler starts on this instance (queue jobs by kind,
    site-wide periodic work by its lease name); summed over instances, each job counts once."""
    counter = Counter("dgxie_job_executions", "Background job executions started on this instance, by kind",
                      ["kind"], registry=registry)
    return lambda kind: counter.labels(kind=kind).inc()


def build_context(settings: Settings, *, migrate: bool = True, check_modes: bool = True) -> Context:
    """Migrate (by default), connect, sync config-declared profiles, and wire everything; warn
    (log) about loosened modes of the data directory and secret-bearing files unless told not
    to (the CLI checks them itself, once per command)."""
    private_dir(settings.data_dir)
    site = build_site(settings)
    check_roles(site)
    if migrate:
        db.upgrade(settings.database_url)
    api = settings.api  # the pool is sized from the worker model (docs/configuration.md, "Concurrency")
    engine = db.make_engine(settings.database_url, pool_size=api.pool_size, max_overflow=0,
                            pool_timeout=api.pool_timeout)
    health = db.Availability().watch(engine)
    probe = db.Probe(engine, health)
    if check_modes:
        config = secret_config(os.environ.get(CONFIG_ENV), settings.database_url, settings.secret_key is not None)
        for line in loosened(settings.data_dir, settings.database_url, config):
            log.warning("%s", line)
    sessions = db.session_factory(engine)
    with db.session_scope(sessions) as s:
        sync_config_profiles(s, site)
    registry = CollectorRegistry()
    metrics = BootMetrics(registry)
    scripts = ScriptCache(sessions, site, ttl=settings.boot.script_cache_seconds, on_decision=metrics.decision)
    b = settings.boot
    downloads = DownloadGate(limit=b.max_downloads, min_bytes=b.download_min_bytes, retry_after=b.download_retry_after,
                             jitter=b.download_retry_jitter, on_throttled=metrics.http_throttled,
                             on_admitted=metrics.http_admitted)
    metrics.in_flight.set_function(lambda: downloads.in_flight)
    kinds = JobKinds()
    firmware_updates.register(kinds, sessions, site)
    kinds.register(mirror_service.SYNC_KIND, mirror_service.sync_handler(sessions, site))
    kinds.register(power_jobs.KIND, power_jobs.handler(sessions, site, metrics))
    services: list[Service] = background(sessions, site, probe, kinds, job_metrics(registry))
    dsn = conninfo(engine)
    if dsn is not None:  # PostgreSQL: other instances' changes arrive at once (dgxie.changes)
        changes = ChangeListener(dsn)
        changes.subscribe(lambda _table: scripts.invalidate())
        services.insert(0, changes)
    return Context(settings=settings, engine=engine, sessions=sessions, site=site, registry=registry,
                   boot_metrics=metrics, scripts=scripts, tokens=TokenCache(), oci=OciReader(site.data_dir),
                   reprovision=reprovision_hooks(), db_probe=probe, db_health=health, downloads=downloads,
                   job_kinds=kinds, services=services)
