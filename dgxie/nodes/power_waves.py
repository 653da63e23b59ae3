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
`skipped` (no BMC). The CLI runs `run()` in the foreground; the API queues it as a `power.bulk` job
on the site's job queue (`dgxie.nodes.power_jobs`), which `run()` can resume after a takeover.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
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
from dgxie.errors import DgxieError, Invalid
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
MAX_JOB_ID = 2**31 - 1
INTERRUPTED = "interrupted: the instance running its wave stopped; the power state is unknown"


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
            q = q.where(service.tag_clause(tag))
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
    """What a caller sees while a job runs (the CLI prints, the queue job stores its progress).
    `node_done` is called from the wave's threads, as each node's call returns."""

    wave_started: Callable[[int, list[PowerNodeOut]], None] = lambda k, rows: None
    wave_done: Callable[[int, list[PowerNodeOut]], None] = lambda k, rows: None
    node_done: Callable[[PowerNodeOut], None] = lambda row: None


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


def _wait(until: float, stopped: Callable[[], bool]) -> bool:
    """Sleep until monotonic time `until`; True (at once) if `stopped()` becomes true first."""
    while not stopped():
        left = until - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(left, 0.2))
    return True


def run(sessions: sessionmaker[Session], site: Site, job: PowerJobOut, *, actor: str,
        metrics: PowerMetrics | None = None, hooks: Hooks | None = None,
        stopped: Callable[[], bool] | None = None, last_wave_at: float | None = None) -> PowerJobOut:
    """Run `job` (from `plan()`) to its end, updating its rows in place; returns it. `stopped()`
    true before a wave ends it early (`cancelled`; the nodes not reached stay `pending`).

    Resume: a job with `started_at` set (its stored progress, after a takeover) is continued, not
    restarted. The waves already started are not run again: their nodes keep their outcome, and
    those without one (calls in flight when the instance died) become `failed` (`INTERRUPTED`);
    the next wave starts `interval` s after `last_wave_at` (epoch s: when the last started wave
    started), or at once if that has passed. No second `power.bulk` event is recorded."""
    hooks, stopped = hooks or Hooks(), stopped or (lambda: False)
    if job.started_at is None:
        with session_scope(sessions) as s:
            record(s, actor=actor, kind="power.bulk", reason=f"power {job.action} in waves of {job.batch}",
                   data={"action": job.action, "selector": job.selector.model_dump(), "batch": job.batch,
                         "interval": job.interval, "nodes": len(job.nodes),
                         "skipped": [r.node for r in job.nodes if r.status == "skipped"]})
        job.started_at = datetime.now(UTC)
        for r in job.nodes:
            if r.status == "skipped" and metrics:
                metrics.power_node("skipped")
    for r in job.nodes:
        if r.wave is not None and r.wave <= job.waves_started and r.status in ("pending", "running"):
            r.status, r.reason = "failed", INTERRUPTED
            if metrics:
                metrics.power_node("failed")
    job.status = "running"
    waves = [list(g) for _, g in itertools.groupby([r for r in job.nodes if r.wave], key=lambda r: r.wave)]
    next_at = time.monotonic()
    if job.waves_started and last_wave_at is not None:
        next_at += min(job.interval, max(0.0, last_wave_at + job.interval - time.time()))

    def one(r: PowerNodeOut) -> None:
        _one(sessions, site, r, job.action, actor)
        hooks.node_done(r)

    for k, rows in enumerate(waves, 1):
        if k <= job.waves_started:
            continue
        if _wait(next_at, stopped):
            job.status = "cancelled"
            break
        next_at = time.monotonic() + job.interval  # the next wave: `interval` after this one started
        job.waves_started = k
        if metrics:
            metrics.power_wave()
        hooks.wave_started(k, rows)
        _parallel(one, rows, MAX_PARALLEL)
        if metrics:
            for r in rows:
                metrics.power_node(r.status)
        hooks.wave_done(k, rows)
    if job.status != "cancelled":
        job.status = "finished"
    job.finished_at = datetime.now(UTC)
    return job
