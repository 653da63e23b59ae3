"""The DHCP server's link to the database (services layer): reservations in, leases out.

The server (`dgxie.netboot.dhcp`) holds no SQL. This service
- loads every node's MACs (hostname, ip, state, whether its profile has an image) into the
  server's reservation map at start, and reloads it when the nodes change (a cheap signature
  query once a second on the events table's primary key);
- restores unexpired leases at start, so they survive a restart;
- writes changed leases behind the packet path: every ~0.5 s one transaction upserts the batch
  into `dhcp_leases` (and deletes released ones); a failed batch is retried with the next one;
- creates unknown MACs seen with discovery on as `discovered` nodes (actor "dhcp"), also in
  batches off the packet path.
All database work runs in one worker thread; the event loop only swaps dicts.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from dgxie.background import cancel
from dgxie.db import session_scope
from dgxie.errors import DgxieError
from dgxie.models import DhcpLease, Event, Interface, Node, Profile
from dgxie.netboot.dhcp.leases import Lease, LeaseTable, Reservation, Subnet
from dgxie.netboot.dhcp.responder import Responder
from dgxie.nodes.schemas import NodeCreate
from dgxie.nodes.service import create_node
from dgxie.sections import SubnetConfig
from dgxie.site import Site

log = logging.getLogger("dgxie.dhcp")
FLUSH_EVERY = 0.5
REFRESH_EVERY = 1.0
PURGE_TICKS = 7200  # once an hour
Dirty = dict[bytes, tuple[int, str, float, str | None] | None]


def mac_str(mac: bytes) -> str:
    return mac.hex(":")


def _ip(value: str | None) -> int | None:
    return int(ipaddress.IPv4Address(value)) if value else None


def subnet_of(cfg: SubnetConfig) -> Subnet:
    """The lease table's subnet for one `dhcp.subnets[]` entry."""
    rng = cfg.pool_range()
    pool = (int(rng[0]), int(rng[1])) if rng else None
    return Subnet(cfg.cidr, pool, cfg.lease_seconds, tuple(r.packed for r in cfg.routers),
                  tuple(d.packed for d in cfg.dns), cfg.domain)


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


def load_leases(session: Session, now: datetime) -> list[Lease]:
    rows = session.scalars(select(DhcpLease).where(DhcpLease.expires_at > now))
    return [Lease(bytes.fromhex(r.mac.replace(":", "")), int(ipaddress.IPv4Address(r.ip)), r.subnet,
                  r.expires_at.timestamp(), "bound", r.hostname) for r in rows]


_UPSERT = ("INSERT INTO dhcp_leases (mac, ip, subnet, expires_at, hostname, updated_at) VALUES ({p}) "
           "ON CONFLICT (mac) DO UPDATE SET ip = excluded.ip, subnet = excluded.subnet, "
           "expires_at = excluded.expires_at, hostname = excluded.hostname, updated_at = excluded.updated_at")


def _sqlite_time(t: datetime) -> str:
    """SQLAlchemy's SQLite DATETIME storage format (naive UTC), as `UTCDateTime` reads it back."""
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def write_leases(session: Session, batch: Dirty) -> None:
    """Upsert bound leases and delete released ones, in the caller's transaction.

    The upsert goes straight to the driver's executemany (one statement, tuples): at thousands of
    leases a second the ORM's per-row bookkeeping would cost more CPU than answering the packets.
    """
    gone = [mac_str(m) for m, v in batch.items() if v is None]
    for i in range(0, len(gone), 500):
        session.execute(delete(DhcpLease).where(DhcpLease.mac.in_(gone[i : i + 500])))
    live = [(m, v) for m, v in batch.items() if v is not None]
    if not live:
        return
    conn = session.connection()
    now = datetime.now(UTC)
    sqlite = conn.dialect.name == "sqlite"
    sql = _UPSERT.format(p=", ".join(["?" if sqlite else "%s"] * 6))
    stamps: dict[int, Any] = {}  # a batch spans ~0.5 s: whole-second expiries repeat, format each once

    def when(t: float) -> Any:
        sec = int(t)
        v = stamps.get(sec)
        if v is None:
            v = stamps[sec] = datetime.fromtimestamp(sec, UTC)
            if sqlite:
                v = stamps[sec] = _sqlite_time(v)
        return v

    stamp = _sqlite_time(now) if sqlite else now
    to_ip = ipaddress.IPv4Address
    conn.exec_driver_sql(sql, [(mac_str(m), str(to_ip(v[0])), v[1], when(v[2]), v[3], stamp) for m, v in live])


def purge_expired(session: Session) -> None:
    """Delete leases that expired more than a day ago (kept a while for operators to look at)."""
    session.execute(delete(DhcpLease).where(DhcpLease.expires_at < datetime.now(UTC) - timedelta(days=1)))


def create_discovered(session: Session, site: Site, macs: list[bytes]) -> int:
    """Create each unknown MAC as a `discovered` node `node-<mac hex>`; existing ones are skipped."""

    made = 0
    for mac in macs:
        try:
            with session.begin_nested():
                create_node(session, site, NodeCreate(hostname=f"node-{mac.hex()}", mac=mac_str(mac),
                                                      state="discovered"), actor="dhcp")
            made += 1
        except DgxieError as exc:
            log.info("dhcp: discovery of %s skipped: %s", mac_str(mac), exc.detail)
    return made


class DhcpService:
    """Keeps a `Responder`'s tables in step with the database, from inside the event loop."""

    def __init__(self, sessions: sessionmaker[Session], site: Site, responder: Responder) -> None:
        self.sessions = sessions
        self.site = site
        self.responder = responder
        self.table: LeaseTable = responder.table
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dhcp-db")
        self._sig: tuple[Any, ...] | None = None
        self._retry: Dirty = {}
        self._task: asyncio.Task[None] | None = None
        self.flushes = 0

    def _db(self, fn: Any, *args: Any) -> Any:
        with session_scope(self.sessions) as s:
            if s.get_bind().dialect.name == "sqlite":  # keep the lease table's pages in memory
                s.execute(text("PRAGMA cache_size = -65536"))
            return fn(s, *args)

    def load(self) -> None:
        """Synchronous start-up: reservations and unexpired leases (before the sockets open)."""
        with session_scope(self.sessions) as s:
            self._sig = signature(s)
            self.table.set_reservations(load_reservations(s))
            n = self.table.restore(load_leases(s, datetime.now(UTC)), datetime.now(UTC).timestamp())
        log.info("dhcp: %d reservations, %d leases restored", len(self.table.reservations), n)

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, self._db, fn, *args)

    async def flush(self) -> None:
        """Write the changed leases and create discovered nodes (one transaction each)."""
        batch = self._retry | self.table.take_dirty()
        self._retry = {}
        if batch:
            try:
                await self._call(write_leases, batch)
                self.flushes += 1
            except Exception:
                log.exception("dhcp: writing %d leases failed; retrying with the next batch", len(batch))
                self._retry = batch
        macs = list(self.responder.discovered)
        self.responder.discovered.clear()
        if macs:
            try:
                await self._call(create_discovered, self.site, macs)
            except Exception:
                log.exception("dhcp: creating %d discovered nodes failed", len(macs))

    async def refresh(self) -> bool:
        """Reload reservations if the nodes changed; True if they did."""
        sig = await self._call(signature)
        if sig == self._sig:
            return False
        self._sig = sig
        self.table.set_reservations(await self._call(load_reservations))
        return True

    async def _run(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            ticks += 1
            await self.flush()
            if ticks % PURGE_TICKS == 0:
                try:
                    await self._call(purge_expired)
                except Exception:
                    log.exception("dhcp: purging expired leases failed")
            if ticks % round(REFRESH_EVERY / FLUSH_EVERY) == 0:
                try:
                    await self.refresh()
                except Exception:
                    log.exception("dhcp: reloading reservations failed")

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="dhcp-service")

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
        await self.flush()
        self.pool.shutdown(wait=True)
