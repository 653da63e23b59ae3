"""dgxie.netboot.sockbuf: the ARP-table warning `dgxie serve` logs for DHCP subnets bigger than the
kernel's neighbour table (the 10,000-node storm bench lost 8,000 nodes to the default 1,024)."""

from __future__ import annotations

import socket
from pathlib import Path

from dgxie.netboot.sockbuf import arp_table_short, grow


def test_warns_only_when_the_subnets_outgrow_the_table(tmp_path: Path) -> None:
    limit = tmp_path / "gc_thresh3"
    limit.write_text("1024\n")
    assert arp_table_short(254, limit) is None
    assert arp_table_short(1024, limit) is None
    line = arp_table_short(65536, limit)
    assert line is not None and "holds 1024 entries" in line and "65536 addresses" in line
    assert "gc_thresh1/2/3" in line and "\n" not in line
    assert arp_table_short(65536, tmp_path / "absent") is None  # not Linux, or no /proc: nothing to say


def test_grow_asks_for_a_bigger_receive_buffer() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        before = s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        assert grow(s, "test") > before


def test_open_files_soft_limit_is_raised_to_the_hard_limit() -> None:
    """`dgxie serve` raises its soft RLIMIT_NOFILE (a storm's 10,000 transfers each hold a socket
    and a file): run in a child whose soft limit starts at 256."""
    import resource
    import subprocess
    import sys

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    code = ("import resource\nfrom dgxie.netboot.sockbuf import raise_open_files\n"
            "print(*raise_open_files(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True,
                         preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))).stdout.split()
    before, after, now = map(int, out)
    assert before == 256 and after == now and now > 256
