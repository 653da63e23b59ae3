"""The `instances` table: each running dgxie instance writes its id, role and a heartbeat, so an
operator (and a test) sees who runs; a row whose heartbeat is older than the expiry is a dead
(or stopped) instance. A database that is away only costs a debug line: boot instances keep
serving from memory meanwhile."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
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


PROCESS = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"[:128]  # this process, for `beat`
SHARED_ID_EVERY = 60.0  # s between two error lines about an instance id two live processes use


def beat(sessions: sessionmaker[Session], instance: InstanceConfig, *, starting: bool = False,
         process: str = PROCESS) -> str | None:
    """Upsert this instance's row (its start time too when `starting`). Returns the other process
    if another live one (a heartbeat within `expire_seconds`) wrote this id since our last beat:
    two processes with one `instance.id` would each take the other's jobs and leases for their own."""
    now = utcnow()
    with session_scope(sessions) as s:
        row = s.get(Instance, instance.id)
        if row is None:
            s.add(Instance(id=instance.id, role=instance.role, started_at=now, heartbeat_at=now, process=process))
            return None
        other = row.process if row.process not in ("", process) else None
        if other is not None and row.heartbeat_at < now - timedelta(seconds=instance.expire_seconds):
            other = None  # a previous run of this instance, gone
        row.role, row.heartbeat_at, row.process = instance.role, now, process
        if starting:
            row.started_at = now
        return other


def leave(sessions: sessionmaker[Session], instance: InstanceConfig, process: str = PROCESS) -> None:
    """Mark this process gone from its row (a clean stop)."""
    with session_scope(sessions) as s:
        row = s.get(Instance, instance.id)
        if row is not None and row.process == process:
            row.process = ""


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
        warned_until = 0.0
        while True:
            try:
                other = await loop.run_in_executor(self._pool, partial(beat, self.sessions, self.instance,
                                                                       starting=starting))
                starting = False
                if other is not None and loop.time() >= warned_until:
                    warned_until = loop.time() + SHARED_ID_EVERY
                    log.error("instance id %s is also used by another live process (%s; or a previous run of this "
                              "one was killed within instance.expire_seconds): give each dgxie instance its own "
                              "instance.id, or both run the same jobs", self.instance.id, other)
            except Exception as exc:
                log.debug("instance heartbeat: %s", exc)
            await asyncio.sleep(self.instance.heartbeat_seconds)

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
        try:  # a clean stop: the next start of this instance is not taken for a second live process
            await asyncio.get_running_loop().run_in_executor(self._pool, partial(leave, self.sessions, self.instance))
        except Exception as exc:
            log.debug("instance heartbeat: %s", exc)
        self._pool.shutdown(wait=False)
