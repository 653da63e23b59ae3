"""DHCP end to end: `dgxie serve` in a network namespace, real ISC dhclient clients in others,
a relay agent (scapy-built relayed packets) in another; see tests/support/dhcp_netns.py."""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from dgxie import db
from dgxie.compose import build_context
from dgxie.config import load
from dgxie.models import DhcpLease, Node
from dgxie.nodes.schemas import NodeCreate
from dgxie.nodes.service import create_node
from tests.support import dhcp_netns as nn

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(shutil.which("dhclient") is None or shutil.which("ip") is None,
                                 reason="needs isc-dhcp-client and iproute2 (.ci/apt-packages.txt)")]

RELAY_CODE = """
import socket, sys
from scapy.layers.dhcp import BOOTP, DHCP
mac = bytes.fromhex(sys.argv[1] if len(sys.argv) > 1 else '{mac}')
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', 67))
s.settimeout(10)
pkt = BOOTP(op=1, hops=1, chaddr=mac + bytes(10), xid=0x5151, giaddr='10.202.0.1') / DHCP(options=[
    ('message-type', 'discover'), (82, b'\\x01\\x05port7\\x02\\x03rly'), 'end'])
s.sendto(bytes(pkt), ('10.201.0.1', 67))
data, peer = s.recvfrom(4096)
print(peer[0], data.hex())
"""


@pytest.fixture(scope="module")
def netns() -> Iterator[None]:
    nn.setup()
    try:
        yield
    finally:
        nn.teardown()


@pytest.fixture
def site(sqlite_url: str, tmp_path: Path, netns: None) -> Iterator[tuple[Path, Path]]:
    yield tmp_path, tmp_path / "data"


def enroll(cfg: Path, hostname: str, mac: str, ip: str | None) -> None:
    ctx = build_context(load(cfg), migrate=False)
    with db.session_scope(ctx.sessions) as s:
        create_node(s, ctx.site, NodeCreate(hostname=hostname, mac=mac, ip=ip), actor="test")
    ctx.engine.dispose()


def relayed_discover(mac: str) -> tuple[str, bytes]:
    from dgxie.netboot.dhcp import codec as c

    out = nn.run_py(nn.RELAY, RELAY_CODE.format(mac=mac.replace(":", ""))).split()
    c.decode(bytes.fromhex(out[1]))
    return out[0], bytes.fromhex(out[1])


def test_reservation_unknown_ignored_and_relay(sqlite_url: str, site: tuple[Path, Path]) -> None:
    from dgxie.netboot.dhcp import codec as c

    work, data = site
    cfg = nn.write_config(work / "dgxie.yaml", sqlite_url, data, discovery=False)
    enroll(cfg, "dgx01", nn.client_mac(1), "10.201.0.50")
    enroll(cfg, "rly01", "52:54:00:dd:01:01", "10.202.0.50")
    served = nn.Served(cfg, work / "serve.log")
    try:
        addr, seen = nn.dhclient(1, work)
        assert addr == "10.201.0.50", (work / "dhclient1.log").read_text()
        assert seen.get("routers") == "10.201.0.1" and seen.get("host-name") == "dgx01"
        assert seen.get("dhcp-server-identifier") == "10.201.0.1" and "filename" not in seen  # address only
        t = time.monotonic()
        addr2, _ = nn.dhclient(2, work, timeout=6)  # unknown MAC, discovery off: no offer at all
        assert addr2 is None and "No DHCPOFFERS received" in (work / "dhclient2.log").read_text()
        assert time.monotonic() - t >= 5
        peer, raw = relayed_discover("52:54:00:dd:01:01")
        offer = c.decode(raw)
        assert peer == "10.201.0.1" and offer.msg_type == c.OFFER
        assert offer.yiaddr == bytes([10, 202, 0, 50]) and offer.giaddr == bytes([10, 202, 0, 1])
        assert offer.options[c.OPT_RELAY_AGENT] == b"\x01\x05port7\x02\x03rly"
        assert offer.options[c.OPT_ROUTER] == bytes([10, 202, 0, 1])
        assert "dgxie_dhcp_packets_total" in nn.in_ns(nn.SRV, "curl", "-s", "127.0.0.1:18080/metrics").stdout
    finally:
        served.stop()


def test_discovery_and_leases_survive_a_crash(sqlite_url: str, site: tuple[Path, Path]) -> None:
    from dgxie.netboot.dhcp import codec as c

    work, data = site
    cfg = nn.write_config(work / "dgxie.yaml", sqlite_url, data, discovery=True)
    served = nn.Served(cfg, work / "serve.log")
    try:
        addr, _ = nn.dhclient(2, work)
        assert addr is not None and addr.startswith("10.201.0.1"), (work / "dhclient2.log").read_text()
        _, raw = relayed_discover("52:54:00:dd:01:02")  # a relayed unknown gets the relayed subnet's pool
        assert c.decode(raw).yiaddr[:3] == bytes([10, 202, 0])
        time.sleep(2.5)  # write-behind flush (0.5 s) and discovery batch
        served.stop(signal.SIGKILL)  # no shutdown flush: what is on disk is what the writer wrote
    except BaseException:
        served.stop()
        raise
    engine = db.make_engine(sqlite_url)
    with db.session_factory(engine)() as s:
        node = s.scalar(select(Node).where(Node.hostname == "node-525400dd0002"))
        assert node is not None and node.state == "discovered"
        assert s.get(DhcpLease, nn.client_mac(2)) is None  # dhclient -r released it: the row is gone
    engine.dispose()
    served = nn.Served(cfg, work / "serve2.log")
    try:
        again, _ = nn.dhclient(2, work, release=False)  # this time the client keeps its lease
        assert again == addr
        time.sleep(1.5)
        served.stop(signal.SIGKILL)
    except BaseException:
        served.stop()
        raise
    engine = db.make_engine(sqlite_url)
    with db.session_factory(engine)() as s:
        lease = s.get(DhcpLease, nn.client_mac(2))
        assert lease is not None and lease.ip == addr and lease.subnet == "10.201.0.0/24"
    engine.dispose()
    served = nn.Served(cfg, work / "serve3.log")
    try:
        other, _ = nn.dhclient(3, work)  # a newcomer first: must not be handed client 2's address
        assert other is not None and other != addr
        mine, _ = nn.dhclient(2, work)
        assert mine == addr
    finally:
        served.stop()
