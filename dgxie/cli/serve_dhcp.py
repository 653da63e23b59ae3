"""Wire the DHCP server into `dgxie serve` when `dhcp.enabled` (config -> server + service).

`register(ctx)` appends a start and a stop hook to `ctx.extras["lifespan_hooks"/"shutdown_hooks"]`;
the app's lifespan runs them in uvicorn's event loop.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

from dgxie.app import Context
from dgxie.dhcpsync.service import DhcpService, SubnetSpec
from dgxie.errors import ConfigError
from dgxie.netboot.dhcp.leases import LeaseTable
from dgxie.netboot.dhcp.metrics import DhcpCollector
from dgxie.netboot.dhcp.responder import Listener, Responder, Settings
from dgxie.netboot.dhcp.server import Bind, DhcpServer, interface_address

PXE_PORT = 4011  # PXE 2.1 boot server discovery (proxyDHCP REQUESTs)


def build(ctx: Context) -> tuple[DhcpServer, DhcpService]:
    """The server and its service from `ctx.settings.dhcp` (sockets not yet open)."""
    cfg = ctx.settings.dhcp
    if not cfg.interfaces:
        raise ConfigError("dhcp.interfaces: name at least one interface to serve DHCP on")
    specs = [SubnetSpec(cidr=str(s.cidr), pool=(lambda r: (str(r[0]), str(r[1])) if r else None)(s.pool_range()),
                        routers=tuple(str(r) for r in s.routers), dns=tuple(str(d) for d in s.dns),
                        domain=s.domain, lease_seconds=s.lease_seconds) for s in cfg.subnets]
    table = LeaseTable([s.build() for s in specs])
    responder = Responder(Settings(public_url=ctx.settings.public_url, mode=cfg.mode, discovery=cfg.discovery),
                          table)
    binds = []
    for iface in cfg.interfaces:
        try:
            addr = interface_address(iface)
        except OSError as exc:
            raise ConfigError(f"dhcp.interfaces: {exc}") from None
        subnet = table.subnet_for(int(ipaddress.IPv4Address(addr)))
        ports = [cfg.listen_port] + ([PXE_PORT] if cfg.mode == "proxy" else [])
        binds += [Bind(iface, "0.0.0.0", p, Listener(addr, subnet)) for p in ports]
    return DhcpServer(responder, binds), DhcpService(ctx.sessions, ctx.site, responder)


def register(ctx: Context) -> None:
    """Add the DHCP server's start/stop to the app lifespan if the config enables it."""
    if not ctx.settings.dhcp.enabled:
        return
    server, service = build(ctx)
    try:
        server.open()  # bind now: a busy port or a missing privilege is one clear error, before serving
    except OSError as exc:
        raise ConfigError(f"dhcp: {exc.strerror}") from None
    ctx.registry.register(DhcpCollector(server.responder))
    ctx.extras["dhcp"] = (server, service)

    async def start(_: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(None, service.load)
        server.start()
        service.start()

    async def stop(_: Any) -> None:
        server.stop()
        await service.stop()

    ctx.extras.setdefault("lifespan_hooks", []).append(start)
    ctx.extras.setdefault("shutdown_hooks", []).append(stop)
