"""Database engine, session scope, naming convention and migrations.

SQLite (the embedded default) and PostgreSQL (`postgresql+psycopg://`) are both first-class: the
test suite runs on both. The schema changes only through Alembic (`migrations/`, found through
`dgxie.resources.migrations()` in a checkout and in an installed wheel alike); `upgrade()` runs it
to head and is what `dgxie db upgrade` and `dgxie serve` call.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import MetaData, create_engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from dgxie import dbjson, resources
from dgxie.errors import DgxieError
from dgxie.filemodes import private_file, sqlite_path

SCHEMA_HEAD = "0018"  # the Alembic head this code is written for (a unit test checks it against migrations/)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

log = logging.getLogger("dgxie.db")

# What "the database is not there" looks like through SQLAlchemy: the server refused or dropped the
# connection (OperationalError, DisconnectionError, InterfaceError on a closed connection) or no
# pooled connection came free within the pool timeout (sqlalchemy.exc.TimeoutError).
UNAVAILABLE: tuple[type[Exception], ...] = (sa_exc.OperationalError, sa_exc.InterfaceError,
                                            sa_exc.DisconnectionError, sa_exc.TimeoutError)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def normalize_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here (the only PostgreSQL driver dgxie installs)."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def make_engine(url: str, **kw: Any) -> Engine:
    """An engine with SQLite made safe for a multi-threaded server (WAL, foreign keys, busy wait).

    Pool options (`pool_size`, `max_overflow`, `pool_timeout`) apply to PostgreSQL and file SQLite
    alike; `dgxie serve` sizes them from `api.*` (compose/root.py, docs/configuration.md)."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        if path is not None:
            private_file(path)  # 0600 before SQLite creates it (its -wal/-shm take its mode)
        else:
            for key in ("pool_size", "max_overflow", "pool_timeout"):
                kw.pop(key, None)  # :memory: uses SingletonThreadPool
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               json_deserializer=dbjson.loads, **kw)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            # A statement on a table with triggers (nodes: migration 0018) keeps a statement journal;
            # in a temporary file that is a file opened and removed per statement (~14 us a row of an
            # executemany, half of a 10,000-node import's insert).
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.close()

        return engine
    if "poolclass" not in kw:
        kw.setdefault("pool_size", 10)
        kw.setdefault("max_overflow", 20)
    engine = create_engine(url, json_deserializer=dbjson.loads, **kw)
    if not kw.get("pool_pre_ping"):
        ping_when_idle(engine)
    return engine


PING_IDLE = 1.0  # seconds a pooled PostgreSQL connection may rest before its checkout pings it


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A pooled connection for reads only. On PostgreSQL in autocommit: its default isolation (read
    committed) gives each statement its own snapshot anyway, so a transaction would only add a
    BEGIN and a ROLLBACK round trip; SQLite's snapshot ends when the connection goes back."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


def ping_when_idle(engine: Engine, idle: float = PING_IDLE) -> None:
    """Check a pooled connection at checkout when it rested more than `idle` seconds, or the driver
    knows it closed or broke; a failed check is a `DisconnectionError`, on which the pool connects
    again (SQLAlchemy's pessimistic disconnect handling). `pool_pre_ping` pinged at every checkout:
    a round trip per request, ~10% of a node read on PostgreSQL. A connection that dies within
    `idle` of its last use fails its next statement instead: one 503 + Retry-After, and the pool
    drops every connection made before it (SQLAlchemy invalidates the pool on a disconnect)."""

    @event.listens_for(engine, "checkin")
    def _rested_since(_dbapi_conn: Any, record: Any) -> None:
        record.info["dgxie_checkin"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("dgxie_checkin")
        if (since is not None and time.monotonic() - since < idle and not getattr(dbapi_conn, "closed", False)
                and not getattr(dbapi_conn, "broken", False)):
            return
        ping(engine, dbapi_conn)


def ping(engine: Engine, dbapi_conn: Any) -> None:
    """One round trip on the driver's connection (the dialect's `SELECT 1`); a failure is a
    `DisconnectionError` naming its cause (`describe`)."""
    try:
        engine.dialect.do_ping(dbapi_conn)
    except Exception as exc:
        raise sa_exc.DisconnectionError(describe(exc)) from exc


def describe(exc: BaseException) -> str:
    """One line for a database error: the driver's class and the first line of its message."""
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [""])[0]
    return f"{type(orig).__name__}: {first}"[:300]


class Availability:
    """Whether the database answers, as the requests and background services find it.

    `down(exc)` logs one ERROR line when the database stops answering (the first failure of an
    outage); every later failure of that outage is silent. The first statement that succeeds
    afterwards (`watch()` hooks every statement) logs one WARNING line saying it is back and how
    long it was gone. Thread-safe; the common path (no outage) is one attribute read."""

    def __init__(self) -> None:
        self._down_since: float | None = None
        self._lock = threading.Lock()

    @property
    def is_down(self) -> bool:
        return self._down_since is not None

    def down(self, exc: BaseException) -> None:
        if self._down_since is not None:
            return
        with self._lock:
            if self._down_since is None:
                self._down_since = time.monotonic()
                log.error("database unavailable: %s", describe(exc))

    def up(self) -> None:
        if self._down_since is None:
            return
        with self._lock:
            if self._down_since is not None:
                gone = time.monotonic() - self._down_since
                self._down_since = None
                log.warning("database available again (unavailable for %.1f s)", gone)

    def log_filter(self) -> logging.Filter:
        """A filter for a server's log handlers: a record carrying a database-unavailable
        exception (a background service's "poll failed" traceback, say) is folded into this
        outage's one line instead of being written."""
        return _FoldOutage(self)

    def watch(self, engine: Engine) -> Availability:
        """Mark the database up whenever a statement on `engine` succeeds."""

        @event.listens_for(engine, "after_cursor_execute")
        def _answered(*_: Any) -> None:
            self.up()

        return self


PROBE_EVERY = 0.5  # s between two background `SELECT 1` (Probe)
PROBE_FRESH = 2.0  # s a probe's result answers /healthz


class Probe:
    """`SELECT 1` on the engine, run by a background service every `PROBE_EVERY` seconds, so
    `/healthz` can answer from the last result without a database connection or a worker thread
    (the boot fast path answers it on the event loop while the API is saturated)."""

    def __init__(self, engine: Engine, health: Availability) -> None:
        self.engine, self.health = engine, health
        self._last: tuple[float, str | None] | None = None  # (when, None if it answered else the error class)

    def check(self) -> str | None:
        """Run the probe now: None if the database answered, else the error's class name."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            error = None
        except Exception as exc:
            if isinstance(exc, UNAVAILABLE):
                self.health.down(exc)
            error = type(exc).__name__
        self._last = (time.monotonic(), error)
        return error

    def last(self, max_age: float) -> tuple[bool, str | None]:
        """(True, result) from a probe at most `max_age` s old, else (False, None)."""
        hit = self._last
        if hit is None or time.monotonic() - hit[0] > max_age:
            return False, None
        return True, hit[1]


class _FoldOutage(logging.Filter):
    def __init__(self, health: Availability) -> None:
        super().__init__()
        self.health = health

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, UNAVAILABLE):
            self.health.down(exc)
            return False
        return True


CHANGED = "dgxie.changed"  # Session.info key: this transaction recorded an event (dgxie.events.mark_changed)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose `info[CHANGED]` starts every transaction False: `on_commit_of_change` hooks
    see only the commits of transactions that recorded an event (every node change does)."""
    factory = sessionmaker(engine, expire_on_commit=False)

    @event.listens_for(factory, "after_begin")
    def _fresh(session: Session, _tx: Any, _conn: Any) -> None:
        session.info[CHANGED] = False

    return factory


def on_commit_of_change(factory: sessionmaker[Session], hook: Callable[[], None]) -> None:
    """Call `hook` after each commit, made through `factory` in this process, of a transaction that
    recorded an event (a node, profile or image change)."""

    @event.listens_for(factory, "after_commit")
    def _committed(session: Session) -> None:
        if session.info.get(CHANGED):
            hook()


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back everything on any exception."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.migrations()))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


class SchemaMismatch(DgxieError):
    """The database's schema is not the one this dgxie is written for."""

    status = 503


def schema_revision(engine: Engine) -> str | None:
    """The database's Alembic revision (one `SELECT`); None when it has no schema yet."""
    with engine.connect() as conn:
        try:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        except (sa_exc.OperationalError, sa_exc.ProgrammingError):  # no such table: never migrated
            return None
    return ",".join(sorted(rows)) if rows else None


@functools.cache
def _known_revisions() -> frozenset[str]:
    return frozenset(p.name.split("_", 1)[0] for p in (resources.migrations() / "versions").glob("*.py"))


def schema_behind(found: str) -> bool:
    """Whether a database at revision `found` (not SCHEMA_HEAD) is behind this code: every one of
    its revisions is one of the migrations shipped here. False means a newer dgxie migrated it.
    Reads the migrations directory once per process (no Alembic import)."""
    return all(rev in _known_revisions() for rev in found.split(","))


def require_schema(url: str, engine: Engine) -> None:
    """What every CLI command does before its work, instead of running Alembic (issue 14): one
    query. A database with no schema yet gets it (first use); one at another revision is one
    clear error, because only `dgxie db upgrade` or `dgxie serve` migrates."""
    found = schema_revision(engine)
    if found == SCHEMA_HEAD:
        return
    if found is None:
        upgrade(url)
        return
    if schema_behind(found):
        raise SchemaMismatch(f"the database schema is at revision {found}, this dgxie needs {SCHEMA_HEAD}: "
                             "run `dgxie db upgrade` (or start `dgxie serve`, which upgrades)")
    raise SchemaMismatch(f"the database schema (revision {found}) is newer than this dgxie ({SCHEMA_HEAD}): "
                         "run the dgxie that upgraded it")


def upgrade(url: str, revision: str = "heads") -> None:
    """Migrate the database at `url` to `revision` (all heads by default)."""
    from alembic import command

    make_engine(url).dispose()  # creates the SQLite file (0600) and its directory (0700)
    command.upgrade(alembic_config(url), revision)
