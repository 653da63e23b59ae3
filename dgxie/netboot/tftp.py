"""Read-only TFTP server (asyncio): one UDP socket per transfer, `os.pread` per block.

RFC 1350 with RFC 2347 options (OACK / error 8), RFC 2348 blksize, RFC 2349 timeout + tsize and
RFC 7440 windowsize. Write requests are refused; paths are confined to the roots
(`tftp_codec.confine`). Why not tftpy: its single select() loop scans every session per packet
(see docs/netboot.md); here the kernel demultiplexes transfers by socket.

The OVMF quirk (harness README): OVMF sends `RRQ tsize 0 ...`, reads the size from the OACK,
aborts with ERROR 8, then sends a second RRQ. Each RRQ is its own session, so that just works.

No reflection (issue 12): UDP sources can be forged, so a request is answered with at most one
packet until the client proves it receives them by acknowledging one (ACK 0 of the OACK, or
ACK 1). The server does not retransmit the OACK or DATA block 1 on its own timer toward an
address that has never completed a transfer; it resends that one packet only when the client
repeats its RRQ (RFC 1350 section 4: the requester retransmits on timeout, as iPXE, PXE ROMs,
tftp-hpa and curl do). Once the client has acknowledged, the normal retransmission (RFC 1350,
RFC 7440) applies, and an address that completed a transfer is trusted for the first packet too.
Refused requests are logged through `RateLimitedLog` (one line per 10 s at most).

Storm control (issue 14): with `max_transfers` transfers in flight, a new read request is held
off: not answered at all (no ERROR, which PXE ROMs treat as final), so the client repeats its RRQ
on its own timer (RFC 1350 section 4; PXE ROMs and iPXE retransmit a few times with growing
timeouts) and is served once a slot is free. Each hold-off is counted (`TftpStats.held`,
`on_held`); a repeated RRQ of a transfer already running is never held off.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from dgxie.netboot import sockbuf
from dgxie.netboot import tftp_codec as c
from dgxie.netboot.ratelog import RateLimitedLog
from dgxie.netboot.tftp_files import SharedFiles

log = logging.getLogger("dgxie.tftp")

MAX_RETRIES = 5
MAX_PROVEN = 65536  # addresses remembered as having completed a transfer (oldest forgotten first)


@dataclass
class TftpStats:
    """Counters the app exports as metrics; `on_done(filename, ok, nbytes)` hook optional."""

    transfers: dict[str, int] = field(default_factory=lambda: {"ok": 0, "error": 0, "aborted": 0, "refused": 0})
    bytes_sent: int = 0
    held: int = 0  # read requests left unanswered because `max_transfers` were in flight
    on_done: Callable[[str, str, int], None] | None = None
    on_held: Callable[[], None] | None = None

    def hold(self) -> None:
        self.held += 1
        if self.on_held is not None:
            self.on_held()

    def done(self, filename: str, outcome: str, nbytes: int) -> None:
        self.transfers[outcome] = self.transfers.get(outcome, 0) + 1
        self.bytes_sent += nbytes
        if self.on_done is not None:
            self.on_done(filename, outcome, nbytes)


class _Session:
    """One RRQ: sends DATA in windows, retransmits on timeout, ends on the last ACK.

    A plain non-blocking socket connected to the client (its own TID) and a reader callback:
    no transport layer per packet, the kernel drops datagrams from other ports."""

    def __init__(self, server: TftpServer, sock: socket.socket, fd: int, size: int, filename: str,
                 neg: c.Negotiated) -> None:
        self.server, self.sock, self.fd, self.size, self.filename, self.neg = server, sock, fd, size, filename, neg
        self.loop = asyncio.get_running_loop()
        self.last_block = size // neg.blksize + 1  # a short (maybe empty) block ends the transfer
        self.acked = 0  # absolute number of the highest block acknowledged (0: OACK / none)
        self.retries = 0
        self.timer: asyncio.TimerHandle | None = None
        self.deadline = 0.0
        self.closed = self.loop.create_future()
        self.sent_bytes = 0
        self.started = neg.oack is None  # with options, DATA starts after the client ACKs the OACK
        self.heard = False  # the client acknowledged something: it receives what we send
        self.peer = str(sock.getpeername()[0])
        self.retransmit = server.is_proven(self.peer)  # may we resend before `heard`?

    def start(self) -> None:
        self.loop.add_reader(self.sock.fileno(), self._readable)
        if self.neg.oack is not None:
            self._send(c.encode_oack(self.neg.oack))
            self._arm()
        else:
            self._send_window()

    def _send(self, pkt: bytes) -> None:
        try:
            self.sock.send(pkt)
        except (BlockingIOError, InterruptedError):
            pass  # socket buffer full: the retransmit timer resends
        except OSError:
            self._finish("error")

    def _block(self, n: int) -> bytes:
        bs = self.neg.blksize
        return os.pread(self.fd, bs, (n - 1) * bs)

    def _send_window(self) -> None:
        first = self.acked + 1
        for n in range(first, min(first + self.neg.windowsize, self.last_block + 1)):
            self._send(c.encode_data(n, self._block(n)))
        self._arm()

    def _arm(self) -> None:
        """Push the retransmit deadline; one timer per timeout period, not one per packet (a
        timer handle per block cost a fifth of the server's CPU)."""
        self.deadline = time.monotonic() + self.neg.timeout
        if self.timer is None:
            self.timer = self.loop.call_later(self.neg.timeout, self._check)

    def _check(self) -> None:
        self.timer = None
        if self.closed.done():
            return
        left = self.deadline - time.monotonic()
        if left > 0:
            self.timer = self.loop.call_later(left, self._check)
        else:
            self._timeout()

    def _timeout(self) -> None:
        self.retries += 1
        if self.retries > MAX_RETRIES:
            log.info("tftp %s: client gone after %d retries", self.filename, MAX_RETRIES)
            self._finish("error")
            return
        if not self.heard and not self.retransmit:
            self._arm()  # an unproven address: wait for the client to repeat its RRQ instead
            return
        self._resend()

    def _resend(self) -> None:
        if not self.started and self.neg.oack is not None:
            self._send(c.encode_oack(self.neg.oack))
            self._arm()
        else:
            self._send_window()

    def repeated_request(self) -> None:
        """The client sent its RRQ again: if it has not acknowledged anything yet, our first
        packet was lost, so send it once more (one packet per request); otherwise ignore it."""
        if not self.heard and not self.closed.done():
            self._resend()

    def _readable(self) -> None:
        while not self.closed.done():
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. ICMP port unreachable: the client went away
                self._finish("error")
                return
            self._packet(data)

    def _packet(self, data: bytes) -> None:
        try:
            opcode, number, _ = c.parse_reply(data)
        except c.TftpError:
            return
        if opcode == c.ERROR:
            # error 8 after our OACK is OVMF's tsize probe; anything else is the client giving up
            self._finish("aborted")
            return
        if opcode != c.ACK:
            self._send(c.encode_error(c.E_ILLEGAL_OP, "expected ACK"))
            self._finish("error")
            return
        if not self.started:
            if number == 0:  # the OACK's acknowledgement (RFC 2347)
                self.started = self.heard = True
                self.retries = 0
                self._send_window()
            return
        # map the 16-bit ACK onto the window in flight (block numbers wrap, RFC 7440 section 4)
        in_flight = min(self.acked + self.neg.windowsize, self.last_block) - self.acked
        delta = (number - self.acked) & 0xFFFF
        if delta == 0 or delta > in_flight:
            return  # duplicate or stale ACK: ignore (no Sorcerer's Apprentice resends)
        self.acked += delta
        self.retries = 0
        self.heard = True
        if self.acked >= self.last_block:
            self.sent_bytes = self.size
            self._finish("ok")
        else:
            self._send_window()

    def _finish(self, outcome: str) -> None:
        if self.closed.done():
            return
        if self.timer is not None:
            self.timer.cancel()
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()
        self.server.open_files.release(self.fd)
        if outcome != "ok":
            self.sent_bytes = min(self.acked * self.neg.blksize, self.size)
        self.server.stats.done(self.filename, outcome, self.sent_bytes)
        if outcome == "ok":
            self.server.prove(self.peer)
        self.closed.set_result(outcome)


class _Listener(asyncio.DatagramProtocol):
    def __init__(self, server: TftpServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.server.handle_request(data, (str(addr[0]), int(str(addr[1]))))


class TftpServer:
    """`await start()`, `await stop()`. `roots` are searched in order for each file, then `files`
    (exact name -> trusted path, e.g. the iPXE binaries of Debian's `ipxe` package)."""

    name = "tftp"  # as a background service (dgxie/background.py)

    def __init__(self, roots: list[Path], host: str = "0.0.0.0", port: int = 69, *,
                 files: dict[str, Path] | None = None, max_blksize: int = c.MAX_BLKSIZE,
                 stats: TftpStats | None = None, max_transfers: int = 0) -> None:
        self.roots, self.host, self.port, self.max_blksize = roots, host, port, max_blksize
        self.max_transfers = max_transfers  # 0: no limit
        self.active = 0  # transfers started and not yet ended (sessions, and tasks about to make one)
        self.files = {k: Path(os.path.realpath(v)) for k, v in (files or {}).items()}
        self.stats = stats or TftpStats()
        self.sessions: dict[tuple[str, int, str], _Session] = {}
        self.proven: dict[str, None] = {}  # addresses that completed a transfer, oldest first
        self.refusals = RateLimitedLog(log, "tftp refused a request")
        self.open_files = SharedFiles()
        self._listener: _Listener | None = None

    def is_proven(self, address: str) -> bool:
        return address in self.proven

    def prove(self, address: str) -> None:
        """`address` completed a transfer: it is a real client, not a forged source."""
        self.proven.pop(address, None)
        self.proven[address] = None
        if len(self.proven) > MAX_PROVEN:
            del self.proven[next(iter(self.proven))]

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sockbuf.grow(sock, f"tftp {self.host}:{self.port}")  # a storm's read requests arrive at once
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        transport, proto = await loop.create_datagram_endpoint(lambda: _Listener(self), sock=sock)
        self._listener = proto
        self.port = transport.get_extra_info("sockname")[1]
        log.info("tftp listening on %s:%d, roots %s", self.host, self.port, ", ".join(map(str, self.roots)))

    async def stop(self) -> None:
        if self._listener is not None and self._listener.transport is not None:
            self._listener.transport.close()
        for s in list(self.sessions.values()):
            s._finish("aborted")
        self.refusals.close()

    def _reply_error(self, addr: tuple[str, int], code: int, message: str) -> None:
        if self._listener is not None and self._listener.transport is not None:
            self._listener.transport.sendto(c.encode_error(code, message), addr)

    def handle_request(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            req = c.parse_request(data)
            if req.opcode == c.WRQ:
                raise c.TftpError(c.E_ACCESS, "read-only server: write requests are refused")
            path = c.confine(self.roots, req.filename, self.files)
        except c.TftpError as exc:
            self.refusals.hit(exc.message, f"{addr[0]}:{addr[1]}: {exc.message}")
            self.stats.done("", "refused", 0)
            self._reply_error(addr, exc.code, exc.message)
            return
        key = (addr[0], addr[1], req.filename)
        session = self.sessions.get(key)
        if session is not None:
            session.repeated_request()  # a retransmitted RRQ while its session is alive
            return
        if self.max_transfers and self.active >= self.max_transfers:
            self.stats.hold()  # hold off: no answer, the client repeats its RRQ later
            return
        try:
            fd, size = self.open_files.open(str(path))  # one descriptor per file, shared by its transfers
        except OSError as exc:
            self._reply_error(addr, c.E_ACCESS, exc.strerror or "cannot open")
            return
        neg = c.negotiate(req.options, file_size=size, max_blksize=self.max_blksize)
        self.active += 1
        asyncio.get_running_loop().create_task(self._run(key, fd, size, req.filename, neg))

    async def _run(self, key: tuple[str, int, str], fd: int, size: int, filename: str, neg: c.Negotiated) -> None:
        try:
            await self._transfer(key, fd, size, filename, neg)
        finally:
            self.active -= 1

    async def _transfer(self, key: tuple[str, int, str], fd: int, size: int, filename: str,
                        neg: c.Negotiated) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind((self.host, 0))
            sock.connect((key[0], key[1]))
        except OSError as exc:
            sock.close()
            self.open_files.release(fd)
            log.warning("tftp %s: cannot open a transfer socket: %s", filename, exc)
            return
        session = _Session(self, sock, fd, size, filename, neg)
        self.sessions[key] = session
        try:
            session.start()
            await session.closed
        finally:
            self.sessions.pop(key, None)
