"""Boot images: kernel + initrd (+ extra files) registered by sha256 under the data dir."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dgxie.boot.schemas import ImageIn, ImageOut, ImageUpdate
from dgxie.errors import Conflict, Invalid
from dgxie.models import Image, Profile
from dgxie.nodes.events import record


def to_out(i: Image) -> ImageOut:
    return ImageOut(id=i.id, name=i.name, os=i.os, arch=i.arch, kernel=i.kernel, initrd=i.initrd,
                    cmdline=i.cmdline, files=dict(i.files), created_at=i.created_at, updated_at=i.updated_at)


def image_by_name(session: Session, name: str, *, missing: type[Exception] = Invalid) -> Image:
    i = session.scalar(select(Image).where(Image.name == name))
    if i is None:
        raise missing(f"unknown image {name!r}")
    return i


def create_image(session: Session, data: ImageIn, *, actor: str) -> Image:
    if session.scalar(select(Image).where(Image.name == data.name)) is not None:
        raise Conflict(f"image {data.name} already exists")
    i = Image(name=data.name, os=data.os, arch=data.arch, kernel=data.kernel, initrd=data.initrd,
              cmdline=data.cmdline, files=data.files)
    session.add(i)
    session.flush()
    record(session, actor=actor, kind="image.create", reason=f"image {i.name} registered", data={"image": i.name})
    return i


def update_image(session: Session, i: Image, data: ImageUpdate, *, actor: str) -> Image:
    for name in data.model_fields_set:
        value = getattr(data, name)
        if value is not None:
            setattr(i, name, value)
    session.flush()
    record(session, actor=actor, kind="image.update", reason=f"image {i.name} updated", data={"image": i.name})
    return i


def delete_image(session: Session, i: Image, *, actor: str) -> None:
    users = session.scalar(select(func.count()).select_from(Profile).where(Profile.image_id == i.id)) or 0
    if users:
        raise Conflict(f"image {i.name} is used by {users} profile(s)")
    record(session, actor=actor, kind="image.delete", reason=f"image {i.name} deleted", data={"image": i.name})
    session.delete(i)
    session.flush()


def list_images(session: Session) -> list[Image]:
    return list(session.scalars(select(Image).order_by(Image.name)))
