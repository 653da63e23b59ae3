"""The node reads' own threads, each keeping a database connection between reads (issue 14).

`GET /api/v1/nodes/{ref}` and the node pages (the routes and `api.hotpath`) run on
`NODE_READERS` threads of their own, as the boot path's lookups run on `boot.db_threads`: the
loop's default pool handed the interpreter lock around among its many threads, and AnyIO's hop
cost ~9% of a node read in cancel-scope bookkeeping.

Each thread keeps one pooled connection while it keeps reading. Checking a connection out of the
pool and back in for every read (the pool's events, the reset, the isolation level set and reset
again) was ~15% of a node read's CPU on PostgreSQL (py-spy, bench/RESULTS.md). A kept connection:
- is in autocommit on PostgreSQL: its default isolation (read committed) gives each statement its
  own snapshot anyway, and a transaction only added a BEGIN and a ROLLBACK round trip per read;
- has SQLAlchemy's transaction ended after every read, so SQLite holds no read snapshot (and no
  WAL checkpoint back) between reads;
- that rested more than `db.PING_IDLE` seconds is pinged before its next read, as the pool pings a
  connection that rested (`db.ping_when_idle`); a failed ping, or a database error during a read,
  drops it, and the next read takes a fresh one from the pool;
- goes back to the pool when the app stops (`close`), at once if idle, else when its read ends.
`ApiConfig.pool_size` counts them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import TypeVar

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine
from starlette.requests import Request

from dgxie import db
from dgxie.api.deps import get_ctx
from dgxie.sections.serving import NODE_READERS

T = TypeVar("T")


class Readers:
    """`NODE_READERS` threads, each with the connection it keeps (`run`)."""

    def __init__(self, engine: Engine, threads: int = NODE_READERS) -> None:
        self.engine = engine
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="dgxie-api-read")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._idle: set[Connection] = set()  # kept connections not in a read now
        self._closed = False

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """`fn(conn)` on a reader thread, with that thread's connection."""
        return await asyncio.get_running_loop().run_in_executor(self._threads, self._read, fn)

    def _read(self, fn: Callable[[Connection], T]) -> T:
        conn = self._take()
        try:
            out = fn(conn)
            conn.rollback()
        except sa_exc.DBAPIError:
            self._drop(conn)
            raise
        except BaseException:
            try:
                conn.rollback()
            except sa_exc.DBAPIError:
                self._drop(conn)
            else:
                self._give(conn)
            raise
        self._give(conn)
        return out

    def _take(self) -> Connection:
        """This thread's connection, pinged if it rested; a new one from the pool if none."""
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            with self._lock:
                if conn in self._idle:
                    self._idle.remove(conn)
                else:  # `close` gave it back
                    conn = self._local.conn = None
        if conn is not None and time.monotonic() - self._local.used > db.PING_IDLE and not self._alive(conn):
            self._drop(conn)
            conn = None
        if conn is None:
            conn = self.engine.connect()
            if conn.dialect.name == "postgresql":
                conn.execution_options(isolation_level="AUTOCOMMIT")
            self._local.conn = conn
        return conn

    def _alive(self, conn: Connection) -> bool:
        if conn.dialect.name == "sqlite":
            return True  # a file: nothing between this process and it can drop
        try:
            db.ping(self.engine, conn.connection.dbapi_connection)
        except sa_exc.DisconnectionError:
            conn.invalidate()
            return False
        return True

    def _give(self, conn: Connection) -> None:
        """The read is over: keep `conn` for this thread's next read, unless the app stopped."""
        self._local.used = time.monotonic()
        with self._lock:
            if not self._closed:
                self._idle.add(conn)
                return
        self._drop(conn)

    def _drop(self, conn: Connection) -> None:
        """Back to the pool (or gone, if SQLAlchemy invalidated it); this thread keeps none."""
        self._local.conn = None
        with suppress(Exception):
            conn.close()

    def close(self) -> None:
        """Stop: no new reads; idle connections go back to the pool now, busy ones after their read."""
        self._threads.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            self._closed = True
            for conn in self._idle:
                with suppress(Exception):
                    conn.close()
            self._idle.clear()


def of(request: Request) -> Readers:
    """The app's readers (made on first use)."""
    state = request.app.state
    readers: Readers | None = getattr(state, "node_readers", None)
    if readers is None:
        readers = state.node_readers = Readers(get_ctx(request).engine)
    return readers


def close(state: object) -> None:
    """Stop the app's readers, if it made them (the app's lifespan, at its end)."""
    readers: Readers | None = getattr(state, "node_readers", None)
    if readers is not None:
        readers.close()
