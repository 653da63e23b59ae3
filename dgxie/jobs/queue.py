"""The job queue: enqueue, claim (exactly one claimer per job), heartbeat, progress, finish, cancel.

Every statement that changes who owns a job is one conditional UPDATE whose WHERE clause says
what must still hold (still queued, or running with a heartbeat older than the expiry; still
owned by me), so two instances can never both think they own a job: the database decides, and
the loser sees rowcount 0. On PostgreSQL the candidate is also picked with `FOR UPDATE SKIP
LOCKED`, so concurrent claimers take different rows instead of queueing on one; on SQLite (one
instance) the write lock serialises claimers.

`executions` is incremented in the same UPDATE that claims: it counts handler starts. A job
whose owner stopped heartbeating is claimed again (a takeover: one more execution) until
`MAX_ATTEMPTS` claims, then it is failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dgxie.db import session_scope
from dgxie.errors import Conflict, NotFound
from dgxie.models import Job
from dgxie.models.job import ACTIVE
from dgxie.models.types import utcnow

MAX_ATTEMPTS = 3  # claims of one job (1 + takeovers) before it is failed as a crash loop


@dataclass(frozen=True)
class Claimed:
    """What a claim hands the worker: the row's identity and input."""

    id: int
    kind: str
    key: str | None
    payload: dict[str, Any]
    attempt: int  # 1 on a first run, more on a takeover
    cancel_requested: bool = False  # asked before this claim (a takeover of a job cancelled meanwhile)


def enqueue(s: Session, kind: str, payload: dict[str, Any] | None = None, *, key: str | None = None,
            actor: str = "", owner: str | None = None) -> Job:
    """Queue a job in the caller's transaction (it runs once committed). With `key`, at most one
    queued or running job has it: a second enqueue raises Conflict (a unique partial index).
    With `owner`, the job is born claimed by it (running, first execution): no worker can take it
    before that owner runs it (`JobWorker.run_here`), only after its heartbeat lapses."""
    if key is not None and s.scalars(select(Job.id).where(Job.key == key, Job.status.in_(ACTIVE))).first():
        raise Conflict(f"a job with key {key!r} is already queued or running")
    job = Job(kind=kind, key=key, payload=dict(payload or {}), status="queued", actor=actor, progress={})
    if owner is not None:
        now = utcnow()
        job.status, job.owner, job.heartbeat_at, job.started_at = "running", owner, now, now
        job.attempts, job.executions = 1, 1
    try:
        with s.begin_nested():
            s.add(job)
            s.flush()
    except IntegrityError:
        raise Conflict(f"a job with key {key!r} is already queued or running") from None
    return job


def _claimable(kinds: list[str], stale: Any, takeovers_only: bool = False) -> Any:
    dead = and_(Job.status == "running", Job.heartbeat_at < stale)
    return and_(Job.kind.in_(kinds), dead if takeovers_only else or_(Job.status == "queued", dead))


def claim(sessions: sessionmaker[Session], owner: str, kinds: list[str], *, expire: float,
          job_id: int | None = None, takeovers_only: bool = False) -> Claimed | None:
    """Take a job of `kinds` for `owner`: first the oldest running one whose owner's heartbeat is
    older than `expire` s (a takeover: work already under way goes before new work), else the
    oldest queued one; None if there is none (or another instance won the race). With
    `takeovers_only`, only a takeover; with `job_id`, only that job (a CLI running the job it
    queued when no server took it)."""
    if not kinds:
        return None
    with session_scope(sessions) as s:
        now = utcnow()
        stale = now - timedelta(seconds=expire)
        q = select(Job).where(_claimable(kinds, stale, takeovers_only)).order_by(
            (Job.status == "running").desc(), Job.id).limit(1)
        if job_id is not None:
            q = q.where(Job.id == job_id)
        if s.get_bind().dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        job = s.scalars(q).first()
        if job is None:
            return None
        if job.attempts >= MAX_ATTEMPTS:
            s.execute(update(Job).where(Job.id == job.id, _claimable(kinds, stale)).values(
                status="failed", finished_at=now, owner=None,
                error=f"abandoned: its owner stopped {job.attempts} times (last {job.owner})")
                .execution_options(synchronize_session=False))
            return None
        res = s.execute(update(Job).where(Job.id == job.id, _claimable(kinds, stale, takeovers_only)).values(
            status="running", owner=owner, heartbeat_at=now, started_at=now, attempts=Job.attempts + 1,
            executions=Job.executions + 1).execution_options(synchronize_session=False))
        if res.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return Claimed(job.id, job.kind, job.key, dict(job.payload or {}), job.attempts + 1, bool(job.cancel_requested))


def beat(sessions: sessionmaker[Session], owner: str, ids: list[int]) -> dict[int, bool]:
    """Renew the heartbeat of the jobs `owner` runs; returns id -> still mine (False: taken over or
    finished by someone else) for each id, and whether a cancel was asked is read by `cancel_asked`."""
    if not ids:
        return {}
    with session_scope(sessions) as s:
        s.execute(update(Job).where(Job.id.in_(ids), Job.owner == owner, Job.status == "running")
                  .values(heartbeat_at=utcnow()).execution_options(synchronize_session=False))
        mine = set(s.scalars(select(Job.id).where(Job.id.in_(ids), Job.owner == owner, Job.status == "running")))
    return {i: i in mine for i in ids}


def cancel_asked(sessions: sessionmaker[Session], ids: list[int]) -> set[int]:
    """The ids among `ids` whose cancel was requested."""
    if not ids:
        return set()
    with session_scope(sessions) as s:
        return set(s.scalars(select(Job.id).where(Job.id.in_(ids), Job.cancel_requested.is_(True))))


def save_progress(sessions: sessionmaker[Session], owner: str, job_id: int, progress: dict[str, Any]) -> bool:
    """Store `progress` (and renew the heartbeat) if `owner` still runs the job."""
    with session_scope(sessions) as s:
        res = s.execute(update(Job).where(Job.id == job_id, Job.owner == owner, Job.status == "running")
                        .values(progress=progress, heartbeat_at=utcnow()).execution_options(synchronize_session=False))
        return bool(res.rowcount == 1)  # type: ignore[attr-defined]


def finish(sessions: sessionmaker[Session], owner: str, job_id: int, status: str, error: str = "") -> bool:
    """Record the outcome (`done`, `failed`, `cancelled`, or `queued` to hand it back) if `owner`
    still runs the job; False if it was taken over meanwhile (the outcome is then not ours)."""
    with session_scope(sessions) as s:
        values: dict[str, Any] = {"status": status, "error": error[:2000]}
        if status == "queued":
            values |= {"owner": None, "heartbeat_at": None}
        else:
            values["finished_at"] = utcnow()
        res = s.execute(update(Job).where(Job.id == job_id, Job.owner == owner, Job.status == "running")
                        .values(**values).execution_options(synchronize_session=False))
        return bool(res.rowcount == 1)  # type: ignore[attr-defined]


def request_cancel(s: Session, job_id: int) -> Job:
    """Cancel a queued job at once; ask a running one to stop (its handler sees `cancelled()`)."""
    job = s.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}")
    if job.status == "queued":
        job.status, job.finished_at = "cancelled", utcnow()
    elif job.status == "running":
        job.cancel_requested = True
    return job
