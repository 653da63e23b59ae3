"""The DHCP server's sockets (asyncio): one UDP socket per interface (SO_BINDTODEVICE,
SO_BROADCAST) on port 67, plus 4011 in proxy mode (PXE 2.1 boot server discovery).

Each readable socket is drained with non-blocking `recvfrom` until empty, so a burst costs one
wake-up. A malformed datagram is counted, logged (`RateLimitedLog`: at most one line per 10 s)
and dropped; nothing on this path touches the database, a file or a template.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import socket
import struct
import time
from dataclasses import dataclass

from dgxie.netboot import sockbuf
from dgxie.netboot.dhcp.codec import CodecError
from dgxie.netboot.dhcp.leases import LeaseTable
from dgxie.netboot.dhcp.responder import Listener, Responder
from dgxie.netboot.ratelog import RateLimitedLog

log = logging.getLogger("dgxie.dhcp")
SIOCGIFADDR = 0x8915
BURST = 256  # datagrams per wake-up before yielding to the loop


def interface_address(name: str) -> bytes:
    """The IPv4 address of interface `name` (SIOCGIFADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("256s", name.encode()[:15])
        try:
            res = fcntl.ioctl(s.fileno(), SIOCGIFADDR, req)
        except OSError as exc:
            raise OSError(f"interface {name}: no IPv4 address ({exc.strerror})") from None
    return res[20:24]


@dataclass
class Bind:
    """Where to listen: an interface (SO_BINDTODEVICE) or just a host address."""

    interface: str | None
    host: str
    port: int
    listener: Listener


def open_socket(b: Bind) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sockbuf.grow(s, f"dhcp {b.host}:{b.port}")
    if b.interface:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b.interface.encode())
    s.setblocking(False)
    s.bind((b.host, b.port))
    return s


class DhcpServer:
    """Serves `responder` on the given binds inside the running event loop."""

    def __init__(self, responder: Responder, binds: list[Bind]) -> None:
        self.responder = responder
        self.binds = binds
        self.sockets: list[socket.socket] = []
        self.malformed = 0
        self.bad_log = RateLimitedLog(log, "dhcp: dropped a malformed packet")

    @property
    def table(self) -> LeaseTable:
        return self.responder.table

    def open(self) -> None:
        """Bind every socket now (so a busy port or missing privilege shows before serving).
        Raises OSError naming the interface and port; nothing stays open after a failure."""
        if self.sockets:
            return
        try:
            for b in self.binds:
                try:
                    self.sockets.append(open_socket(b))
                except OSError as exc:
                    raise OSError(exc.errno, f"cannot listen on {b.interface or b.host}:{b.port}: "
                                             f"{exc.strerror}") from None
        except BaseException:
            self.stop()
            raise

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.open()
        for s, b in zip(self.sockets, self.binds, strict=True):
            loop.add_reader(s.fileno(), self._readable, s, b.listener)
        log.info("dhcp: serving on %s", ", ".join(f"{b.interface or b.host}:{b.port}" for b in self.binds))

    def stop(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        for s in self.sockets:
            if loop is not None and s.fileno() >= 0:
                loop.remove_reader(s.fileno())
            s.close()
        self.sockets.clear()
        self.bad_log.close()

    def _bad(self, peer: tuple[str, int], exc: Exception) -> None:
        self.malformed += 1
        self.responder.counts["unknown", "dropped-malformed"] += 1
        self.bad_log.hit("malformed", f"from {peer[0]}:{peer[1]}: {exc}")

    def _readable(self, sock: socket.socket, listener: Listener) -> None:
        handle = self.responder.handle
        for _ in range(BURST):
            try:
                data, peer = sock.recvfrom(4097)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ICMP port unreachable surfaced as ECONNREFUSED
                log.debug("dhcp: recvfrom: %s", exc)
                continue
            try:
                out = handle(data, listener, time.time())
            except CodecError as exc:
                self._bad(peer, exc)
                continue
            except Exception:  # a bug must not stop the server
                log.exception("dhcp: error answering %s:%d", peer[0], peer[1])
                self.responder.counts["error", "dropped"] += 1
                continue
            if out is not None:
                try:
                    sock.sendto(out[0], out[1])
                except OSError as exc:
                    self.responder.counts["send", "failed"] += 1
                    log.debug("dhcp: sendto %s: %s", out[1], exc)
