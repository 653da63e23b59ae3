"""Discovery under a flood (issue 12), with real packets on 127.0.0.1 and the database service on
SQLite and PostgreSQL: bad chaddrs dropped one by one without poisoning the creation batch, the
cap and the rate on new discovered nodes (metric + one event, not one per packet), and the pool
reserve that keeps the last addresses for enrolled nodes."""

from __future__ import annotations

import asyncio
import ipaddress

from sqlalchemy import func, select

from dgxie.models import Event, Node
from dgxie.netboot.dhcp import codec as c
from dgxie.netboot.dhcp.discovery import DiscoveryLimits
from dgxie.netboot.dhcp.metrics import DhcpCollector
from tests.integration.test_dhcp_server import Harness, enroll
from tests.support.dhcp import BIOS_OPTS, client_packet, mac


def spoofed(n: int) -> bytes:
    return bytes([0x02, 0xBA, 0xD0, n >> 16 & 0xFF, n >> 8 & 0xFF, n & 0xFF])


def discovered_nodes(ctx) -> int:
    with ctx.sessions() as s:
        return int(s.scalar(select(func.count(Node.id)).where(Node.state == "discovered")) or 0)


def refused(h: Harness) -> dict[str, float]:
    fams = {f.name: f for f in DhcpCollector(h.responder).collect()}
    return {s.labels["reason"]: s.value for s in fams["dgxie_dhcp_discovery_refused"].samples}


async def settle(h: Harness, ctx, want: int) -> None:
    """Until `want` discovered nodes exist and the server has reloaded them (bounded)."""
    for _ in range(80):
        await asyncio.sleep(0.25)
        if discovered_nodes(ctx) >= want and h.responder.gate.existing >= want and not h.responder.gate.pending:
            return


def test_bad_chaddr_dropped_alone_and_the_batch_survives(ctx) -> None:
    """A multicast, broadcast, all-zero or 8-byte chaddr is dropped and counted; the 10 real
    MACs sent around it all become nodes (one multicast chaddr once failed the whole batch)."""
    bad = [bytes.fromhex("01005e0000fb"), b"\xff" * 6, b"\x00" * 6]

    async def run() -> None:
        async with Harness(ctx, discovery=True) as h:
            for i in range(10):
                if i < len(bad):
                    assert await h.ask(client_packet(bad[i], "discover", options=BIOS_OPTS), timeout=0.3) is None
                offer = await h.ask(client_packet(mac(0x300 + i), "discover", options=BIOS_OPTS))
                assert offer is not None and offer.msg_type == c.OFFER
            assert await h.ask(c.encode_request(b"\x52\x54\x00\xdd\x03\x99\x00\x01", c.DISCOVER), timeout=0.3) is None
            assert h.responder.counts["discover", "dropped-bad-mac"] == 4
            await settle(h, ctx, 10)

    asyncio.run(run())
    with ctx.sessions() as s:
        names = set(s.scalars(select(Node.hostname).where(Node.state == "discovered")))
    assert names == {f"node-{mac(0x300 + i).hex()}" for i in range(10)}


def test_flood_is_capped_counted_and_reported_once(ctx) -> None:
    """300 forged MACs against a cap of 8: 8 nodes, the rest unanswered, counted by reason, one
    event for the whole flood; a MAC already admitted is still answered (its REQUEST)."""
    later: dict[str, int] = {}

    async def run() -> None:
        async with Harness(ctx, discovery=True, limits=DiscoveryLimits(max_nodes=8, rate=1000)) as h:
            answered = 0
            for i in range(300):
                if await h.ask(client_packet(spoofed(i), "discover"), timeout=0.05) is not None:
                    answered += 1
            assert answered == 8
            ack = await h.ask(client_packet(spoofed(0), "request", options=[
                ("requested_addr", str(ipaddress.IPv4Address(h.responder.table.by_mac[spoofed(0)].ip))),
                ("server_id", "127.0.0.1")]))
            assert ack is not None and ack.msg_type == c.ACK
            await settle(h, ctx, 8)
            for i in range(300, 400):  # more of the flood once the nodes exist: still capped
                await h.send(client_packet(spoofed(i), "discover"))
            for _ in range(20):
                await asyncio.sleep(0.1)
                if refused(h)["cap"] >= 392:
                    break
            assert refused(h) == {"cap": 392, "rate": 0, "reserve": 0}
            assert h.responder.counts["discover", "discovery-limited"] == 392
            assert h.service.reports == 1  # one event per REPORT_EVERY, whatever the packet count
            later.update(h.responder.gate.unreported)  # counted for the next event, a minute on

    asyncio.run(run())
    assert discovered_nodes(ctx) == 8
    with ctx.sessions() as s:
        events = list(s.scalars(select(Event).where(Event.kind == "dhcp.discovery_limited")))
    assert len(events) == 1 and events[0].data["max_nodes"] == 8
    assert events[0].data["refused"]["cap"] + later["cap"] == 392


def test_rate_limits_new_macs(ctx) -> None:
    async def run() -> None:
        async with Harness(ctx, discovery=True, limits=DiscoveryLimits(max_nodes=100, rate=3, interval=60)) as h:
            offers = [await h.ask(client_packet(spoofed(i), "discover"), timeout=0.2) for i in range(10)]
            assert sum(o is not None for o in offers) == 3
            assert refused(h)["rate"] == 7
            await settle(h, ctx, 3)

    asyncio.run(run())
    assert discovered_nodes(ctx) == 3


def test_reserve_keeps_the_last_addresses_for_enrolled_nodes(ctx) -> None:
    """Pool of 10, reserve 3: guests get 7 addresses, then nothing; enrolled nodes without an ip
    still get the 3 kept back (the issue: a flood once left a real client without an offer)."""
    for i in range(3):
        enroll(ctx, f"res{i}", mac(0x400 + i))

    async def run() -> None:
        async with Harness(ctx, discovery=True, reserve=3, limits=DiscoveryLimits(max_nodes=1000, rate=1000)) as h:
            got = []
            for i in range(12):
                offer = await h.ask(client_packet(spoofed(0x1000 + i), "discover"), timeout=0.2)
                if offer is not None:
                    got.append(offer.yiaddr)
            assert len(set(got)) == 7
            assert refused(h)["reserve"] == 5 and h.responder.counts["discover", "reserve"] == 5
            for i in range(3):
                ack = await h.dora(mac(0x400 + i))
                assert ack.yiaddr not in got

    asyncio.run(run())


def test_create_discovered_skips_bad_macs_one_by_one(ctx) -> None:
    """The service alone (defence in depth behind the responder's check): a multicast MAC and a
    hostname clash in the middle of a batch are skipped, every other MAC becomes a node."""
    from dgxie import db
    from dgxie.dhcpsync.discovery import create_discovered

    enroll(ctx, f"node-{mac(0x503).hex()}", mac(0x5FF), profile=None)  # takes mac(0x503)'s hostname
    macs = [mac(0x500), mac(0x501), bytes.fromhex("01005e0000fb"), mac(0x502), mac(0x503), mac(0x504)]
    with db.session_scope(ctx.sessions) as s:
        made, left = create_discovered(s, ctx.site, macs, budget=60)
    assert (made, left) == (4, [])
    with ctx.sessions() as s:
        names = set(s.scalars(select(Node.hostname).where(Node.state == "discovered")))
    assert names == {f"node-{mac(n).hex()}" for n in (0x500, 0x501, 0x502, 0x504)}
