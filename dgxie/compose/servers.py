"""The boot servers `dgxie serve` runs beside the API: DHCP (and its database sync) and TFTP.

With `dhcp.ha` the responder gets an `HaFilter` (this server's clients by RFC 3074 hash) and the
pools are this server's half; on PostgreSQL the DHCP sync is woken by the change listener.

Built from the `dhcp:` and `tftp:` sections when enabled and appended to the context's
background services; the DHCP sockets are bound here, before serving, so a busy port or a
missing privilege is one clear error line instead of a half-started server.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Iterable
from pathlib import Path

from dgxie.changes import ChangeListener
from dgxie.context import Context
from dgxie.dhcpsync.service import DhcpService, subnet_of
from dgxie.errors import ConfigError
from dgxie.netboot import sockbuf
from dgxie.netboot.dhcp.discovery import DiscoveryGate, DiscoveryLimits
from dgxie.netboot.dhcp.ha import HaFilter
from dgxie.netboot.dhcp.leases import LeaseTable
from dgxie.netboot.dhcp.metrics import DhcpCollector
from dgxie.netboot.dhcp.responder import Listener, Responder, ResponderOptions
from dgxie.netboot.dhcp.server import Bind, DhcpServer, interface_address
from dgxie.netboot.tftp import TftpServer, TftpStats
from dgxie.nodes import origin

log = logging.getLogger("dgxie.netboot")

PXE_PORT = 4011  # PXE 2.1 boot server discovery (proxyDHCP REQUESTs)
IPXE_BINARIES = ("undionly.kpxe", "undionly.kkpxe", "ipxe.pxe", "ipxe.efi", "snponly.efi")


class DhcpRunner:
    """The DHCP server and its database sync as one background service."""

    name = "dhcp"

    def __init__(self, server: DhcpServer, sync: DhcpService) -> None:
        self.server, self.sync = server, sync

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.sync.load)
        self.server.start()
        self.sync.start()
        origin.LIVE_LEASES.source = self.addresses

    async def stop(self) -> None:
        if origin.LIVE_LEASES.source == self.addresses:
            origin.LIVE_LEASES.source = None
        self.server.stop()
        await self.sync.stop()

    def addresses(self, macs: Iterable[str]) -> set[str]:
        """The addresses this server has bound to `macs` (canonical MACs) and not yet seen expire,
        written or not (any thread: a dict read)."""
        table, now, out = self.sync.responder.table, time.time(), set()
        for mac in macs:
            lease = table.by_mac.get(bytes.fromhex(mac.replace(":", "")))
            if lease is not None and lease.state == "bound" and lease.expires > now:
                out.add(str(ipaddress.IPv4Address(lease.ip)))
        return out


def dhcp_runner(ctx: Context) -> DhcpRunner:
    """The server and its sync from `ctx.settings.dhcp` (sockets not yet open)."""
    cfg = ctx.settings.dhcp
    if not cfg.interfaces:
        raise ConfigError("dhcp.interfaces: name at least one interface to serve DHCP on")
    table = LeaseTable([subnet_of(s, cfg) for s in cfg.subnets])
    gate = DiscoveryGate(DiscoveryLimits(cfg.discovery_max_nodes, cfg.discovery_rate, cfg.discovery_interval))
    ha = HaFilter(cfg.ha.index) if cfg.ha is not None else None
    responder = Responder(ResponderOptions(public_url=ctx.settings.public_url, mode=cfg.mode,
                                           discovery=cfg.discovery), table, gate=gate, ha=ha)
    binds = []
    for iface in cfg.interfaces:
        try:
            addr = interface_address(iface)
        except OSError as exc:
            raise ConfigError(f"dhcp.interfaces: {exc}") from None
        subnet = table.subnet_for(int(ipaddress.IPv4Address(addr)))
        ports = [cfg.listen_port] + ([PXE_PORT] if cfg.mode == "proxy" else [])
        binds += [Bind(iface, "0.0.0.0", p, Listener(addr, subnet)) for p in ports]
    sync = DhcpService(ctx.sessions, ctx.site, responder, cfg.ha)
    changes = ctx.service("changes")
    if isinstance(changes, ChangeListener):  # PostgreSQL: reload at once on any instance's change
        changes.subscribe(sync.wake)
    return DhcpRunner(DhcpServer(responder, binds), sync)


def tftp_server(ctx: Context) -> TftpServer:
    """The TFTP server the config describes: <root> first, then Debian's iPXE binaries by name."""
    t = ctx.settings.tftp
    root = t.root or ctx.settings.data_dir / "tftp"
    root.mkdir(parents=True, exist_ok=True)
    files = {n: t.ipxe_dir / n for n in IPXE_BINARIES if (t.ipxe_dir / n).exists()}
    host, _, port = t.listen.rpartition(":")
    stats = TftpStats(on_done=ctx.boot_metrics.tftp_done, on_held=ctx.boot_metrics.tftp_held)
    return TftpServer([Path(root)], host.strip("[]"), int(port), files=files, max_blksize=t.max_blksize, stats=stats,
                      max_transfers=t.max_transfers)


def add_boot_servers(ctx: Context) -> None:
    """Append TFTP and DHCP (as the config enables) to the context's background services; none on
    an instance whose role is `api` (`instance.role`)."""
    if not ctx.settings.instance.runs_boot_servers:
        return
    if ctx.settings.tftp.enabled:
        ctx.services.append(tftp_server(ctx))
    if ctx.settings.dhcp.enabled:
        short = sockbuf.arp_table_short(sum(s.cidr.num_addresses for s in ctx.settings.dhcp.subnets))
        if short:
            log.warning("dhcp: %s", short)
        runner = dhcp_runner(ctx)
        try:
            runner.server.open()  # bind now: a busy port or a missing privilege is one clear error
        except OSError as exc:
            raise ConfigError(f"dhcp: {exc.strerror}") from None
        ctx.registry.register(DhcpCollector(runner.server.responder, lag=runner.sync.lag))
        ctx.services.append(runner)
