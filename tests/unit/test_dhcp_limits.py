"""The pure flood limits: chaddr validity, the discovery gate (cap, token bucket, admitted MACs
kept answered), the lease table's pool reserve and expiry, and `dhcp.pool_reserve` parsing.
Time is passed in explicitly: nothing here sleeps."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dgxie.netboot.dhcp.discovery import ADMIT_HOLD, DiscoveryGate, DiscoveryLimits, valid_mac
from dgxie.netboot.dhcp.leases import LeaseTable, Reservation
from dgxie.sections import DhcpConfig
from tests.support.dhcp import mac, subnets

NOW = 1_000_000.0


def test_valid_mac() -> None:
    assert valid_mac(6, bytes.fromhex("525400dd0001"))
    for bad in ("01005e0000fb", "ffffffffffff", "000000000000", "330000000001"):
        assert not valid_mac(6, bytes.fromhex(bad)), bad
    assert not valid_mac(8, bytes.fromhex("525400dd00010203"))
    assert not valid_mac(6, bytes.fromhex("525400dd00"))


def test_gate_cap_counts_existing_and_admitted() -> None:
    g = DiscoveryGate(DiscoveryLimits(max_nodes=3, rate=100))
    g.existing = 1
    assert [g.admit(mac(i), NOW) for i in range(4)] == [None, None, "cap", "cap"]
    assert g.admit(mac(0), NOW) is None  # admitted stays admitted (its REQUEST, its retries)
    assert g.take_pending(10) == [mac(0), mac(1)] and not g.pending
    # the nodes now exist: they count through `existing`, no longer through `admitted`
    g.reservations_changed({mac(i): Reservation(f"n{i}", None, "discovered") for i in range(3)}, NOW)
    assert g.existing == 3 and not g.admitted
    assert g.admit(mac(9), NOW) == "cap"
    assert g.refused == {"cap": 3} and g.take_report() == {"cap": 3} and g.take_report() == {}


def test_gate_rate_is_a_token_bucket() -> None:
    g = DiscoveryGate(DiscoveryLimits(max_nodes=1000, rate=2, interval=60))
    assert [g.admit(mac(i), NOW) for i in range(3)] == [None, None, "rate"]
    assert g.admit(mac(3), NOW + 29) == "rate"  # half a token
    assert g.admit(mac(4), NOW + 31) is None  # one token after 30 s
    assert [g.admit(mac(10 + i), NOW + 10_000) for i in range(3)] == [None, None, "rate"]  # burst capped


def test_gate_forgets_admitted_macs_whose_node_never_came() -> None:
    g = DiscoveryGate(DiscoveryLimits(max_nodes=1, rate=100))
    assert g.admit(mac(1), NOW) is None
    g.take_pending(10)
    assert g.admit(mac(2), NOW + 1) == "cap"
    g.reservations_changed({}, NOW + ADMIT_HOLD + 1)
    assert g.admit(mac(2), NOW + ADMIT_HOLD + 2) is None
    g.requeue([mac(2), mac(3)])  # a failed batch: only admitted MACs go back
    assert list(g.pending) == [mac(2)]


def test_reserve_for_guests_and_expiry_frees_it() -> None:
    table = LeaseTable(subnets())
    net = table.subnets[0]  # pool of 10
    net.reserve = 3
    table.set_reservations({mac(1): Reservation("dgx01", None, "enrolled")})
    got = [table.offer(net, mac(100 + i), NOW, guest=True) for i in range(9)]
    assert sum(ip is not None for ip in got) == 7 and net.used == 7
    assert table.reserve_bites(net)
    assert table.offer(net, mac(1), NOW) is not None  # an enrolled node takes from the reserve
    assert table.offer(net, mac(100), NOW, guest=True) == got[0]  # a guest keeps what it holds
    # offers are held 60 s: once expired they are forgotten when the reserve would refuse a
    # guest, and the guest gets an address again
    assert table.offer(net, mac(200), NOW + 61, guest=True) is not None
    assert net.used == 1  # every other offer had expired; mac(200) holds one
    assert table.expire(NOW + 10_000) == 1 and net.used == 0


def test_reserved_ips_count_once() -> None:
    table = LeaseTable(subnets())
    net = table.subnets[0]
    first = net.pool[0] if net.pool else 0
    table.set_reservations({mac(1): Reservation("dgx01", first, "enrolled")})
    assert net.used == 1
    table.ack(net, mac(1), first, NOW)
    assert net.used == 1  # its lease is on its reserved address: still one address
    table.set_reservations({})
    assert net.used == 1  # the lease stays


@pytest.mark.parametrize(("value", "size", "want"), [("10%", 100, 10), ("10%", 7, 1), ("0%", 50, 0), ("5", 50, 5),
                                                     (5, 3, 3), ("100%", 10, 10)])
def test_pool_reserve(value: object, size: int, want: int) -> None:
    assert DhcpConfig(pool_reserve=value).reserve_of(size) == want


@pytest.mark.parametrize("value", ["ten", "101%", "-1", "%", "1.5"])
def test_pool_reserve_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="pool_reserve"):
        DhcpConfig(pool_reserve=value)
