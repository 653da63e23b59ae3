"""The in-memory lease table (pure, no I/O): pools per subnet, reservations by MAC, expiry,
decline and release (RFC 2131 3.1, 4.3).

Everything is keyed by raw 6-byte MACs and integer addresses, so the packet path does dict
lookups only. Bound and released leases are recorded in `dirty` (with the time of the oldest
change not yet taken, `dirty_since`); the service drains it and writes them to the database in
batches (write-behind), never on the packet path.

The pool reserve: each subnet keeps its last `reserve` pool addresses for known (enrolled)
clients. A guest (an unknown or `discovered` MAC) is given a new address only while more than
`reserve` pool addresses are free; a known client may take any free one. `used` counts the pool
addresses held (by a lease in any state, or by a reservation) so the check costs nothing per
packet; `expire()` (called every few seconds by the service) forgets expired leases so that
count does not keep dead offers.
"""

from __future__ import annotations

import ipaddress
import time
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
    reserve: int = 0  # pool addresses kept for known clients (guests may not take the last ones)
    used: int = 0  # pool addresses held by a lease or a reservation (kept by LeaseTable)

    def __post_init__(self) -> None:
        self.key = self.key or str(self.network)
        if self.pool is not None:
            self.cursor = self.pool[0]

    @property
    def size(self) -> int:
        return 0 if self.pool is None else self.pool[1] - self.pool[0] + 1

    def in_pool(self, ip: int) -> bool:
        return self.pool is not None and self.pool[0] <= ip <= self.pool[1]

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
    dirty_since: float | None = None  # time.monotonic() of the oldest change in `dirty`
    _expired_at: float = float("-inf")  # when expire() last ran (the `now` it was given)

    def subnet_for(self, ip: int) -> Subnet | None:
        for s in self.subnets:
            if ip in s:
                return s
        return None

    def _pool_of(self, ip: int) -> Subnet | None:
        for s in self.subnets:
            if s.in_pool(ip):
                return s
        return None

    def set_reservations(self, reservations: dict[bytes, Reservation]) -> None:
        """Swap in a fresh reservation map (built off the packet path)."""
        self.reserved_ips = {r.ip: mac for mac, r in reservations.items() if r.ip is not None}
        self.reservations = reservations
        self._count_used()

    def _count_used(self) -> None:
        for s in self.subnets:
            s.used = 0
        for ip in self.by_ip.keys() | self.reserved_ips.keys():
            pool = self._pool_of(ip)
            if pool is not None:
                pool.used += 1

    def _set_ip(self, ip: int, lease: Lease) -> None:
        if ip not in self.by_ip and ip not in self.reserved_ips:
            pool = self._pool_of(ip)
            if pool is not None:
                pool.used += 1
        self.by_ip[ip] = lease

    def _del_ip(self, ip: int) -> None:
        del self.by_ip[ip]
        if ip not in self.reserved_ips:
            pool = self._pool_of(ip)
            if pool is not None:
                pool.used -= 1

    def _mark(self, mac: bytes, lease: Lease | None) -> None:
        if not self.dirty:
            self.dirty_since = time.monotonic()
        self.dirty[mac] = lease

    def guest_room(self, subnet: Subnet, now: float) -> bool:
        """May a guest take a new address from `subnet`'s pool (more than `reserve` free)?
        Expired leases still count as used until `expire()`; when the answer would be no, they
        are forgotten first (at most once a second, so a flood cannot make it a scan per packet)."""
        if subnet.reserve <= 0 or subnet.size - subnet.used > subnet.reserve:
            return True
        if now - self._expired_at >= 1.0:
            self.expire(now)
        return subnet.size - subnet.used > subnet.reserve

    def reserve_bites(self, subnet: Subnet) -> bool:
        """Free addresses are left, but only the reserve (what a refused guest is told)."""
        return 0 < subnet.size - subnet.used <= subnet.reserve

    def _drop(self, lease: Lease) -> None:
        if self.by_ip.get(lease.ip) is lease:
            self._del_ip(lease.ip)
        if self.by_mac.get(lease.mac) is lease:
            del self.by_mac[lease.mac]
            if lease.state == "bound":
                self._mark(lease.mac, None)

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
        self._set_ip(ip, lease)
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

    def address_for(self, subnet: Subnet, mac: bytes, now: float, requested: int | None = None,
                    guest: bool = False) -> int | None:
        """The address `mac` should have on `subnet`: its reservation, its current lease, the
        address it asks for if free in the pool, or the next free pool address (None: none).
        A `guest` gets no new address once only the subnet's reserve is left."""
        res = self.reservations.get(mac)
        if res is not None and res.ip is not None:
            return res.ip if res.ip in subnet else None
        lease = self.by_mac.get(mac)
        if lease is not None and lease.subnet == subnet.key and lease.state != "declined":
            return lease.ip
        if guest and not self.guest_room(subnet, now):
            return None
        pool = subnet.pool
        if (requested is not None and pool is not None and pool[0] <= requested <= pool[1]
                and self._free(requested, mac, now)):
            return requested
        return self._from_pool(subnet, mac, now)

    def offer(self, subnet: Subnet, mac: bytes, now: float, requested: int | None = None,
              guest: bool = False) -> int | None:
        """Pick and hold an address for a DISCOVER (held OFFER_HOLD seconds, not persisted)."""
        ip = self.address_for(subnet, mac, now, requested, guest)
        if ip is not None:
            lease = self._take(mac, ip, subnet, now + OFFER_HOLD)
            if lease.state == "bound" and lease.expires < now:  # expired: hold it again as an offer
                lease.state, lease.expires = "offered", now + OFFER_HOLD
        return ip

    def ack(self, subnet: Subnet, mac: bytes, ip: int, now: float, hostname: str | None = None,
            guest: bool = False) -> Lease | None:
        """Bind `ip` to `mac` for a REQUEST, or None if the client may not have it (-> NAK)."""
        if ip not in subnet or self.address_for(subnet, mac, now, ip, guest) != ip:
            return None
        lease = self._take(mac, ip, subnet, now)
        lease.state = "bound"
        lease.expires = now + subnet.lease_seconds
        lease.hostname = hostname
        self._mark(mac, lease)
        return lease

    def release(self, mac: bytes, ip: int) -> None:
        """DHCPRELEASE: the client gives the address back (RFC 2131 4.4.6)."""
        lease = self.by_mac.get(mac)
        if lease is not None and lease.ip == ip:
            self._drop(lease)
            self._mark(mac, None)

    def decline(self, mac: bytes, ip: int, now: float) -> None:
        """DHCPDECLINE: the address is in use by someone else; quarantine it for a lease time."""
        lease = self.by_mac.get(mac)
        if lease is None or lease.ip != ip:
            return
        self._drop(lease)
        self._mark(mac, None)
        subnet = self.subnet_for(ip)
        hold = subnet.lease_seconds if subnet is not None else 3600
        self._set_ip(ip, Lease(b"", ip, lease.subnet, now + hold, "declined"))

    def restore(self, leases: list[Lease], now: float) -> int:
        """Load persisted bound leases at start (expired ones are skipped)."""
        n = 0
        for lease in leases:
            if lease.expires >= now and lease.state == "bound":
                self.by_mac[lease.mac] = lease
                self._set_ip(lease.ip, lease)
                n += 1
        return n

    def merge(self, leases: list[Lease], now: float) -> int:
        """Bring in bound leases another server wrote (its partner's, dgxie.dhcpsync.ha). A row
        for a binding this table holds (same MAC, same address) extends it if it lasts longer; a
        row whose MAC and address are both unknown here (or held only by expired entries) is
        taken in; anything else, this table's own knowledge wins. Nothing is marked dirty (the
        rows are in the database already). Returns how many leases changed."""
        n = 0
        for row in leases:
            if row.expires < now or row.state != "bound":
                continue
            mine = self.by_mac.get(row.mac)
            if mine is not None and mine.ip == row.ip:
                if row.expires > mine.expires or mine.state != "bound":
                    mine.expires, mine.state = max(mine.expires, row.expires), "bound"
                    n += 1
                continue
            holder = self.by_ip.get(row.ip)
            if (mine is not None and mine.expires >= now) or (holder is not None and holder.expires >= now):
                continue
            for old in (mine, holder):
                if old is not None:
                    if self.by_ip.get(old.ip) is old:
                        self._del_ip(old.ip)
                    if self.by_mac.get(old.mac) is old:
                        del self.by_mac[old.mac]
            lease = Lease(row.mac, row.ip, row.subnet, row.expires, "bound", row.hostname)
            self.by_mac[row.mac] = lease
            self._set_ip(row.ip, lease)
            n += 1
        return n

    def expire(self, now: float) -> int:
        """Forget expired leases (offers not taken up, ended bindings, declines served): their
        addresses are free again and the pool's `used` count drops. The database keeps an expired
        binding's row until `purge_expired` (nothing is marked dirty here)."""
        self._expired_at = now
        gone = [lease for lease in self.by_ip.values() if lease.expires < now]
        for lease in gone:
            self._del_ip(lease.ip)
            if self.by_mac.get(lease.mac) is lease:
                del self.by_mac[lease.mac]
        return len(gone)

    def take_dirty(self) -> dict[bytes, tuple[int, str, float, str | None] | None]:
        """Swap out the changed leases as plain tuples (mac -> (ip, subnet, expires, hostname) or
        None for a deletion). Called on the packet thread; the writer gets immutable values."""
        self.dirty_since = None
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
