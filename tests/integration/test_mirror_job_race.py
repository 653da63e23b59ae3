"""A mirror sync is started once however many instances ask at the same moment: at most one
queued/running `mirror_jobs` row per mirror (a unique partial index, migration 0013), so of
several concurrent `create_job` calls on separate connections exactly one gets the job and the
others get Conflict (409), never a second sync. A sync running on another host (its mirror lock
not held here) is alive while its heartbeat is fresh, dead once it is older than the expiry."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from dgxie import db
from dgxie.context import Context
from dgxie.errors import Conflict
from dgxie.mirror import service
from dgxie.models import MirrorJob
from dgxie.models.types import utcnow

CALLERS = 6


def _mirror(tmp_path: Path) -> dict[str, object]:
    keyring = tmp_path / "k.gpg"
    keyring.write_bytes(b"")
    return {"name": "m", "kind": "apt", "url": "http://127.0.0.1:9/", "suites": ["stable"], "keyring": str(keyring)}


def test_one_active_row_per_mirror(make_ctx: Callable[..., Context], tmp_path: Path) -> None:
    ctx = make_ctx(mirrors=[_mirror(tmp_path)])
    with db.session_scope(ctx.sessions) as s:
        s.add(MirrorJob(mirror="m", kind="apt", status="running"))
        s.add(MirrorJob(mirror="m", kind="apt", status="failed"))  # ended jobs do not count
    with pytest.raises(IntegrityError), db.session_scope(ctx.sessions) as s:
        s.add(MirrorJob(mirror="m", kind="apt", status="queued"))


def test_concurrent_starts_make_one_job(make_ctx: Callable[..., Context], tmp_path: Path, db_url: str) -> None:
    ctx = make_ctx(mirrors=[_mirror(tmp_path)])
    engines = [db.make_engine(db_url) for _ in range(CALLERS)]
    barrier = threading.Barrier(CALLERS)
    got: list[str] = []

    def start(i: int) -> None:
        sessions = db.session_factory(engines[i])
        barrier.wait(10)
        try:
            service.create_job(sessions, ctx.site, "m", trigger=f"instance-{i}")
            got.append("job")
        except Conflict:
            got.append("conflict")

    threads = [threading.Thread(target=start, args=(i,)) for i in range(CALLERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for e in engines:
        e.dispose()
    assert sorted(got) == ["conflict"] * (CALLERS - 1) + ["job"]
    with ctx.sessions() as s:
        assert s.query(MirrorJob).filter(MirrorJob.status.in_(("queued", "running"))).count() == 1


def test_a_sync_elsewhere_is_alive_while_it_heartbeats(make_ctx: Callable[..., Context], tmp_path: Path) -> None:
    ctx = make_ctx(mirrors=[_mirror(tmp_path)], instance={"id": "here", "heartbeat_seconds": 0.1,
                                                          "expire_seconds": 1})
    with db.session_scope(ctx.sessions) as s:
        s.add(MirrorJob(mirror="m", kind="apt", status="running", owner="other-host", heartbeat_at=utcnow()))
    with pytest.raises(Conflict, match="already syncing"):
        service.create_job(ctx.sessions, ctx.site, "m", trigger="t")
    with db.session_scope(ctx.sessions) as s:
        s.query(MirrorJob).one().heartbeat_at = utcnow() - timedelta(seconds=2)  # the other host died
    job = service.create_job(ctx.sessions, ctx.site, "m", trigger="t")
    with ctx.sessions() as s:
        old = s.query(MirrorJob).filter(MirrorJob.owner == "other-host").one()
        assert old.status == "failed" and "interrupted" in old.error
    with db.session_scope(ctx.sessions) as s:
        row = s.get(MirrorJob, job.id)
        assert row is not None
        row.status, row.heartbeat_at = "running", utcnow() - timedelta(seconds=5)
    with service._beating(ctx.sessions, ctx.site, job.id):  # what run_job wraps the sync in
        time.sleep(0.5)
        with ctx.sessions() as s:
            beat = s.get(MirrorJob, job.id)
            assert beat is not None and beat.heartbeat_at is not None
            assert beat.heartbeat_at > utcnow() - timedelta(seconds=0.5)
        with pytest.raises(Conflict):
            service.create_job(ctx.sessions, ctx.site, "m", trigger="t")
