"""Background services: one start/stop shape, started and stopped from one place.

Everything dgxie runs beside the request handlers (the DHCP server and its database sync, the
TFTP server, the install-timeout sweep, the mirror scheduler, the role-handoff worker) is a
`Service`: an object with a `name` and `async start()` / `async stop()`. The composition root
(`dgxie.compose`) lists them in the `Context`; the app's lifespan hands the list to one
`Supervisor`, like smee's errgroup in main: started in order, stopped in reverse.

Contract:
- `start()` returns once the service runs (its loop is a task on the running event loop or a
  thread); a start that raises stops the ones already started (in reverse) and the error goes on.
- `stop()` is called once per successful `start()`, never raises out of the supervisor (errors are
  logged), and returns when the service has stopped.
- Stopping them all should take under `STOP_WITHIN` seconds (`dgxie serve` must be gone within 5 s
  of SIGTERM, whatever state it is in). A stop still running when its share is used up is named in
  one warning line and then waited for, not cancelled: a stop may be writing what it holds (the DHCP
  sync's last leases), and cutting it short would lose that. Each service bounds its own stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

log = logging.getLogger("dgxie.background")


class Service(Protocol):
    @property
    def name(self) -> str: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def cancel(task: asyncio.Task[None] | None) -> None:
    """Cancel `task` (if any) and wait until it has ended."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Periodic:
    """Calls a blocking `fn` every `every` seconds in a worker thread, the first time at start.
    An exception is logged and the loop goes on (a database hiccup must not end it)."""

    def __init__(self, name: str, fn: Callable[[], object], every: float) -> None:
        self._name, self.fn, self.every = name, fn, every
        self._task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self._name

    async def _loop(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.fn)
            except Exception:
                log.exception("%s failed", self._name)
            await asyncio.sleep(self.every)

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=self._name)

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None


STOP_WITHIN = 4.0  # seconds all services may take to stop before a warning (the API's shutdown comes first)


class Supervisor:
    """Starts services in order and stops the started ones in reverse order; a stop that runs past
    the `stop_within` budget is named in a warning."""

    def __init__(self, services: Sequence[Service], *, stop_within: float = STOP_WITHIN) -> None:
        self.services = list(services)
        self.started: list[Service] = []
        self.stop_within = stop_within

    async def start(self) -> None:
        for svc in self.services:
            try:
                await svc.start()
            except BaseException:
                log.error("background service %s failed to start", svc.name)
                await self.stop()
                raise
            self.started.append(svc)
            log.debug("started %s", svc.name)

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.stop_within
        while self.started:
            svc = self.started.pop()
            stopping = asyncio.ensure_future(svc.stop())
            left = max(deadline - loop.time(), 0.05)  # a late service still gets a moment before the warning
            done, _ = await asyncio.wait({stopping}, timeout=left)
            if not done:
                log.warning("background service %s is still stopping after %.1f s (shutdown budget %.1f s)",
                            svc.name, left, self.stop_within)
            try:
                await stopping
            except Exception:
                log.exception("background service %s failed to stop cleanly", svc.name)
