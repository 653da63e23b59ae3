"""The DHCP responder without sockets: boot decision wiring, boot options by client, relays,
NAKs, proxy mode; and the lease table (pool, reservations, expiry, decline, release)."""

from __future__ import annotations

import ipaddress

from dgxie.netboot.dhcp import codec as c
from dgxie.netboot.dhcp.leases import Reservation
from tests.support.dhcp import (
    BIOS_OPTS,
    HTTP_OPTS,
    IPXE_OPTS,
    PUBLIC,
    SERVER,
    UEFI_OPTS,
    client_packet,
    ip_int,
    mac,
    responder,
)

NOW = 1_000_000.0


def ask(r, listener, raw, now=NOW):
    out = r.handle(raw, listener, now)
    return None if out is None else (c.decode(out[0]), out[1])


def dora(r, listener, m, opts=(), giaddr="0.0.0.0"):
    offer = ask(r, listener, client_packet(m, "discover", options=list(opts), giaddr=giaddr))
    assert offer is not None and offer[0].msg_type == c.OFFER
    ack = ask(r, listener, client_packet(m, "request", giaddr=giaddr, options=[
        *opts, ("requested_addr", str(ipaddress.IPv4Address(offer[0].yiaddr))), ("server_id", "10.201.0.1")]))
    assert ack is not None
    return offer, ack


def enrolled(n, ip=None, state="enrolled", has_image=True):
    return {mac(n): Reservation(f"dgx{n:02d}", ip_int(ip) if ip else None, state, has_image)}


def test_unknown_mac_discovery_off_gets_nothing() -> None:
    r, lst = responder()
    assert ask(r, lst, client_packet(mac(9), "discover", options=BIOS_OPTS)) is None
    assert ask(r, lst, client_packet(mac(9), "request", options=[("requested_addr", "10.201.0.100")])) is None
    assert r.counts["discover", "ignored"] == 1 and not r.gate.pending


def test_enrolled_bios_gets_reservation_and_undionly() -> None:
    r, lst = responder(reservations=enrolled(1, "10.201.0.50"))
    offer, ack = dora(r, lst, mac(1), BIOS_OPTS)
    for p, _ in (offer, ack):
        assert p.yiaddr == ipaddress.IPv4Address("10.201.0.50").packed
        assert p.file.rstrip(b"\0") == b"undionly.kpxe" and p.siaddr == SERVER
        assert p.options[c.OPT_BOOTFILE] == b"undionly.kpxe" and p.options[c.OPT_TFTP_SERVER] == b"10.201.0.1"
        assert p.options[c.OPT_HOSTNAME] == b"dgx01" and p.options[c.OPT_SERVER_ID] == SERVER
    assert ack[0].msg_type == c.ACK and ack[1] == ("255.255.255.255", 68)
    assert c.OPT_LEASE_TIME in ack[0].options and r.table.dirty[mac(1)] is not None


def test_boot_file_by_client_kind() -> None:
    r, lst = responder(reservations={**enrolled(1, "10.201.0.51"), **enrolled(2), **enrolled(3), **enrolled(4)})
    uefi = ask(r, lst, client_packet(mac(2), "discover", options=UEFI_OPTS))[0]
    assert uefi.options[c.OPT_BOOTFILE] == b"ipxe.efi"
    ipxe = ask(r, lst, client_packet(mac(1), "discover", options=IPXE_OPTS))[0]
    assert ipxe.options[c.OPT_BOOTFILE] == f"{PUBLIC}/boot/ipxe?mac=${{net0/mac}}".encode()
    assert ipxe.options[c.OPT_IPXE] == b"\xb0\x01\x01" and ipxe.file.rstrip(b"\0") == b""
    http = ask(r, lst, client_packet(mac(3), "discover", options=HTTP_OPTS))[0]
    assert http.options[c.OPT_BOOTFILE].startswith(b"http://") and http.options[c.OPT_VENDOR_CLASS] == b"HTTPClient"
    plain = ask(r, lst, client_packet(mac(4), "discover"))[0]  # dhclient: an address only
    assert c.OPT_BOOTFILE not in plain.options and plain.file.rstrip(b"\0") == b""
    assert plain.yiaddr != c.ZERO4  # an enrolled node without ip gets a pool address


def test_enrolled_without_image_gets_address_but_no_boot() -> None:
    r, lst = responder(reservations=enrolled(1, "10.201.0.52", has_image=False))
    offer = ask(r, lst, client_packet(mac(1), "discover", options=BIOS_OPTS))[0]
    assert offer.yiaddr == ipaddress.IPv4Address("10.201.0.52").packed and c.OPT_BOOTFILE not in offer.options


def test_discovery_on_pool_address_and_queued() -> None:
    r, lst = responder(discovery=True)
    _offer, ack = dora(r, lst, mac(7), BIOS_OPTS)
    assert ip_int(str(ipaddress.IPv4Address(ack[0].yiaddr))) in range(ip_int("10.201.0.100"), ip_int("10.201.0.110"))
    assert ack[0].options[c.OPT_BOOTFILE] == b"undionly.kpxe"
    assert mac(7) in r.gate.pending


def test_discovered_node_with_discovery_off_is_ignored() -> None:
    r, lst = responder(reservations=enrolled(1, state="discovered"))
    assert ask(r, lst, client_packet(mac(1), "discover")) is None


def test_relayed_request_uses_giaddr_subnet_and_echoes_82() -> None:
    r, lst = responder(discovery=True)
    raw = client_packet(mac(8), "discover", giaddr="10.202.0.1", options=[(82, b"\x01\x03abc")])
    offer, dest = ask(r, lst, raw)
    assert ipaddress.IPv4Address(offer.yiaddr) in ipaddress.IPv4Network("10.202.0.0/24")
    assert dest == ("10.202.0.1", 67) and offer.options[c.OPT_RELAY_AGENT] == b"\x01\x03abc"
    assert offer.options[c.OPT_ROUTER] == ipaddress.IPv4Address("10.202.0.1").packed
    # a relay on a network we do not serve: no answer
    assert ask(r, lst, client_packet(mac(8), "discover", giaddr="192.0.2.1")) is None


def test_request_for_wrong_address_is_naked() -> None:
    r, lst = responder(reservations=enrolled(1, "10.201.0.53"))
    nak = ask(r, lst, client_packet(mac(1), "request", options=[("requested_addr", "10.201.0.54")]))
    assert nak[0].msg_type == c.NAK and nak[1] == ("255.255.255.255", 68) and nak[0].flags == 0
    relayed = ask(r, lst, client_packet(mac(1), "request", giaddr="10.202.0.1",
                                        options=[("requested_addr", "10.202.0.54")]))
    assert relayed[0].msg_type == c.NAK and relayed[1] == ("10.202.0.1", 67)
    assert relayed[0].flags & c.BROADCAST_FLAG  # the relay must broadcast a NAK (RFC 2131 4.3.2)


def test_request_for_other_server_is_silent() -> None:
    r, lst = responder(reservations=enrolled(1, "10.201.0.53"))
    raw = client_packet(mac(1), "request", options=[("requested_addr", "10.201.0.53"), ("server_id", "10.201.0.9")])
    assert ask(r, lst, raw) is None


def test_renewal_unicast_to_ciaddr() -> None:
    r, lst = responder(reservations=enrolled(1, "10.201.0.53"))
    dora(r, lst, mac(1))
    ack, dest = ask(r, lst, client_packet(mac(1), "request", ciaddr="10.201.0.53"))
    assert ack.msg_type == c.ACK and dest == ("10.201.0.53", 68)


def test_pool_exhaustion_expiry_release_decline() -> None:
    r, lst = responder(discovery=True)
    got = [dora(r, lst, mac(100 + i))[1][0].yiaddr for i in range(10)]
    assert len(set(got)) == 10
    assert ask(r, lst, client_packet(mac(200), "discover")) is None  # pool of 10 is full
    assert r.counts["discover", "no-address"] == 1
    # a release frees one address
    ask(r, lst, client_packet(mac(100), "release", ciaddr=str(ipaddress.IPv4Address(got[0]))))
    assert r.table.dirty[mac(100)] is None
    offer = ask(r, lst, client_packet(mac(200), "discover"))[0]
    assert offer.yiaddr == got[0]
    # after the lease time everything is free again
    later = NOW + 700
    assert ask(r, lst, client_packet(mac(201), "discover"), now=later) is not None
    # decline: the address is quarantined and the client gets another one
    ip = str(ipaddress.IPv4Address(offer.yiaddr))
    ask(r, lst, client_packet(mac(200), "request", options=[("requested_addr", ip)]))
    ask(r, lst, client_packet(mac(200), "decline", options=[("requested_addr", ip)]))
    again = ask(r, lst, client_packet(mac(200), "discover"), now=later)[0]
    assert again.yiaddr != offer.yiaddr


def test_reserved_ip_never_from_pool() -> None:
    r, lst = responder(discovery=True, reservations=enrolled(1, "10.201.0.100"))
    offer = ask(r, lst, client_packet(mac(50), "discover"))[0]
    assert offer.yiaddr != ipaddress.IPv4Address("10.201.0.100").packed


def test_leases_take_dirty_and_restore() -> None:
    r, lst = responder(reservations=enrolled(1, "10.201.0.60"))
    dora(r, lst, mac(1))
    batch = r.table.take_dirty()
    assert batch == {mac(1): (ip_int("10.201.0.60"), "10.201.0.0/24", NOW + 600, "dgx01")}
    assert r.table.take_dirty() == {}
    r2, _lst2 = responder()
    from dgxie.netboot.dhcp.leases import Lease
    assert r2.table.restore([Lease(mac(5), ip_int("10.201.0.100"), "10.201.0.0/24", NOW + 100, "bound"),
                             Lease(mac(6), ip_int("10.201.0.101"), "10.201.0.0/24", NOW - 1, "bound")], NOW) == 1
    assert r2.table.in_use(NOW) == {"10.201.0.0/24": 1, "10.202.0.0/24": 0}


def test_proxy_mode_no_address_pxe_only() -> None:
    r, lst = responder(mode="proxy", reservations={**enrolled(1), **enrolled(2)})
    offer = ask(r, lst, client_packet(mac(1), "discover", options=BIOS_OPTS))[0]
    assert offer.yiaddr == c.ZERO4 and offer.options[c.OPT_VENDOR_CLASS] == b"PXEClient"
    assert offer.file.rstrip(b"\0") == b"undionly.kpxe" and c.OPT_LEASE_TIME not in offer.options
    assert offer.options[c.OPT_VENDOR_OPTS] == b"\x06\x01\x08\xff"
    assert ask(r, lst, client_packet(mac(2), "discover")) is None  # not a PXE client
    ack = ask(r, lst, client_packet(mac(1), "request", ciaddr="10.201.0.77", options=BIOS_OPTS))
    assert ack[0].msg_type == c.ACK and ack[1] == ("10.201.0.77", 68)


def test_inform_gets_options_without_address() -> None:
    r, lst = responder(reservations=enrolled(1, "10.201.0.60"))
    ack = ask(r, lst, client_packet(mac(1), "inform", ciaddr="10.201.0.60"))[0]
    assert ack.msg_type == c.ACK and ack.yiaddr == c.ZERO4 and c.OPT_LEASE_TIME not in ack.options
    assert ack.options[c.OPT_SUBNET_MASK] == bytes([255, 255, 255, 0])
