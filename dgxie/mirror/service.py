"""Mirror service: the configured mirrors, sync jobs with live progress, snapshots and rollback.

A sync runs the kind's `Syncer` (base.SYNCERS), then materializes and publishes the returned
manifest (snapshots.py). One sync per mirror at a time, across processes: a `flock` on the
mirror's directory (the CLI and the server may both start one). Job rows carry the progress; they
are updated at most twice a second from the syncing thread.
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

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from dgxie.db import session_scope
from dgxie.errors import Conflict, NotFound
from dgxie.mirror import apt_sync, oci_kind, snapshots
from dgxie.mirror.base import Manifest, Progress, SelfPublished, SyncContext, register_syncer, syncer_for
from dgxie.mirror.fetch import Fetcher
from dgxie.mirror.schemas import JobOut
from dgxie.models import MirrorJob, MirrorSnapshot, MirrorState
from dgxie.models.types import utcnow
from dgxie.sections import MirrorConfig
from dgxie.site import Site

log = logging.getLogger("dgxie.mirror")

register_syncer("apt", apt_sync.sync)
register_syncer("oci", oci_kind.sync)

ProgressHook = Callable[[Progress], None]


def spec(site: Site, name: str) -> MirrorConfig:
    for m in site.mirrors:
        if m.name == name:
            return m
    raise NotFound(f"no mirror named {name!r} in the configuration")


def root_of(site: Site, kind: str, name: str) -> Path:
    return snapshots.mirror_dir(site.data_dir, kind, name)


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


def state_row(s: Session, name: str, kind: str) -> MirrorState:
    st = s.scalars(select(MirrorState).where(MirrorState.name == name)).one_or_none()
    if st is None:
        st = MirrorState(name=name, kind=kind, files=0, bytes=0, failures=0, last_error="")
        s.add(st)
        s.flush()
    return st


def job_out(j: MirrorJob) -> JobOut:
    return JobOut.model_validate(j, from_attributes=True)


def create_job(sessions: sessionmaker[Session], site: Site, name: str, trigger: str) -> JobOut:
    m = spec(site, name)
    with session_scope(sessions) as s:
        for busy in s.scalars(select(MirrorJob).where(MirrorJob.mirror == name,
                                                      MirrorJob.status.in_(("queued", "running")))):
            if not _stale(site, busy):
                raise Conflict(f"mirror {name} is already syncing (job {busy.id})")
            busy.status, busy.finished_at = "failed", utcnow()
            busy.error = "interrupted (the process running it stopped)"
        j = MirrorJob(mirror=name, kind=m.kind, status="queued", trigger=trigger)
        s.add(j)
        s.flush()
        return job_out(j)


def _stale(site: Site, j: MirrorJob) -> bool:
    """A running job whose mirror lock nobody holds, or a job queued for over a minute, is dead."""
    if j.status == "queued":
        return j.created_at < utcnow() - timedelta(seconds=60)
    try:
        with mirror_lock(root_of(site, j.kind, j.mirror), j.mirror):
            return True
    except Conflict:
        return False


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
        st = state_row(s, name, m.kind)
        if status == "succeeded":
            st.last_success_at = j.finished_at
            record_current(s, site, m.kind, name, st)
            _drop_pruned(s, root, name, m.kind)
        else:
            st.failures += 1
            st.last_failure_at, st.last_error = j.finished_at, error
        s.flush()
        return job_out(j)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno == 28:
        return "disk full"
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:500]


def _sync(site: Site, m: MirrorConfig, root: Path, progress: Progress, tick: Callable[[], None]) -> str | None:
    store = snapshots.store_for(site.data_dir)
    snapshots.clean_tmp(root)
    cur = snapshots.current(root)
    previous = snapshots.load_manifest(root, cur) if cur else None
    fetcher = Fetcher(store)
    progress.counters = fetcher.counters
    try:
        manifest = syncer_for(m.kind)(SyncContext(source=m, store=store, fetcher=fetcher, work_dir=root,
                                                  previous=previous, progress=progress, tick=tick,
                                                  box=site.box))
    finally:
        fetcher.close()
    if isinstance(manifest, SelfPublished):
        return manifest.snapshot
    if previous is not None and (manifest is previous or manifest.files == previous.files):
        progress.phase = "up to date"
        return previous.snapshot
    progress.phase = "publishing"
    manifest.snapshot = snapshots.new_snapshot_id(root)
    manifest.created_at = utcnow().isoformat()
    snapshots.materialize(store, root, manifest)
    snapshots.publish(root, manifest.snapshot)
    snapshots.prune(root, m.keep_snapshots)
    return manifest.snapshot


def record_snapshot(s: Session, manifest: Manifest, source: str) -> None:
    exists = s.scalars(select(MirrorSnapshot).where(MirrorSnapshot.mirror == manifest.mirror,
                                                    MirrorSnapshot.snapshot == manifest.snapshot)).first()
    if exists is None:
        s.add(MirrorSnapshot(mirror=manifest.mirror, kind=manifest.kind, snapshot=manifest.snapshot,
                             files=len(manifest.files), bytes=manifest.total_bytes, source=source, meta=manifest.meta))


def record_current(s: Session, site: Site, kind: str, name: str, st: MirrorState, source: str = "sync") -> None:
    root = root_of(site, kind, name)
    if kind == "oci":  # the OCI code keeps its own snapshot documents
        pub = oci_kind.current(root)
        if pub is not None:
            st.current_snapshot, st.files, st.bytes = pub.snapshot, pub.files, pub.bytes
        return
    cur = snapshots.current(root)
    if cur is None:
        return
    man = snapshots.load_manifest(root, cur)
    record_snapshot(s, man, source)
    st.current_snapshot, st.files, st.bytes = cur, len(man.files), man.total_bytes


def history(root: Path, kind: str) -> list[str]:
    """Kept snapshot ids, oldest first."""
    return oci_kind.history(root) if kind == "oci" else snapshots.list_snapshots(root)


def _drop_pruned(s: Session, root: Path, name: str, kind: str) -> None:
    kept = set(history(root, kind))
    s.execute(delete(MirrorSnapshot).where(MirrorSnapshot.mirror == name, MirrorSnapshot.snapshot.not_in(kept or {""})))


def start_sync(sessions: sessionmaker[Session], site: Site, name: str, trigger: str) -> JobOut:
    """Queue a sync and run it on a background thread; returns the queued job."""
    job = create_job(sessions, site, name, trigger)
    t = threading.Thread(target=run_job, args=(sessions, site, job.id), name=f"dgxie-sync-{name}", daemon=True)
    t.start()
    return job


def sync_now(sessions: sessionmaker[Session], site: Site, name: str, trigger: str,
             on_progress: ProgressHook | None = None) -> JobOut:
    job = create_job(sessions, site, name, trigger)
    return run_job(sessions, site, job.id, on_progress)


def collect_garbage(sessions: sessionmaker[Session], site: Site, *, dry_run: bool = False) -> tuple[int, int]:
    """Delete blobs no kept snapshot of any mirror references; refused while any sync runs."""
    with session_scope(sessions) as s:
        for j in s.scalars(select(MirrorJob).where(MirrorJob.status.in_(("queued", "running")))):
            if not _stale(site, j):
                raise Conflict(f"mirror {j.mirror} is syncing (job {j.id}); try again when it is done")
    locks = [root_of(site, m.kind, m.name) for m in site.mirrors]
    with contextlib.ExitStack() as stack:
        for root in locks:
            stack.enter_context(mirror_lock(root, root.name))
        return snapshots.gc(site.data_dir, dry_run=dry_run)


def fail_interrupted(sessions: sessionmaker[Session], site: Site) -> int:
    """At start-up: jobs left running by a dead process are marked failed (unless a live
    process still holds the mirror's lock)."""
    n = 0
    with session_scope(sessions) as s:
        for j in s.scalars(select(MirrorJob).where(MirrorJob.status.in_(("queued", "running")))):
            if not _stale(site, j):
                continue
            j.status, j.error, j.finished_at = "failed", "interrupted (dgxie stopped during the sync)", utcnow()
            n += 1
    return n
