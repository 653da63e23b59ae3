"""What `dgxie serve` adds for network boot: the TFTP server (when `tftp.enabled`) as lifespan
hooks, and the boot fast path as uvicorn's HTTP protocol (see dgxie/api/fastpath.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dgxie.api.boot_metrics import boot_metrics
from dgxie.api.fastpath import BootFastPath, fast_protocol
from dgxie.app import Context
from dgxie.netboot.tftp import TftpServer, TftpStats

IPXE_BINARIES = ("undionly.kpxe", "undionly.kkpxe", "ipxe.pxe", "ipxe.efi", "snponly.efi")


def tftp_server(ctx: Context) -> TftpServer:
    """The TFTP server the config describes: <root> first, then Debian's iPXE binaries by name."""
    t = ctx.settings.tftp
    root = t.root or ctx.settings.data_dir / "tftp"
    root.mkdir(parents=True, exist_ok=True)
    files = {n: t.ipxe_dir / n for n in IPXE_BINARIES if (t.ipxe_dir / n).exists()}
    host, _, port = t.listen.rpartition(":")
    stats = TftpStats(on_done=boot_metrics(ctx).tftp_done)
    return TftpServer([Path(root)], host.strip("[]"), int(port), files=files, max_blksize=t.max_blksize, stats=stats)


def register_tftp(ctx: Context) -> None:
    if not ctx.settings.tftp.enabled:
        return
    server = tftp_server(ctx)

    async def start(_: Context) -> None:
        await server.start()

    async def stop(_: Context) -> None:
        await server.stop()

    ctx.extras.setdefault("lifespan_hooks", []).append(start)
    ctx.extras.setdefault("shutdown_hooks", []).append(stop)
    ctx.extras["tftp"] = server


def http_protocol(ctx: Context) -> type[Any]:
    """uvicorn's HTTP protocol class with the boot fast path in front."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol as base  # type: ignore[assignment]
    return fast_protocol(base, BootFastPath(ctx))
