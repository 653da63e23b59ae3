"""Scheduled syncs: mirrors with an `interval` are synced when their last attempt is older."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dgxie.errors import Conflict
from dgxie.mirror import service
from dgxie.models import MirrorJob
from dgxie.models.types import utcnow
from dgxie.site import Site

log = logging.getLogger("dgxie.mirror")


def due(s: Session, site: Site) -> list[str]:
    """Names of the mirrors whose interval has passed since their last job started."""
    out = []
    now = utcnow()
    for m in site.mirrors:
        if m.interval is None:
            continue
        last = s.scalars(select(MirrorJob).where(MirrorJob.mirror == m.name).order_by(MirrorJob.id.desc())).first()
        if last is None or last.created_at + timedelta(seconds=m.interval) <= now:
            out.append(m.name)
    return out


class Scheduler:
    """Starts due syncs (a background service, dgxie/background.py); at start it first marks failed
    the jobs a previous process left running (no live heartbeat). The composition root runs it
    under the leader lease "mirror-scheduler" (`dgxie.jobs.leader.Leader`): one per site."""

    name = "mirror-scheduler"

    def __init__(self, sessions: sessionmaker[Session], site: Site, check_every: float = 30.0) -> None:
        self.sessions, self.site, self.check_every = sessions, site, check_every
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="dgxie-mirror-schedule", daemon=True)

    async def start(self) -> None:
        await asyncio.to_thread(service.fail_interrupted, self.sessions, self.site)
        if any(m.interval for m in self.site.mirrors):
            self.thread.start()

    async def stop(self) -> None:
        self.stop_event.set()
        if self.thread.is_alive():
            await asyncio.to_thread(self.thread.join, 5)

    def _loop(self) -> None:
        while not self.stop_event.wait(self.check_every):
            try:
                with self.sessions() as s:
                    names = due(s, self.site)
                for name in names:
                    with contextlib.suppress(Conflict):
                        service.start_sync(self.sessions, self.site, name, trigger="schedule")
            except Exception:
                log.exception("mirror scheduler")
