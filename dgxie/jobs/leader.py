"""Site-wide work on one instance at a time, under a leader lease (dgxie/jobs/lease.py):
`Singleton` runs a periodic function, `Leader` runs a whole background service.

Both renew their lease every `instance.heartbeat_seconds` for `instance.expire_seconds`; a holder
that dies stops renewing and another instance takes the lease once it expires. Both use threads of
their own for the database and the work (never the event loop's default executor, which the boot
fast path uses). A clean stop releases the lease at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from dgxie.background import Service, cancel
from dgxie.jobs import lease
from dgxie.sections import InstanceConfig

log = logging.getLogger("dgxie.jobs")
T = TypeVar("T")


class _Leased:
    """What both share: a name, who we are, a lease to take/renew/release, threads of our own."""

    def __init__(self, name: str, sessions: sessionmaker[Session], instance: InstanceConfig, threads: int) -> None:
        self._name, self.sessions, self.instance = name, sessions, instance
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix=f"dgxie-{name}")
        self._task: asyncio.Task[None] | None = None
        self.held = False

    @property
    def name(self) -> str:
        return self._name

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, partial(fn, *args))

    async def _renew(self) -> bool:
        try:
            self.held = await self._call(lease.acquire, self.sessions, self._name, self.instance.id,
                                         self.instance.expire_seconds)
        except Exception as exc:  # the database away: not held (the work it guards must stop)
            log.debug("lease %s: %s", self._name, exc)
            self.held = False
        return self.held

    async def _release(self) -> None:
        if self.held:
            self.held = False
            try:
                await self._call(lease.release, self.sessions, self._name, self.instance.id)
            except Exception as exc:
                log.debug("lease %s release: %s", self._name, exc)

    async def _loop(self) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"lease-{self._name}")


class Singleton(_Leased):
    """Runs blocking `fn` every `every` s on exactly one instance of the site: the holder of lease
    `name`. The last run's time is kept in the lease row, so a new holder keeps the schedule; the
    lease is renewed every heartbeat while `fn` runs."""

    def __init__(self, name: str, fn: Callable[[], object], every: float, sessions: sessionmaker[Session],
                 instance: InstanceConfig, *, on_execute: Callable[[str], None] | None = None) -> None:
        super().__init__(name, sessions, instance, threads=2)
        self.fn, self.every, self.on_execute = fn, every, on_execute

    async def _loop(self) -> None:
        while True:
            try:
                if await self._renew() and await self._call(lease.due, self.sessions, self._name,
                                                            self.instance.id, self.every):
                    if self.on_execute is not None:
                        self.on_execute(self._name)
                    run = asyncio.ensure_future(self._call(self.fn))
                    while not run.done():  # keep the lease while fn runs
                        await asyncio.wait({run}, timeout=self.instance.heartbeat_seconds)
                        if not run.done():
                            await self._renew()
                    run.result()
            except Exception:
                log.exception("%s failed", self._name)
            await asyncio.sleep(min(self.instance.heartbeat_seconds, self.every))

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
        await self._release()
        self._pool.shutdown(wait=False)


class Leader(_Leased):
    """Runs a service only while this instance holds lease `name`: `make()` builds a fresh one each
    time the lease is won; it is stopped as soon as a renewal fails (before the lease can expire
    and another instance start its own)."""

    def __init__(self, name: str, make: Callable[[], Service], sessions: sessionmaker[Session],
                 instance: InstanceConfig) -> None:
        super().__init__(name, sessions, instance, threads=1)
        self.make = make
        self.inner: Service | None = None

    async def _step(self) -> None:
        held = await self._renew()
        if held and self.inner is None:
            log.info("%s: instance %s leads; starting", self._name, self.instance.id)
            inner = self.make()
            await inner.start()
            self.inner = inner
        elif not held and self.inner is not None:
            log.warning("%s: lease lost; stopping on instance %s", self._name, self.instance.id)
            inner, self.inner = self.inner, None
            await inner.stop()

    async def _loop(self) -> None:
        while True:
            try:
                await self._step()
            except Exception:
                log.exception("%s", self._name)
            await asyncio.sleep(self.instance.heartbeat_seconds)

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
        if self.inner is not None:
            inner, self.inner = self.inner, None
            await inner.stop()
        await self._release()
        self._pool.shutdown(wait=False)
