"""`JobWorker`: the background service that claims queue jobs (dgxie/jobs/queue.py) and runs them.

Handlers are registered per kind in a `JobKinds` (`register(kind, fn)`); `fn(handle)` runs in one
of the worker's own threads (never the event loop's default executor, which the boot fast path
uses). The event loop renews the heartbeats of the jobs it runs every `heartbeat_seconds`, so a
handler that blocks for minutes keeps its job as long as the process lives; an instance that dies
stops heartbeating and after `expire_seconds` another instance claims its jobs again (a takeover:
handlers must be idempotent; `handle.claimed.attempt` > 1 says it is one).

A handler's outcome: returning is `done`; raising `Stopped` (what `handle.check()` raises once
`cancelled()` is true) is `cancelled` if a cancel was requested, or hands the job back to the queue
(`queued`) if this worker is stopping, or nothing if the job was taken over meanwhile; any other
exception is `failed` with its first line as the error.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from dgxie.background import cancel
from dgxie.jobs import queue
from dgxie.jobs.queue import Claimed
from dgxie.sections import InstanceConfig

log = logging.getLogger("dgxie.jobs")

Handler = Callable[["JobHandle"], None]
T = TypeVar("T")
STOP_GRACE = 2.0  # s a stopping worker waits for its handlers to see `cancelled()` and stop


class Stopped(Exception):  # not an error: the handler stopped because it was asked to
    """Raised by a handler (through `JobHandle.check()`) that stopped because `cancelled()`."""


class JobKinds:
    """Handlers by job kind; modules register theirs at wiring time (`register("firmware.update", fn)`)."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}

    def register(self, kind: str, fn: Handler) -> None:
        if kind in self.handlers:
            raise ValueError(f"job kind {kind!r} is already registered")
        self.handlers[kind] = fn


class JobHandle:
    """What a handler gets: the job's input, and heartbeat/progress/cancelled/check to talk back."""

    def __init__(self, worker: JobWorker, claimed: Claimed) -> None:
        self.worker, self.claimed = worker, claimed
        self.cancel_requested = threading.Event()  # someone asked (queue.request_cancel)
        if claimed.cancel_requested:  # before this claim: seen at once, not at the next heartbeat
            self.cancel_requested.set()
        self.lost = threading.Event()  # another instance took the job over: the outcome is not ours

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
        """Store `data` (JSON) as the job's progress, for whoever reads the job; renews it too."""
        if not queue.save_progress(self.worker.sessions, self.worker.instance.id, self.id, data):
            self.lost.set()

    def cancelled(self) -> bool:
        """Whether the handler should stop now: cancel requested, worker stopping, or job lost."""
        return self.cancel_requested.is_set() or self.lost.is_set() or self.worker.stopping.is_set()

    def check(self) -> None:
        """Raise `Stopped` if `cancelled()` (call it between steps)."""
        if self.cancelled():
            raise Stopped


class JobWorker:
    """Claims jobs of the registered kinds, up to `concurrency` at once, and runs them; past that,
    up to `concurrency` more taken over from dead instances (their work already under way must not
    wait for this instance's own long jobs: a takeover within the expiry, not the expiry plus the
    longest job here). Takeovers are claimed before new queued jobs."""

    name = "job-worker"

    def __init__(self, sessions: sessionmaker[Session], instance: InstanceConfig, kinds: JobKinds, *,
                 concurrency: int = 4, poll: float = 1.0,
                 on_execute: Callable[[str], None] | None = None) -> None:
        self.sessions, self.instance, self.kinds = sessions, instance, kinds
        self.concurrency, self.poll, self.on_execute = concurrency, poll, on_execute
        self.takeover_slots = concurrency  # more jobs, taken over from dead instances only
        self.running: dict[int, tuple[JobHandle, asyncio.Task[None]]] = {}
        self.stopping = threading.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._handlers = ThreadPoolExecutor(concurrency + self.takeover_slots, thread_name_prefix="dgxie-job")
        self._db = ThreadPoolExecutor(1, thread_name_prefix="dgxie-job-db")  # claims, beats, outcomes

    async def _call(self, pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool, partial(fn, *args, **kw))

    def _outcome(self, handle: JobHandle, exc: BaseException | None) -> tuple[str, str] | None:
        """(status, error) to record, or None when the job is no longer ours."""
        if handle.lost.is_set():
            return None
        if exc is None:
            return "done", ""
        if isinstance(exc, Stopped):
            if handle.cancel_requested.is_set():
                return "cancelled", ""
            return ("queued", "") if self.stopping.is_set() else ("failed", "stopped without a cancel")
        error = (str(exc) or type(exc).__name__).splitlines()[0]
        log.warning("job %d (%s) failed: %s", handle.id, handle.claimed.kind, error)
        return "failed", error

    async def _run(self, handle: JobHandle) -> None:
        kind = handle.claimed.kind
        raised: BaseException | None = None
        try:
            if self.on_execute is not None:
                self.on_execute(kind)
            await self._call(self._handlers, self.kinds.handlers[kind], handle)
        except Exception as exc:
            raised = exc
        finally:
            self.running.pop(handle.id, None)
        outcome = self._outcome(handle, raised)
        if outcome is not None:
            await self._call(self._db, queue.finish, self.sessions, self.instance.id, handle.id, *outcome)

    async def _claim_loop(self) -> None:
        while True:
            try:
                while len(self.running) < self.concurrency + self.takeover_slots:
                    # past `concurrency`, only takeovers: a dead instance's jobs resume within
                    # the expiry even when every slot here is busy with long jobs of its own
                    got = await self._call(self._db, queue.claim, self.sessions, self.instance.id,
                                           sorted(self.kinds.handlers), expire=self.instance.expire_seconds,
                                           takeovers_only=len(self.running) >= self.concurrency)
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
                mine = await self._call(self._db, queue.beat, self.sessions, self.instance.id, ids)
                asked = await self._call(self._db, queue.cancel_asked, self.sessions, ids)
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

    def run_here(self, claimed: Claimed) -> str | None:
        """Run one job this process claimed (`queue.claim(..., job_id=)`) in the calling thread,
        without `start()`: the CLI running the job it queued when no server took it. A thread of
        its own renews the heartbeat and reads cancel requests meanwhile. Returns the recorded
        outcome (`done`, `failed`, `cancelled`), or None when the job was taken over."""
        handle = JobHandle(self, claimed)
        ended = threading.Event()

        def beat() -> None:
            while not ended.wait(self.instance.heartbeat_seconds):
                try:
                    handle.heartbeat()
                    if queue.cancel_asked(self.sessions, [handle.id]):
                        handle.cancel_requested.set()
                except Exception:
                    log.exception("job heartbeat")

        threading.Thread(target=beat, daemon=True, name=f"dgxie-job-{handle.id}-beat").start()
        raised: BaseException | None = None
        try:
            if self.on_execute is not None:
                self.on_execute(claimed.kind)
            self.kinds.handlers[claimed.kind](handle)
        except Exception as exc:
            raised = exc
        finally:
            ended.set()
        outcome = self._outcome(handle, raised)
        if outcome is None or not queue.finish(self.sessions, self.instance.id, handle.id, *outcome):
            return None
        return outcome[0]

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._claim_loop(), name="job-claim"),
                       loop.create_task(self._beat_loop(), name="job-heartbeat")]

    async def stop(self) -> None:
        """Claim no more; handlers see `cancelled()`. Those still running after `STOP_GRACE` keep
        their job (the heartbeat stops with us: another instance takes them over after the expiry)."""
        self.stopping.set()
        await cancel(self._tasks[0] if self._tasks else None)
        runs = [t for _, t in self.running.values()]
        if runs:
            await asyncio.wait(runs, timeout=STOP_GRACE)
        for t in self._tasks[1:]:
            await cancel(t)
        self._tasks = []
        self._handlers.shutdown(wait=False)
        self._db.shutdown(wait=False)
