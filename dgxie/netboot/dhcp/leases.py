"""The in-memory lease table (pure, no I/O): pools per subnet, reservations by MAC, expiry,
decline and release (RFC 2131 3.1, 4.3).

Everything is keyed by raw 6-byte MACs and integer addresses, so the packet path does dict
lookups only. Bound and released leases are recorded in `dirty`; the service drains it and
writes them to the database in batches (write-behind), never on the packet path.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

OFFER_HOLD = 60.0  # seconds an offered address is held for the client's REQUEST


@dataclass(slots=True)
class Subnet:
    """One configured subnet: its pool and the options every reply on it carries."""

    network: ipaddress.IPv4Network
    pool: tuple[int, int] | None
    lease_seconds: int = 3600
    routers: tuple[bytes, ...] = ()
    dns: tuple[bytes, ...] = ()
    domain: str | None = None
    key: str = ""
    cursor: int = 0

    def __post_init__(self) -> None:
        self.key = self.key or str(self.network)
        if self.pool is not None:
            self.cursor = self.pool[0]

    def __contains__(self, ip: int) -> bool:
        return (ip & int(self.network.netmask)) == int(self.network.network_address)


@dataclass(slots=True)
class Reservation:
    """What the server knows of an enrolled (or discovered) node."""

    hostname: str
    ip: int | None
    state: str
    has_image: bool = True


@dataclass(slots=True)
class Lease:
    mac: bytes
    ip: int
    subnet: str
    expires: float
    state: str = "offered"  # offered | bound | declined
    hostname: str | None = None


@dataclass
class LeaseTable:
    subnets: list[Subnet]
    by_mac: dict[bytes, Lease] = field(default_factory=dict)
    by_ip: dict[int, Lease] = field(default_factory=dict)
    reservations: dict[bytes, Reservation] = field(default_factory=dict)
    reserved_ips: dict[int, bytes] = field(default_factory=dict)
    dirty: dict[bytes, Lease | None] = field(default_factory=dict)

    def subnet_for(self, ip: int) -> Subnet | None:
        for s in self.subnets:
            if ip in s:
                return s
        return None

    def set_reservations(self, reservations: dict[bytes, Reservation]) -> None:
        """Swap in a fresh reservation map (built off the packet path)."""
        self.reserved_ips = {r.ip: mac for mac, r in reservations.items() if r.ip is not None}
        self.reservations = reservations

    def _drop(self, lease: Lease) -> None:
        if self.by_ip.get(lease.ip) is lease:
            del self.by_ip[lease.ip]
        if self.by_mac.get(lease.mac) is lease:
            del self.by_mac[lease.mac]
            if lease.state == "bound":
                self.dirty[lease.mac] = None

    def _take(self, mac: bytes, ip: int, subnet: Subnet, expires: float) -> Lease:
        old = self.by_mac.get(mac)
        if old is not None and old.ip == ip:
            if old.state != "bound":
                old.expires = expires
            return old
        if old is not None:
            self._drop(old)
        holder = self.by_ip.get(ip)
        if holder is not None:
            self._drop(holder)
        lease = Lease(mac, ip, subnet.key, expires)
        self.by_mac[mac] = lease
        self.by_ip[ip] = lease
        return lease

    def _free(self, ip: int, mac: bytes, now: float) -> bool:
        owner = self.reserved_ips.get(ip)
        if owner is not None and owner != mac:
            return False
        lease = self.by_ip.get(ip)
        return lease is None or lease.mac == mac or lease.expires < now

    def _from_pool(self, subnet: Subnet, mac: bytes, now: float) -> int | None:
        if subnet.pool is None:
            return None
        lo, hi = subnet.pool
        ip = subnet.cursor
        for _ in range(hi - lo + 1):
            if ip > hi:
                ip = lo
            if self._free(ip, mac, now):
                subnet.cursor = ip + 1
                return ip
            ip += 1
        return None

    def address_for(self, subnet: Subnet, mac: bytes, now: float, requested: int | None = None) -> int | None:
        """The address `mac` should have on `subnet`: its reservation, its current lease, the
        address it asks for if free in the pool, or the next free pool address (None: none)."""
        res = self.reservations.get(mac)
        if res is not None and res.ip is not None:
            return res.ip if res.ip in subnet else None
        lease = self.by_mac.get(mac)
        if lease is not None and lease.subnet == subnet.key and lease.state != "declined":
            return lease.ip
        pool = subnet.pool
        if (requested is not None and pool is not None and pool[0] <= requested <= pool[1]
                and self._free(requested, mac, now)):
            return requested
        return self._from_pool(subnet, mac, now)

    def offer(self, subnet: Subnet, mac: bytes, now: float, requested: int | None = None) -> int | None:
        """Pick and hold an address for a DISCOVER (held OFFER_HOLD seconds, not persisted)."""
        ip = self.address_for(subnet, mac, now, requested)
        if ip is not None:
            lease = self._take(mac, ip, subnet, now + OFFER_HOLD)
            if lease.state == "bound" and lease.expires < now:
                lease.state = "offered"
        return ip

    def ack(self, subnet: Subnet, mac: bytes, ip: int, now: float, hostname: str | None = None) -> Lease | None:
        """Bind `ip` to `mac` for a REQUEST, or None if the client may not have it (-> NAK)."""
        if ip not in subnet or self.address_for(subnet, mac, now, ip) != ip:
            return None
        lease = self._take(mac, ip, subnet, now)
        lease.state = "bound"
        lease.expires = now + subnet.lease_seconds
        lease.hostname = hostname
        self.dirty[mac] = lease
        return lease

    def release(self, mac: bytes, ip: int) -> None:
        """DHCPRELEASE: the client gives the address back (RFC 2131 4.4.6)."""
        lease = self.by_mac.get(mac)
        if lease is not None and lease.ip == ip:
            self._drop(lease)
            self.dirty[mac] = None

    def decline(self, mac: bytes, ip: int, now: float) -> None:
        """DHCPDECLINE: the address is in use by someone else; quarantine it for a lease time."""
        lease = self.by_mac.get(mac)
        if lease is None or lease.ip != ip:
            return
        self._drop(lease)
        self.dirty[mac] = None
        subnet = self.subnet_for(ip)
        hold = subnet.lease_seconds if subnet is not None else 3600
        self.by_ip[ip] = Lease(b"", ip, lease.subnet, now + hold, "declined")

    def restore(self, leases: list[Lease], now: float) -> int:
        """Load persisted bound leases at start (expired ones are skipped)."""
        n = 0
        for lease in leases:
            if lease.expires >= now and lease.state == "bound":
                self.by_mac[lease.mac] = lease
                self.by_ip[lease.ip] = lease
                n += 1
        return n

    def take_dirty(self) -> dict[bytes, tuple[int, str, float, str | None] | None]:
        """Swap out the changed leases as plain tuples (mac -> (ip, subnet, expires, hostname) or
        None for a deletion). Called on the packet thread; the writer gets immutable values."""
        dirty, self.dirty = self.dirty, {}
        return {mac: None if lease is None else (lease.ip, lease.subnet, lease.expires, lease.hostname)
                for mac, lease in dirty.items()}

    def in_use(self, now: float) -> dict[str, int]:
        """Bound, unexpired leases per subnet key (for the metrics gauge)."""
        counts = {s.key: 0 for s in self.subnets}
        for lease in list(self.by_ip.values()):
            if lease.state == "bound" and lease.expires >= now:
                counts[lease.subnet] = counts.get(lease.subnet, 0) + 1
        return counts
