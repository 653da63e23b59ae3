"""Address binding: which source addresses speak for a node (docs/security.md).

A request on a node's behalf (its install config, its bootstrap script, its callbacks, the deploy
agent's hello) is taken only from the node's own address: the IP reserved for it (`Node.ip`) or an
unexpired DHCP lease dgxie gave one of its MACs. `boot.trusted_networks` lists the sources that may
speak for any node (an HTTP proxy on a relay, a NAT in front of a rack): the operator vouches for
them. Everything else is refused, whatever token it carries, so a token learnt from an iPXE script
(which anyone who knows a MAC can fetch) is useless from another machine.

Leases are written to the database a moment after they are given (the DHCP write-behind, longer
in a boot storm); a node fast enough to ask for its config before its lease is written would be
refused. So the DHCP server of this process, when there is one, is asked too (`LIVE_LEASES`,
wired by the composition root): a lease it holds in memory counts like a written one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from dgxie.errors import Forbidden
from dgxie.events import record
from dgxie.models import DhcpLease, Event, Node

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
REFUSED = "security.refused"  # the event kind of a refused request on a node's behalf
EVENT_EVERY = timedelta(seconds=60)  # at most one such event per node per minute (a flood writes no rows)


class LiveLeases:
    """The addresses this process's DHCP server holds for some MACs, not yet written perhaps."""

    def __init__(self) -> None:
        self.source: Callable[[Iterable[str]], set[str]] | None = None

    def of(self, macs: Iterable[str]) -> set[str]:
        source = self.source
        return source(macs) if source is not None else set()


LIVE_LEASES = LiveLeases()


def _address(peer: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(peer)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def trusted(peer: str, networks: Sequence[Network]) -> bool:
    """True when `peer` is inside one of the operator's trusted networks."""
    addr = _address(peer)
    return addr is not None and any(addr in net for net in networks)


def node_addresses(session: Session, node: Node | None, macs: Sequence[str] = (),
                   now: datetime | None = None) -> set[str]:
    """The addresses that are `node`'s now: its reservation and live leases of its MACs (or `macs`)."""
    all_macs = set(macs) | ({i.mac for i in node.interfaces} if node is not None else set())
    return addresses(session, node.ip if node is not None else None, all_macs, now)


def addresses(db: Session | Connection, ip: str | None, macs: Iterable[str], now: datetime | None = None) -> set[str]:
    """The reservation `ip` and the live leases of `macs` (written, or held by this process's DHCP
    server: `LIVE_LEASES`)."""
    now = now or datetime.now(UTC)
    out = {ip} if ip else set()
    macs = set(macs)
    if macs:
        out |= set(db.scalars(select(DhcpLease.ip).where(DhcpLease.mac.in_(macs), DhcpLease.expires_at > now)))
        out |= LIVE_LEASES.of(macs)
    return out


def allowed(db: Session | Connection, ip: str | None, macs: Iterable[str], peer: str,
            networks: Sequence[Network]) -> bool:
    """`speaks_for` from a node's reservation and MACs instead of its ORM object."""
    if trusted(peer, networks):
        return True
    addr = _address(peer)
    return addr is not None and str(addr) in addresses(db, ip, macs)


def speaks_for(session: Session, node: Node | None, peer: str, networks: Sequence[Network], *,
               macs: Sequence[str] = ()) -> bool:
    """True when a request from `peer` may act for `node` (or, for a node not yet known, for `macs`)."""
    if trusted(peer, networks):
        return True
    addr = _address(peer)
    return addr is not None and str(addr) in node_addresses(session, node, macs)


def note_refusal(session: Session, node: Node, peer: str, what: str, reason: str) -> None:
    """Record a refused request in the node's events, at most one per `EVENT_EVERY` per node."""
    since = datetime.now(UTC) - EVENT_EVERY
    recent = session.scalar(select(Event.id).where(Event.node_id == node.id, Event.kind == REFUSED,
                                                   Event.time > since).limit(1))
    if recent is None:
        record(session, actor=f"peer:{peer}"[:128], kind=REFUSED, node=node, reason=f"{what}: {reason}"[:500],
               data={"peer": peer[:64], "what": what[:64]})


def guard(session: Session, node: Node, peer: str, networks: Sequence[Network], what: str) -> Forbidden | None:
    """None when `peer` speaks for `node`; else the Forbidden to raise once the caller has committed
    the refusal event (raising inside the transaction would roll it back)."""
    if speaks_for(session, node, peer, networks):
        return None
    note_refusal(session, node, peer, what, f"{peer} is not this node's address")
    return Forbidden(f"{what}: not served to {peer} (only to the node's own address)")
