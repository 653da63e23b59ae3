"""Bulk power jobs on the site's job queue (`dgxie.jobs`): kind `power.bulk`, one queued or running
per site (queue key `power.bulk`), whichever instance it was created, is read or runs on.

A job is one `jobs` row. Its `payload` is the plan made at `POST /api/v1/power` (action, selector,
batch, interval, waves and every node's wave: the nodes are selected once, then); its `progress`
is how far it got: every node's outcome, `waves_started`, when the job and its last wave started.
`handler()` runs `power_waves.run()` and stores that progress as each wave starts and ends and as
nodes return (at most every `SAVE_EVERY` s in between). After a takeover (the instance running it
died) it resumes from the stored progress: waves already started are never run again. A cancel
(`DELETE /api/v1/power/{id}`) or the instance stopping ends the run before the next wave; the
worker records `cancelled`, or hands the job back to the queue (resumed the same way).

This module does not import `dgxie.jobs` (a sibling layer): the API enqueues and cancels through
`dgxie.jobs.queue`, and the handler is typed against the `Handle` it needs of a `JobHandle`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dgxie.db import session_scope
from dgxie.errors import Conflict, NotFound
from dgxie.events import record
from dgxie.models import Job
from dgxie.models.job import ACTIVE
from dgxie.nodes.power_waves import Hooks, PowerJobOut, PowerMetrics, PowerNodeOut, run
from dgxie.site import Site

KIND = "power.bulk"  # the queue job kind, and its key: one queued or running per site
KEEP = 50  # jobs listed by GET /api/v1/power (the newest)
SAVE_EVERY = 0.5  # s between progress writes while a wave's nodes return
STATUS = {"queued": "queued", "running": "running", "done": "finished", "failed": "failed", "cancelled": "cancelled"}
PLAN = {"action", "selector", "batch", "interval", "waves", "nodes"}


class Handle(Protocol):
    """What the handler needs of a `dgxie.jobs.worker.JobHandle`."""

    @property
    def id(self) -> int: ...

    def progress(self, data: dict[str, Any]) -> None: ...

    def cancelled(self) -> bool: ...

    def check(self) -> None: ...


def payload(job: PowerJobOut) -> dict[str, Any]:
    """The queue job's payload: the plan (`power_waves.plan()`) as JSON."""
    return job.model_dump(mode="json", include=PLAN)


def progress(job: PowerJobOut, wave_at: float | None) -> dict[str, Any]:
    """The queue job's progress: the nodes' outcomes, the waves started and when the last one did."""
    return {"nodes": [r.model_dump(mode="json") for r in job.nodes], "waves_started": job.waves_started,
            "started_at": job.started_at.isoformat() if job.started_at else None, "wave_started_at": wave_at}


def to_out(row: Job) -> PowerJobOut:
    """The job as the API shows it: the plan, overlaid with the stored progress; the status from
    the queue row (`done` is `finished`)."""
    plan, done = row.payload, row.progress or {}
    started = done.get("started_at")
    return PowerJobOut(id=row.id, action=plan["action"], selector=plan["selector"], batch=plan["batch"],
                       interval=plan["interval"], status=STATUS.get(row.status, "failed"),
                       created_at=row.created_at,
                       started_at=datetime.fromisoformat(started) if started else row.started_at,
                       finished_at=row.finished_at, waves=plan["waves"], waves_started=done.get("waves_started", 0),
                       error=row.error or None, nodes=done.get("nodes", plan["nodes"]))


def _row(s: Session, job_id: int) -> Job:
    row = s.get(Job, job_id)
    if row is None or row.kind != KIND:
        raise NotFound(f"no bulk power job {job_id}")
    return row


def get(s: Session, job_id: int) -> PowerJobOut:
    """One job; `NotFound` when there is no `power.bulk` job with that id."""
    return to_out(_row(s, job_id))


def list_jobs(s: Session, limit: int = KEEP) -> list[PowerJobOut]:
    """The newest `limit` jobs, newest first."""
    return [to_out(r) for r in s.scalars(select(Job).where(Job.kind == KIND).order_by(Job.id.desc()).limit(limit))]


def busy(s: Session) -> Conflict | None:
    """The 409 for a new job while one is queued or running (on any instance), or None."""
    running = s.scalars(select(Job.id).where(Job.kind == KIND, Job.status.in_(ACTIVE)).order_by(Job.id)).first()
    if running is None:
        return None
    return Conflict(f"bulk power job {running} is still running (GET /api/v1/power/{running})")


def cancelling(s: Session, job_id: int, *, actor: str) -> Job:
    """Check that job `job_id` can be cancelled (`NotFound`; `Conflict` once it has ended) and
    record the request (a `power.bulk.cancel` event); the caller then asks the queue to cancel it."""
    row = _row(s, job_id)
    if row.status not in ACTIVE:
        raise Conflict(f"bulk power job {job_id} has ended ({STATUS.get(row.status, row.status)})")
    record(s, actor=actor, kind="power.bulk.cancel", reason=f"bulk power job {job_id}: cancel before its next wave",
           data={"job": job_id, "status": row.status})
    return row


class _Saver:
    """Writes the progress: always when forced (a wave starts or ends), otherwise at most every
    `SAVE_EVERY` s and never waiting for a write in progress (nodes return from many threads)."""

    def __init__(self, handle: Handle, job: PowerJobOut, wave_at: float | None) -> None:
        self.handle, self.job, self.wave_at = handle, job, wave_at
        self.lock, self.last = threading.Lock(), 0.0

    def save(self, force: bool = False) -> None:
        if not self.lock.acquire(blocking=force):
            return
        try:
            if force or time.monotonic() - self.last >= SAVE_EVERY:
                self.last = time.monotonic()
                self.handle.progress(progress(self.job, self.wave_at))
        finally:
            self.lock.release()

    def wave_started(self, k: int, rows: list[PowerNodeOut]) -> None:
        self.wave_at = time.time()
        self.save(force=True)


def handler(sessions: sessionmaker[Session], site: Site,
            metrics: PowerMetrics | None = None) -> Callable[[Handle], None]:
    """The `power.bulk` handler: run (or resume, from the stored progress) the job's waves."""

    def handle(h: Handle) -> None:
        with session_scope(sessions) as s:
            row = _row(s, h.id)
            job, actor, done = to_out(row), row.actor, row.progress or {}
        if not done.get("started_at"):
            job.started_at = None  # never started (the claim's time is not a start): a first run, not a resume
        wave_at = done.get("wave_started_at")
        saver = _Saver(h, job, wave_at)
        hooks = Hooks(wave_started=saver.wave_started, wave_done=lambda k, rows: saver.save(force=True),
                      node_done=lambda r: saver.save())
        run(sessions, site, job, actor=actor or "api", metrics=metrics, hooks=hooks, stopped=h.cancelled,
            last_wave_at=wave_at)
        saver.save(force=True)
        if job.status == "cancelled":
            h.check()  # raises Stopped: the worker records `cancelled`, or hands the job back

    return handle
