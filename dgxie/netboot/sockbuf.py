"""Host limits a boot storm meets (issue 14): socket receive buffers, and the ARP table.

A site powered on at once sends thousands of DHCP DISCOVERs and TFTP read requests within a
second; what does not fit in the listening socket's receive buffer is dropped by the kernel, and
the PXE ROMs' retries then come back in step (the storm simulator measured 27,728 drops at
10,000 nodes with the default 208 KiB). `SO_RCVBUF` is capped by `net.core.rmem_max`;
`SO_RCVBUFFORCE` is not, but needs CAP_NET_ADMIN. We ask for both and log once when the kernel
gave less than half (the fix is `sysctl -w net.core.rmem_max=...`, docs/boot-storm.md).
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path

log = logging.getLogger("dgxie.netboot")

SIZE = 4 << 20
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # Linux


def grow(sock: socket.socket, what: str, size: int = SIZE) -> int:
    """Ask for `size` bytes of receive and send buffer on `sock`; the receive buffer granted."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except OSError:  # no CAP_NET_ADMIN: capped by net.core.rmem_max
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
    got = int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))  # the kernel reports twice what it keeps
    if got < size:
        log.info("%s: receive buffer %d KiB, not %d KiB (net.core.rmem_max caps it; raise it for boot storms, "
                 "docs/boot-storm.md)", what, got // 1024, size // 1024)
    return got


NEIGH_LIMIT = Path("/proc/sys/net/ipv4/neigh/default/gc_thresh3")


def arp_table_short(addresses: int, limit_file: Path = NEIGH_LIMIT) -> str | None:
    """One warning line when the kernel's ARP (neighbour) table is smaller than the DHCP subnets
    (None when it is big enough or cannot be read). Past `gc_thresh3` entries Linux drops packets
    to new neighbours ("neighbor table overflow" in dmesg): every TFTP and HTTP answer to a node
    booting for the first time; the 10,000-node storm bench lost 8,000 nodes to the default 1,024."""
    try:
        limit = int(limit_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if addresses <= limit:
        return None
    return (f"the kernel's ARP table holds {limit} entries (net.ipv4.neigh.default.gc_thresh3) and the DHCP "
            f"subnets {addresses} addresses: past {limit} nodes booting at once, answers to new addresses are "
            "dropped; raise gc_thresh1/2/3 (docs/boot-storm.md)")


def raise_open_files() -> tuple[int, int]:
    """Raise this process's soft limit of open files to its hard limit; (before, after).

    Every TFTP transfer holds a socket and its file, every HTTP download a socket and its file: a
    storm of 10,000 nodes needs ~20,000 descriptors, where a shell's soft limit is often 1,024
    (the 10,000-node bench lost 7 nodes to "Too many open files"). nginx does the same
    (`worker_rlimit_nofile`); under systemd set `LimitNOFILE=` (deploy/, docs/boot-storm.md)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            return soft, soft
        return soft, want
    return soft, soft
