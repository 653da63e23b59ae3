"""`api.readers`: node-read threads keeping their connection between reads, on SQLite and on
PostgreSQL, with the engine `dgxie serve` makes (`db.make_engine`)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import insert, text
from sqlalchemy.engine import Connection, Engine

from dgxie import db
from dgxie.api.readers import Readers
from dgxie.errors import NotFound
from dgxie.models import Profile


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = db.make_engine(db_url, pool_size=4, max_overflow=0)
    yield engine
    engine.dispose()


def run(readers: Readers, fn: Callable[[Connection], Any]) -> Any:
    return asyncio.run(readers.run(fn))


def driver(conn: Connection) -> Any:
    return conn.connection.dbapi_connection


def test_a_reader_keeps_its_connection_between_reads_and_gives_it_back_at_close(engine: Engine) -> None:
    readers = Readers(engine, threads=1)
    first = run(readers, driver)
    assert engine.pool.checkedout() == 1  # type: ignore[attr-defined]
    assert run(readers, driver) is first and run(readers, driver) is first
    readers.close()
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_each_read_sees_what_was_committed_before_it(engine: Engine) -> None:
    """No snapshot is held between reads (SQLite's WAL read transaction included)."""
    readers = Readers(engine, threads=1)
    count = text("SELECT count(*) FROM profiles")
    before = run(readers, lambda c: c.execute(count).scalar())
    with engine.begin() as conn:
        conn.execute(insert(Profile.__table__).values(name="seen"))  # the column defaults fill the rest
    assert run(readers, lambda c: c.execute(count).scalar()) == before + 1
    readers.close()


def test_a_refusal_keeps_the_connection_and_a_database_error_gives_it_back(engine: Engine) -> None:
    readers = Readers(engine, threads=1)
    first = run(readers, driver)

    def refuse(conn: Connection) -> None:
        raise NotFound("no node 'x'")

    with pytest.raises(NotFound):
        run(readers, refuse)
    assert run(readers, driver) is first
    assert engine.pool.checkedout() == 1  # type: ignore[attr-defined]
    with pytest.raises(sa_exc.DBAPIError):
        run(readers, lambda c: c.execute(text("SELECT * FROM no_such_table")))
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]  # back to the pool
    assert run(readers, lambda c: c.execute(text("SELECT 1")).scalar()) == 1  # one taken from the pool
    readers.close()


def test_a_kept_connection_that_died_while_resting_is_replaced_before_the_read(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("a SQLite file has no server to drop the connection")
    readers = Readers(engine, threads=1)
    pid = run(readers, lambda c: c.execute(text("SELECT pg_backend_pid()")).scalar())
    with engine.connect() as other:
        assert other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
    monkeypatch.setattr(db, "PING_IDLE", 0.0)  # it rested long enough to be pinged
    again = run(readers, lambda c: c.execute(text("SELECT pg_backend_pid()")).scalar())
    assert again != pid
    readers.close()


def test_close_during_a_read_gives_that_connection_back_when_the_read_ends(engine: Engine) -> None:
    readers = Readers(engine, threads=1)
    started, finish = threading.Event(), threading.Event()

    def slow(conn: Connection) -> int:
        started.set()
        assert finish.wait(10)
        return int(conn.execute(text("SELECT 1")).scalar() or 0)

    async def main() -> int:
        read = asyncio.ensure_future(readers.run(slow))
        await asyncio.to_thread(started.wait, 10)
        readers.close()
        assert engine.pool.checkedout() == 1  # type: ignore[attr-defined]
        finish.set()
        return await read

    assert asyncio.run(main()) == 1
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
