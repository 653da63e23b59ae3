"""The `instances` table: each running dgxie instance writes its id, role and a heartbeat, so an
operator (and a test) sees who runs; a row whose heartbeat is older than the expiry is a dead
(or stopped) instance. A database that is away only costs a debug line: boot instances keep
serving from memory meanwhile."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dgxie.background import cancel
from dgxie.db import session_scope
from dgxie.models import Instance
from dgxie.models.types import utcnow
from dgxie.sections import InstanceConfig

log = logging.getLogger("dgxie.jobs")


def beat(sessions: sessionmaker[Session], instance: InstanceConfig, *, starting: bool = False) -> None:
    """Upsert this instance's row (its start time too when `starting`)."""
    now = utcnow()
    with session_scope(sessions) as s:
        row = s.get(Instance, instance.id)
        if row is None:
            s.add(Instance(id=instance.id, role=instance.role, started_at=now, heartbeat_at=now))
            return
        row.role, row.heartbeat_at = instance.role, now
        if starting:
            row.started_at = now


def live(s: Session, expire: float) -> list[Instance]:
    """Instances that heartbeated within `expire` s."""
    cutoff = utcnow() - timedelta(seconds=expire)
    return list(s.scalars(select(Instance).where(Instance.heartbeat_at >= cutoff).order_by(Instance.id)))


class InstanceBeat:
    """Writes this instance's heartbeat row every `heartbeat_seconds` (a background service), on a
    thread of its own: a database that hangs must not take a thread of the default executor, which
    the boot fast path uses."""

    name = "instance-heartbeat"

    def __init__(self, sessions: sessionmaker[Session], instance: InstanceConfig) -> None:
        self.sessions, self.instance = sessions, instance
        self._task: asyncio.Task[None] | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="dgxie-instance-beat")

    async def _loop(self) -> None:
        starting = True
        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(self._pool, partial(beat, self.sessions, self.instance, starting=starting))
                starting = False
            except Exception as exc:
                log.debug("instance heartbeat: %s", exc)
            await asyncio.sleep(self.instance.heartbeat_seconds)

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
        self._pool.shutdown(wait=False)
