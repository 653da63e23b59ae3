"""Leases in the database (services layer): the `dhcp_leases` rows the write-behind keeps.

`write_leases` upserts a batch of changed leases and deletes released ones in the caller's
transaction; `load_leases` reads the unexpired ones back at start; `purge_expired` drops rows
expired for more than a day. The in-memory table (`dgxie.netboot.dhcp.leases`) is the truth
while the server runs; these rows are what survives a restart or a crash (docs/dhcp.md).
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dgxie.models import DhcpLease
from dgxie.netboot.dhcp.leases import Lease

Dirty = dict[bytes, tuple[int, str, float, str | None] | None]


def mac_str(mac: bytes) -> str:
    return mac.hex(":")


def load_leases(session: Session, now: datetime, *where: Any) -> list[Lease]:
    """The unexpired leases (and matching `where`, e.g. recently written ones)."""
    rows = session.scalars(select(DhcpLease).where(DhcpLease.expires_at > now, *where))
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
