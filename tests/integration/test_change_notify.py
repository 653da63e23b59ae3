"""Changes committed by one instance reach another at once (PostgreSQL LISTEN/NOTIFY, issue 15).

Two Contexts on the same database stand for two `dgxie serve` processes: nodes created through
instance A must appear in instance B's DHCP reservation map and drop B's cached iPXE scripts
well under the 1 s polling period (the measured p50 and max are printed with -s). B's script
cache TTL is 60 s, so only a notification can explain the invalidation. On SQLite there is no
listener: one instance polls, as before.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import psycopg
import pytest

from dgxie import db
from dgxie.catalog.images import create_image
from dgxie.catalog.profiles import create_profile
from dgxie.catalog.schemas import ImageIn, ProfileIn
from dgxie.changes import ChangeListener
from dgxie.dhcpsync.service import DhcpService
from dgxie.netboot.dhcp.leases import LeaseTable
from dgxie.netboot.dhcp.responder import Responder, ResponderOptions
from dgxie.nodes.schemas import NodeCreate
from dgxie.nodes.service import create_node
from tests.support.dhcp import PUBLIC, mac, subnets

ROUNDS = 20
RUN_BOUND = 120.0  # seconds for the whole run (it takes ~3 s)
BOUND = 1.0  # seconds: the assertion's margin over the 100 ms goal (the p50 must beat polling)


async def _until(pred: Any, deadline: float) -> float:
    """The time.monotonic() at which `pred()` was seen true (polled every ms); raise at `deadline`."""
    while not pred():
        assert time.monotonic() < deadline, "change not seen in time"
        await asyncio.sleep(0.001)
    return time.monotonic()


def _listening_pids(url: str) -> list[int]:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                            "AND query LIKE 'LISTEN dgxie_changes%%' AND pid <> pg_backend_pid()").fetchall()
    return [int(r[0]) for r in rows]


def test_sqlite_has_no_listener(make_ctx: Any, db_url: str) -> None:
    ctx = make_ctx()
    listener = ctx.service("changes")
    assert (listener is not None) == db_url.startswith("postgresql")
    if listener is not None:
        assert isinstance(listener, ChangeListener)


def test_change_reaches_other_instance_within_100ms(make_ctx: Any, db_url: str, capsys: Any) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("LISTEN/NOTIFY is PostgreSQL only (SQLite: see test_sqlite_has_no_listener)")
    a, b = make_ctx(), make_ctx(boot={"script_cache_seconds": 60})
    with db.session_scope(a.sessions) as s:
        create_image(s, ImageIn(name="img1", kernel="k", initrd="i"), actor="test")
        create_profile(s, a.site, ProfileIn(name="p1", image="img1"), actor="test")
    listener = b.service("changes")
    assert isinstance(listener, ChangeListener)
    service = DhcpService(b.sessions, b.site, Responder(ResponderOptions(public_url=PUBLIC), LeaseTable(subnets())))
    listener.subscribe(service.wake)

    async def run() -> tuple[list[float], list[float]]:
        service.load()
        await listener.start()
        service.start()
        dhcp_lat: list[float] = []
        script_lat: list[float] = []
        try:
            assert await asyncio.to_thread(listener.connected.wait, 10)
            for i in range(ROUNDS):
                if i == ROUNDS // 2:  # the listener's connection dies: it must reconnect and go on
                    pids = _listening_pids(db_url)
                    assert pids
                    with psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://"),
                                         autocommit=True) as conn:
                        for pid in pids:
                            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
                    # a new LISTEN session (another backend pid) stands for the reconnection
                    await _until(lambda pids=pids: set(_listening_pids(db_url)) - set(pids), time.monotonic() + 10)
                    assert listener.connected.is_set()
                    await asyncio.sleep(0.3)  # let the reconnect's catch-up reload finish
                m = mac(100 + i)
                await asyncio.to_thread(b.scripts.get, m.hex(":"))  # cached in B (TTL 60 s)
                assert b.scripts.cached(m.hex(":")) is not None
                await asyncio.sleep(0.05)
                def change(i: int = i, m: bytes = m) -> float:
                    with db.session_scope(a.sessions) as s:
                        create_node(s, a.site, NodeCreate(hostname=f"n{i}", mac=m.hex(":"), profile="p1"),
                                    actor="test")
                        s.flush()
                        t0 = time.monotonic()  # the clock starts before the commit (conservative)
                    return t0
                t0 = await asyncio.to_thread(change)
                deadline = t0 + BOUND
                script_lat.append(await _until(lambda m=m: b.scripts.cached(m.hex(":")) is None, deadline) - t0)
                dhcp_lat.append(await _until(lambda m=m: m in service.table.reservations, deadline) - t0)
        finally:
            await service.stop()
            await listener.stop()
        return dhcp_lat, script_lat

    async def bounded() -> tuple[list[float], list[float]]:
        # a run once hung under a heavily loaded machine (the loop idle, cause not found): past
        # RUN_BOUND the await it is stuck in is cancelled, and the traceback names it
        async with asyncio.timeout(RUN_BOUND):
            return await run()

    dhcp_lat, script_lat = asyncio.run(bounded())
    with capsys.disabled():
        for name, lat in (("dhcp reservations", dhcp_lat), ("ipxe script cache", script_lat)):
            print(f"\n{name}: p50 {statistics.median(lat) * 1000:.1f} ms, max {max(lat) * 1000:.1f} ms "
                  f"over {len(lat)} changes")
    assert max(dhcp_lat) < BOUND and max(script_lat) < BOUND
    # polling once a second would give a median near 500 ms: only the notification passes this
    assert statistics.median(dhcp_lat) < 0.1 and statistics.median(script_lat) < 0.1
    assert service.woken >= ROUNDS and listener.received >= ROUNDS
