"""Mirror service: sync jobs with live progress, one sync per mirror, rollback, garbage collection.

Kind-agnostic: a sync runs the mirror's kind (`kinds.kind_for(cfg.kind).sync`, the `MirrorKind`
protocol), which fetches, verifies and publishes; this module runs it as a job and records the
outcome (records.py). One sync per mirror at a time, across processes and instances: at most one
queued/running job row per mirror (a unique partial index: the database arbitrates between
instances), a `flock` on the mirror's directory while it runs (also taken by import and gc), and a
heartbeat on the row while it runs, so another host does not take a live sync for a dead one. Job rows
carry the progress; they are updated at most twice a second from the syncing thread. A rollback
writes a `mirror.rollback` event with its actor in the caller's transaction.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dgxie.catalog.images import blob_store
from dgxie.db import session_scope
from dgxie.errors import Conflict, Invalid, NotFound
from dgxie.events import record
from dgxie.jobs import queue
from dgxie.jobs.worker import JobHandle
from dgxie.mirror import gc
from dgxie.mirror.fetch import Fetcher
from dgxie.mirror.kind import Progress, SyncContext, store_for
from dgxie.mirror.kinds import kind_for
from dgxie.mirror.records import drop_pruned, job_out, kind_of, record_current, root_of, spec, state_row
from dgxie.mirror.schemas import JobOut
from dgxie.models import Job, MirrorJob
from dgxie.models.job import ACTIVE
from dgxie.models.types import utcnow
from dgxie.sections import AnyMirrorConfig
from dgxie.site import Site

log = logging.getLogger("dgxie.mirror")

ProgressHook = Callable[[Progress], None]


@contextmanager
def mirror_lock(root: Path, name: str) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict(f"mirror {name} is already syncing") from None
        yield
    finally:
        os.close(fd)


SYNC_KIND = "mirror.sync"  # the queue job kind that runs a sync in the background (payload {"job": id})


def create_job(sessions: sessionmaker[Session], site: Site, name: str, trigger: str, *,
               background: bool = False) -> JobOut:
    """Queue a sync of mirror `name`; Conflict while one is queued or running. Across instances the
    database arbitrates: at most one queued/running row per mirror (a unique partial index), so of
    two instances starting the same sync at once one gets Conflict. With `background`, a queue job
    (`SYNC_KIND`, key `mirror.sync:NAME`) is enqueued in the same transaction: one instance's job
    worker runs it, and another takes it over (runs the sync again: it is incremental) when that
    instance dies."""
    m = spec(site, name)
    try:
        with session_scope(sessions) as s:
            for busy in s.scalars(select(MirrorJob).where(MirrorJob.mirror == name,
                                                          MirrorJob.status.in_(("queued", "running")))):
                if not _stale(s, site, busy):
                    raise Conflict(f"mirror {name} is already syncing (job {busy.id})")
                busy.status, busy.finished_at = "failed", utcnow()
                busy.error = "interrupted (the process running it stopped)"
            s.flush()
            j = MirrorJob(mirror=name, kind=m.kind, status="queued", trigger=trigger)
            s.add(j)
            s.flush()
            if background:
                queue.enqueue(s, SYNC_KIND, {"job": j.id}, key=f"{SYNC_KIND}:{name}", actor=trigger)
            return job_out(j)
    except IntegrityError:
        raise Conflict(f"mirror {name} is already syncing (started by another instance)") from None


def _stale(s: Session, site: Site, j: MirrorJob) -> bool:
    """Whether job `j` is dead. Never while the job queue still holds its sync (waiting for a free
    worker, running, or to be taken over from a dead instance: the queue runs it again). Otherwise
    a job queued for over a minute is dead; so is a running one (a foreground `dgxie mirror sync`)
    whose mirror lock nobody holds here, if it ran here (this instance id) or its heartbeat
    (`_beating`) is older than `instance.expire_seconds`: a sync running on another host is not
    taken for dead."""
    if s.scalars(select(Job.id).where(Job.key == f"{SYNC_KIND}:{j.mirror}", Job.status.in_(ACTIVE))).first():
        return False
    if j.status == "queued":
        return j.created_at < utcnow() - timedelta(seconds=60)
    try:
        with mirror_lock(root_of(site, j.kind, j.mirror), j.mirror):
            pass
    except Conflict:
        return False
    if j.owner == site.instance.id:
        return True  # it ran on this host, whose lock is free: its process is gone (killed, crashed)
    fresh = utcnow() - timedelta(seconds=site.instance.expire_seconds)
    return j.heartbeat_at is None or j.heartbeat_at < fresh


@contextmanager
def _beating(sessions: sessionmaker[Session], site: Site, job_id: int) -> Iterator[None]:
    """While inside: the job's `heartbeat_at` is renewed every `instance.heartbeat_seconds` (a
    thread), so other instances see the sync is alive however long a download blocks."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(site.instance.heartbeat_seconds):
            try:
                with session_scope(sessions) as s:
                    s.execute(update(MirrorJob).where(MirrorJob.id == job_id).values(heartbeat_at=utcnow()))
            except Exception as exc:  # the database away for a moment: the next beat retries
                log.debug("mirror job %d heartbeat: %s", job_id, exc)

    t = threading.Thread(target=beat, name=f"dgxie-sync-beat-{job_id}", daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(10)


def _save_progress(sessions: sessionmaker[Session], job_id: int, p: Progress) -> None:
    c = p.counters
    with session_scope(sessions) as s:
        j = s.get(MirrorJob, job_id)
        if j is not None:
            j.phase, j.files_total, j.bytes_total = p.phase[:32], p.files_total, p.bytes_total
            j.files_done, j.bytes_done = c.files_done, c.bytes_done
            j.files_fetched, j.bytes_fetched = c.files_fetched, c.bytes_fetched


def run_job(sessions: sessionmaker[Session], site: Site, job_id: int,
            on_progress: ProgressHook | None = None) -> JobOut:
    """Run a created job to the end (in this thread). Never raises for a failed sync: the job
    row says why; returns the finished job."""
    with session_scope(sessions) as s:
        j = s.get(MirrorJob, job_id)
        if j is None:
            raise NotFound(f"no mirror job {job_id}")
        name = j.mirror
    m = spec(site, name)
    root = root_of(site, m.kind, name)

    def running() -> None:
        with session_scope(sessions) as s:
            j = s.get(MirrorJob, job_id)
            assert j is not None
            j.status, j.started_at = "running", utcnow()
            j.owner, j.heartbeat_at = site.instance.id, j.started_at
    progress = Progress()
    last = [0.0]

    def tick() -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5:
            last[0] = now
            _save_progress(sessions, job_id, progress)
            if on_progress:
                on_progress(progress)

    status, error, snap = "failed", "", None
    try:
        with mirror_lock(root, name):
            running()
            with _beating(sessions, site, job_id):
                snap = _sync(site, m, root, progress, tick)
        status = "succeeded"
    except Exception as exc:  # every failure is reported on the job, nothing is published
        error = _describe(exc)
        log.warning("mirror %s: sync failed: %s", name, error)
    _save_progress(sessions, job_id, progress)
    if on_progress:
        on_progress(progress)
    with session_scope(sessions) as s:
        j = s.get(MirrorJob, job_id)
        assert j is not None
        j.status, j.error, j.finished_at, j.snapshot = status, error, utcnow(), snap
        j.phase = "done" if status == "succeeded" else "failed"
        if status == "succeeded":
            st = record_current(s, site, m.kind, name)
            st.last_success_at = j.finished_at
            drop_pruned(s, site, m.kind, name)
        else:
            st = state_row(s, name, m.kind)
            st.failures += 1
            st.last_failure_at, st.last_error = j.finished_at, error
        s.flush()
        return job_out(j)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno == 28:
        return "disk full"
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:500]


def _sync(site: Site, m: AnyMirrorConfig, root: Path, progress: Progress, tick: Callable[[], None]) -> str:
    store = store_for(site.data_dir)
    fetcher = Fetcher(store)
    progress.counters = fetcher.counters
    try:
        return kind_for(m.kind).sync(m, SyncContext(root=root, store=store, fetcher=fetcher, progress=progress,
                                                    tick=tick, box=site.box))
    finally:
        fetcher.close()


def start_sync(sessions: sessionmaker[Session], site: Site, name: str, trigger: str) -> JobOut:
    """Queue a sync to run in the background on the site's job queue; returns the queued job."""
    return create_job(sessions, site, name, trigger, background=True)


def sync_handler(sessions: sessionmaker[Session], site: Site) -> Callable[[JobHandle], None]:
    """The `mirror.sync` queue job: run the sync its payload names (again, after a takeover)."""

    def run(job: JobHandle) -> None:
        run_job(sessions, site, int(job.payload["job"]))  # a failed sync is recorded on its row

    return run


def sync_now(sessions: sessionmaker[Session], site: Site, name: str, trigger: str,
             on_progress: ProgressHook | None = None) -> JobOut:
    job = create_job(sessions, site, name, trigger)
    return run_job(sessions, site, job.id, on_progress)


def collect_garbage(sessions: sessionmaker[Session], site: Site, *, dry_run: bool = False) -> tuple[int, int]:
    """Delete blobs no kept snapshot of any mirror references, and stale partial files (an
    interrupted download, a killed `image add` or build) of the mirror and image stores; refused
    while any sync runs. Returns (files, bytes) removed."""
    with session_scope(sessions) as s:
        for j in s.scalars(select(MirrorJob).where(MirrorJob.status.in_(("queued", "running")))):
            if not _stale(s, site, j):
                raise Conflict(f"mirror {j.mirror} is syncing (job {j.id}); try again when it is done")
    with contextlib.ExitStack() as stack:
        for m in site.mirrors:
            stack.enter_context(mirror_lock(root_of(site, m.kind, m.name), m.name))
        n, size = gc.sweep(site.data_dir, dry_run=dry_run)
    pn, psize = blob_store(site.data_dir).sweep_partials(dry_run=dry_run)  # image adds are not locked: by age
    return n + pn, size + psize


def fail_interrupted(sessions: sessionmaker[Session], site: Site) -> int:
    """At start-up: jobs left running by a dead process are marked failed (unless a live
    process still holds the mirror's lock)."""
    n = 0
    with session_scope(sessions) as s:
        for j in s.scalars(select(MirrorJob).where(MirrorJob.status.in_(("queued", "running")))):
            if not _stale(s, site, j):
                continue
            j.status, j.error, j.finished_at = "failed", "interrupted (dgxie stopped during the sync)", utcnow()
            n += 1
    return n


def rollback(s: Session, site: Site, name: str, snapshot: str, *, actor: str) -> None:
    """Serve an older kept snapshot again (the kind's atomic switch), and record who did it."""
    kind, _ = kind_of(s, site, name)
    root = root_of(site, kind.name, name)
    if snapshot not in kind.history(root):
        raise Invalid(f"mirror {name} has no snapshot {snapshot!r} (see `dgxie mirror snapshots {name}`)")
    before = kind.current(root)
    kind.switch(root, snapshot)
    record_current(s, site, kind.name, name)
    record(s, actor=actor, kind="mirror.rollback", reason=f"mirror {name}: serving snapshot {snapshot} again "
           f"(was {before or 'none'})", data={"mirror": name, "kind": kind.name, "from": before, "to": snapshot})
