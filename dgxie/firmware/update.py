"""Running a firmware update job (`dgxie.firmware.update_jobs`), resumably, wave after wave.

`run_update()` is the job body a queue calls once it has claimed the job. It works only from the
database rows, so a job taken over after its runner died resumes where it stopped:

- nodes already `done`, `failed`, `skipped` or `cancelled` are never touched again;
- a node `running` with a known Redfish Task is followed to the Task's end (never flashed again);
- a node `draining` is drained again from the start (no update was handed to its BMC);
- a node `uploading` (the update was being handed to the BMC, no Task known) is failed with
  "interrupted": dgxie cannot tell whether the BMC took it, so it does not flash it twice.

Each wave (`batch` nodes) runs its nodes concurrently: a ready node is drained from its
scheduler first (its role's drain hook, when the job says `drain`), then the BMC is given the
package (`Bmc.update_firmware` with the ImageURI, or `push_firmware` with the file), and the
Task's state and percent are written to the node's row at every poll. After the wave, drained
nodes whose update completed are resumed, and the wave is rescanned so compliance shows what the
BMC now reports. A wave with any failure stops the job: the later nodes are `skipped`. Nodes the
job's cancel reached before they started are `cancelled` (`cancelled()` or the job's
`cancel_requested`). Every step is an event: `firmware.update.started|resumed|finished|failed|
cancelled` for the job, `firmware.update.node.drained|started|done|failed|skipped` per node.
No database connection is held while a BMC works. `heartbeat()` is called at least once a
second from the calling thread; if it raises (the job was taken over), the runner stops there.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from dgxie.bmc.base import BmcError, TaskResult
from dgxie.bmc.drivers import connect
from dgxie.db import session_scope
from dgxie.errors import Conflict, DgxieError
from dgxie.events import record
from dgxie.firmware import service, update_jobs
from dgxie.firmware.packages import Package
from dgxie.handoff import hooks
from dgxie.jobs.worker import Stopped
from dgxie.models import FirmwareUpdate, FirmwareUpdateNode, Node
from dgxie.nodes.power import endpoint_of
from dgxie.site import Site

log = logging.getLogger("dgxie.firmware")
Sessions = sessionmaker[Session]


def _now() -> datetime:
    return datetime.now(UTC)


def _set(s: Session, row_id: int, when: tuple[str, ...] | None = None, **values: Any) -> bool:
    """Update one node row (only while its status is one of `when`); True if it changed."""
    q = update(FirmwareUpdateNode).where(FirmwareUpdateNode.id == row_id)
    if when is not None:
        q = q.where(FirmwareUpdateNode.status.in_(when))
    return bool(s.execute(q.values(**values).execution_options(synchronize_session=False)).rowcount)  # type: ignore[attr-defined]


def _event(s: Session, job: FirmwareUpdate, kind: str, row: FirmwareUpdateNode | None, reason: str,
           **data: Any) -> None:
    node = s.get(Node, row.node_id) if row is not None and row.node_id is not None else None
    record(s, actor=job.actor, kind=kind, node=node, hostname=row.hostname if row is not None else None,
           reason=reason[:500], data={"update": job.id, "package": job.package, **data})


def _end_node(sessions: Sessions, job: FirmwareUpdate, row: FirmwareUpdateNode, status: str, message: str,
              res: TaskResult | None = None) -> None:
    with session_scope(sessions) as s:
        extra: dict[str, Any] = {}
        if res is not None:
            extra = {"task": res.uri, "task_state": res.state, "percent": res.percent}
        _set(s, row.id, status=status, message=message[:2000], finished_at=_now(), **extra)
        _event(s, job, f"firmware.update.node.{status}", row,
               f"{job.package}: {status}{': ' + message if message else ''}",
               task=res.uri if res else None, state=res.state if res else None, targets=job.targets)


def _flash(sessions: Sessions, site: Site, job: FirmwareUpdate, pkg: Package, row: FirmwareUpdateNode) -> bool:
    """One node's update on its BMC; its row shows the Task as it goes. True when it completed."""
    try:
        with session_scope(sessions) as s:
            endpoint = endpoint_of(site, s.get_one(Node, row.node_id))
        announced = row.task is not None

        def progress(t: TaskResult) -> None:
            nonlocal announced
            with session_scope(sessions) as s:
                _set(s, row.id, status="running", task=t.uri, task_state=t.state, percent=t.percent)
                if not announced:
                    announced = True
                    _event(s, job, "firmware.update.node.started", row, f"{job.package}: task {t.uri}", task=t.uri)

        with connect(endpoint, site.bmc_options) as bmc:
            if row.status == "running" and row.task:
                res = bmc.follow_task(row.task, job.timeout, job.poll, progress)
            elif job.multipart:
                res = bmc.push_firmware(pkg.path.read_bytes(), pkg.name, job.targets or None, timeout=job.timeout,
                                        poll=job.poll, progress=progress)
            else:
                res = bmc.update_firmware(pkg.url(site), job.targets or None, timeout=job.timeout, poll=job.poll,
                                          progress=progress)
    except BmcError as exc:
        _end_node(sessions, job, row, "failed", f"BMC {exc.kind}: {exc.message}")
        return False
    except DgxieError as exc:
        _end_node(sessions, job, row, "failed", " ".join(exc.detail.split()))
        return False
    except Exception as exc:  # a driver bug must not end the other nodes of the wave
        log.exception("firmware update %d: %s", job.id, row.hostname)
        _end_node(sessions, job, row, "failed", f"{type(exc).__name__}: {exc}")
        return False
    _end_node(sessions, job, row, "done" if res.ok else "failed", "; ".join(m for m in res.messages if m), res)
    return res.ok


def _drain(sessions: Sessions, site: Site, job: FirmwareUpdate, row: FirmwareUpdateNode) -> bool:
    """Claim a pending (or half-drained) node and drain it; False when it is not to be flashed."""
    with session_scope(sessions) as s:
        if not _set(s, row.id, ("pending", "draining"), status="draining", started_at=_now()):
            return False  # cancelled meanwhile
    if not job.drain:
        return True
    try:
        with session_scope(sessions) as s:
            node = s.get_one(Node, row.node_id)
            if hooks.drain(s, site, node, job.actor).ran:
                _set(s, row.id, drained=True)
                row.drained = True
                _event(s, job, "firmware.update.node.drained", row, f"{row.hostname}: drained before the update")
    except Conflict as exc:
        _end_node(sessions, job, row, "failed", f"drain refused: {exc.detail}")
        return False
    return True


def _wait(threads: list[threading.Thread], heartbeat: Callable[[], object]) -> None:
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        heartbeat()
        for t in threads:
            t.join(timeout=1.0)
            if t.is_alive():
                break


def _wave(sessions: Sessions, site: Site, job: FirmwareUpdate, pkg: Package, rows: list[FirmwareUpdateNode],
          heartbeat: Callable[[], object]) -> None:
    go: list[FirmwareUpdateNode] = []
    for r in rows:
        if r.node_id is None:
            _end_node(sessions, job, r, "failed", "the node was deleted")
        elif r.status == "running" and r.task:
            go.append(r)
        elif r.status in ("uploading", "running"):
            _end_node(sessions, job, r, "failed", "interrupted while the update was handed to the BMC; not repeated "
                                                  "(check the BMC, then start a new update)")
        elif _drain(sessions, site, job, r):
            with session_scope(sessions) as s:
                _set(s, r.id, status="uploading")
            r.status = "uploading"
            go.append(r)
        heartbeat()
    ok: dict[int, bool] = {}

    def one(r: FirmwareUpdateNode) -> None:
        ok[r.id] = _flash(sessions, site, job, pkg, r)

    _wait([threading.Thread(target=one, args=(r,), daemon=True, name=f"dgxie-fw-{r.hostname}") for r in go], heartbeat)
    with session_scope(sessions) as s:
        for r in go:
            if ok.get(r.id) and r.drained and r.node_id is not None:
                hooks.resume(s, site, s.get_one(Node, r.node_id), job.actor)  # a failed one stays drained
        nodes = [n for n in (s.get(Node, r.node_id) for r in go) if n is not None]
        if nodes:
            service.scan(s, site, nodes, actor=job.actor)


def run_update(sessions: Sessions, site: Site, update_id: int, *, cancelled: Callable[[], bool],
               heartbeat: Callable[[], object], stop: Callable[[], bool] = lambda: False) -> None:
    """Run (or resume) the claimed job `update_id` to its end: `done`, `failed` or `cancelled`.
    `stop()` true before a wave (this instance is stopping, or lost the job) raises `Stopped` and
    leaves the job `running`, to be resumed where it stopped by whoever claims it next."""
    with session_scope(sessions) as s:
        job = update_jobs.get(s, update_id)
        if job.status in update_jobs.FINAL:
            return
        resumed = job.started_at is not None
        job.status, job.started_at = "running", job.started_at or _now()
        s.flush()
        s.expunge(job)
        _event(s, job, "firmware.update.resumed" if resumed else "firmware.update.started", None,
               f"firmware update {job.id} {'resumed' if resumed else 'started'}: {job.package}")
    try:
        pkg = update_jobs.find_package(site, job.package)
    except DgxieError as exc:
        return _finish(sessions, job, "failed", exc.detail)
    waves = sorted({r.wave for r in _rows(sessions, job.id) if r.wave is not None})
    for k in waves:
        heartbeat()
        if stop():
            raise Stopped
        rows = [r for r in _rows(sessions, job.id) if r.wave == k]
        if any(r.status == "failed" for r in _rows(sessions, job.id) if r.wave is not None and r.wave < k):
            _skip_rest(sessions, job, k, "an earlier wave failed")
            break
        if cancelled() or _cancel_requested(sessions, job.id):
            _cancel_rest(sessions, job)
            break
        _wave(sessions, site, job, pkg, [r for r in rows if r.status not in update_jobs.NODE_FINAL], heartbeat)
    if cancelled() or _cancel_requested(sessions, job.id):
        _cancel_rest(sessions, job)
    rows = _rows(sessions, job.id)
    failed = [r.hostname for r in rows if r.status == "failed"]
    if failed:
        _skip_rest(sessions, job, 0, "an earlier wave failed")
        return _finish(sessions, job, "failed", f"{len(failed)} node(s) failed: {', '.join(failed[:10])}")
    if any(r.status == "cancelled" for r in rows):
        return _finish(sessions, job, "cancelled", None)
    return _finish(sessions, job, "done", None)


def _rows(sessions: Sessions, update_id: int) -> list[FirmwareUpdateNode]:
    with session_scope(sessions) as s:
        rows = update_jobs.rows_of(s, update_id)
        s.expunge_all()
        return rows


def _cancel_requested(sessions: Sessions, update_id: int) -> bool:
    with session_scope(sessions) as s:
        return bool(update_jobs.get(s, update_id).cancel_requested)


def _skip_rest(sessions: Sessions, job: FirmwareUpdate, from_wave: int, why: str) -> None:
    for r in _rows(sessions, job.id):
        if r.status == "pending" and (r.wave or 0) >= from_wave:
            _end_node(sessions, job, r, "skipped", why)


def _cancel_rest(sessions: Sessions, job: FirmwareUpdate) -> None:
    with session_scope(sessions) as s:
        s.execute(update(FirmwareUpdateNode).where(FirmwareUpdateNode.update_id == job.id,
                                                   FirmwareUpdateNode.status == "pending")
                  .values(status="cancelled", message="cancelled", finished_at=_now()))


def _finish(sessions: Sessions, job: FirmwareUpdate, status: str, error: str | None) -> None:
    with session_scope(sessions) as s:
        s.execute(update(FirmwareUpdate).where(FirmwareUpdate.id == job.id)
                  .values(status=status, error=error, finished_at=_now()))
        kind = {"done": "finished", "failed": "failed", "cancelled": "cancelled"}[status]
        _event(s, job, f"firmware.update.{kind}", None,
               f"firmware update {job.id} {status}{': ' + error if error else ''}", status=status)
