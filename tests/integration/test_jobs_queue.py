"""The job queue and leader leases (dgxie/jobs/), on SQLite and PostgreSQL, with several workers
(each its own instance id and its own connection pool) on one database.

- every job runs exactly once however many workers claim (handler calls and `executions` agree);
- a job whose owner stopped heartbeating is taken over within the expiry, and the dead owner's
  late `finish` is refused;
- a key dedupes; cancel stops a queued job at once and asks a running handler to stop;
- outcomes: return -> done, an exception -> failed, `Stopped` at a worker's stop -> back in the queue;
- a `Singleton` runs on one instance at a time and moves when its holder dies.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dgxie import db
from dgxie.errors import Conflict
from dgxie.jobs import lease, queue
from dgxie.jobs.leader import Singleton
from dgxie.jobs.worker import JobHandle, JobKinds, JobWorker
from dgxie.models import Job, Lease
from dgxie.sections import InstanceConfig

FAST = {"heartbeat_seconds": 0.2, "expire_seconds": 1.0}


@pytest.fixture
def pools(db_url: str) -> Iterator[Callable[[], sessionmaker[Session]]]:
    """Each call: a session factory on its own engine (a separate client of the database)."""
    engines = []

    def make() -> sessionmaker[Session]:
        engine = db.make_engine(db_url)
        engines.append(engine)
        return db.session_factory(engine)

    yield make
    for e in engines:
        e.dispose()


def _inst(name: str, **timing: float) -> InstanceConfig:
    return InstanceConfig(id=name, **(FAST | timing))


def _jobs(sessions: sessionmaker[Session]) -> list[Job]:
    with sessions() as s:
        return list(s.scalars(select(Job).order_by(Job.id)))


async def _until(cond: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while not cond():
        assert time.monotonic() - start < timeout, f"{what}: not within {timeout} s"
        await asyncio.sleep(0.05)
    return time.monotonic() - start


def test_each_job_runs_once_across_workers(pools: Callable[[], sessionmaker[Session]]) -> None:
    main = pools()
    with db.session_scope(main) as s:
        for i in range(40):
            queue.enqueue(s, "t.count", {"i": i}, actor="test")
    calls: Counter[int] = Counter()
    lock = threading.Lock()

    def handler(job: JobHandle) -> None:
        with lock:
            calls[job.payload["i"]] += 1
        time.sleep(0.01)
        job.progress({"i": job.payload["i"]})

    kinds = JobKinds()
    kinds.register("t.count", handler)
    executed: Counter[str] = Counter()
    # No owner dies here: the default expiry, so that a loaded machine's pause of more than FAST's
    # 1 s (seen once in a CI run on a slow 2-core machine) is not a takeover and a second run.
    workers = [JobWorker(pools(), _inst(f"w{n}", heartbeat_seconds=5, expire_seconds=15), kinds, concurrency=4,
                         poll=0.05,
                         on_execute=lambda kind: executed.update([kind])) for n in range(3)]

    async def go() -> None:
        for w in workers:
            await w.start()
        await _until(lambda: all(j.status == "done" for j in _jobs(main)), 60, "all jobs done")
        for w in workers:
            await w.stop()

    asyncio.run(go())
    rows = _jobs(main)
    assert sorted(calls) == list(range(40)) and set(calls.values()) == {1}
    assert [j.executions for j in rows] == [1] * 40 and executed["t.count"] == 40
    assert all(j.progress == {"i": j.payload["i"]} for j in rows)
    assert len({j.owner for j in rows}) >= 2  # the work was really shared


def test_dead_owner_job_is_taken_over(pools: Callable[[], sessionmaker[Session]]) -> None:
    main = pools()
    with db.session_scope(main) as s:
        job_id = queue.enqueue(s, "t.slow", actor="test").id
    got = queue.claim(pools(), "dead", ["t.slow"], expire=1.0)  # claimed, then never heartbeats
    assert got is not None and got.attempt == 1
    assert queue.claim(main, "other", ["t.slow"], expire=1.0) is None  # still fresh: not claimable
    seen: list[int] = []
    kinds = JobKinds()
    kinds.register("t.slow", lambda job: seen.append(job.claimed.attempt))
    worker = JobWorker(pools(), _inst("alive"), kinds, poll=0.05)

    async def go() -> float:
        await worker.start()
        took = await _until(lambda: _jobs(main)[0].status == "done", 10, "takeover")
        await worker.stop()
        return took

    took = asyncio.run(go())
    assert took < 1.0 + 1.5, took  # within the expiry (+ a poll and slack)
    (row,) = _jobs(main)
    assert (row.owner, row.attempts, row.executions, seen) == ("alive", 2, 2, [2])
    assert not queue.finish(main, "dead", job_id, "done")  # the dead owner's late outcome is refused


def test_takeover_does_not_wait_for_a_busy_worker(pools: Callable[[], sessionmaker[Session]]) -> None:
    """A worker whose one slot runs a long job of its own still takes over a dead instance's job
    within the expiry (a takeover slot), while a new queued job waits for the slot."""
    main = pools()
    release = threading.Event()
    ran: list[str] = []
    kinds = JobKinds()
    kinds.register("t.long", lambda job: (ran.append("long"), release.wait(20)))
    kinds.register("t.resumed", lambda job: ran.append(f"resumed{job.claimed.attempt}"))
    kinds.register("t.new", lambda job: ran.append("new"))
    with db.session_scope(main) as s:
        queue.enqueue(s, "t.long", actor="test")
    worker = JobWorker(pools(), _inst("busy"), kinds, concurrency=1, poll=0.05)

    async def go() -> float:
        await worker.start()
        await _until(lambda: ran == ["long"], 10, "the long job")  # the one slot is busy from here
        with db.session_scope(main) as s:
            queue.enqueue(s, "t.resumed", actor="test")
            queue.enqueue(s, "t.new", actor="test")
        assert queue.claim(pools(), "dead", ["t.resumed"], expire=1.0) is not None  # then never heartbeats
        took = await _until(lambda: "resumed2" in ran, 10, "takeover while busy")
        assert "new" not in ran  # new work waits for the slot; only takeovers go past it
        release.set()
        await _until(lambda: "new" in ran, 10, "the new job after the long one")
        await worker.stop()
        return took

    assert asyncio.run(go()) < 1.0 + 5  # the expiry, a poll, and room for a loaded machine
    assert sorted((j.kind, j.status, j.executions) for j in _jobs(main)) == [
        ("t.long", "done", 1), ("t.new", "done", 1), ("t.resumed", "done", 2)]


def test_a_job_born_claimed_is_not_taken_while_its_owner_lives(pools: Callable[[], sessionmaker[Session]]) -> None:
    """`enqueue(..., owner=)` (the CLI running the job it creates): a worker polling meanwhile
    never takes it first; it runs where it was born, once."""
    main = pools()
    with db.session_scope(main) as s:
        job_id = queue.enqueue(s, "t.mine", actor="test", owner="cli:1").id
    seen: list[str] = []
    kinds = JobKinds()
    kinds.register("t.mine", lambda job: seen.append(job.worker.instance.id))
    other = JobWorker(pools(), _inst("server"), kinds, poll=0.02)

    async def go() -> None:
        await other.start()
        await asyncio.sleep(0.5)  # 25 polls, within the owner's fresh heartbeat
        await other.stop()

    asyncio.run(go())
    assert seen == [] and _jobs(main)[0].owner == "cli:1"
    got = queue.Claimed(job_id, "t.mine", None, {}, 1)
    assert JobWorker(main, _inst("cli:1"), kinds, concurrency=1).run_here(got) == "done"
    (row,) = _jobs(main)
    assert (seen, row.status, row.executions) == (["cli:1"], "done", 1)


def test_running_job_keeps_its_owner_while_heartbeating(pools: Callable[[], sessionmaker[Session]]) -> None:
    main = pools()
    with db.session_scope(main) as s:
        queue.enqueue(s, "t.long", {"seconds": 2.5}, actor="test")
    kinds = JobKinds()
    kinds.register("t.long", lambda job: time.sleep(job.payload["seconds"]))
    a, b = (JobWorker(pools(), _inst(n), kinds, poll=0.05) for n in ("a", "b"))

    async def go() -> None:
        await a.start()
        await _until(lambda: _jobs(main)[0].status == "running", 5, "claimed")
        await b.start()  # runs the whole time the job does (2.5 s > the 1 s expiry): must not take it
        await _until(lambda: _jobs(main)[0].status == "done", 10, "done")
        await a.stop()
        await b.stop()

    asyncio.run(go())
    (row,) = _jobs(main)
    assert (row.owner, row.executions) == ("a", 1)


def test_key_dedupes_and_cancel(pools: Callable[[], sessionmaker[Session]]) -> None:
    main = pools()
    with db.session_scope(main) as s:
        first = queue.enqueue(s, "t.c", key="only-one", actor="test").id
    with db.session_scope(main) as s, pytest.raises(Conflict):
        queue.enqueue(s, "t.c", key="only-one", actor="test")
    with db.session_scope(main) as s:
        assert queue.request_cancel(s, first).status == "cancelled"
    with db.session_scope(main) as s:  # the key is free again once the job ended
        running = queue.enqueue(s, "t.c", key="only-one", actor="test").id
    stopped = threading.Event()

    def handler(job: JobHandle) -> None:
        deadline = time.monotonic() + 10
        while not job.cancelled() and time.monotonic() < deadline:
            time.sleep(0.02)
        stopped.set()
        job.check()  # raises Stopped: the outcome is `cancelled`

    kinds = JobKinds()
    kinds.register("t.c", handler)
    worker = JobWorker(pools(), _inst("w"), kinds, poll=0.05)

    async def go() -> None:
        await worker.start()
        await _until(lambda: _jobs(main)[1].status == "running", 5, "running")
        with db.session_scope(main) as s:
            queue.request_cancel(s, running)
        await _until(lambda: _jobs(main)[1].status == "cancelled", 5, "cancelled")
        await worker.stop()

    asyncio.run(go())
    assert stopped.is_set()


def test_lease_one_holder_and_expiry(pools: Callable[[], sessionmaker[Session]]) -> None:
    a, b = pools(), pools()
    assert lease.acquire(a, "l", "A", 0.5)
    assert not lease.acquire(b, "l", "B", 0.5)
    assert lease.acquire(a, "l", "A", 0.5)  # a renewal
    time.sleep(0.7)
    assert lease.acquire(b, "l", "B", 0.5)  # expired: taken over
    assert not lease.acquire(a, "l", "A", 0.5)


def test_singleton_runs_on_one_instance_and_moves(pools: Callable[[], sessionmaker[Session]]) -> None:
    main = pools()
    runs: list[str] = []
    active = [0]
    overlap = [False]
    lock = threading.Lock()

    def fn_for(name: str) -> Callable[[], None]:
        def fn() -> None:
            with lock:
                active[0] += 1
                overlap[0] |= active[0] > 1
                runs.append(name)
            time.sleep(0.05)
            with lock:
                active[0] -= 1
        return fn

    singles = {n: Singleton("sweep", fn_for(n), 0.1, pools(), _inst(n)) for n in ("a", "b", "c")}

    def holder() -> str | None:
        with main() as s:
            row = s.get(Lease, "sweep")
            return row.holder if row is not None else None

    async def go() -> tuple[str, str, float]:
        for single in singles.values():
            await single.start()
        await asyncio.sleep(1.5)
        first = holder()
        assert first is not None
        dead = singles.pop(first)
        assert dead._task is not None
        dead._task.cancel()  # dies: no release, no more renewals
        before = len(runs)
        took = await _until(lambda: holder() not in (None, first) and len(runs) > before, 5, "lease moved")
        await asyncio.sleep(0.5)
        second = holder()
        assert second is not None
        for single in singles.values():
            await single.stop()
        return first, second, took

    first, second, took = asyncio.run(go())
    assert not overlap[0]
    assert took < 1.0 + 1.0, took
    switch = runs.index(second)
    assert set(runs[:switch]) == {first} and set(runs[switch:]) == {second}
    assert len(runs) >= 8  # every 0.1 s, once per site


def test_outcomes_and_hand_back_at_stop(pools: Callable[[], sessionmaker[Session]]) -> None:
    main = pools()
    with db.session_scope(main) as s:
        for kind in ("t.ok", "t.boom", "t.stop"):
            queue.enqueue(s, kind, actor="test")

    def stop_politely(job: JobHandle) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            job.check()
            time.sleep(0.02)

    def boom(job: JobHandle) -> None:
        raise RuntimeError("disk on fire\nsecond line")

    kinds = JobKinds()
    kinds.register("t.ok", lambda job: None)
    kinds.register("t.boom", boom)
    kinds.register("t.stop", stop_politely)
    with pytest.raises(ValueError, match="already registered"):
        kinds.register("t.ok", lambda job: None)
    worker = JobWorker(pools(), _inst("w"), kinds, poll=0.05)

    async def go() -> None:
        await worker.start()
        await _until(lambda: [j.status for j in _jobs(main)] == ["done", "failed", "running"], 5, "outcomes")
        await worker.stop()

    asyncio.run(go())
    _, failed, handed = _jobs(main)
    assert failed.error == "disk on fire"
    assert (handed.status, handed.owner, handed.executions) == ("queued", None, 1)  # another instance may run it


def test_two_live_processes_with_one_instance_id_are_named(pools: Callable[[], sessionmaker[Session]]) -> None:
    from dgxie.jobs import instances

    main = pools()
    inst = _inst("same")
    assert instances.beat(main, inst, starting=True, process="host:1:a") is None
    assert instances.beat(main, inst, process="host:1:a") is None  # itself
    assert instances.beat(main, inst, process="host:2:b") == "host:1:a"  # a second live process
    assert instances.beat(main, inst, process="host:1:a") == "host:2:b"
    instances.leave(main, inst, process="host:1:a")  # a clean stop
    assert instances.beat(main, inst, starting=True, process="host:3:c") is None
    time.sleep(inst.expire_seconds + 0.2)
    assert instances.beat(main, inst, process="host:4:d") is None  # host:3:c stopped beating: gone
    with main() as s:
        assert [i.id for i in instances.live(s, inst.expire_seconds)] == ["same"]
