"""Two DHCP servers on one segment: heartbeats and lease sync through the database (services layer).

Every `heartbeat_seconds` each server adds one to its `dhcp_peers.beat` and reads its partner's.
The partner is down when its beat has not changed for `takeover_seconds`, as measured by this
server's monotonic clock, or when this server cannot reach the database for that long. Then
`HaFilter.partner_down` is set, this server answers every client, and it takes in the
partner's unexpired leases from `dhcp_leases`, so the partner's clients keep their addresses when
they renew or rebind. It still allocates new addresses only from its own half of each pool, so
a split brain (both think the other is down) costs double offers, never one address for two
MACs. When the partner's beat moves again, each serves its own clients.

Every `SYNC_EVERY` seconds each server also reads the lease rows written in the last
`SYNC_MARGIN` seconds and merges them (`LeaseTable.merge`): a binding the partner renewed (a
client of this server's half that the partner served during a takeover, or after a failback)
is extended here too, so this server never sees it expire and hands its address to another
MAC while the client still holds it. Rows carry the writer's wall clock (`updated_at`), so
the hosts' clocks must agree within `SYNC_MARGIN - SYNC_EVERY` seconds (NTP; Kea HA also
requires synchronised clocks).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dgxie.dhcpsync.store import load_leases
from dgxie.models import DhcpLease, DhcpPeer
from dgxie.netboot.dhcp.ha import HaFilter
from dgxie.netboot.dhcp.leases import Lease, LeaseTable
from dgxie.sections import HaConfig

log = logging.getLogger("dgxie.dhcp")
SYNC_EVERY = 5.0  # seconds between lease merges
SYNC_MARGIN = 15.0  # each merge reads the rows written this long before the previous one started

Run = Callable[..., Awaitable[Any]]  # run(fn, *args): fn(session, *args) in a transaction, off the loop


def beat(session: Session, this: str, partner: str) -> int | None:
    """Add one to this server's beat (creating its row); return the partner's beat (None: no row)."""
    row = session.get(DhcpPeer, this)
    if row is None:
        session.add(DhcpPeer(name=this, beat=1))
    else:
        row.beat += 1
    session.flush()
    return session.scalar(select(DhcpPeer.beat).where(DhcpPeer.name == partner))


def all_leases(session: Session) -> list[Lease]:
    return load_leases(session, datetime.now(UTC))


def changed_leases(session: Session, since: datetime) -> list[Lease]:
    """Unexpired lease rows written at or after `since` (index on updated_at)."""
    return load_leases(session, datetime.now(UTC), DhcpLease.updated_at >= since)


class HaMonitor:
    """Decides, from the heartbeats seen, whether the partner is down (no I/O: `seen()` with each
    beat read, `missed()` when the database could not be read; both given a monotonic time)."""

    def __init__(self, ha: HaFilter, takeover: float, partner: str) -> None:
        self.ha, self.takeover, self.partner = ha, takeover, partner
        self._last: int | None = None
        self._changed = time.monotonic()  # a new server waits one takeover time before taking over
        self.takeovers = 0

    def seen(self, partner_beat: int | None, now: float) -> bool:
        """Record the partner's beat; True when this server has just taken over."""
        if partner_beat is not None and partner_beat != self._last:
            self._last = partner_beat
            self._changed = now
            if self.ha.partner_down:
                self.ha.partner_down = False
                log.warning("dhcp: partner %s is back; answering only this server's clients", self.partner)
            return False
        return self.missed(now)

    def missed(self, now: float) -> bool:
        if self.ha.partner_down or now - self._changed < self.takeover:
            return False
        self.ha.partner_down = True
        self.takeovers += 1
        log.warning("dhcp: partner %s silent for %.1f s; answering its clients too", self.partner,
                    now - self._changed)
        return True


class HaSync:
    """The heartbeat and lease-merge loop of one server of an HA pair (run by `DhcpService`)."""

    def __init__(self, cfg: HaConfig, ha: HaFilter, table: LeaseTable, run: Run) -> None:
        self.cfg, self.table, self._run = cfg, table, run
        self.monitor = HaMonitor(ha, cfg.takeover_seconds, cfg.partner)
        self._since = datetime.now(UTC) - timedelta(seconds=SYNC_MARGIN)  # `load()` read the rest
        self._next_sync = time.monotonic() + SYNC_EVERY
        self.merged = 0
        self._sync_failing = False

    async def heartbeat(self) -> None:
        """One beat; take over (merging every unexpired lease) when the partner is silent. A
        database error counts as silence (docs/dhcp.md, "Two servers on one segment")."""
        now = time.monotonic()
        try:
            partner = await self._run(beat, self.cfg.this, self.cfg.partner)
        except Exception as exc:
            log.debug("dhcp: heartbeat failed: %s", exc)
            took = self.monitor.missed(time.monotonic())
        else:
            took = self.monitor.seen(partner, now)
        if took:
            try:
                n = self.table.merge(await self._run(all_leases), time.time())
                log.info("dhcp: took in %d of the partner's leases", n)
            except Exception:
                log.exception("dhcp: reading the partner's leases failed; its clients get new addresses")

    async def sync_leases(self) -> int:
        """Merge the lease rows written since the last look (less the margin); returns how many
        changed this table."""
        started = datetime.now(UTC)
        rows = await self._run(changed_leases, self._since)
        self._since = started - timedelta(seconds=SYNC_MARGIN)
        n = self.table.merge(rows, time.time())
        self.merged += n
        return n

    async def loop(self) -> None:
        due = time.monotonic()
        while True:
            await self.heartbeat()
            if time.monotonic() >= self._next_sync:
                self._next_sync = time.monotonic() + SYNC_EVERY
                try:
                    await self.sync_leases()
                    self._sync_failing = False
                except Exception as exc:
                    if not self._sync_failing:  # one line per outage, not one per try
                        log.warning("dhcp: reading the partner's lease changes failed (%s); retrying every %.0f s",
                                    type(exc).__name__, SYNC_EVERY)
                    self._sync_failing = True
            due = max(due + self.cfg.heartbeat_seconds, time.monotonic())
            await asyncio.sleep(due - time.monotonic())
