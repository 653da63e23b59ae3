"""What a simulated node speaks on the wire: DHCP (from its own MAC, AF_PACKET), TFTP (RFC 1350 +
2347/2348 blksize, tsize) and HTTP/1.1 (from its own leased address), with the retries firmware does.

- `Dhcp`: one AF_PACKET socket sends every node's broadcast from that node's MAC; one UDP socket on
  :68 receives the (broadcast) replies and hands each to the node waiting on its xid. `exchange()`
  is one DORA with a list of per-try timeouts (PXE ROM: 4, 8, 16, 32 s, then it gives up).
- `tftp_get()`: RRQ with blksize/tsize, OACK -> ACK 0, retransmission of the last packet on a
  timeout (doubling), bounded tries.
- `http_get()` / `http_post()`: one request on a new connection bound to the node's address;
  `fetch()` retries as iPXE does (bounded), sleeping a 503's Retry-After.
Every loop is bounded by its tries; nothing here keeps state between nodes except the sockets.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

MAGIC = b"\x63\x82\x53\x63"
SO_RCVBUFFORCE = 33  # Linux <asm/socket.h>; not exported by the socket module
PARAMS = bytes([1, 3, 6, 12, 15, 28, 42, 43, 60, 66, 67, 128, 129, 130, 131, 132, 133, 134, 135, 175])


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def _frame(mac: bytes, payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", 68, 67, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, b"\0" * 4, b"\xff" * 4)
    ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
    return b"\xff" * 6 + mac + b"\x08\x00" + ip + udp


def _opt(code: int, value: bytes) -> bytes:
    return bytes([code, len(value)]) + value


@dataclass
class Offer:
    ip: str
    server_id: bytes
    siaddr: str
    bootfile: str
    options: dict[int, bytes] = field(default_factory=dict)


def _parse(data: bytes) -> tuple[int, int, Offer] | None:
    """(xid, message type, offer) of a BOOTREPLY, or None."""
    if len(data) < 240 or data[0] != 2 or data[236:240] != MAGIC:
        return None
    xid = struct.unpack("!I", data[4:8])[0]
    opts: dict[int, bytes] = {}
    i = 240
    while i < len(data) and data[i] != 255:
        if data[i] == 0:
            i += 1
            continue
        if i + 1 >= len(data):
            break
        n = data[i + 1]
        opts[data[i]] = data[i + 2:i + 2 + n]
        i += 2 + n
    mtype = opts.get(53, b"\0")[0]
    bootfile = opts.get(67, b"").rstrip(b"\0").decode(errors="replace") or \
        data[108:236].split(b"\0", 1)[0].decode(errors="replace")
    offer = Offer(socket.inet_ntoa(data[16:20]), opts.get(54, data[20:24]), socket.inet_ntoa(data[20:24]),
                  bootfile, opts)
    return xid, mtype, offer


class Dhcp:
    """The shared DHCP sockets of one simulator process (runs in the client namespace)."""

    def __init__(self, dev: str) -> None:
        self.raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        self.raw.bind((dev, 0))
        self.raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
        self.rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.rx.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        self.rx.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)  # root: past rmem_max
        self.rx.bind(("0.0.0.0", 68))
        self.rx.setblocking(False)
        self.waiting: dict[int, asyncio.Queue[tuple[int, Offer]]] = {}
        self.naks = 0
        self.nak_messages: dict[str, int] = {}  # option 56 of every NAK seen
        asyncio.get_running_loop().add_reader(self.rx.fileno(), self._readable)

    def _readable(self) -> None:
        for _ in range(256):
            try:
                data = self.rx.recv(4096)
            except BlockingIOError:
                return
            got = _parse(data)
            if got is not None and got[1] == 6:
                why = got[2].options.get(56, b"").decode(errors="replace") or "(no message)"
                self.nak_messages[why] = self.nak_messages.get(why, 0) + 1
            if got is not None and got[0] in self.waiting:
                self.waiting[got[0]].put_nowait((got[1], got[2]))

    def _send(self, mac: bytes, xid: int, mtype: int, extra: bytes, secs: int) -> None:
        hdr = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, min(secs, 0xFFFF), 0x8000, b"\0" * 4,
                          b"\0" * 4, b"\0" * 4, b"\0" * 4, mac + b"\0" * 10, b"", b"")
        body = hdr + MAGIC + _opt(53, bytes([mtype])) + extra + b"\xff"
        self.raw.send(_frame(mac, body.ljust(300, b"\0")))

    async def exchange(self, mac: bytes, pxe_opts: bytes, timeouts: Sequence[float]) -> tuple[Offer | None, int]:
        """One DORA (DISCOVER, OFFER, REQUEST, ACK) with a new xid; returns (the ACKed lease or None,
        retransmissions). Try n waits `timeouts[n]` (RFC 2131 4.1: randomised by +-1 s) for the answer
        to what it sent: DISCOVER while there is no offer, else REQUEST. A NAK drops the offer and
        starts over with DISCOVER (RFC 2131 3.1.4) in the same try (counted in `naks`); after the
        last try the client gives up."""
        xid = random.getrandbits(32)
        q: asyncio.Queue[tuple[int, Offer]] = asyncio.Queue()
        self.waiting[xid] = q
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        offer: Offer | None = None
        try:
            for n, timeout in enumerate(timeouts):
                end = loop.time() + (timeout + random.uniform(-1, 1) if timeout > 2 else timeout)
                for _ in range(64):  # a NAK restarts DISCOVER at once, within this try's time (bounded)
                    if offer is None:  # an OFFER within this try goes on to REQUEST in the same try
                        self._send(mac, xid, 1, pxe_opts, int(loop.time() - t0))
                        _, offer = await _wait(q, (2,), end - loop.time())
                        if offer is None:
                            break
                    extra = _opt(50, socket.inet_aton(offer.ip)) + _opt(54, offer.server_id) + pxe_opts
                    self._send(mac, xid, 3, extra, int(loop.time() - t0))
                    mtype, got = await _wait(q, (5, 6), end - loop.time())
                    if mtype == 5:
                        return got, n
                    if mtype != 6:
                        break
                    offer = None
                    self.naks += 1
            return None, len(timeouts) - 1
        finally:
            del self.waiting[xid]


async def _wait(q: asyncio.Queue[tuple[int, Offer]], want: tuple[int, ...],
                timeout: float) -> tuple[int | None, Offer | None]:
    """The first reply of a type in `want` within `timeout` s, as (type, offer); (None, None) if none."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while (left := end - loop.time()) > 0:
        try:
            mtype, got = await asyncio.wait_for(q.get(), left)
        except TimeoutError:
            return None, None
        if mtype in want:
            return mtype, got
    return None, None


def pxe_options(mac: bytes, arch: int, ipxe: bool) -> bytes:
    """What a PXE ROM (or iPXE, with user class "iPXE") puts in its DISCOVER/REQUEST."""
    vc = f"PXEClient:Arch:{arch:05d}:UNDI:002001".encode()
    out = _opt(55, PARAMS) + _opt(57, struct.pack("!H", 1472)) + _opt(93, struct.pack("!H", arch)) + \
        _opt(94, b"\x01\x02\x01") + _opt(97, b"\0" + mac + b"\0" * 10) + _opt(60, vc)
    if ipxe:
        out += _opt(77, b"iPXE") + _opt(175, b"\xb1\x05\x01\x80\x86\x10\x0e" + b"\x13\x01\x01")
    return out


class _Tftp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.q: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        self.q.put_nowait((data, addr))


async def tftp_get(src: str, server: str, name: str, blksize: int = 1468, tries: int = 6,
                   first_timeout: float = 1.0) -> tuple[int, int]:
    """Fetch `name` from `server`:69 bound to `src`; returns (bytes, retransmissions).
    Raises OSError on an ERROR packet or when a packet is lost `tries` times in a row."""
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(_Tftp, local_addr=(src, 0))
    try:
        rrq = b"\0\1" + name.encode() + b"\0octet\0blksize\0" + str(blksize).encode() + b"\0tsize\0" + b"0\0"
        last, dest = rrq, (server, 69)
        peer: tuple[str, int] | None = None
        expect, size, retrans, block = 1, 0, 0, 512
        while True:
            timeout = first_timeout
            for attempt in range(tries):
                if attempt:
                    retrans += 1
                transport.sendto(last, peer or dest)
                try:
                    while True:
                        data, addr = await asyncio.wait_for(proto.q.get(), timeout)
                        if peer is None or addr == peer:
                            break
                    break
                except TimeoutError:
                    timeout = min(timeout * 2, 8.0)
            else:
                raise OSError(f"tftp {name}: no answer after {tries} tries")
            peer = addr
            op = struct.unpack("!H", data[:2])[0]
            if op == 5:
                raise OSError(f"tftp {name}: error {data[4:-1].decode(errors='replace')}")
            if op == 6:  # OACK
                fields = data[2:].split(b"\0")
                opts = dict(zip(fields[0::2], fields[1::2], strict=False))
                block = int(opts.get(b"blksize", b"512"))
                last = b"\0\4\0\0"
                continue
            if op == 3:
                n = struct.unpack("!H", data[2:4])[0]
                if n == expect & 0xFFFF:
                    size += len(data) - 4
                    expect += 1
                last = b"\0\4" + data[2:4]
                if n == (expect - 1) & 0xFFFF and len(data) - 4 < block:
                    transport.sendto(last, peer)
                    return size, retrans
    finally:
        transport.close()


class HttpStatus(Exception):
    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status, self.retry_after = status, retry_after


async def http(src: str, url: str, method: str = "GET", body: bytes = b"", ctype: str = "application/json",
               timeout: float = 60.0) -> tuple[bytes, int]:
    """One request on a new connection from `src`; returns (body or b"" when streamed, bytes).
    Bodies over 64 KiB are read and counted, not kept. Raises HttpStatus on a non-2xx status."""
    assert url.startswith("http://")
    hostport, _, path = url[7:].partition("/")
    host, _, port = hostport.partition(":")
    r, w = await asyncio.wait_for(asyncio.open_connection(host, int(port or 80), local_addr=(src, 0)), timeout)
    try:
        head = f"{method} /{path} HTTP/1.1\r\nHost: {hostport}\r\nUser-Agent: iPXE/1.21.1 (storm-sim)\r\n" \
               f"Connection: close\r\n"
        if method == "POST":
            head += f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
        w.write(head.encode() + b"\r\n" + body)
        status_line = await asyncio.wait_for(r.readline(), timeout)
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while (line := await asyncio.wait_for(r.readline(), timeout)) not in (b"\r\n", b""):
            k, _, v = line.decode(errors="replace").partition(":")
            headers[k.strip().lower()] = v.strip()
        if status >= 300:
            ra = headers.get("retry-after")
            raise HttpStatus(status, float(ra) if ra and ra.isdigit() else None)
        want = int(headers.get("content-length", "-1"))
        keep, got = bytearray(), 0
        while want < 0 or got < want:
            chunk = await asyncio.wait_for(r.read(1 << 18), timeout)
            if not chunk:
                break
            got += len(chunk)
            if got <= 65536:
                keep += chunk
        if 0 <= want != got:
            raise OSError(f"short body: {got} of {want}")
        return bytes(keep), got
    finally:
        w.close()


async def fetch(src: str, url: str, method: str = "GET", body: bytes = b"", tries: int = 5,
                ctype: str = "application/json", retry_codes: Sequence[int] = (),
                causes: dict[str, int] | None = None) -> tuple[bytes, int, int]:
    """`http()` retried as iPXE (or an installer's fetch) does: a refused/reset/timed-out
    connection or a 5xx is retried after 1, 2, 4, 8 s; a 503's Retry-After is slept (capped at
    60 s) and does not use up a try; `retry_codes` are 4xx answers also worth retrying. Returns
    (body, bytes, retries); `causes` counts each retry by its cause ("503", "404", "TimeoutError"...)."""
    retries, busy = 0, 0
    causes = {} if causes is None else causes
    attempt = 0
    while True:
        try:
            data, n = await http(src, url, method, body, ctype)
            return data, n, retries
        except HttpStatus as exc:
            if exc.status == 503 and exc.retry_after is not None and busy < 100:
                busy += 1
                retries += 1
                causes["503+Retry-After"] = causes.get("503+Retry-After", 0) + 1
                await asyncio.sleep(min(exc.retry_after, 60.0) * random.uniform(1.0, 1.5))
                continue
            if exc.status < 500 and exc.status not in retry_codes:
                raise
            err: Exception = exc
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            err = exc
        cause = str(err.status) if isinstance(err, HttpStatus) else type(err).__name__
        causes[cause] = causes.get(cause, 0) + 1
        attempt += 1
        if attempt >= tries:
            raise OSError(f"{method} {url}: {err!r} after {tries} tries")
        retries += 1
        await asyncio.sleep(2 ** (attempt - 1))
