"""Socket receive buffers big enough for a boot storm (issue 14).

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
