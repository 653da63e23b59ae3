"""DHCP leases, written behind the DHCP server's in-memory table (see dgxie/dhcpsync/service.py), and
the heartbeats of two DHCP servers on one segment (dgxie/dhcpsync/ha.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from dgxie.db import Base
from dgxie.models.types import UTCDateTime, utcnow


class DhcpLease(Base):
    """One bound lease per client MAC (a released or expired lease is deleted)."""

    __tablename__ = "dhcp_leases"

    mac: Mapped[str] = mapped_column(String(17), primary_key=True)
    ip: Mapped[str] = mapped_column(String(15))
    subnet: Mapped[str] = mapped_column(String(18))
    hostname: Mapped[str | None] = mapped_column(String(63))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_dhcp_leases_ip", "ip"), Index("ix_dhcp_leases_updated_at", "updated_at"))


class DhcpPeer(Base):
    """One DHCP server of an HA pair (`dhcp.ha.this`): `beat` goes up by one every heartbeat; its
    partner notices it stopped changing (no clocks compared between hosts)."""

    __tablename__ = "dhcp_peers"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    beat: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
