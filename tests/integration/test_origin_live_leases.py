"""A node's config fetch right after its DHCP ACK, before the lease is written, is its own
(dgxie/nodes/origin.py `LIVE_LEASES`, fed by this process's DHCP server: compose/servers.py)."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from dgxie.compose.servers import DhcpRunner
from dgxie.context import Context
from dgxie.netboot.dhcp.leases import LeaseTable, Subnet
from dgxie.nodes import origin, service
from dgxie.nodes.schemas import NodeCreate

MAC = "02:00:00:00:0e:01"


@pytest.fixture
def runner() -> Iterator[DhcpRunner]:
    table = LeaseTable([Subnet(ipaddress.IPv4Network("10.9.0.0/24"), pool=(int(ipaddress.IPv4Address("10.9.0.10")),
                                                                           int(ipaddress.IPv4Address("10.9.0.99"))))])
    sync: Any = SimpleNamespace(responder=SimpleNamespace(table=table))
    r = DhcpRunner(server=None, sync=sync)  # type: ignore[arg-type]  # only `addresses` is used here
    origin.LIVE_LEASES.source = r.addresses
    yield r
    origin.LIVE_LEASES.source = None


def _ack(r: DhcpRunner, mac: str, ip: str) -> None:
    table: LeaseTable = r.sync.responder.table
    lease = table.ack(table.subnets[0], bytes.fromhex(mac.replace(":", "")), int(ipaddress.IPv4Address(ip)),
                      time.time())
    assert lease is not None


def test_an_unwritten_lease_speaks_for_its_node(ctx: Context, runner: DhcpRunner) -> None:
    with ctx.sessions() as s, s.begin():
        node = service.create_node(s, ctx.site, NodeCreate(hostname="fast01", mac=MAC), actor="test")
        assert not origin.speaks_for(s, node, "10.9.0.20", [])  # no lease anywhere yet
        _ack(runner, MAC, "10.9.0.20")  # bound in memory, not in dhcp_leases
        assert origin.speaks_for(s, node, "10.9.0.20", [])
        assert not origin.speaks_for(s, node, "10.9.0.21", [])  # another address is still refused
        _ack(runner, "02:00:00:00:0e:02", "10.9.0.22")  # another MAC's lease says nothing for this node
        assert not origin.speaks_for(s, node, "10.9.0.22", [])


def test_an_offer_or_an_expired_lease_does_not(ctx: Context, runner: DhcpRunner) -> None:
    table: LeaseTable = runner.sync.responder.table
    mac = bytes.fromhex(MAC.replace(":", ""))
    with ctx.sessions() as s, s.begin():
        node = service.create_node(s, ctx.site, NodeCreate(hostname="fast02", mac=MAC), actor="test")
        table.offer(table.subnets[0], mac, time.time())  # offered, never ACKed
        offered = str(ipaddress.IPv4Address(table.by_mac[mac].ip))
        assert not origin.speaks_for(s, node, offered, [])
        _ack(runner, MAC, offered)
        table.by_mac[mac].expires = time.time() - 1
        assert not origin.speaks_for(s, node, offered, [])
    origin.LIVE_LEASES.source = None
    assert origin.LIVE_LEASES.of([MAC]) == set()
