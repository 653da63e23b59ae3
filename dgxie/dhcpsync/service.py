"""The DHCP server's link to the database (services layer): reservations in, leases out.

The server (`dgxie.netboot.dhcp`) holds no SQL. This service
- loads every node's MACs (hostname, ip, state, whether its profile has an image) into the
  server's reservation map at start, and reloads it when the nodes change: at once when woken by
  a committed change (`wake()`, from the PostgreSQL change listener, `dgxie.changes`), and in any
  case when a cheap signature query, once a second on the events table's primary key, moves
  (the only signal on SQLite, and the fallback while the listener is away);
- restores unexpired leases at start, so they survive a restart;
- writes changed leases behind the packet path: every 0.25 s one transaction upserts the batch
  into `dhcp_leases` (and deletes released ones); a failed batch is retried with the next one;
- with `dhcp.ha` (two servers on one segment), runs the heartbeat, takeover and lease merge of
  `dgxie.dhcpsync.ha.HaSync` on a thread of its own;
- creates the unknown MACs the discovery gate admitted as `discovered` nodes (actor "dhcp"),
  and records a `dhcp.discovery_limited` event (at most once a minute) when limits bite.

Two worker threads, two queues (issue 12): the lease writer has a thread of its own and never
waits behind node creation or a reservation reload, which share the other one; node creation
runs in transactions of at most 0.1 s, taken in turn with the lease writes (one FIFO
`asyncio.Lock`, so SQLite's single write lock is never fought over and a lease write waits for
one node-creation transaction at most, never for the backlog). The lease write lag (the age
of the oldest change not committed, `lag()`) therefore stays under a second whatever the
discovery backlog. `stop()` stops node creation within one node, writes
the last leases and returns: every ACKed lease is on disk when `dgxie serve` exits.
The event loop only swaps dicts.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from dgxie.background import cancel
from dgxie.db import session_scope
from dgxie.dhcpsync.discovery import create_discovered, record_limited
from dgxie.dhcpsync.ha import HaSync
from dgxie.dhcpsync.store import Dirty, load_leases, purge_expired, write_leases
from dgxie.models import Event, Interface, Node, Profile
from dgxie.netboot.dhcp.ha import split_pool
from dgxie.netboot.dhcp.leases import LeaseTable, Reservation, Subnet
from dgxie.netboot.dhcp.responder import Responder
from dgxie.sections import DhcpConfig, HaConfig, SubnetConfig
from dgxie.site import Site

log = logging.getLogger("dgxie.dhcp")
FLUSH_EVERY = 0.25  # lease write-behind period (the lag bound is this plus one write)
REFRESH_EVERY = 1.0  # reservation signature check
REFRESH_DISCOVERING = 5.0  # the same while discovered nodes are being created (each of them changes it)
EXPIRE_EVERY = 5.0  # forget expired leases in memory; prune the discovery gate
PURGE_EVERY = 3600.0  # delete lease rows expired for a day
REPORT_EVERY = 60.0  # at most one dhcp.discovery_limited event (and warning line) per minute
DISCOVERY_BATCH = 500  # MACs handed to one creation call (it stops after DISCOVERY_BUDGET s)
DISCOVERY_BUDGET = 0.1  # seconds per node-creation transaction


def _ip(value: str | None) -> int | None:
    return int(ipaddress.IPv4Address(value)) if value else None


def subnet_of(cfg: SubnetConfig, dhcp: DhcpConfig | None = None) -> Subnet:
    """The lease table's subnet for one `dhcp.subnets[]` entry (with `dhcp.pool_reserve`); with
    `dhcp.ha` its pool is this server's half only (`dgxie.netboot.dhcp.ha.split_pool`)."""
    rng = cfg.pool_range()
    pool = (int(rng[0]), int(rng[1])) if rng else None
    if pool is not None and dhcp is not None and dhcp.ha is not None:
        pool = split_pool(pool, dhcp.ha.index)
    s = Subnet(cfg.cidr, pool, cfg.lease_seconds, tuple(r.packed for r in cfg.routers),
               tuple(d.packed for d in cfg.dns), cfg.domain)
    s.reserve = (dhcp or DhcpConfig()).reserve_of(s.size)
    return s


def load_reservations(session: Session) -> dict[bytes, Reservation]:
    """Every interface MAC -> its node; the node's ip goes to its first (primary) interface."""
    rows = session.execute(
        select(Interface.mac, Interface.id, Node.id, Node.hostname, Node.ip, Node.state, Profile.image_id)
        .join(Node, Interface.node_id == Node.id).outerjoin(Profile, Node.profile_id == Profile.id)
        .order_by(Interface.id))
    out: dict[bytes, Reservation] = {}
    seen: set[int] = set()
    for mac, _iid, node_id, hostname, ip, state, image_id in rows:
        primary = node_id not in seen
        seen.add(node_id)
        out[bytes.fromhex(mac.replace(":", ""))] = Reservation(
            hostname, _ip(ip) if primary else None, state, image_id is not None)
    return out


def signature(session: Session) -> tuple[Any, ...]:
    """Changes whenever a node, interface, profile or image changes: every such change records an
    event (dgxie.events). Cheap at any size: index-only lookups, no table scan.

    The count of the newest 1,000 event ids catches a transaction that committed a lower id after
    a higher one was already visible (PostgreSQL sequences do not commit in order).
    """
    top = session.scalar(select(func.max(Event.id))) or 0
    recent = session.scalar(select(func.count(Event.id)).where(Event.id > top - 1000))
    return top, recent, session.scalar(select(func.max(Profile.updated_at)))


class DhcpService:
    """Keeps a `Responder`'s tables in step with the database, from inside the event loop."""

    def __init__(self, sessions: sessionmaker[Session], site: Site, responder: Responder,
                 ha: HaConfig | None = None) -> None:
        self.sessions = sessions
        self.site = site
        self.responder = responder
        self.table: LeaseTable = responder.table
        self.lease_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dhcp-leases")
        self.sync_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dhcp-sync")
        self._stopping = threading.Event()
        self._sig: tuple[Any, ...] | None = None
        self._retry: Dirty = {}
        self._retry_since: float | None = None
        self._inflight_since: float | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._writes = asyncio.Lock()  # lease writes and node creation take turns (FIFO)
        self._sqlite = sessions.kw["bind"].dialect.name == "sqlite"
        self._last_report = float("-inf")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self.woken = 0
        self.ha: HaSync | None = None
        if ha is not None:
            assert responder.ha is not None, "dhcp.ha needs the responder's HaFilter"
            self.ha_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dhcp-ha")
            self.ha = HaSync(ha, responder.ha, self.table, self._ha_call)
        self.flushes = 0
        self.created = 0
        self.reports = 0

    def _db(self, fn: Any, *args: Any, **kw: Any) -> Any:
        with session_scope(self.sessions) as s:
            if s.get_bind().dialect.name == "sqlite":  # keep the lease table's pages in memory
                s.execute(text("PRAGMA cache_size = -65536"))
            return fn(s, *args, **kw)

    def load(self) -> None:
        """Synchronous start-up: reservations and unexpired leases (before the sockets open)."""
        with session_scope(self.sessions) as s:
            self._sig = signature(s)
            self.table.set_reservations(load_reservations(s))
            n = self.table.restore(load_leases(s, datetime.now(UTC)), datetime.now(UTC).timestamp())
        self.responder.gate.reservations_changed(self.table.reservations, time.time())
        log.info("dhcp: %d reservations, %d leases restored", len(self.table.reservations), n)

    async def _call(self, pool: ThreadPoolExecutor, fn: Any, *args: Any, **kw: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool, lambda: self._db(fn, *args, **kw))

    def lag(self) -> float:
        """Seconds since the oldest lease change that is not committed yet (0: none)."""
        pending = [t for t in (self._retry_since, self._inflight_since, self.table.dirty_since) if t is not None]
        return time.monotonic() - min(pending) if pending else 0.0

    async def flush_leases(self) -> None:
        """Write the changed leases (one transaction, on the lease thread)."""
        since = self.table.dirty_since
        batch = self.table.take_dirty()
        if self._retry:
            batch, since = self._retry | batch, self._retry_since
            self._retry, self._retry_since = {}, None
        if not batch:
            return
        self._inflight_since = since
        try:
            async with self._writes:
                await self._call(self.lease_pool, write_leases, batch)
            self.flushes += 1
        except Exception:
            log.exception("dhcp: writing %d leases failed; retrying with the next batch", len(batch))
            self._retry, self._retry_since = batch, since
        finally:
            self._inflight_since = None

    async def create_discovered(self) -> int:
        """Create one time-boxed batch of admitted MACs as nodes (on the sync thread)."""
        gate = self.responder.gate
        macs = gate.take_pending(DISCOVERY_BATCH)
        if not macs:
            return 0
        try:
            async with self._writes:
                made, left = await self._call(self.sync_pool, create_discovered, self.site, macs,
                                              budget=DISCOVERY_BUDGET, stop=self._stopping)
        except Exception:
            log.exception("dhcp: creating %d discovered nodes failed", len(macs))
            gate.requeue(macs)
            return 0
        gate.requeue(left)
        self.created += made
        return int(made)

    def wake(self, _table: str = "*") -> None:
        """A change was committed (any thread): reload the reservations now."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def refresh(self, force: bool = False) -> bool:
        """Reload reservations if the nodes changed (or `force`); True if they were reloaded."""
        sig = await self._call(self.sync_pool, signature)
        if sig == self._sig and not force:
            return False
        self._sig = sig
        self.table.set_reservations(await self._call(self.sync_pool, load_reservations))
        self.responder.gate.reservations_changed(self.table.reservations, time.time())
        return True

    async def report(self) -> bool:
        """Record what the discovery limits refused since the last report (at most once per
        REPORT_EVERY seconds; nothing when nothing was refused)."""
        if time.monotonic() - self._last_report < REPORT_EVERY or not self.responder.gate.unreported:
            return False
        gate = self.responder.gate
        refused = gate.take_report()
        self._last_report = time.monotonic()
        reserve = {s.key: s.reserve for s in self.table.subnets if s.pool is not None}
        log.warning("dhcp: discovery limits refused unknown MACs (%s; max %d nodes, %d per %.0f s, reserve %s)",
                    ", ".join(f"{k}: {v}" for k, v in sorted(refused.items())), gate.limits.max_nodes,
                    gate.limits.rate, gate.limits.interval, reserve)
        try:
            async with self._writes:
                await self._call(self.sync_pool, record_limited, refused, gate.limits, gate.existing, reserve)
        except Exception:
            log.exception("dhcp: recording the discovery-limited event failed")
            return False
        self.reports += 1
        return True

    async def _lease_loop(self) -> None:
        due = time.monotonic()
        next_purge = due + PURGE_EVERY
        while True:
            due += FLUSH_EVERY
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            due = max(due, time.monotonic() - FLUSH_EVERY)  # never try to catch up in a burst
            await self.flush_leases()
            if time.monotonic() >= next_purge:
                next_purge += PURGE_EVERY
                try:
                    await self._call(self.lease_pool, purge_expired)
                except Exception:
                    log.exception("dhcp: purging expired leases failed")

    async def _ha_call(self, fn: Any, *args: Any) -> Any:
        """Run fn(session, *args) on the HA thread (taking turns with the lease writes on SQLite)."""
        if not self._sqlite:
            return await self._call(self.ha_pool, fn, *args)
        async with self._writes:
            return await self._call(self.ha_pool, fn, *args)

    async def _sync_loop(self) -> None:
        next_refresh = next_expire = time.monotonic()
        while True:
            made = await self.create_discovered()
            now = time.monotonic()
            woken = self._wake.is_set() and not made  # a discovery run keeps its slower reload pace
            if woken:
                self._wake.clear()
                self.woken += 1
                next_refresh = now
            if now >= next_expire:
                next_expire = now + EXPIRE_EVERY
                self.table.expire(time.time())
                self.responder.gate.reservations_changed(self.table.reservations, time.time())
            if now >= next_refresh:  # a discovery run reloads less often: each reload reads every node
                next_refresh = now + (REFRESH_DISCOVERING if made else REFRESH_EVERY)
                try:
                    await self.refresh(force=woken)
                except Exception:
                    log.exception("dhcp: reloading reservations failed")
            await self.report()
            if made and self.responder.gate.pending:
                await asyncio.sleep(0)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), FLUSH_EVERY)

    def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._lease_loop(), name="dhcp-leases"),
                       loop.create_task(self._sync_loop(), name="dhcp-sync")]
        if self.ha is not None:
            self._tasks.append(loop.create_task(self.ha.loop(), name="dhcp-ha"))

    async def stop(self) -> None:
        """Stop creating nodes (within one node), write every lease changed so far, return."""
        self._stopping.set()
        for task in self._tasks:
            await cancel(task)
        self._tasks = []
        await self.flush_leases()
        self._loop = None
        self.lease_pool.shutdown(wait=False)
        self.sync_pool.shutdown(wait=False, cancel_futures=True)
        if self.ha is not None:
            self.ha_pool.shutdown(wait=False, cancel_futures=True)
