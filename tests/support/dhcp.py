"""Shared helpers for the DHCP tests: scapy-built client packets, a responder on test subnets."""

from __future__ import annotations

import ipaddress
from typing import Any

from scapy.layers.dhcp import BOOTP, DHCP

from dgxie.netboot.dhcp.leases import LeaseTable, Reservation, Subnet
from dgxie.netboot.dhcp.responder import Listener, Responder, ResponderOptions

PUBLIC = "http://10.201.0.1:8080"
SERVER = ipaddress.IPv4Address("10.201.0.1").packed
NET1 = "10.201.0.0/24"
NET2 = "10.202.0.0/24"


def ip_int(s: str) -> int:
    return int(ipaddress.IPv4Address(s))


def subnets() -> list[Subnet]:
    return [
        Subnet(ipaddress.IPv4Network(NET1), (ip_int("10.201.0.100"), ip_int("10.201.0.109")), 600,
               routers=(SERVER,), dns=(SERVER,), domain="cluster.local"),
        Subnet(ipaddress.IPv4Network(NET2), (ip_int("10.202.0.100"), ip_int("10.202.0.199")), 600,
               routers=(ipaddress.IPv4Address("10.202.0.1").packed,)),
    ]


def responder(*, discovery: bool = False, mode: str = "authoritative",
              reservations: dict[bytes, Reservation] | None = None) -> tuple[Responder, Listener]:
    table = LeaseTable(subnets())
    table.set_reservations(reservations or {})
    r = Responder(ResponderOptions(public_url=PUBLIC, mode=mode, discovery=discovery), table)
    return r, Listener(SERVER, table.subnets[0])


def mac(n: int) -> bytes:
    return bytes([0x52, 0x54, 0x00, 0xDD, n >> 8, n & 0xFF])


def client_packet(m: bytes, msg: str, *, xid: int = 0x1234, giaddr: str = "0.0.0.0", ciaddr: str = "0.0.0.0",
                  options: list[Any] | None = None, flags: int = 0) -> bytes:
    """A client (or relayed) DHCP message built by scapy."""
    opts: list[Any] = [("message-type", msg), *(options or []), "end"]
    return bytes(BOOTP(op=1, chaddr=m + bytes(10), xid=xid, giaddr=giaddr, ciaddr=ciaddr, flags=flags)
                 / DHCP(options=opts))


BIOS_OPTS = [("vendor_class_id", b"PXEClient:Arch:00000:UNDI:002001"), (93, b"\x00\x00"),
             (94, b"\x01\x02\x01")]
UEFI_OPTS = [("vendor_class_id", b"PXEClient:Arch:00007:UNDI:003010"), (93, b"\x00\x07")]
IPXE_OPTS = [*BIOS_OPTS, (77, b"iPXE")]
HTTP_OPTS = [("vendor_class_id", b"HTTPClient:Arch:00016:UNDI:003001"), (93, b"\x00\x10")]
