"""DHCP codec: round trips against scapy, option quirks, and a hypothesis fuzz of the decoder."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.dhcp import BOOTP, DHCP

from dgxie.netboot.dhcp import codec as c
from tests.support.dhcp import BIOS_OPTS, client_packet, mac


def test_decode_scapy_discover() -> None:
    raw = client_packet(mac(1), "discover", xid=0xDEADBEEF, flags=0x8000,
                        options=[*BIOS_OPTS, (77, b"iPXE"), ("client_id", b"\x01" + mac(1)),
                                 ("param_req_list", [1, 3, 6, 66, 67]), (97, b"\x00" + bytes(range(16))),
                                 (175, b"\xb1\x05\x01\x1a\xf4\x10\x00"), (82, b"\x01\x04eth0\x02\x02ab")])
    p = c.decode(raw)
    assert (p.op, p.xid, p.flags, p.mac, p.msg_type) == (1, 0xDEADBEEF, 0x8000, mac(1), c.DISCOVER)
    assert c.client_arch(p) == 0
    assert p.options[c.OPT_VENDOR_CLASS].startswith(b"PXEClient")
    assert c.user_classes(p.options[c.OPT_USER_CLASS]) == [b"iPXE"]
    assert p.options[c.OPT_PARAMS] == bytes([1, 3, 6, 66, 67])
    assert p.options[c.OPT_CLIENT_UUID][1:] == bytes(range(16))
    assert c.ipxe_suboptions(p) == {177: b"\x01\x1a\xf4\x10\x00"}
    assert p.options[c.OPT_RELAY_AGENT] == b"\x01\x04eth0\x02\x02ab"


def test_user_class_rfc3004_and_raw() -> None:
    assert c.user_classes(b"\x04iPXE\x03foo") == [b"iPXE", b"foo"]
    assert c.user_classes(b"iPXE") == [b"iPXE"]


def test_reply_round_trip_through_scapy() -> None:
    req = c.decode(client_packet(mac(2), "request", giaddr="10.202.0.1", options=[(82, b"\x01\x02ab")]))
    opts = c.opt(c.OPT_SERVER_ID, bytes([10, 201, 0, 1])) + c.opt_u32(c.OPT_LEASE_TIME, 600) + c.IPXE_NO_PXEDHCP
    out = c.encode_reply(req, c.ACK, yiaddr=bytes([10, 202, 0, 100]), siaddr=bytes([10, 201, 0, 1]),
                         file=b"undionly.kpxe", options=opts + c.opt(c.OPT_BOOTFILE, b"undionly.kpxe"))
    assert len(out) >= 300
    s = BOOTP(out)
    assert (s.op, s.xid, s.yiaddr, s.giaddr, s.siaddr) == (2, 0x1234, "10.202.0.100", "10.202.0.1", "10.201.0.1")
    assert s.chaddr[:6] == mac(2) and s.file.rstrip(b"\0") == b"undionly.kpxe"
    got = {o[0]: o[1:] for o in s[DHCP].options if isinstance(o, tuple)}
    assert got["message-type"] == (5,) and got["server_id"] == ("10.201.0.1",) and got["lease_time"] == (600,)
    assert got["relay_agent_information"] == (b"\x01\x02ab",)
    assert s[DHCP].options[-1] == "end" or "end" in s[DHCP].options
    back = c.decode(out)  # and our own decoder reads our own reply
    assert back.options[c.OPT_IPXE] == b"\xb0\x01\x01" and back.options[c.OPT_RELAY_AGENT] == b"\x01\x02ab"
    # option 82 is the last option before end (RFC 3046 2.2)
    keys = list(back.options)
    assert keys[-1] == c.OPT_RELAY_AGENT


def test_long_option_split_and_joined() -> None:
    value = bytes(range(256)) * 2
    req = c.decode(client_packet(mac(3), "discover"))
    back = c.decode(c.encode_reply(req, c.OFFER, options=c.opt(224, value)))
    assert back.options[224] == value


def test_overload_reads_file_field() -> None:
    raw = bytearray(client_packet(mac(4), "discover", options=[(52, b"\x01")]))
    raw[108:108 + 5] = bytes([67, 3]) + b"abc"  # file field starts at offset 108
    raw[113] = 255
    assert c.decode(bytes(raw)).options[67] == b"abc"


@pytest.mark.parametrize("mutate, why", [
    (lambda b: b[:100], "truncated"),
    (lambda b: b[:236] + b"\x00\x00\x00\x00" + b[240:], "magic"),
    (lambda b: b + bytes(5000), "oversized"),
    (lambda b: b[:240] + b"\x35\x09\x01", "runs past"),
    (lambda b: b[:240] + b"\x35", "length byte"),
    (lambda b: b"\x07" + b[1:], "bad op"),
    (lambda b: b[:2] + b"\x20" + b[3:], "hardware address"),
    (lambda b: b[:240] + b"\x34\x01\x09\xff", "overload"),
])
def test_malformed_raise_codec_error(mutate, why) -> None:
    good = client_packet(mac(5), "discover")
    with pytest.raises(c.CodecError, match=why):
        c.decode(mutate(good))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=0, max_size=700))
def test_fuzz_random_bytes(data: bytes) -> None:
    with contextlib.suppress(c.CodecError):
        c.decode(data)


@settings(max_examples=1500, deadline=None)
@given(st.binary(max_size=400), st.integers(0, 255), st.integers(1, 2), st.integers(0, 16))
def test_fuzz_valid_header_random_options(opts: bytes, hops: int, op: int, hlen: int) -> None:
    """A well-formed header with arbitrary option bytes: a Packet or a CodecError, nothing else."""
    head = c.HEADER.pack(op, 1, hlen, hops, 1, 0, 0, *(bytes(4),) * 4, bytes(16), bytes(64), bytes(128))
    try:
        p = c.decode(head + c.MAGIC + opts)
    except c.CodecError:
        return
    c.client_arch(p)
    c.user_classes(p.options.get(77, b""))
    with contextlib.suppress(c.CodecError):
        c.ipxe_suboptions(p)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 254), st.binary(max_size=300)), max_size=8))
def test_fuzz_options_round_trip(items: list[tuple[int, bytes]]) -> None:
    """Any option set we encode decodes back to the same values (RFC 3396 concatenation)."""
    items = [(code, v) for code, v in items if code not in (52, 53, 82)]
    expect: dict[int, bytes] = {}
    for code, v in items:
        expect[code] = expect.get(code, b"") + v
    req = c.decode(client_packet(mac(6), "discover"))
    body = b"".join(c.opt(code, v) for code, v in items if v)
    back = c.decode(c.encode_reply(req, c.OFFER, options=body))
    for code, v in expect.items():
        if v:
            assert back.options[code] == v


def test_decode_is_fast() -> None:
    import time

    raw = client_packet(mac(7), "request", options=[*BIOS_OPTS, ("requested_addr", "10.201.0.5")])
    n = 20000
    t = time.perf_counter()
    for _ in range(n):
        c.decode(raw)
    per = (time.perf_counter() - t) / n
    assert per < 100e-6, f"{per * 1e6:.1f} us per decode"
    assert struct.calcsize("!I") == 4
