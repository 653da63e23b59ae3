"""The `Context`: everything one dgxie process is wired with, typed, built in one place.

`dgxie.compose.build_context()` (the composition root) makes it from validated settings; the
API (`request.app.state.ctx`) and the CLI read it; nothing else adds to it later. Long-lived
shared objects are fields here (the script cache, the token cache, the OCI reader, the metrics),
and so are the background services, which the app's lifespan starts and stops through one
`background.Supervisor`.

`settings` is here for the entry points only (listen address, body limit, log level); services
get `site`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from dgxie.background import Service
from dgxie.config import Settings
from dgxie.db import Availability, Probe
from dgxie.ipxe.cache import ScriptCache
from dgxie.jobs.worker import JobKinds
from dgxie.mirror.oci.store import OciReader
from dgxie.netboot.downloads import DownloadGate
from dgxie.netboot.metrics import BootMetrics
from dgxie.nodes.reprovision import ReprovisionHooks
from dgxie.site import Site
from dgxie.tokens import TokenCache


@dataclass
class Context:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    site: Site
    registry: CollectorRegistry
    boot_metrics: BootMetrics
    scripts: ScriptCache  # per-MAC iPXE scripts, shared by the API route and the fast path
    tokens: TokenCache  # authenticated API tokens, a few seconds per process
    oci: OciReader  # the /v2/ read side of the OCI mirrors
    reprovision: ReprovisionHooks  # what reprovision does around its state change (drain, BMC)
    db_probe: Probe  # the last background `SELECT 1`, for /healthz
    db_health: Availability  # outage and recovery, one log line each
    downloads: DownloadGate = field(default_factory=DownloadGate)  # big image files in flight (503 past it)
    job_kinds: JobKinds = field(default_factory=JobKinds)  # handlers of the job queue's kinds (dgxie/jobs/)
    services: list[Service] = field(default_factory=list)  # started in order by the app's lifespan

    def service(self, name: str) -> Service | None:
        """The background service called `name` (e.g. "dhcp", "tftp"), if this process runs it."""
        return next((s for s in self.services if s.name == name), None)
