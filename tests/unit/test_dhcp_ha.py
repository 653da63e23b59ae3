"""Two DHCP servers on one segment (dgxie.netboot.dhcp.ha, dgxie.dhcpsync.ha.HaMonitor): the RFC 3074
split of clients, disjoint pool halves, takeover, and fixed reservations answered by both."""

from __future__ import annotations

import ipaddress
import os

import pytest
from pydantic import ValidationError

from dgxie.dhcpsync.ha import HaMonitor
from dgxie.netboot.dhcp import codec as c
from dgxie.netboot.dhcp.ha import MIX, HaFilter, lb_hash, split_pool
from dgxie.netboot.dhcp.leases import Lease, LeaseTable, Reservation, Subnet
from dgxie.netboot.dhcp.responder import Listener, Responder, ResponderOptions
from dgxie.sections import DhcpConfig, HaConfig
from tests.support.dhcp import PUBLIC, SERVER, client_packet, ip_int, mac, subnets

POOL = (ip_int("10.202.0.100"), ip_int("10.202.0.199"))


def test_mix_table_is_rfc3074_permutation_and_hash_by_hand() -> None:
    assert sorted(MIX) == list(range(256)) and MIX[:4] == bytes((251, 175, 119, 215)) and MIX[-1] == 151
    # loadb_p_hash(key, 2): h = 2; h = MIX[h ^ key[1]]; h = MIX[h ^ key[0]]
    assert lb_hash(b"\x00\x00") == MIX[MIX[2]]
    assert lb_hash(b"\x01\x02") == MIX[MIX[2 ^ 2] ^ 1]
    assert lb_hash(b"") == 0


def test_hash_splits_clients_about_evenly() -> None:
    owners = [HaFilter(0).owner(None, os.urandom(6)) for _ in range(4000)]
    assert 0.45 < owners.count(0) / len(owners) < 0.55


@pytest.mark.parametrize("size", [1, 2, 3, 10, 100, 101])
def test_pool_halves_are_disjoint_and_cover_the_pool(size: int) -> None:
    pool = (1000, 1000 + size - 1)
    parts = [split_pool(pool, i) for i in (0, 1)]
    got = [ip for p in parts if p is not None for ip in range(p[0], p[1] + 1)]
    assert sorted(got) == list(range(pool[0], pool[1] + 1))  # every address once, none twice
    assert parts[0] is not None and (size == 1) == (parts[1] is None)


def pair() -> list[tuple[Responder, Listener]]:
    out = []
    for index in (0, 1):
        subs = subnets()
        subs[1].pool = split_pool(POOL, index)
        subs[1].cursor = subs[1].pool[0] if subs[1].pool else 0
        table = LeaseTable(subs)
        r = Responder(ResponderOptions(public_url=PUBLIC), table, ha=HaFilter(index))
        out.append((r, Listener(SERVER, table.subnets[1])))
    return out


def enroll(servers: list[tuple[Responder, Listener]], res: dict[bytes, Reservation]) -> None:
    for r, _ in servers:
        r.table.set_reservations(res)


def offer(r: Responder, listener: Listener, m: bytes, now: float = 1000.0) -> int | None:
    out = r.handle(client_packet(m, "discover"), listener, now)
    if out is None:
        return None
    reply = c.decode(out[0])
    assert reply.msg_type == c.OFFER
    return int(ipaddress.IPv4Address(reply.yiaddr))


def test_each_client_is_answered_by_exactly_one_server_from_its_half() -> None:
    servers = pair()
    macs = [mac(i) for i in range(80)]
    enroll(servers, {m: Reservation(f"n{i}", None, "enrolled") for i, m in enumerate(macs)})
    given: dict[int, bytes] = {}
    for m in macs:
        answers = [(i, offer(r, lst, m)) for i, (r, lst) in enumerate(servers)]
        answered = [(i, ip) for i, ip in answers if ip is not None]
        assert len(answered) == 1, answers
        i, ip = answered[0]
        assert i == HaFilter(0).owner(None, m)
        part = split_pool(POOL, i)
        assert part is not None and part[0] <= ip <= part[1]
        assert ip not in given
        given[ip] = m
    assert servers[0][0].counts["discover", "ha-partner"] + servers[1][0].counts["discover", "ha-partner"] == 80


def test_client_id_option_decides_when_present() -> None:
    r, lst = pair()[0]
    m = mac(7)
    r.table.set_reservations({m: Reservation("n", None, "enrolled")})
    cid = next(bytes([1, i]) + m for i in range(256) if lb_hash(bytes([1, i]) + m) % 2 == 0)
    other = next(bytes([1, i]) + m for i in range(256) if lb_hash(bytes([1, i]) + m) % 2 == 1)
    assert r.handle(client_packet(m, "discover", options=[("client_id", cid)]), lst, 1.0) is not None
    assert r.handle(client_packet(m, "discover", options=[("client_id", other)]), lst, 1.0) is None


def test_takeover_answers_partner_clients_from_own_half_and_keeps_adopted_leases() -> None:
    (r0, l0), _ = pair()
    theirs = [m for m in (mac(i) for i in range(60)) if HaFilter(0).owner(None, m) == 1]
    r0.table.set_reservations({m: Reservation("n", None, "enrolled") for m in theirs})
    assert all(offer(r0, l0, m) is None for m in theirs)
    assert r0.ha is not None
    monitor = HaMonitor(r0.ha, takeover=5.0, partner="b")
    assert not monitor.seen(1, 100.0) and not monitor.seen(1, 104.0)
    assert monitor.seen(1, 105.5) and r0.ha is not None and r0.ha.partner_down  # silent 5.5 s: take over
    upper = split_pool(POOL, 1)
    assert upper is not None
    held = Lease(theirs[0], upper[0], "10.202.0.0/24", 10**10, "bound")  # given by the partner
    assert r0.table.merge([held], 1000.0) == 1
    assert offer(r0, l0, theirs[0]) == upper[0]  # its client keeps its address
    lower = split_pool(POOL, 0)
    assert lower is not None
    for m in theirs[1:]:
        ip = offer(r0, l0, m)
        assert ip is not None and lower[0] <= ip <= lower[1]  # new ones only from this server's half
    # a client asking for an address of the partner's half it does not hold is refused (NAK)
    stranger = theirs[1]
    req = client_packet(stranger, "request", options=[("requested_addr", str(ipaddress.IPv4Address(upper[0] + 1)))])
    out = r0.handle(req, l0, 1000.0)
    assert out is not None and c.decode(out[0]).msg_type == c.NAK
    assert not monitor.seen(2, 106.0) and not r0.ha.partner_down  # the partner beats again
    assert offer(r0, l0, theirs[2]) is None


def test_unreachable_database_counts_as_silence() -> None:
    (r0, _), _ = pair()
    assert r0.ha is not None
    monitor = HaMonitor(r0.ha, takeover=5.0, partner="b")
    monitor.seen(3, 0.0)
    assert not monitor.missed(4.9) and monitor.missed(5.1) and monitor.takeovers == 1
    assert not monitor.missed(9.0) and monitor.takeovers == 1  # one takeover, not one per miss


def test_fixed_reservation_is_answered_by_both() -> None:
    servers = pair()
    m = mac(3)
    enroll(servers, {m: Reservation("fixed", ip_int("10.202.0.20"), "enrolled")})
    assert [offer(r, lst, m) for r, lst in servers] == [ip_int("10.202.0.20")] * 2


def test_ha_config() -> None:
    cfg = DhcpConfig(ha={"this": "boot-b", "partner": "boot-a"})
    assert cfg.ha is not None and cfg.ha.index == 1 and cfg.ha.takeover_seconds == 5.0
    assert HaConfig(this="boot-a", partner="boot-b").index == 0
    for bad in ({"this": "a", "partner": "a"}, {"this": "a", "partner": "b", "takeover_seconds": 30},
                {"this": "a", "partner": "b", "mode": "hot-standby"},
                {"this": "a", "partner": "b", "heartbeat_seconds": 3, "takeover_seconds": 5}):
        with pytest.raises(ValidationError):
            HaConfig(**bad)


def test_merge_extends_takes_in_and_never_overrides() -> None:
    table = LeaseTable([Subnet(ipaddress.IPv4Network("10.202.0.0/24"), POOL, 600)])
    sub = table.subnets[0]
    a, b, x = mac(1), mac(2), mac(3)
    mine = table.ack(sub, a, POOL[0], 100.0)
    assert mine is not None and mine.expires == 700.0
    table.take_dirty()
    key = sub.key
    rows = [Lease(a, POOL[0], key, 900.0, "bound"),  # the partner renewed a's binding: extend
            Lease(b, POOL[0] + 1, key, 900.0, "bound"),  # unknown here: taken in
            Lease(x, POOL[0], key, 900.0, "bound"),  # a's address for another MAC: a wins
            Lease(mac(4), POOL[0] + 2, key, 50.0, "bound")]  # expired: ignored
    assert table.merge(rows, 200.0) == 2
    assert table.by_mac[a].expires == 900.0 and table.by_ip[POOL[0]].mac == a
    assert table.by_mac[b].ip == POOL[0] + 1 and x not in table.by_mac and mac(4) not in table.by_mac
    assert table.dirty == {} and sub.used == 2  # nothing to write back; both addresses count as used
    assert table.merge(rows, 200.0) == 0  # idempotent
    assert table.offer(sub, mac(5), 300.0) == POOL[0] + 2  # the next free one, not a merged address


def test_partner_down_gauge() -> None:
    from prometheus_client import CollectorRegistry

    from dgxie.netboot.dhcp.metrics import DhcpCollector

    (r0, _), _ = pair()
    reg = CollectorRegistry()
    reg.register(DhcpCollector(r0))
    assert reg.get_sample_value("dgxie_dhcp_ha_partner_down") == 0
    assert r0.ha is not None
    r0.ha.partner_down = True
    assert reg.get_sample_value("dgxie_dhcp_ha_partner_down") == 1
    plain = CollectorRegistry()
    plain.register(DhcpCollector(Responder(ResponderOptions(public_url=PUBLIC), LeaseTable(subnets()))))
    assert plain.get_sample_value("dgxie_dhcp_ha_partner_down") is None  # no HA: no gauge
