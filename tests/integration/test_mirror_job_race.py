"""A mirror sync is started once however many instances ask at the same moment: at most one
queued/running `mirror_jobs` row per mirror (a unique partial index, migration 0013), so of
several concurrent `create_job` calls on separate connections exactly one gets the job and the
others get Conflict (409), never a second sync."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from dgxie import db
from dgxie.context import Context
from dgxie.errors import Conflict
from dgxie.mirror import service
from dgxie.models import MirrorJob

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
