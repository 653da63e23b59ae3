"""Heartbeats of two DHCP servers through the database (dgxie.dhcpsync.ha), on SQLite and
PostgreSQL: both beat and see each other; when one stops, the other takes over after
`takeover_seconds` and adopts the partner's written leases; when it beats again, it is back.
Also: the documented `dhcp.ha` example is a valid config with the documented defaults."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from dgxie import db
from dgxie.dhcpsync.service import DhcpService
from dgxie.models import DhcpLease, DhcpPeer
from dgxie.netboot.dhcp.ha import HaFilter, split_pool
from dgxie.netboot.dhcp.leases import LeaseTable
from dgxie.netboot.dhcp.responder import Responder, ResponderOptions
from dgxie.sections import DhcpConfig, HaConfig
from tests.support.dhcp import PUBLIC, mac, subnets
from tests.support.paths import REPO

TAKEOVER = 2.0


def server(ctx: Any, this: str, partner: str) -> DhcpService:
    cfg = HaConfig(this=this, partner=partner, heartbeat_seconds=0.2, takeover_seconds=TAKEOVER)
    subs = subnets()
    for s in subs:
        assert s.pool is not None
        s.pool = split_pool(s.pool, cfg.index)
    responder = Responder(ResponderOptions(public_url=PUBLIC), LeaseTable(subs), ha=HaFilter(cfg.index))
    return DhcpService(ctx.sessions, ctx.site, responder, cfg)


def test_heartbeats_takeover_adopt_and_back(ctx: Any) -> None:
    a, b = server(ctx, "boot-a", "boot-b"), server(ctx, "boot-b", "boot-a")
    assert a.ha is not None and b.ha is not None
    upper = split_pool((int(ipaddress.IPv4Address("10.202.0.100")), int(ipaddress.IPv4Address("10.202.0.199"))), 1)
    assert upper is not None
    theirs = str(ipaddress.IPv4Address(upper[0]))
    with db.session_scope(ctx.sessions) as s:  # a lease boot-b gave (written behind before it died)
        s.add(DhcpLease(mac=mac(9).hex(":"), ip=theirs, subnet="10.202.0.0/24",
                        expires_at=datetime.now(UTC) + timedelta(hours=1)))

    async def run() -> None:
        for svc in (a, b):
            svc.load()
        a.table.by_mac.clear()  # boot-a did not know it (it started before the lease was written)
        a.table.by_ip.clear()
        for _ in range(10):  # both beat for 2 s: nobody takes over
            await a.ha.heartbeat()
            await b.ha.heartbeat()
            await asyncio.sleep(0.2)
        assert not a.ha.monitor.ha.partner_down and not b.ha.monitor.ha.partner_down
        deadline = time.monotonic() + TAKEOVER + 2  # boot-b stops beating: boot-a takes over
        while not a.ha.monitor.ha.partner_down:
            assert time.monotonic() < deadline, "no takeover"
            await a.ha.heartbeat()
            await asyncio.sleep(0.2)
        assert a.table.by_mac[mac(9)].ip == upper[0]  # the partner's lease was adopted
        await b.ha.heartbeat()
        await a.ha.heartbeat()
        assert not a.ha.monitor.ha.partner_down and a.ha.monitor.takeovers == 1  # boot-b is back
        # boot-b renews the lease boot-a holds for mac(9): boot-a's next merge extends its copy
        with db.session_scope(ctx.sessions) as s:
            row = s.get(DhcpLease, mac(9).hex(":"))
            assert row is not None
            row.expires_at = datetime.now(UTC) + timedelta(hours=5)
        before = a.table.by_mac[mac(9)].expires
        assert await a.ha.sync_leases() == 1
        assert a.table.by_mac[mac(9)].expires > before + 3 * 3600
        assert await a.ha.sync_leases() == 0  # nothing new

    asyncio.run(run())
    with ctx.sessions() as s:
        beats = {p.name: p.beat for p in s.query(DhcpPeer)}
    assert beats["boot-a"] > beats["boot-b"] >= 11


def test_documented_ha_config_is_valid_with_documented_defaults() -> None:
    doc = (REPO / "docs" / "dhcp.md").read_text()
    section = doc.split("## Two servers on one segment", 1)[1]
    block = section.split("```yaml", 1)[1].split("```", 1)[0]
    cfg = DhcpConfig(**yaml.safe_load(block)["dhcp"])
    assert cfg.ha is not None and (cfg.ha.this, cfg.ha.partner, cfg.ha.index) == ("boot-a", "boot-b", 0)
    defaults = HaConfig(this="x", partner="y")
    assert (cfg.ha.heartbeat_seconds, cfg.ha.takeover_seconds) == (defaults.heartbeat_seconds,
                                                                    defaults.takeover_seconds) == (1.0, 5.0)
    row = f"| none, none, {defaults.heartbeat_seconds:g}, {defaults.takeover_seconds:g} |"
    assert row in (REPO / "docs" / "configuration.md").read_text()
