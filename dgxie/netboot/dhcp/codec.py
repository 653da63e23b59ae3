"""DHCPv4 wire format (pure): RFC 2131 BOOTP header, RFC 2132 options, RFC 3396 long options.

`decode()` turns a datagram into a `Packet` or raises `CodecError` (the only exception it raises);
`encode_reply()` builds a reply from a request, a message type, addresses and pre-encoded options.
Options are kept as raw bytes by code; the helpers below read the ones the server uses:
53 message type, 50 requested IP, 54 server id, 55 parameter list, 60 vendor class, 61 client id,
77 user class (iPXE sends a raw ``iPXE`` without the RFC 3004 length prefix: both are accepted),
82 relay agent information (RFC 3046: kept verbatim and echoed back), 93 client arch and
94 client NDI (RFC 4578), 97 client UUID, 175 iPXE encapsulated options.
Option overload (52) is honoured: options in `file`/`sname` are read with the same bounds checks.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAGIC = b"\x63\x82\x53\x63"
HEADER = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")  # 236 bytes
MIN_LEN = HEADER.size + 4
MAX_LEN = 4096  # larger than any DHCP client sends (RFC 2131 assumes 576; jumbo frames 9000 are not DHCP)
MIN_REPLY = 300  # BOOTP clients expect at least 300 bytes (RFC 1542 2.1)

BOOTREQUEST, BOOTREPLY = 1, 2
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = 1, 2, 3, 4, 5, 6, 7, 8
MSG_NAMES = {1: "discover", 2: "offer", 3: "request", 4: "decline", 5: "ack", 6: "nak", 7: "release",
             8: "inform"}

PAD, END = 0, 255
OPT_SUBNET_MASK, OPT_ROUTER, OPT_DNS, OPT_HOSTNAME, OPT_DOMAIN = 1, 3, 6, 12, 15
OPT_REQUESTED_IP, OPT_LEASE_TIME, OPT_OVERLOAD, OPT_MSG_TYPE, OPT_SERVER_ID = 50, 51, 52, 53, 54
OPT_PARAMS, OPT_MESSAGE, OPT_MAX_SIZE, OPT_RENEWAL, OPT_REBINDING = 55, 56, 57, 58, 59
OPT_VENDOR_CLASS, OPT_CLIENT_ID, OPT_TFTP_SERVER, OPT_BOOTFILE = 60, 61, 66, 67
OPT_VENDOR_OPTS, OPT_USER_CLASS, OPT_RELAY_AGENT = 43, 77, 82
OPT_CLIENT_ARCH, OPT_CLIENT_NDI, OPT_CLIENT_UUID, OPT_IPXE = 93, 94, 97, 175

ZERO4 = b"\x00\x00\x00\x00"
BROADCAST_FLAG = 0x8000


class CodecError(ValueError):
    """A datagram that is not a well-formed DHCP message (dropped by the server)."""


@dataclass(slots=True)
class Packet:
    op: int
    htype: int
    hlen: int
    hops: int
    xid: int
    secs: int
    flags: int
    ciaddr: bytes
    yiaddr: bytes
    siaddr: bytes
    giaddr: bytes
    chaddr: bytes  # all 16 bytes as sent
    sname: bytes
    file: bytes
    options: dict[int, bytes]

    @property
    def mac(self) -> bytes:
        return self.chaddr[: self.hlen]

    @property
    def msg_type(self) -> int | None:
        v = self.options.get(OPT_MSG_TYPE)
        return v[0] if v is not None and len(v) == 1 else None


def _parse_options(data: bytes, start: int, end: int, out: dict[int, bytes]) -> None:
    """Read options from data[start:end] into `out`; repeated codes concatenate (RFC 3396)."""
    i = start
    while i < end:
        code = data[i]
        if code == END:
            return
        if code == PAD:
            i += 1
            continue
        if i + 1 >= end:
            raise CodecError(f"option {code}: length byte missing")
        n = data[i + 1]
        j = i + 2 + n
        if j > end:
            raise CodecError(f"option {code}: length {n} runs past the end of the packet")
        value = data[i + 2 : j]
        prev = out.get(code)
        out[code] = value if prev is None else prev + value
        i = j


def decode(data: bytes) -> Packet:
    """Parse one DHCP/BOOTP datagram. Raises `CodecError` for anything malformed."""
    n = len(data)
    if n < MIN_LEN:
        raise CodecError(f"truncated: {n} bytes, a DHCP message has at least {MIN_LEN}")
    if n > MAX_LEN:
        raise CodecError(f"oversized: {n} bytes (limit {MAX_LEN})")
    if data[236:240] != MAGIC:
        raise CodecError("wrong magic cookie")
    (op, htype, hlen, hops, xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr, chaddr, sname,
     file) = HEADER.unpack_from(data)
    if op != BOOTREQUEST and op != BOOTREPLY:
        raise CodecError(f"bad op {op}")
    if hlen > 16:
        raise CodecError(f"bad hardware address length {hlen}")
    options: dict[int, bytes] = {}
    _parse_options(data, 240, n, options)
    over = options.get(OPT_OVERLOAD)
    if over is not None:
        if len(over) != 1 or over[0] not in (1, 2, 3):
            raise CodecError("bad option overload value")
        if over[0] & 1:
            _parse_options(file, 0, 128, options)
        if over[0] & 2:
            _parse_options(sname, 0, 64, options)
    return Packet(op, htype, hlen, hops, xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr, chaddr, sname,
                  file, options)


# --- reading options the server uses --------------------------------------------------------------

def client_arch(p: Packet) -> int | None:
    """First architecture type of option 93 (RFC 4578 2.1), or None."""
    v = p.options.get(OPT_CLIENT_ARCH)
    if v is None or len(v) < 2:
        return None
    return (v[0] << 8) | v[1]


def user_classes(raw: bytes) -> list[bytes]:
    """Option 77 as a list: RFC 3004 length-prefixed entries, or iPXE's raw single string."""
    out: list[bytes] = []
    i = 0
    while i < len(raw):
        n = raw[i]
        if n == 0 or i + 1 + n > len(raw):
            return [raw]  # not RFC 3004 framed: iPXE's raw "iPXE"
        out.append(raw[i + 1 : i + 1 + n])
        i += 1 + n
    return out


def ipxe_suboptions(p: Packet) -> dict[int, bytes]:
    """Option 175 (iPXE encapsulated) as {sub-option: value}; malformed -> CodecError."""
    raw = p.options.get(OPT_IPXE)
    out: dict[int, bytes] = {}
    if raw is not None:
        _parse_options(raw, 0, len(raw), out)
    return out


def ip4(p: Packet, code: int) -> bytes | None:
    """A 4-byte address option (50, 54), or None if absent or of the wrong length."""
    v = p.options.get(code)
    return v if v is not None and len(v) == 4 else None


# --- encoding ---------------------------------------------------------------------------------------

def opt(code: int, value: bytes) -> bytes:
    """One option, split into several instances if longer than 255 bytes (RFC 3396)."""
    if len(value) <= 255:
        return bytes((code, len(value))) + value
    return b"".join(bytes((code, len(value[i : i + 255]))) + value[i : i + 255] for i in range(0, len(value), 255))


def opt_u32(code: int, value: int) -> bytes:
    return struct.pack("!BBI", code, 4, value)


def opt_ips(code: int, addrs: list[bytes]) -> bytes:
    return opt(code, b"".join(addrs))


IPXE_NO_PXEDHCP = opt(OPT_IPXE, b"\xb0\x01\x01")  # 175.176 = 1: skip iPXE's ProxyDHCP wait
PXE_VENDOR_DIRECT = opt(OPT_VENDOR_OPTS, b"\x06\x01\x08\xff")  # PXE_DISCOVERY_CONTROL: use the boot file


def encode_reply(req: Packet, msg_type: int, *, yiaddr: bytes = ZERO4, siaddr: bytes = ZERO4,
                 ciaddr: bytes | None = None, file: bytes = b"", sname: bytes = b"",
                 options: bytes = b"") -> bytes:
    """A BOOTREPLY for `req`: header, cookie, option 53, `options` (already encoded), echoed
    option 82 last (RFC 3046 2.2), end, padded to 300 bytes."""
    if len(file) > 128 or len(sname) > 64:
        raise CodecError("boot file or server name too long for the BOOTP header")
    head = HEADER.pack(BOOTREPLY, req.htype, req.hlen, 0, req.xid, 0, req.flags,
                       req.ciaddr if ciaddr is None else ciaddr, yiaddr, siaddr, req.giaddr, req.chaddr,
                       sname, file)
    relay = req.options.get(OPT_RELAY_AGENT)
    tail = opt(OPT_RELAY_AGENT, relay) if relay is not None else b""
    out = b"".join((head, MAGIC, b"\x35\x01", bytes((msg_type,)), options, tail, b"\xff"))
    if len(out) < MIN_REPLY:
        out += bytes(MIN_REPLY - len(out))
    return out


def encode_request(mac: bytes, msg_type: int, *, xid: int = 1, flags: int = 0, ciaddr: bytes = ZERO4,
                   giaddr: bytes = ZERO4, options: bytes = b"", hops: int = 0) -> bytes:
    """A BOOTREQUEST (clients, relays and tests use it; the server never does)."""
    head = HEADER.pack(BOOTREQUEST, 1, len(mac), hops, xid, 0, flags, ciaddr, ZERO4, ZERO4, giaddr,
                       mac.ljust(16, b"\x00"), b"", b"")
    return b"".join((head, MAGIC, b"\x35\x01", bytes((msg_type,)), options, b"\xff"))
