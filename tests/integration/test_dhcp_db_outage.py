"""A boot service through a database outage (issue 15, part 1): the DHCP server keeps answering
from memory while its PostgreSQL is stopped, and catches up when it is back.

A private PostgreSQL (tests/support/pg_private.py) is stopped under a running DHCP server and its
database service: an enrolled node (reservation loaded before the outage) and a node that already
holds a pool lease both complete DORA and renew during the outage; the leases granted meanwhile
are written behind once the database answers again, with no restart and no lease lost. The
server is the one `dgxie serve --role boot` runs (`DhcpServer` + `DhcpService`, on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from pathlib import Path

from sqlalchemy import select

from dgxie import db
from dgxie.compose import build_context
from dgxie.context import Context
from dgxie.models import DhcpLease
from tests.conftest import settings_for
from tests.integration.test_dhcp_server import Harness, enroll
from tests.support.dhcp import BIOS_OPTS, mac
from tests.support.pg_private import private_postgres


def _leases(ctx: Context) -> dict[str, str]:
    with db.session_scope(ctx.sessions) as s:
        return {r.mac: r.ip for r in s.scalars(select(DhcpLease))}


def test_dhcp_answers_from_memory_while_the_database_is_away(tmp_path: Path) -> None:
    with private_postgres() as pg:
        db.upgrade(pg.url)
        ctx = build_context(settings_for(pg.url, tmp_path / "data"), migrate=False)
        try:
            enroll(ctx, "dgx01", mac(1), "10.201.0.21")
            enroll(ctx, "dgx02", mac(2))

            async def run() -> tuple[bytes, bytes]:
                async with Harness(ctx) as h:
                    first = await h.dora(mac(2))  # a pool lease, written before the outage
                    await asyncio.sleep(0.8)
                    assert _leases(ctx) == {mac(2).hex(":"): str(ipaddress.IPv4Address(first.yiaddr))}
                    pg.stop()
                    t0 = time.monotonic()
                    reserved = await h.dora(mac(1), BIOS_OPTS)  # loaded before: answered from memory
                    assert reserved.yiaddr == ipaddress.IPv4Address("10.201.0.21").packed
                    again = await h.dora(mac(2))  # its lease, held in memory: the same address
                    assert again.yiaddr == first.yiaddr
                    answered_within = time.monotonic() - t0
                    assert answered_within < 5, answered_within  # no wait on the dead database
                    await asyncio.sleep(1.5)  # write-behind batches fail meanwhile and are kept
                    assert h.service.lag() > 1.0  # the oldest change not yet on disk
                    pg.start()
                    deadline = time.monotonic() + 30
                    while time.monotonic() < deadline and h.service.lag() > 0:
                        await asyncio.sleep(0.2)
                    assert h.service.lag() == 0, "the leases granted during the outage were not written"
                    return reserved.yiaddr, again.yiaddr

            ip1, ip2 = asyncio.run(run())
            rows = _leases(ctx)
            assert rows[mac(1).hex(":")] == str(ipaddress.IPv4Address(ip1))  # caught up after the outage
            assert rows[mac(2).hex(":")] == str(ipaddress.IPv4Address(ip2))
        finally:
            ctx.engine.dispose()
