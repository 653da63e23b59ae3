"""The DHCP server on a real UDP socket on 127.0.0.1 (high ports) with its database service, on
SQLite and PostgreSQL: reservations, write-behind leases surviving a restart, discovery creating
nodes, live reload of enrolled nodes, and malformed packets dropped while serving goes on."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from typing import Any

from sqlalchemy import select

from dgxie import db
from dgxie.catalog.images import create_image
from dgxie.catalog.profiles import create_profile
from dgxie.catalog.schemas import ImageIn, ProfileIn
from dgxie.dhcpsync.service import DhcpService
from dgxie.models import DhcpLease, Node, Profile
from dgxie.netboot.dhcp import codec as c
from dgxie.netboot.dhcp.discovery import DiscoveryGate, DiscoveryLimits
from dgxie.netboot.dhcp.leases import LeaseTable
from dgxie.netboot.dhcp.metrics import DhcpCollector
from dgxie.netboot.dhcp.responder import Listener, Responder, ResponderOptions
from dgxie.netboot.dhcp.server import Bind, DhcpServer
from dgxie.nodes.schemas import NodeCreate
from dgxie.nodes.service import create_node
from tests.support.dhcp import BIOS_OPTS, PUBLIC, client_packet, ip_int, mac, subnets
from tests.support.net import free_port

LOCAL = ipaddress.IPv4Address("127.0.0.1").packed


class Harness:
    """A server + service on 127.0.0.1:PORT and a client socket that receives its replies."""

    def __init__(self, ctx: Any, *, discovery: bool = False, limits: DiscoveryLimits | None = None,
                 reserve: int = 0) -> None:
        self.client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.client.bind(("127.0.0.1", 0))
        self.client.setblocking(False)
        cport = self.client.getsockname()[1]
        table = LeaseTable(subnets())
        for sub in table.subnets:
            sub.reserve = reserve
        self.responder = Responder(ResponderOptions(public_url=PUBLIC, discovery=discovery, client_port=cport,
                                            relay_port=cport, broadcast="127.0.0.1"), table,
                                   gate=DiscoveryGate(limits or DiscoveryLimits()))
        self.port = free_port(socket.SOCK_DGRAM)
        self.server = DhcpServer(self.responder, [Bind(None, "127.0.0.1", self.port, Listener(LOCAL, table.subnets[0]))])
        self.service = DhcpService(ctx.sessions, ctx.site, self.responder)

    async def __aenter__(self) -> Harness:
        self.service.load()
        self.server.start()
        self.service.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.stop()
        await self.service.stop()
        self.client.close()

    async def send(self, raw: bytes) -> None:
        await asyncio.get_running_loop().sock_sendto(self.client, raw, ("127.0.0.1", self.port))

    async def ask(self, raw: bytes, timeout: float = 3.0) -> c.Packet | None:
        await self.send(raw)
        try:
            data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(self.client, 4096), timeout)
        except TimeoutError:
            return None
        return c.decode(data)

    async def dora(self, m: bytes, opts: list[Any] | None = None) -> c.Packet:
        offer = await self.ask(client_packet(m, "discover", options=opts))
        assert offer is not None and offer.msg_type == c.OFFER
        ip = str(ipaddress.IPv4Address(offer.yiaddr))
        ack = await self.ask(client_packet(m, "request", options=[*(opts or []), ("requested_addr", ip),
                                                                  ("server_id", "127.0.0.1")]))
        assert ack is not None and ack.msg_type == c.ACK and ack.yiaddr == offer.yiaddr
        return ack


def enroll(ctx: Any, hostname: str, m: bytes, ip: str | None = None, state: str | None = None,
           profile: str | None = "p1") -> None:
    """Enroll a node (with profile `p1`, whose image exists, unless profile=None)."""
    with db.session_scope(ctx.sessions) as s:
        if profile and not s.scalar(select(Profile).where(Profile.name == profile)):
            create_image(s, ImageIn(name="img1", kernel="k", initrd="i"), actor="test")
            create_profile(s, ctx.site, ProfileIn(name=profile, image="img1"), actor="test")
        create_node(s, ctx.site, NodeCreate(hostname=hostname, mac=m.hex(":"), ip=ip, state=state,
                                            profile=profile), actor="test")


def test_reservation_lease_persisted_and_restored(ctx) -> None:
    enroll(ctx, "dgx01", mac(1), "10.201.0.21")
    enroll(ctx, "dgx02", mac(2))  # no ip: a pool address

    async def run() -> tuple[bytes, bytes]:
        async with Harness(ctx) as h:
            a1 = await h.dora(mac(1), BIOS_OPTS)
            assert a1.yiaddr == ipaddress.IPv4Address("10.201.0.21").packed
            assert a1.options[c.OPT_BOOTFILE] == b"undionly.kpxe" and a1.options[c.OPT_HOSTNAME] == b"dgx01"
            a2 = await h.dora(mac(2))
            assert await h.ask(client_packet(mac(3), "discover")) is None  # unknown, discovery off
            await asyncio.sleep(0.8)  # one write-behind flush
            assert h.service.flushes >= 1
            return a1.yiaddr, a2.yiaddr

    _ip1, ip2 = asyncio.run(run())
    with ctx.sessions() as s:
        rows = {r.mac: r for r in s.scalars(select(DhcpLease))}
    assert rows[mac(1).hex(":")].ip == "10.201.0.21" and rows[mac(1).hex(":")].hostname == "dgx01"
    assert rows[mac(2).hex(":")].ip == str(ipaddress.IPv4Address(ip2))

    async def restart() -> None:
        async with Harness(ctx) as h:
            assert len(h.responder.table.by_mac) == 2  # restored from the database
            # another MAC asks first: it must not get mac(2)'s persisted address
            enroll(ctx, "dgx04", mac(4))
            await h.service.refresh()
            other = await h.dora(mac(4))
            assert other.yiaddr != ip2
            again = await h.dora(mac(2))
            assert again.yiaddr == ip2
            reg = DhcpCollector(h.responder)
            fams = {f.name: f for f in reg.collect()}
            acked = [s for s in fams["dgxie_dhcp_packets"].samples if s.labels == {"type": "request", "outcome": "acked"}]
            assert acked and acked[0].value == 2
            leases = {s.labels["subnet"]: s.value for s in fams["dgxie_dhcp_leases_in_use"].samples}
            assert leases["10.201.0.0/24"] == 3

    asyncio.run(restart())


def test_discovery_creates_discovered_node(ctx) -> None:
    async def run() -> None:
        async with Harness(ctx, discovery=True) as h:
            ack = await h.dora(mac(0x77), BIOS_OPTS)
            assert ipaddress.IPv4Address(ack.yiaddr) in ipaddress.IPv4Network("10.201.0.0/24")
            assert ack.options[c.OPT_BOOTFILE] == b"undionly.kpxe"
            for _ in range(40):
                await asyncio.sleep(0.25)
                if mac(0x77) in h.responder.table.reservations:
                    break
            assert h.responder.table.reservations[mac(0x77)].state == "discovered"
            again = await h.dora(mac(0x77))  # still the same address after it became a node
            assert again.yiaddr == ack.yiaddr

    asyncio.run(run())
    with ctx.sessions() as s:
        node = s.scalar(select(Node).where(Node.hostname == f"node-{mac(0x77).hex()}"))
        assert node is not None and node.state == "discovered" and node.mac == mac(0x77).hex(":")


def test_enrolled_while_running_is_served(ctx) -> None:
    async def run() -> None:
        async with Harness(ctx) as h:
            assert await h.ask(client_packet(mac(5), "discover"), timeout=0.5) is None
            enroll(ctx, "dgx05", mac(5), "10.201.0.25")
            for _ in range(20):
                await asyncio.sleep(0.25)
                if mac(5) in h.responder.table.reservations:
                    break
            ack = await h.dora(mac(5))
            assert ack.yiaddr == ipaddress.IPv4Address("10.201.0.25").packed

    asyncio.run(run())


def test_malformed_packets_dropped_logged_once_and_serving_goes_on(ctx, caplog) -> None:
    enroll(ctx, "dgx06", mac(6), "10.201.0.26")
    good = client_packet(mac(6), "discover")
    bad = [b"", b"\x01" * 10, good[:200], good[:236] + b"XXXX" + good[240:], good + bytes(5000),
           good[:240] + b"\x35\x40\x01", bytes(range(256)) * 2, good[:240] + b"\x34\x01\x07\xff"]

    async def run() -> None:
        async with Harness(ctx) as h:
            with caplog.at_level(logging.WARNING, logger="dgxie.dhcp"):
                for _ in range(20):
                    for b in bad:
                        await h.send(b)
                offer = await h.ask(good)
            assert offer is not None and offer.yiaddr == ipaddress.IPv4Address("10.201.0.26").packed
            assert h.server.malformed == 20 * len(bad)  # an empty datagram arrives too
            assert h.responder.counts["unknown", "dropped-malformed"] == h.server.malformed

    asyncio.run(run())
    warnings = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert len(warnings) == 1


def test_write_leases_upsert_delete_and_purge(ctx) -> None:
    """The writer's raw upsert round-trips through the ORM types; old expired rows are purged."""
    import time as _t

    from dgxie.dhcpsync.store import load_leases, purge_expired, write_leases

    now = _t.time()
    with db.session_scope(ctx.sessions) as s:
        write_leases(s, {mac(1): (ip_int("10.201.0.100"), "10.201.0.0/24", now + 600, "dgx01"),
                         mac(2): (ip_int("10.201.0.101"), "10.201.0.0/24", now - 3 * 86400, None)})
    with db.session_scope(ctx.sessions) as s:  # the same MAC again: an update, not a second row
        write_leases(s, {mac(1): (ip_int("10.201.0.102"), "10.201.0.0/24", now + 900, "dgx01")})
    with db.session_scope(ctx.sessions) as s:
        from datetime import UTC, datetime
        got = load_leases(s, datetime.now(UTC))
        assert [(x.mac, x.ip, x.hostname) for x in got] == [(mac(1), ip_int("10.201.0.102"), "dgx01")]
        assert abs(got[0].expires - (now + 900)) < 1.5
        assert s.get(DhcpLease, mac(2).hex(":")) is not None
        purge_expired(s)
    with db.session_scope(ctx.sessions) as s:
        assert s.get(DhcpLease, mac(2).hex(":")) is None and s.get(DhcpLease, mac(1).hex(":")) is not None
        write_leases(s, {mac(1): None})
    with ctx.sessions() as s:
        assert s.scalar(select(DhcpLease)) is None


def test_never_silent_while_the_database_is_locked(ctx) -> None:
    """Write-behind: with the lease table locked by another transaction for ~2 s, every DORA is
    still answered at once; the leases reach the database once the lock goes."""
    import threading
    import time as _t

    from sqlalchemy import text

    for i in range(10):  # the test pool holds 10 addresses
        enroll(ctx, f"lk{i:02d}", mac(0x100 + i))
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with ctx.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.execute(text("BEGIN"))
                conn.execute(text("LOCK TABLE dhcp_leases IN EXCLUSIVE MODE"))
            locked.set()
            release.wait(20)
            conn.rollback()

    async def run() -> None:
        async with Harness(ctx) as h:
            t = threading.Thread(target=hold_lock)
            t.start()
            assert locked.wait(10)
            try:
                worst = 0.0
                start = _t.monotonic()
                for i in range(10):
                    t0 = _t.monotonic()
                    await h.dora(mac(0x100 + i))
                    worst = max(worst, _t.monotonic() - t0)
                    await asyncio.sleep(0.2)  # spread over ~2 s: several flushes are due meanwhile
                assert _t.monotonic() - start >= 2.0
                assert worst < 1.0, f"a DORA took {worst:.2f} s while the database was locked"
                with ctx.sessions() as s:  # nothing could be written yet
                    assert s.scalar(select(DhcpLease).limit(1)) is None
            finally:
                release.set()
                t.join(20)
            for _ in range(40):
                await asyncio.sleep(0.25)
                with ctx.sessions() as s:
                    if len(list(s.scalars(select(DhcpLease)))) == 10:
                        break
            with ctx.sessions() as s:
                assert len(list(s.scalars(select(DhcpLease)))) == 10

    asyncio.run(run())
