"""/firmware/packages/SHA256/NAME: staged firmware for BMCs to fetch (no token: a BMC cannot send one)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from dgxie.api.deps import SiteDep
from dgxie.firmware import packages

router = APIRouter(tags=["firmware"])


@router.get("/firmware/packages/{sha256}/{name}", response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {"example": "(the package file)"}}}})
def package(sha256: str, name: str, site: SiteDep) -> FileResponse:
    """A staged firmware package by its sha256 and file name, for a BMC to fetch during an update."""
    pkg = packages.find(site, sha256, name)
    return FileResponse(pkg.path, media_type="application/octet-stream", filename=pkg.name)
