"""Background services running the queue: `JobWorker` (claims and runs jobs), `Singleton` (a
periodic function run once per site), `Leader` (a whole service run by one instance at a time).

All three are `dgxie.background.Service`s and take who they are from `InstanceConfig` (id,
heartbeat and expiry). Handlers run in worker threads; the event loop renews heartbeats, so a
handler that blocks for minutes keeps its job as long as the process lives. An instance that
dies (SIGKILL, power loss) stops heartbeating; after `expire_seconds` another instance claims its
jobs (a takeover) and its leases, so the work resumes elsewhere. Handlers must therefore be
idempotent (a takeover runs the handler again from the start; `Claimed.attempt` > 1 says so).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from dgxie.background import Service, cancel
from dgxie.jobs import lease, queue
from dgxie.jobs.queue import Claimed
from dgxie.sections import InstanceConfig

log = logging.getLogger("dgxie.jobs")

Handler = Callable[["JobHandle"], None]
STOP_GRACE = 2.0  # s a stopping worker waits for handlers that saw `cancelled()`


class JobKinds:
    """Handlers by job kind; modules register theirs at wiring time (`register("firmware.update", fn)`)."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}

    def register(self, kind: str, fn: Handler) -> None:
        if kind in self.handlers:
            raise ValueError(f"job kind {kind!r} is already registered")
        self.handlers[kind] = fn


class JobHandle:
    """What a handler gets: the job's input, and heartbeat/progress/cancelled to talk back."""

    def __init__(self, worker: JobWorker, claimed: Claimed) -> None:
        self.worker, self.claimed = worker, claimed
        self.cancel_requested = threading.Event()  # DELETE/cancel asked, or the worker stops
        self.lost = threading.Event()  # another instance took the job over: stop, the outcome is not ours

    @property
    def id(self) -> int:
        return self.claimed.id

    @property
    def payload(self) -> dict[str, Any]:
        return self.claimed.payload

    def heartbeat(self) -> bool:
        """Renew the job now (the worker also does, every heartbeat); False if it is no longer ours."""
        mine = queue.beat(self.worker.sessions, self.worker.instance.id, [self.id]).get(self.id, False)
        if not mine:
            self.lost.set()
        return mine

    def progress(self, data: dict[str, Any]) -> None:
        """Store `data` as the job's progress (JSON), shown by whoever reads the job."""
        if not queue.save_progress(self.worker.sessions, self.worker.instance.id, self.id, data):
            self.lost.set()

    def cancelled(self) -> bool:
        """Whether the handler should stop now (cancel requested, worker stopping, job lost)."""
        return self.cancel_requested.is_set() or self.lost.is_set() or self.worker.stopping.is_set()


class JobWorker:
    """Claims jobs of the registered kinds, up to `concurrency` at once, and runs them."""

    name = "job-worker"

    def __init__(self, sessions: sessionmaker[Session], instance: InstanceConfig, kinds: JobKinds, *,
                 concurrency: int = 4, poll: float = 1.0,
                 on_execute: Callable[[str], None] | None = None) -> None:
        self.sessions, self.instance, self.kinds = sessions, instance, kinds
        self.concurrency, self.poll, self.on_execute = concurrency, poll, on_execute
        self.running: dict[int, tuple[JobHandle, asyncio.Task[None]]] = {}
        self.stopping = threading.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def _run(self, handle: JobHandle) -> None:
        kind = handle.claimed.kind
        status, error = "done", ""
        try:
            if self.on_execute is not None:
                self.on_execute(kind)
            await asyncio.to_thread(self.kinds.handlers[kind], handle)
            if handle.cancel_requested.is_set():
                status = "cancelled"
            elif self.stopping.is_set() and not handle.lost.is_set():
                status = "queued"  # handed back: the handler stopped early because we are stopping
        except Exception as exc:
            status, error = "failed", (str(exc) or type(exc).__name__).splitlines()[0]
            log.warning("job %d (%s) failed: %s", handle.id, kind, error)
        finally:
            self.running.pop(handle.id, None)
        if not handle.lost.is_set():
            await asyncio.to_thread(queue.finish, self.sessions, self.instance.id, handle.id, status, error)

    async def _claim_loop(self) -> None:
        while True:
            try:
                while len(self.running) < self.concurrency:
                    got = await asyncio.to_thread(queue.claim, self.sessions, self.instance.id,
                                                  sorted(self.kinds.handlers), expire=self.instance.expire_seconds)
                    if got is None:
                        break
                    log.info("job %d (%s) claimed by %s (attempt %d)", got.id, got.kind, self.instance.id, got.attempt)
                    handle = JobHandle(self, got)
                    self.running[got.id] = (handle, asyncio.create_task(self._run(handle), name=f"job-{got.id}"))
            except Exception:
                log.exception("job claim")
            await asyncio.sleep(self.poll)

    async def _beat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.instance.heartbeat_seconds)
            ids = list(self.running)
            try:
                mine = await asyncio.to_thread(queue.beat, self.sessions, self.instance.id, ids)
                asked = await asyncio.to_thread(queue.cancel_asked, self.sessions, ids)
            except Exception:
                log.exception("job heartbeat")
                continue
            for i in ids:
                entry = self.running.get(i)
                if entry is None:
                    continue
                if not mine.get(i, True):
                    entry[0].lost.set()
                if i in asked:
                    entry[0].cancel_requested.set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._claim_loop(), name="job-claim"),
                       loop.create_task(self._beat_loop(), name="job-heartbeat")]

    async def stop(self) -> None:
        self.stopping.set()
        await cancel(self._tasks[0] if self._tasks else None)
        runs = [t for _, t in self.running.values()]
        if runs:  # handlers see cancelled(); those still running are left to expire and be taken over
            await asyncio.wait(runs, timeout=STOP_GRACE)
        for t in self._tasks[1:]:
            await cancel(t)
        self._tasks = []


class Singleton:
    """Runs blocking `fn` every `every` s on exactly one instance of the site at a time: the
    holder of lease `name`. The lease is renewed every heartbeat while `fn` runs; if the holder
    dies, another instance takes the lease after the expiry and carries on with the schedule."""

    def __init__(self, name: str, fn: Callable[[], object], every: float, sessions: sessionmaker[Session],
                 instance: InstanceConfig, *, on_execute: Callable[[str], None] | None = None) -> None:
        self._name, self.fn, self.every, self.on_execute = name, fn, every, on_execute
        self.sessions, self.instance = sessions, instance
        self.held = False
        self._task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self._name

    async def _renew(self) -> bool:
        try:
            self.held = await asyncio.to_thread(lease.acquire, self.sessions, self._name, self.instance.id,
                                                self.instance.expire_seconds)
        except Exception as exc:
            log.debug("lease %s: %s", self._name, exc)
            self.held = False
        return self.held

    async def _loop(self) -> None:
        while True:
            try:
                if await self._renew() and await asyncio.to_thread(lease.due, self.sessions, self._name,
                                                                   self.instance.id, self.every):
                    if self.on_execute is not None:
                        self.on_execute(self._name)
                    run = asyncio.ensure_future(asyncio.to_thread(self.fn))
                    while not run.done():  # keep the lease while fn runs
                        await asyncio.wait({run}, timeout=self.instance.heartbeat_seconds)
                        if not run.done():
                            await self._renew()
                    run.result()
            except Exception:
                log.exception("%s failed", self._name)
            await asyncio.sleep(min(self.instance.heartbeat_seconds, self.every))

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=self._name)

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
        if self.held:
            try:
                await asyncio.to_thread(lease.release, self.sessions, self._name, self.instance.id)
            except Exception as exc:
                log.debug("lease %s release: %s", self._name, exc)
            self.held = False


class Leader:
    """Runs a service only while this instance holds lease `name` (one instance of the site at a
    time): `make()` builds a fresh one each time the lease is won; it is stopped as soon as a
    renewal fails (before the lease can expire and another instance start its own)."""

    def __init__(self, name: str, make: Callable[[], Service], sessions: sessionmaker[Session],
                 instance: InstanceConfig) -> None:
        self._name, self.make, self.sessions, self.instance = name, make, sessions, instance
        self.inner: Service | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self._name

    async def _step(self) -> None:
        try:
            held = await asyncio.to_thread(lease.acquire, self.sessions, self._name, self.instance.id,
                                           self.instance.expire_seconds)
        except Exception as exc:
            log.debug("lease %s: %s", self._name, exc)
            held = False
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

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"leader-{self._name}")

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
        if self.inner is not None:
            inner, self.inner = self.inner, None
            await inner.stop()
            try:
                await asyncio.to_thread(lease.release, self.sessions, self._name, self.instance.id)
            except Exception as exc:
                log.debug("lease %s release: %s", self._name, exc)
