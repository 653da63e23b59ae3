"""Bulk power in waves: power many nodes on, off or cycle them through their BMCs, `batch` at a time.

Storm control (issue 14): powering a whole site on at once makes every node DHCP, TFTP and fetch
its kernel and initrd in the same second. `run()` splits the selected nodes (ordered by hostname)
into waves of `batch`; the BMC calls of one wave run concurrently (at most `MAX_PARALLEL` threads);
wave k+1 starts `interval` seconds after wave k started, or when wave k's BMC calls have all
returned, whichever is later (so at most `batch` calls are ever in flight). Each node's action is
what `dgxie.nodes.power.power()` does, with the usual `node.power` / `node.power.failed` event, but
no database connection is held during its BMC call (short sessions before and after it). One
`power.bulk` event records the request itself. Nodes without a BMC are `skipped`, never called.

Per-node outcome: `done` (the BMC already reports the end state), `requested` (accepted; the BMC
still reports the old state, as BMCs apply a reset seconds later), `failed` (one-line reason),
`skipped` (no BMC). `PowerJobs` runs one bulk request at a time in a background thread for the API
(`POST /api/v1/power`); its jobs live in memory (the last `KEEP` of them) and end with the process,
while the per-node events stay in the database.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol, cast

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dgxie.bmc.base import POWER_ACTIONS, POWER_TARGET, BmcError, PowerAction, PowerState
from dgxie.bmc.drivers import connect
from dgxie.boot.state import State
from dgxie.db import session_scope
from dgxie.errors import Conflict, DgxieError, Invalid, NotFound
from dgxie.events import record
from dgxie.models import Node
from dgxie.nodes import power as power_svc
from dgxie.nodes import service
from dgxie.site import Site

log = logging.getLogger("dgxie.power")

MAX_PARALLEL = 32  # BMC calls in flight at once within a wave, whatever the batch
DB_PARALLEL = 4  # of those, database sessions open at once: the API's pool (sized for admitted requests)
# is shared, and 32 sessions at the end of a wave of fast BMCs exhausted it ("QueuePool limit of size
# 18 overflow 0 reached" for 439 of 5,000 nodes in the storm bench)
_db_gate = threading.BoundedSemaphore(DB_PARALLEL)


@contextmanager
def _session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with _db_gate, session_scope(sessions) as s:
        yield s
MAX_BATCH = 10_000
MAX_INTERVAL = 3600.0
KEEP = 50  # finished jobs kept in memory for GET
MAX_JOB_ID = 2**31 - 1


class PowerSelector(BaseModel):
    """Which nodes: `all` (no values), `tags` (nodes with every tag), `state` (any of the states),
    `nodes` (hostnames or MACs)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"kind": "tags", "values": ["rack7"]}]})
    kind: Literal["all", "tags", "state", "nodes"]
    values: list[str] = Field(default_factory=list, max_length=MAX_BATCH)


class PowerNodeOut(BaseModel):
    """One node of a bulk power job: its wave (None when skipped), outcome and one-line reason."""

    node: str
    wave: int | None
    status: Literal["pending", "running", "done", "requested", "failed", "skipped"]
    power: PowerState | None = None
    reason: str | None = None


class PowerJobOut(BaseModel):
    """A bulk power job: the plan, how far it got (`waves_started` of `waves`) and every node."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 1, "action": "on", "selector": {"kind": "all", "values": []}, "batch": 2, "interval": 1.0,
        "status": "running", "created_at": "2026-11-30T08:00:00Z", "started_at": "2026-11-30T08:00:00Z",
        "finished_at": None, "waves": 2, "waves_started": 1, "error": None, "nodes": [
            {"node": "gpu01", "wave": 1, "status": "done", "power": "on", "reason": None},
            {"node": "gpu02", "wave": 1, "status": "failed", "power": None,
             "reason": "gpu02: BMC unreachable: https://10.0.9.2: connection refused"},
            {"node": "gpu03", "wave": 2, "status": "pending", "power": None, "reason": None},
            {"node": "gpu04", "wave": None, "status": "skipped", "power": None, "reason": "no BMC"}]}]})
    id: int
    action: PowerAction
    selector: PowerSelector
    batch: int
    interval: float
    status: Literal["queued", "running", "finished", "cancelled", "failed"]
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    waves: int
    waves_started: int = 0
    error: str | None = None
    nodes: list[PowerNodeOut]

    def count(self, status: str) -> int:
        return sum(1 for r in self.nodes if r.status == status)


class PowerMetrics(Protocol):
    def power_wave(self) -> None: ...

    def power_node(self, outcome: str) -> None: ...


def check_plan(action: str, batch: int, interval: float) -> PowerAction:
    """The action, validated with the wave plan (`Invalid` names the bad field)."""
    if action not in POWER_ACTIONS:
        raise Invalid(f"action: must be one of {', '.join(POWER_ACTIONS)}, not {action!r}")
    if not 1 <= batch <= MAX_BATCH:
        raise Invalid(f"batch: must be 1..{MAX_BATCH}, not {batch}")
    if not 0 <= interval <= MAX_INTERVAL:
        raise Invalid(f"interval: must be 0..{MAX_INTERVAL:g} seconds, not {interval:g}")
    return cast(PowerAction, action)


def select_nodes(session: Session, sel: PowerSelector) -> list[Node]:
    """The nodes `sel` names, ordered by hostname; `Invalid` for a bad selector or when none match
    (`NotFound` for an unknown node in a `nodes` list)."""
    q = select(Node)
    if sel.kind == "all":
        if sel.values:
            raise Invalid("selector: 'all' takes no values")
    elif not sel.values:
        raise Invalid(f"selector: {sel.kind!r} needs at least one value")
    if sel.kind == "state":
        known = {s.value for s in State}
        bad = [v for v in sel.values if v not in known]
        if bad:
            raise Invalid(f"state: unknown state {bad[0]!r} (one of {', '.join(sorted(known))})")
        q = q.where(Node.state.in_(sel.values))
    elif sel.kind == "tags":
        for tag in sel.values:  # every tag given
            q = q.where(service._tag_clause(session, tag))
    elif sel.kind == "nodes":
        ids = {service.get_node(session, ref).id for ref in sel.values}
        q = q.where(Node.id.in_(ids))
    nodes = list(session.scalars(q.order_by(Node.hostname)).unique())
    if not nodes:
        raise Invalid(f"selector: no node matches {sel.kind}{'=' + ','.join(sel.values) if sel.values else ''}")
    return nodes


def plan(session: Session, sel: PowerSelector, action: str, batch: int, interval: float) -> PowerJobOut:
    """A job (status `queued`) for the selected nodes: waves numbered from 1, no-BMC nodes skipped."""
    act = check_plan(action, batch, interval)
    nodes = select_nodes(session, sel)
    with_bmc = [n for n in nodes if n.bmc_url]
    rows = [PowerNodeOut(node=n.hostname, wave=i // batch + 1, status="pending") for i, n in enumerate(with_bmc)]
    rows += [PowerNodeOut(node=n.hostname, wave=None, status="skipped", reason="no BMC") for n in nodes
             if not n.bmc_url]
    return PowerJobOut(id=0, action=act, selector=sel, batch=batch, interval=interval, status="queued",
                       created_at=datetime.now(UTC), waves=-(-len(with_bmc) // batch), nodes=rows)


@dataclass
class Hooks:
    """What a caller sees while a job runs (the CLI prints, the API job only updates its rows)."""

    wave_started: Callable[[int, list[PowerNodeOut]], None] = lambda k, rows: None
    wave_done: Callable[[int, list[PowerNodeOut]], None] = lambda k, rows: None


def _one(sessions: sessionmaker[Session], site: Site, row: PowerNodeOut, action: PowerAction, actor: str) -> None:
    """One node's action, recorded like `power.power()` (`node.power` / `node.power.failed`), but
    with no database connection held during the BMC call: a wave of 32 slow BMCs must not take
    32 pooled connections from the API (the pool is sized for admitted requests)."""
    row.status = "running"
    try:
        with _session(sessions) as s:
            node = service.get_node(s, row.node)
            endpoint, node_id = power_svc.endpoint_of(site, node), node.id
        try:
            with connect(endpoint, site.bmc_options) as b:
                state, protocol = b.power(action), b.protocol
        except BmcError as exc:
            row.status, row.reason = "failed", f"{row.node}: BMC {exc.kind}: {exc.message}"
            with _session(sessions) as s:
                record(s, actor=actor, kind="node.power.failed", node=s.get(Node, node_id),
                       reason=f"BMC {exc.kind}: {exc.message}", data={"action": action, "error_kind": exc.kind})
            return
        row.power = state
        row.status = "done" if state == POWER_TARGET[action] else "requested"
        with _session(sessions) as s:
            record(s, actor=actor, kind="node.power", node=s.get(Node, node_id), reason=f"power {action}",
                   data={"action": action, "power": state, "protocol": protocol})
    except DgxieError as exc:
        row.status, row.reason = "failed", " ".join(exc.detail.split())
    except Exception as exc:  # a driver bug or a database hiccup must not end the other nodes' waves
        log.exception("bulk power %s: %s", action, row.node)
        row.status, row.reason = "failed", f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _parallel(fn: Callable[[PowerNodeOut], None], rows: list[PowerNodeOut], workers: int) -> None:
    """`fn` on every row, `workers` at a time, in daemon threads (a BMC call in flight never keeps
    the process from exiting, as a ThreadPoolExecutor's workers would); returns when all are done."""
    lock, todo = threading.Lock(), iter(rows)

    def work() -> None:
        while True:
            with lock:
                row = next(todo, None)
            if row is None:
                return
            fn(row)

    threads = [threading.Thread(target=work, daemon=True, name="dgxie-power") for _ in range(min(workers, len(rows)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def run(sessions: sessionmaker[Session], site: Site, job: PowerJobOut, *, actor: str,
        metrics: PowerMetrics | None = None, hooks: Hooks | None = None,
        stop: threading.Event | None = None) -> PowerJobOut:
    """Run `job` (from `plan()`) to its end, updating its rows in place; returns it. `stop` set
    between waves ends it early (`cancelled`; the nodes not reached stay `pending`)."""
    hooks, stop = hooks or Hooks(), stop or threading.Event()
    with session_scope(sessions) as s:
        record(s, actor=actor, kind="power.bulk", reason=f"power {job.action} in waves of {job.batch}",
               data={"action": job.action, "selector": job.selector.model_dump(), "batch": job.batch,
                     "interval": job.interval, "nodes": len(job.nodes),
                     "skipped": [r.node for r in job.nodes if r.status == "skipped"]})
    job.status, job.started_at = "running", datetime.now(UTC)
    for r in job.nodes:
        if r.status == "skipped" and metrics:
            metrics.power_node("skipped")
    waves = [list(g) for _, g in itertools.groupby([r for r in job.nodes if r.wave], key=lambda r: r.wave)]
    t0 = time.monotonic()
    for k, rows in enumerate(waves, 1):
        if k > 1 and stop.wait(max(0.0, t0 + (k - 1) * job.interval - time.monotonic())):
            job.status = "cancelled"
            break
        job.waves_started = k
        if metrics:
            metrics.power_wave()
        hooks.wave_started(k, rows)
        _parallel(lambda r: _one(sessions, site, r, job.action, actor), rows, MAX_PARALLEL)
        if metrics:
            for r in rows:
                metrics.power_node(r.status)
        hooks.wave_done(k, rows)
    if job.status != "cancelled":
        job.status = "finished"
    job.finished_at = datetime.now(UTC)
    return job


class PowerJobs:
    """Bulk power jobs of this process, one running at a time (a second is a `Conflict`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[int, PowerJobOut] = {}
        self._ids = itertools.count(1)
        self._stop = threading.Event()

    def submit(self, sessions: sessionmaker[Session], site: Site, sel: PowerSelector, action: str, batch: int,
              interval: float, *, actor: str, metrics: PowerMetrics | None = None) -> PowerJobOut:
        with session_scope(sessions) as s:
            job = plan(s, sel, action, batch, interval)
        with self._lock:
            busy = [j.id for j in self._jobs.values() if j.status in ("queued", "running")]
            if busy:
                raise Conflict(f"bulk power job {busy[0]} is still running (GET /api/v1/power/{busy[0]})")
            job.id = next(self._ids)
            self._jobs[job.id] = job
            for old in sorted(self._jobs)[:-KEEP]:
                del self._jobs[old]
        threading.Thread(target=self._run, args=(sessions, site, job, actor, metrics), daemon=True,
                         name=f"dgxie-power-job-{job.id}").start()
        return job.model_copy(deep=True)

    def _run(self, sessions: sessionmaker[Session], site: Site, job: PowerJobOut, actor: str,
             metrics: PowerMetrics | None) -> None:
        try:
            run(sessions, site, job, actor=actor, metrics=metrics, stop=self._stop)
        except Exception as exc:
            log.exception("bulk power job %d failed", job.id)
            job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"
            job.finished_at = datetime.now(UTC)

    def get(self, job_id: int) -> PowerJobOut:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise NotFound(f"no bulk power job {job_id} (jobs live in memory: the last {KEEP})")
            return job.model_copy(deep=True)

    def list(self) -> Sequence[PowerJobOut]:
        with self._lock:
            return [j.model_copy(deep=True) for j in sorted(self._jobs.values(), key=lambda j: -j.id)]

    def cancel(self) -> None:
        """Cancel running jobs at their next wave (their nodes not reached stay `pending`)."""
        self._stop.set()

    name = "power-jobs"  # a background service (dgxie/background.py): stopping it cancels the jobs

    async def start(self) -> None:
        self._stop.clear()

    async def stop(self) -> None:
        self.cancel()
