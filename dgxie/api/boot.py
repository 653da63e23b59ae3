"""Boot endpoints (unauthenticated): the per-node iPXE script and the boot image files.

    GET /boot/ipxe?mac=MAC           the script the boot decision picks (text/plain)
    GET|HEAD /images/{image}/{file}  kernel, initrd, squashfs.. with Range support; 503 +
                                     Retry-After past `boot.max_downloads` big files in flight

`dgxie serve` answers both on a fast path before FastAPI (`dgxie.api.fastpath`: sendfile for
images, the script cache without the ASGI stack); these routes are the same answers for every
other way in (TestClient, a connection that already spoke to the API, a proxy).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from dgxie.api.deps import SessionDep, get_ctx
from dgxie.api.openapi import example
from dgxie.catalog import images
from dgxie.errors import NotFound
from dgxie.netboot.downloads import DownloadGate

router = APIRouter(tags=["boot"])

IPXE_MEDIA = "text/plain; charset=utf-8"


IPXE_EXAMPLE = ("#!ipxe\n# dgxie: dgx01 (aa:bb:cc:00:00:01) -> install ubuntu-24.04: enrolled: install\n"
                "kernel http://10.0.0.1:8080/images/ubuntu-24.04/vmlinuz autoinstall ds=nocloud-net;s=..."
                " ---\ninitrd http://10.0.0.1:8080/images/ubuntu-24.04/initrd\nboot\n")


@router.get("/boot/ipxe", response_class=PlainTextResponse,
            responses=example(IPXE_EXAMPLE, media="text/plain"))
async def ipxe(request: Request, mac: str) -> PlainTextResponse:
    """The iPXE script for the MAC that firmware booted from (what DHCP points iPXE at): install,
    local disk, discovery, erase, or "not enrolled" then exit. Unauthenticated, as firmware needs:
    the script holds nothing secret (its boot URL is answered only to the node's own address,
    docs/security.md). A `mac` that is not a MAC address is a 422."""
    cache = get_ctx(request).scripts
    script = cache.cached(mac)
    if script is None:
        script = await run_in_threadpool(cache.get, mac)
    return PlainTextResponse(script.text, media_type=IPXE_MEDIA)


@router.get("/images/{image}/{file}", operation_id="get_image_file",
            responses=example("(the file's bytes)", media="application/octet-stream"))
@router.head("/images/{image}/{file}", operation_id="head_image_file",
             responses=example("", media="application/octet-stream"))
def image_file(image: str, file: str, request: Request, s: SessionDep) -> FileResponse:
    """A boot image's file (kernel, initrd, root file system) by name, with Range support and its
    sha256 as the ETag. Unauthenticated (firmware and installers fetch them): boot images hold no
    node secret. An unknown image or file is a 404. Past `boot.max_downloads` transfers of big
    files in flight, a GET is answered 503 with `Retry-After` (seconds), which iPXE and curl
    `--retry` honour (`dgxie.netboot.downloads`)."""
    ctx = get_ctx(request)
    path, size, digest = images.image_file(s, ctx.settings.data_dir, image, file)
    return GatedFileResponse(ctx.downloads, size, path, media_type="application/octet-stream",
                             headers={"ETag": f'"{digest}"'})


class GatedFileResponse(FileResponse):
    """A FileResponse that holds a `DownloadGate` slot while it sends (taken when it starts, so a
    response never sent holds none), or answers 503 + Retry-After when the gate is full."""

    def __init__(self, gate: DownloadGate, size: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate, self.size = gate, size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("method") == "HEAD":
            await super().__call__(scope, receive, send)
            return
        if not self.gate.admit(self.size):
            busy = Response(json.dumps({"detail": self.gate.busy_detail()}), status_code=503,
                            media_type="application/json",
                            headers={"Retry-After": str(self.gate.wait_seconds())})
            await busy(scope, receive, send)
            return
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.gate.release(self.size)


BOOT_BINARIES = ("ipxe.efi", "snponly.efi", "undionly.kpxe", "arm64/ipxe.efi")


@router.api_route("/boot/{name:path}", methods=["GET", "HEAD"], include_in_schema=False)
def boot_binary(name: str, request: Request) -> FileResponse:
    """iPXE binaries over HTTP, for UEFI HTTP boot clients (DHCP gives them {public}/boot/ipxe.efi).
    Looked up like TFTP: <tftp root> first, then the `ipxe` package's directory."""
    if name not in BOOT_BINARIES:
        raise NotFound(f"no boot file {name!r}")
    t = get_ctx(request).settings.tftp
    for d in (t.root or get_ctx(request).settings.data_dir / "tftp", t.ipxe_dir):
        if (d / name).is_file():
            return FileResponse(d / name, media_type="application/efi")
    raise NotFound(f"boot file {name!r} is not installed")
