"""The in-process runner of firmware update jobs: a background service of `dgxie serve`.

Until the cross-instance job queue exists, this is the whole queue: a daemon thread that every
`every` seconds (or at once after `wake()`, which `POST /api/v1/firmware/updates` calls) claims
the next claimable job (`update_jobs.claim`: queued, or running with a stale heartbeat: its
runner died, so the job is resumed) and runs it with `update.run_update()`, one job at a time.
While a job runs, its heartbeat is refreshed every second. Stopping the service does not cancel
the job: the thread is a daemon, the job's heartbeat goes stale, and the next runner resumes it.
The CLI (`dgxie firmware update`) uses `run_claimed()` to run a job itself when no server does.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from dgxie.db import session_scope
from dgxie.firmware import update_jobs
from dgxie.firmware.update import run_update
from dgxie.site import Site

log = logging.getLogger("dgxie.firmware")


def runner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def run_claimed(sessions: sessionmaker[Session], site: Site, update_id: int, runner: str) -> None:
    """Run a job this caller has claimed as `runner`; an unexpected error fails the job (logged)."""

    def beat() -> None:
        with session_scope(sessions) as s:
            update_jobs.beat(s, update_id, runner)

    def cancelled() -> bool:
        return False  # the job's own cancel_requested flag is what cancels it (read by run_update)

    try:
        run_update(sessions, site, update_id, cancelled=cancelled, heartbeat=beat)
    except Exception as exc:
        log.exception("firmware update %d failed", update_id)
        with session_scope(sessions) as s:
            job = update_jobs.get(s, update_id)
            if job.runner == runner and job.status not in update_jobs.FINAL:
                job.status, job.error, job.finished_at = "failed", f"{type(exc).__name__}: {exc}"[:2000], \
                    datetime.now(UTC)


class UpdateWorker:
    """Runs this site's firmware update jobs in this process, one at a time."""

    name = "firmware-updates"

    def __init__(self, sessions: sessionmaker[Session], site: Site, *, every: float = 2.0,
                 stale: timedelta = update_jobs.STALE) -> None:
        self.sessions, self.site, self.every, self.stale = sessions, site, every, stale
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        """Look for work now (a job was just queued)."""
        self._wake.set()

    def run_once(self) -> int | None:
        """Claim and run the next claimable job; its id, or None when there was none."""
        runner = runner_name()
        with session_scope(self.sessions) as s:
            ids = update_jobs.claimable(s, stale=self.stale)
        for update_id in ids:
            with session_scope(self.sessions) as s:
                if not update_jobs.claim(s, update_id, runner, stale=self.stale):
                    continue
            run_claimed(self.sessions, self.site, update_id, runner)
            return update_id
        return None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                while not self._stop.is_set() and self.run_once() is not None:
                    pass
            except Exception:
                log.exception("firmware update worker")
            self._wake.wait(self.every)
            self._wake.clear()

    async def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="dgxie-firmware-updates")
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:  # a job in flight is left to be resumed; wait only briefly
            await asyncio.to_thread(self._thread.join, 1.0)
        self._thread = None
