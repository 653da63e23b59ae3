"""TFTP codec, option negotiation (RFC 2347-2349, 7440) and root confinement: pure, no sockets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dgxie.netboot import tftp_codec as c


def test_request_roundtrip_and_options_lowercased() -> None:
    raw = c.encode_request(c.RRQ, "ipxe.efi", "OCTET", {"TSIZE": "0", "blksize": "1468", "windowsize": "4"})
    req = c.parse_request(raw)
    assert (req.opcode, req.filename, req.mode) == (c.RRQ, "ipxe.efi", "octet")
    assert req.options == {"tsize": "0", "blksize": "1468", "windowsize": "4"}


@pytest.mark.parametrize("raw", [b"", b"\x00\x01", b"\x00\x03abc\x00octet\x00", b"\x00\x01file\x00octet",
                                 b"\x00\x01file\x00\x00", b"\x00\x01file\x00bogus\x00", b"\x00\x01\x00octet\x00",
                                 b"\x00\x01f\xffle\x00octet\x00", b"\x00\x01file\x00octet\x00blksize\x00"])
def test_bad_requests_are_illegal_operations(raw: bytes) -> None:
    with pytest.raises(c.TftpError) as exc:
        c.parse_request(raw)
    assert exc.value.code == c.E_ILLEGAL_OP


@given(st.binary(max_size=600))
def test_parse_request_never_crashes(raw: bytes) -> None:
    """Fuzz: any datagram either parses or raises the protocol error, nothing else."""
    try:
        req = c.parse_request(raw)
    except c.TftpError as exc:
        assert exc.code == c.E_ILLEGAL_OP
    else:
        assert req.opcode in (c.RRQ, c.WRQ) and req.filename


def test_packets() -> None:
    assert c.encode_data(70000, b"xy") == b"\x00\x03" + (70000 & 0xFFFF).to_bytes(2, "big") + b"xy"
    assert c.encode_ack(3) == b"\x00\x04\x00\x03"
    assert c.encode_error(c.E_ACCESS, "no") == b"\x00\x05\x00\x02no\x00"
    assert c.encode_oack({"tsize": "10"}) == b"\x00\x06tsize\x0010\x00"
    assert c.parse_reply(b"\x00\x04\x00\x07") == (c.ACK, 7, b"")
    with pytest.raises(c.TftpError):
        c.parse_reply(b"\x00\x04")


def test_negotiation() -> None:
    n = c.negotiate({"blksize": "1468", "tsize": "0", "timeout": "3", "windowsize": "8", "foo": "1"}, file_size=1234)
    assert (n.blksize, n.timeout, n.windowsize) == (1468, 3.0, 8)
    assert n.oack == {"blksize": "1468", "timeout": "3", "tsize": "1234", "windowsize": "8"}  # unknown dropped
    assert c.negotiate({}, file_size=1).oack is None
    capped = c.negotiate({"blksize": "65464", "windowsize": "1000"}, file_size=1, max_blksize=1468)
    assert (capped.blksize, capped.windowsize) == (1468, c.MAX_WINDOW)
    bad = c.negotiate({"blksize": "4", "timeout": "0", "windowsize": "x", "tsize": "-1"}, file_size=1)
    assert bad.oack is None and bad.blksize == 512 and bad.windowsize == 1


def test_confinement(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "a.bin").write_bytes(b"a")
    (root / "sub" / "b.bin").write_bytes(b"b")
    secret = tmp_path / "secret"
    secret.write_text("x")
    os.symlink(secret, root / "escape")
    os.symlink(root / "a.bin", root / "inside")
    fixed = tmp_path / "ipxe.efi"
    fixed.write_bytes(b"efi")
    roots = [root]
    assert c.confine(roots, "a.bin") == root / "a.bin"
    assert c.confine(roots, "sub/b.bin") == root / "sub" / "b.bin"
    assert c.confine(roots, "./sub//b.bin") == root / "sub" / "b.bin"
    assert c.confine(roots, "inside") == root / "a.bin"
    assert c.confine(roots, "ipxe.efi", {"ipxe.efi": fixed}) == fixed
    for bad in ("/etc/passwd", "../secret", "sub/../../secret", "escape", "a\\b", ".."):
        with pytest.raises(c.TftpError) as exc:
            c.confine(roots, bad)
        assert exc.value.code == c.E_ACCESS, bad
    with pytest.raises(c.TftpError) as exc:
        c.confine(roots, "missing.bin")
    assert exc.value.code == c.E_NOT_FOUND
