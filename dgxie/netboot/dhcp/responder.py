"""What to answer to one DHCP request (no sockets): RFC 2131 4.3 server behaviour, proxyDHCP
(PXE 2.1 / RFC 4578), the boot decision (`dgxie.boot.decide`) and boot options by client kind.

`Responder.handle()` returns the reply bytes and where to send them (RFC 2131 4.1), or None for
no answer at all: unknown MACs with discovery off, non-PXE clients in proxy mode, a REQUEST
for another server. Counters are plain ints (read by the metrics collector at scrape time).

Flood limits (issue 12): a chaddr that is not a 6-byte unicast MAC is dropped and counted
(`dropped-bad-mac`) before anything else looks at it, so it can never reach the database; an
unknown MAC is answered only if the `DiscoveryGate` admits it (cap and rate, `discovery-limited`);
guests (unknown or `discovered` MACs) cannot take a subnet's reserved last addresses.

Two servers on one segment (`ha`, `dgxie.netboot.dhcp.ha`): a client that belongs to the partner
(RFC 3074 hash) is left unanswered (`ha-partner`) unless the partner is down or the client has a
reservation with a fixed address (both servers answer those).
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field
from socket import inet_ntoa

from dgxie.boot.decide import BOOT_FILES, Action, Client, client_of, decide
from dgxie.boot.urls import ipxe_script_url
from dgxie.netboot.dhcp import codec as c
from dgxie.netboot.dhcp.discovery import DiscoveryGate, valid_mac
from dgxie.netboot.dhcp.ha import HaFilter
from dgxie.netboot.dhcp.leases import LeaseTable, Subnet

_U32 = struct.Struct("!I")
HTTP_BOOT_FILES = {Client.HTTP_X64: "ipxe.efi", Client.HTTP_ARM64: "arm64/ipxe.efi"}


@dataclass(frozen=True)
class ResponderOptions:
    """The server's behaviour (built by the service from the config; no config import here)."""

    public_url: str
    mode: str = "authoritative"  # or "proxy"
    discovery: bool = False
    client_port: int = 68
    relay_port: int = 67
    broadcast: str = "255.255.255.255"


@dataclass
class Listener:
    """One bound socket: its own address (server id, next-server) and directly attached subnet."""

    address: bytes
    subnet: Subnet | None


@dataclass
class Responder:
    options: ResponderOptions
    table: LeaseTable
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    gate: DiscoveryGate = field(default_factory=DiscoveryGate)  # unknown MACs admitted/to create
    ha: HaFilter | None = None  # two servers on one segment: which clients are ours
    _subnet_opts: dict[str, bytes] = field(default_factory=dict)
    _lease_opts: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for s in self.table.subnets:
            parts = [c.opt(c.OPT_SUBNET_MASK, s.network.netmask.packed)]
            if s.routers:
                parts.append(c.opt_ips(c.OPT_ROUTER, list(s.routers)))
            if s.dns:
                parts.append(c.opt_ips(c.OPT_DNS, list(s.dns)))
            if s.domain:
                parts.append(c.opt(c.OPT_DOMAIN, s.domain.encode()))
            t = s.lease_seconds
            self._subnet_opts[s.key] = b"".join(parts)
            self._lease_opts[s.key] = b"".join((c.opt_u32(c.OPT_LEASE_TIME, t), c.opt_u32(c.OPT_RENEWAL, t // 2),
                                                 c.opt_u32(c.OPT_REBINDING, t * 7 // 8)))
        self._script_url = ipxe_script_url(self.options.public_url).encode()

    # --- helpers --------------------------------------------------------------------------------

    def _subnet(self, req: c.Packet, listener: Listener) -> Subnet | None:
        if req.giaddr != c.ZERO4:
            return self.table.subnet_for(_U32.unpack(req.giaddr)[0])
        return listener.subnet

    def _dest(self, req: c.Packet, yiaddr: bytes, nak: bool = False) -> tuple[str, int]:
        """RFC 2131 4.1: relay -> giaddr:67; ciaddr -> unicast; else broadcast (we cannot put
        the client's MAC in the ARP cache from user space without raw sockets)."""
        s = self.options
        if req.giaddr != c.ZERO4:
            return inet_ntoa(req.giaddr), s.relay_port
        if req.ciaddr != c.ZERO4 and not nak:
            return inet_ntoa(req.ciaddr), s.client_port
        return s.broadcast, s.client_port

    def _boot(self, client: Client, server: bytes) -> tuple[bytes, bytes, bytes]:
        """(file field, siaddr, options) for a client that is to be booted."""
        if client is Client.IPXE:
            return b"", server, c.opt(c.OPT_BOOTFILE, self._script_url) + c.IPXE_NO_PXEDHCP
        if client in HTTP_BOOT_FILES:
            url = f"{self.options.public_url}/boot/{HTTP_BOOT_FILES[client]}".encode()
            return url, server, c.opt(c.OPT_BOOTFILE, url) + c.opt(c.OPT_VENDOR_CLASS, b"HTTPClient")
        name = BOOT_FILES.get(client)
        if name is None:
            return b"", c.ZERO4, b""
        f = name.encode()
        tftp = c.opt(c.OPT_TFTP_SERVER, inet_ntoa(server).encode())  # 66, for firmware that ignores siaddr
        # No option 60 "PXEClient" here (proxy mode adds it): EDK2/OVMF takes an address offer that
        # carries PXEClient without option 43 as a "BINL" offer and asks port 4011 for the boot
        # file; nothing answers there in authoritative mode -> "PXE-E16: No valid offer received".
        return f, server, c.opt(c.OPT_BOOTFILE, f) + tftp

    def _ours(self, req: c.Packet) -> bool:
        """Does this server answer `req` (two servers on one segment)? Fixed-address reservations:
        always; everyone else: by the RFC 3074 hash, or all while the partner is down."""
        assert self.ha is not None
        res = self.table.reservations.get(req.mac)
        if res is not None and res.ip is not None:
            return True
        return self.ha.serves(req.options.get(c.OPT_CLIENT_ID), req.mac)

    def _classify(self, req: c.Packet) -> tuple[Action, Client, bool]:
        """(boot action, client kind, known?) for this request, from the boot decision; known
        means enrolled (not unknown, not `discovered`)."""
        o = req.options
        res = self.table.reservations.get(req.mac)
        state = res.state if res is not None else None
        d = decide(state, discovery=self.options.discovery, has_image=res.has_image if res else True)
        client = client_of(c.client_arch(req), o.get(c.OPT_USER_CLASS), o.get(c.OPT_VENDOR_CLASS))
        known = res is not None and state != "discovered"
        return d.action, client, known

    # --- the packet path ------------------------------------------------------------------------

    def handle(self, data: bytes, listener: Listener, now: float) -> tuple[bytes, tuple[str, int]] | None:
        """Answer one datagram (raises codec.CodecError for a malformed one)."""
        req = c.decode(data)
        mt = req.msg_type
        name = "bootp" if mt is None else c.MSG_NAMES.get(mt, "other")
        if req.op != c.BOOTREQUEST or mt is None:
            self.counts[name, "ignored"] += 1
            return None
        if not valid_mac(req.hlen, req.mac):  # multicast, broadcast, zero or not 6 bytes
            self.counts[name, "dropped-bad-mac"] += 1
            return None
        if self.ha is not None and not self._ours(req):
            self.counts[name, "ha-partner"] += 1  # the partner answers this client
            return None
        action, client, known = self._classify(req)
        if not known and action is not Action.DISCOVERY:
            self.counts[name, "ignored"] += 1  # unknown MAC, discovery off: no rogue DHCP
            return None
        if self.options.mode == "proxy":
            return self._proxy(req, mt, name, action, client, listener)
        subnet = self._subnet(req, listener)
        if subnet is None:
            self.counts[name, "ignored"] += 1
            return None
        if not known and req.mac not in self.table.reservations and self.gate.admit(req.mac, now) is not None:
            self.counts[name, "discovery-limited"] += 1  # cap or rate: no answer, no node
            return None
        if mt == c.DISCOVER:
            return self._offer(req, subnet, action, client, listener, now, guest=not known)
        if mt == c.REQUEST:
            return self._request(req, subnet, action, client, listener, now, guest=not known)
        if mt == c.RELEASE:
            self.table.release(req.mac, _U32.unpack(req.ciaddr)[0])
            self.counts[name, "released"] += 1
        elif mt == c.DECLINE:
            ip = c.ip4(req, c.OPT_REQUESTED_IP)
            if ip is not None:
                self.table.decline(req.mac, _U32.unpack(ip)[0], now)
            self.counts[name, "declined"] += 1
        elif mt == c.INFORM:
            return self._inform(req, subnet, action, client, listener)
        else:
            self.counts[name, "ignored"] += 1
        return None

    def _options(self, subnet: Subnet, listener: Listener, action: Action, client: Client,
                 hostname: str | None, lease: bool = True) -> tuple[bytes, bytes, bytes]:
        boot = (b"", c.ZERO4, b"") if action is Action.IGNORE else self._boot(client, listener.address)
        opts = c.opt(c.OPT_SERVER_ID, listener.address) + self._subnet_opts[subnet.key] + boot[2]
        if lease:  # RFC 2131 4.3.5: no lease time in an ACK to DHCPINFORM
            opts += self._lease_opts[subnet.key]
        if hostname:
            opts += c.opt(c.OPT_HOSTNAME, hostname.encode())
        return boot[0], boot[1], opts

    def _offer(self, req: c.Packet, subnet: Subnet, action: Action, client: Client, listener: Listener,
               now: float, guest: bool) -> tuple[bytes, tuple[str, int]] | None:
        want = c.ip4(req, c.OPT_REQUESTED_IP)
        ip = self.table.offer(subnet, req.mac, now, _U32.unpack(want)[0] if want else None, guest)
        if ip is None:
            if guest and self.table.reserve_bites(subnet):
                self.counts["discover", "reserve"] += 1  # only the enrolled nodes' reserve is left
                self.gate.refuse("reserve")
            else:
                self.counts["discover", "no-address"] += 1
            return None
        res = self.table.reservations.get(req.mac)
        file, siaddr, opts = self._options(subnet, listener, action, client, res.hostname if res else None)
        yiaddr = _U32.pack(ip)
        self.counts["discover", "offered"] += 1
        return (c.encode_reply(req, c.OFFER, yiaddr=yiaddr, siaddr=siaddr, ciaddr=c.ZERO4, file=file,
                               options=opts), self._dest(req, yiaddr))

    def _nak(self, req: c.Packet, listener: Listener) -> tuple[bytes, tuple[str, int]]:
        self.counts["request", "nak"] += 1
        flags = req.flags | c.BROADCAST_FLAG if req.giaddr != c.ZERO4 else req.flags  # RFC 2131 4.3.2
        return (c.encode_reply(req, c.NAK, ciaddr=c.ZERO4, options=c.opt(c.OPT_SERVER_ID, listener.address),
                               flags=flags),
                self._dest(req, c.ZERO4, nak=True))

    def _request(self, req: c.Packet, subnet: Subnet, action: Action, client: Client, listener: Listener,
                 now: float, guest: bool) -> tuple[bytes, tuple[str, int]] | None:
        sid = c.ip4(req, c.OPT_SERVER_ID)
        if sid is not None and sid != listener.address:
            self.counts["request", "other-server"] += 1  # the client chose another server's offer
            return None
        want = c.ip4(req, c.OPT_REQUESTED_IP) or (req.ciaddr if req.ciaddr != c.ZERO4 else None)
        if want is None:
            self.counts["request", "ignored"] += 1
            return None
        res = self.table.reservations.get(req.mac)
        hostname = res.hostname if res else None
        lease = self.table.ack(subnet, req.mac, _U32.unpack(want)[0], now, hostname, guest)
        if lease is None:
            return self._nak(req, listener)
        file, siaddr, opts = self._options(subnet, listener, action, client, hostname)
        self.counts["request", "acked"] += 1
        return (c.encode_reply(req, c.ACK, yiaddr=want, siaddr=siaddr, file=file, options=opts),
                self._dest(req, want))

    def _inform(self, req: c.Packet, subnet: Subnet, action: Action, client: Client,
                listener: Listener) -> tuple[bytes, tuple[str, int]]:
        file, siaddr, opts = self._options(subnet, listener, action, client, None, lease=False)
        self.counts["inform", "acked"] += 1
        return c.encode_reply(req, c.ACK, siaddr=siaddr, file=file, options=opts), self._dest(req, c.ZERO4)

    def _proxy(self, req: c.Packet, mt: int, name: str, action: Action, client: Client,
               listener: Listener) -> tuple[bytes, tuple[str, int]] | None:
        """proxyDHCP (PXE 2.1): no address, PXEClient, the boot file; DISCOVER on 67 -> OFFER,
        REQUEST on 4011 (or 67) -> ACK."""
        if client is Client.OTHER or action is Action.IGNORE or mt not in (c.DISCOVER, c.REQUEST):
            self.counts[name, "ignored"] += 1
            return None
        file, siaddr, boot = self._boot(client, listener.address)
        if client not in HTTP_BOOT_FILES:
            boot = c.opt(c.OPT_VENDOR_CLASS, b"PXEClient") + boot.replace(
                c.opt(c.OPT_VENDOR_CLASS, b"PXEClient"), b"")
        opts = c.opt(c.OPT_SERVER_ID, listener.address) + boot + (c.PXE_VENDOR_DIRECT if client is not Client.IPXE
                                                                  else b"")
        reply_type = c.OFFER if mt == c.DISCOVER else c.ACK
        self.counts[name, "offered" if mt == c.DISCOVER else "acked"] += 1
        return c.encode_reply(req, reply_type, siaddr=siaddr, file=file, options=opts), self._dest(req, c.ZERO4)
