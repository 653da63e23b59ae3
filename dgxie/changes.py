"""Committed changes from every instance, at once (PostgreSQL LISTEN/NOTIFY).

Migration 0015 puts statement-level triggers on nodes, interfaces, profiles and images that call
`pg_notify('dgxie_changes', <table>)`; PostgreSQL delivers a notification only after its
transaction commits, to every session listening, whichever instance (or CLI, or raw SQL) wrote.
`ChangeListener` is a background service holding one psycopg connection of its own (not from the
pool) in a thread: it LISTENs and calls each subscriber with the table name, from that thread
(subscribers must be thread-safe and quick: clear a dict, wake a loop). When the connection
fails (database down, restarted) it reconnects every `RETRY` seconds and, once back, calls every
subscriber with "*" (anything may have changed while it was away). While it is away the
subscribers' own polling (the DHCP signature check every second, the iPXE script cache's TTL)
is what notices changes, as on SQLite, where there is no listener at all.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import Engine

log = logging.getLogger("dgxie.changes")
CHANNEL = "dgxie_changes"
RETRY = 1.0  # seconds between reconnection attempts
WAIT = 0.1  # longest wait for a notification before looking at the stop flag (bounds stop())


def conninfo(engine: Engine) -> str | None:
    """The libpq connection string of a PostgreSQL engine, or None for any other database."""
    if engine.dialect.name != "postgresql":
        return None
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class ChangeListener:
    """LISTEN on `CHANNEL` in a thread; call the subscribers with each notification's payload."""

    name = "changes"

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.connected = threading.Event()
        self.received = 0
        self._subscribers: list[Callable[[str], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reported = False

    def subscribe(self, fn: Callable[[str], None]) -> None:
        self._subscribers.append(fn)

    def _dispatch(self, payload: str) -> None:
        for fn in list(self._subscribers):
            try:
                fn(payload)
            except Exception:
                log.exception("changes: a subscriber failed on %r", payload)

    def _session(self, first: bool) -> None:
        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            self.connected.set()
            self._reported = False
            if first:
                log.info("changes: listening for committed changes (%s)", CHANNEL)
            else:
                log.warning("changes: listening again")
                self._dispatch("*")
            while not self._stop.is_set():
                for note in conn.notifies(timeout=WAIT):
                    self.received += 1
                    self._dispatch(note.payload)

    def _run(self) -> None:
        first = True
        while not self._stop.is_set():
            try:
                self._session(first)
                return
            except Exception as exc:  # the database went away (or a bug): never let the thread die
                self.connected.clear()
                if not self._reported:
                    log.warning("changes: not listening (%s); polling until the database is back",
                                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
                    self._reported = True
                first = False  # the next session starts with "*": changes may have been missed
            if not self._stop.wait(RETRY):
                continue
        self.connected.clear()

    async def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="dgxie-changes", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            await asyncio.to_thread(thread.join, WAIT + 6)
