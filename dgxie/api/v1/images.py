"""/api/v1/images: boot images (admin to change, viewer to read)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from dgxie.api.auth import Admin, Viewer
from dgxie.api.deps import SessionDep
from dgxie.catalog import images
from dgxie.catalog.schemas import ImageIn, ImageOut, ImageUpdate
from dgxie.errors import NotFound
from dgxie.tokens import Principal

router = APIRouter(prefix="/images", tags=["images"])


@router.get("", response_model=list[ImageOut])
def list_images(s: SessionDep, _: Principal = Viewer) -> list[ImageOut]:
    return [images.to_out(i) for i in images.list_images(s)]


@router.post("", response_model=ImageOut, status_code=201)
def create_image(body: ImageIn, s: SessionDep, who: Principal = Admin) -> ImageOut:
    return images.to_out(images.create_image(s, body, actor=who.actor))


@router.get("/{name}", response_model=ImageOut)
def get_image(name: str, s: SessionDep, _: Principal = Viewer) -> ImageOut:
    return images.to_out(images.image_by_name(s, name, missing=NotFound))


@router.patch("/{name}", response_model=ImageOut)
def update_image(name: str, body: ImageUpdate, s: SessionDep, who: Principal = Admin) -> ImageOut:
    return images.to_out(images.update_image(s, images.image_by_name(s, name, missing=NotFound), body,
                                             actor=who.actor))


@router.delete("/{name}", status_code=204)
def delete_image(name: str, s: SessionDep, who: Principal = Admin) -> Response:
    images.delete_image(s, images.image_by_name(s, name, missing=NotFound), actor=who.actor)
    return Response(status_code=204)
