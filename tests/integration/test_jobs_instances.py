"""Several real dgxie instances (processes) on one PostgreSQL: exactly once, and takeover after SIGKILL.

Three processes (`tests/support/jobs_instance.py`: the context `dgxie serve` builds, its
background services, a test job kind) share one queue of 60 jobs. One is SIGKILLed while it runs
jobs. Then: every job ends `done`; each job completed exactly once (one line per job in
done.log); a job ran twice only if the killed instance had started it (a takeover), and the
takeovers finished within 30 s of the kill; the install-timeout sweep's lease is held by one
live instance and moves off the killed one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from dgxie import db
from dgxie.jobs import queue
from dgxie.models import Instance, Job, Lease

JOBS = 60


@pytest.fixture
def pg(pg_database: str) -> str:
    from tests.conftest import _truncate

    _truncate(pg_database)
    return pg_database


def _spawn(tmp_path: Path, db_url: str, name: str) -> subprocess.Popen[bytes]:
    cfg = {"database_url": db_url, "data_dir": str(tmp_path / "data"),
           "instance": {"id": name, "role": "api", "heartbeat_seconds": 0.5, "expire_seconds": 3,
                        "job_concurrency": 3}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DGXIE_")}
    with (tmp_path / f"{name}.log").open("wb") as log:
        return subprocess.Popen([sys.executable, "-m", "tests.support.jobs_instance", str(path), str(tmp_path)],
                                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _lines(path: Path) -> list[tuple[int, str]]:
    if not path.exists():
        return []
    return [(int(a), b) for a, b in (line.split() for line in path.read_text().splitlines())]


@pytest.fixture
def instances(tmp_path: Path, pg: str) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    procs = {n: _spawn(tmp_path, pg, n) for n in ("i1", "i2", "i3")}
    yield procs
    for p in procs.values():
        if p.poll() is None:
            p.terminate()
    for p in procs.values():
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def test_three_instances_each_job_once_and_takeover(tmp_path: Path, pg: str,
                                                    instances: dict[str, subprocess.Popen[bytes]]) -> None:
    engine = db.make_engine(pg)
    sessions = db.session_factory(engine)
    try:
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"ready-{n}").exists() for n in instances):
            dead = [n for n, p in instances.items() if p.poll() is not None]
            assert not dead and time.monotonic() < deadline, (tmp_path / f"{(dead or ['i1'])[0]}.log").read_text()
            time.sleep(0.1)
        with db.session_scope(sessions) as s:
            for _ in range(JOBS):
                queue.enqueue(s, "test.work", {"seconds": 0.6}, actor="test")
        # kill (SIGKILL) the first instance seen running a job, while it runs it
        deadline = time.monotonic() + 30
        victim = None
        while victim is None:
            assert time.monotonic() < deadline, "no instance started a job"
            started = _lines(tmp_path / "started.log")
            if started:
                victim = started[0][1]
            time.sleep(0.05)
        instances[victim].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        instances[victim].wait(10)
        with sessions() as s:
            held_by_victim = set(s.scalars(select(Job.id).where(Job.owner == victim, Job.status == "running")))
        assert held_by_victim, "the killed instance ran no job at the moment it died"
        while True:
            with sessions() as s:
                rows = list(s.scalars(select(Job).order_by(Job.id)))
            if all(r.status == "done" for r in rows):
                break
            assert time.monotonic() - killed_at < 60, Counter(r.status for r in rows)
            time.sleep(0.2)
        resumed_within = time.monotonic() - killed_at
        done = _lines(tmp_path / "done.log")
        per_job = Counter(j for j, _ in done)
        assert sorted(per_job) == [r.id for r in rows] and set(per_job.values()) == {1}, per_job
        started_by = Counter(j for j, _ in _lines(tmp_path / "started.log"))
        twice = {r.id for r in rows if r.executions > 1}
        assert twice == held_by_victim, (twice, held_by_victim)  # only the killed one's jobs ran again
        assert all(r.executions == started_by[r.id] for r in rows if r.id not in twice)
        assert {r.owner for r in rows if r.id in twice} <= set(instances) - {victim}
        assert resumed_within < 30, resumed_within
        with sessions() as s:
            row = s.get(Lease, "install-timeout-sweep")
            deadline = time.monotonic() + 15
            while row is None or row.holder == victim:  # the sweep's lease moves off the dead instance
                assert time.monotonic() < deadline, row and row.holder
                time.sleep(0.2)
                s.expire_all()
                row = s.get(Lease, "install-timeout-sweep")
            assert row.holder in set(instances) - {victim}
            roles = {i.id: i.role for i in s.scalars(select(Instance))}
        assert roles == dict.fromkeys(instances, "api")
    finally:
        engine.dispose()
