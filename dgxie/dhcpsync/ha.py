"""Heartbeats of two DHCP servers on one segment, through the database (services layer).

Every `heartbeat_seconds` each server adds one to its `dhcp_peers.beat` and reads its partner's.
The partner is down when its beat has not changed for `takeover_seconds` as measured by this
server's monotonic clock (no clocks compared between hosts), or when this server cannot reach
the database for that long: then `HaFilter.partner_down` is set and this server answers every
client, and it adopts the partner's unexpired leases from `dhcp_leases` so the partner's clients
keep their addresses when they renew or rebind. It still allocates new addresses only from its
own half of each pool, so a split brain (both think the other is down) costs double offers,
never one address for two MACs. When the partner's beat moves again, each serves its own half.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dgxie.dhcpsync.store import load_leases
from dgxie.models import DhcpPeer
from dgxie.netboot.dhcp.ha import HaFilter
from dgxie.netboot.dhcp.leases import Lease, LeaseTable

log = logging.getLogger("dgxie.dhcp")


def beat(session: Session, this: str, partner: str) -> int | None:
    """Add one to this server's beat (creating its row); return the partner's beat (None: no row)."""
    row = session.get(DhcpPeer, this)
    if row is None:
        session.add(DhcpPeer(name=this, beat=1))
    else:
        row.beat += 1
    session.flush()
    return session.scalar(select(DhcpPeer.beat).where(DhcpPeer.name == partner))


def partner_leases(session: Session) -> list[Lease]:
    return load_leases(session, datetime.now(UTC))


class HaMonitor:
    """Decides, from the heartbeats seen, whether the partner is down (no I/O: the service calls
    `seen()` with each beat read, or `missed()` when the database could not be read)."""

    def __init__(self, ha: HaFilter, table: LeaseTable, takeover: float, partner: str) -> None:
        self.ha, self.table, self.takeover, self.partner = ha, table, takeover, partner
        self._last: int | None = None
        self._changed = time.monotonic()  # a new server waits one takeover time before taking over
        self.takeovers = 0

    def seen(self, partner_beat: int | None, now: float) -> bool:
        """Record the partner's beat; True when this server has just taken over (adopt leases)."""
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

    def adopt(self, leases: list[Lease]) -> int:
        return self.table.adopt(leases, time.time())
