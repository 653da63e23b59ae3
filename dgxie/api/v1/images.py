"""/api/v1/images: boot images (admin to change, viewer to read)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from dgxie.api.auth import Admin, Viewer
from dgxie.api.deps import SessionDep
from dgxie.api.limits import JsonRoute
from dgxie.api.openapi import conflict
from dgxie.catalog import images
from dgxie.catalog.schemas import ImageIn, ImageOut, ImageUpdate
from dgxie.errors import NotFound
from dgxie.tokens import Principal

router = APIRouter(prefix="/images", tags=["images"], route_class=JsonRoute)


@router.get("", response_model=list[ImageOut])
def list_images(s: SessionDep, _: Principal = Viewer) -> list[ImageOut]:
    """Every boot image with its files."""
    return [images.to_out(i) for i in images.list_images(s)]


@router.post("", response_model=ImageOut, status_code=201, responses=conflict("the name is taken"))
def create_image(body: ImageIn, s: SessionDep, who: Principal = Admin) -> ImageOut:
    """Register an image whose files are already in the blob store (`dgxie image add` stores them);
    each served file's `sha256` is 64 lower-case hex digits."""
    return images.to_out(images.create_image(s, body, actor=who.actor))


@router.get("/{name}", response_model=ImageOut)
def get_image(name: str, s: SessionDep, _: Principal = Viewer) -> ImageOut:
    """One image by name."""
    return images.to_out(images.image_by_name(s, name, missing=NotFound))


@router.patch("/{name}", response_model=ImageOut)
def update_image(name: str, body: ImageUpdate, s: SessionDep, who: Principal = Admin) -> ImageOut:
    """Change the OS, architecture or kernel command line."""
    return images.to_out(images.update_image(s, images.image_by_name(s, name, missing=NotFound), body,
                                             actor=who.actor))


@router.delete("/{name}", status_code=204, responses=conflict("profiles use the image"))
def delete_image(name: str, s: SessionDep, who: Principal = Admin) -> Response:
    """Delete an image no profile uses; its stored files are kept."""
    images.delete_image(s, images.image_by_name(s, name, missing=NotFound), actor=who.actor)
    return Response(status_code=204)
