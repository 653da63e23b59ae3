"""TFTP storm control: with `max_transfers` in flight a new read request is held off (not answered,
no ERROR), and a real client (curl, which repeats its RRQ on its own timer) is served once a slot
is free."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from dgxie.netboot import tftp_codec as c
from dgxie.netboot.tftp import TftpServer, TftpStats
from tests.support.netboot import free_port, loop_thread, write_random

pytestmark = pytest.mark.skipif(not shutil.which("curl"), reason="curl missing")


def _holder(port: int) -> tuple[socket.socket, tuple[str, int]]:
    """A client that asks for the file and never acknowledges: its transfer holds a slot."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    s.sendto(c.encode_request(c.RRQ, "ipxe.efi", "octet"), ("127.0.0.1", port))
    data, addr = s.recvfrom(70000)
    assert c.parse_reply(data)[:2] == (c.DATA, 1)
    return s, addr


def test_rrq_past_max_transfers_is_held_off_then_served(tmp_path: Path) -> None:
    src = write_random(tmp_path / "ipxe.efi", 200_000)
    held: list[int] = []
    stats = TftpStats(on_held=lambda: held.append(1))
    with loop_thread() as run:
        server = TftpServer([tmp_path], "127.0.0.1", free_port(socket.SOCK_DGRAM), stats=stats, max_transfers=2)
        run(server.start())
        try:
            holders = [_holder(server.port) for _ in range(2)]
            third = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            third.settimeout(1.5)
            third.sendto(c.encode_request(c.RRQ, "ipxe.efi", "octet"), ("127.0.0.1", server.port))
            with pytest.raises(TimeoutError):
                third.recvfrom(70000)  # no DATA and no ERROR: held off
            third.close()
            assert stats.held == 1 and held == [1]
            # a repeated RRQ of a running transfer is still answered (never held off)
            s0, _ = holders[0]
            s0.sendto(c.encode_request(c.RRQ, "ipxe.efi", "octet"), ("127.0.0.1", server.port))
            assert c.parse_reply(s0.recvfrom(70000)[0])[:2] == (c.DATA, 1)
            # curl (--connect-timeout 3: it repeats its RRQ every second) is held off, then served
            out = tmp_path / "got"
            t0 = time.monotonic()
            curl = subprocess.Popen(["curl", "-sS", "--connect-timeout", "3", "-m", "30", "-o", str(out),
                                     f"tftp://127.0.0.1:{server.port}/ipxe.efi"], stderr=subprocess.PIPE)
            deadline = time.monotonic() + 10
            while stats.held < 2:
                assert time.monotonic() < deadline and curl.poll() is None, "curl's RRQ was not held off"
                time.sleep(0.05)
            for s, addr in holders:  # the two stalled clients give up: their slots are freed
                s.sendto(c.encode_error(c.E_UNDEFINED, "bye"), addr)
                s.close()
            _, err = curl.communicate(timeout=40)
            assert curl.returncode == 0, err
            assert out.read_bytes() == src.read_bytes() and time.monotonic() - t0 < 20
            deadline = time.monotonic() + 5  # curl exits on the last DATA; the server counts "ok" at its final ACK
            while stats.transfers["ok"] < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert stats.transfers["aborted"] == 2 and stats.transfers["ok"] == 1 and server.active == 0
        finally:
            run(server.stop())
