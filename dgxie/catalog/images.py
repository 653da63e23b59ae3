"""Boot images: kernel + initrd (+ extra files) registered by sha256 under the data dir."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dgxie.blobstore import BlobStore
from dgxie.catalog import upstream
from dgxie.catalog.schemas import ImageIn, ImageOut, ImageUpdate
from dgxie.errors import Conflict, Invalid, NotFound
from dgxie.events import record
from dgxie.models import Image, Profile


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


def put_image(session: Session, data: ImageIn, *, actor: str, reason: str) -> tuple[Image, bool]:
    """Create image `data.name`, or replace all of its fields (a rebuilt image); one event
    (`image.create` or `image.update`, with `reason`) in the caller's transaction.
    Returns (the image, whether it was created)."""
    i = session.scalar(select(Image).where(Image.name == data.name))
    created = i is None
    if i is None:
        i = Image(name=data.name)
        session.add(i)
    i.os, i.arch, i.kernel, i.initrd, i.cmdline, i.files = (data.os, data.arch, data.kernel, data.initrd,
                                                            data.cmdline, data.files)
    session.flush()
    record(session, actor=actor, kind="image.create" if created else "image.update", reason=reason,
           data={"image": i.name})
    return i, created


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


FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def blob_store(data_dir: Path) -> BlobStore:
    """Image files live content-addressed under `<data_dir>/images/blobs/sha256/..`."""
    return BlobStore(data_dir / "images")


def _served_name(name: str, what: str) -> str:
    if not FILE_NAME_RE.match(name):
        raise Invalid(f"{what}: {name!r} is not a valid file name (A-Z a-z 0-9 . _ -)")
    return name


def add_image(session: Session, data_dir: Path, *, name: str, kernel: Path, initrd: Path, cmdline: str = "",
              os: str = "ubuntu", arch: str = "x86_64", extra: dict[str, Path] | None = None,
              actor: str) -> Image:
    """Register an image from local files: each is stored by sha256 and served as
    /images/NAME/<file name>. Nothing is stored if the name is taken, a file is unreadable or
    the disk fills up (the blobs this call added are removed again, partial files never stay)."""
    if session.scalar(select(Image).where(Image.name == name)) is not None:
        raise Conflict(f"image {name} already exists")
    wanted: dict[str, tuple[Path, str]] = {}
    for role, path, served in [("kernel", kernel, kernel.name), ("initrd", initrd, initrd.name),
                               *[("file", p, n) for n, p in (extra or {}).items()]]:
        served = _served_name(served, role)
        if served in wanted:
            raise Invalid(f"two files would be served as {served!r}")
        if not path.is_file():
            raise Invalid(f"{role} {path}: not a readable file")
        wanted[served] = (path, role)
    store = blob_store(data_dir)
    files: dict[str, Any] = {}
    added: list[str] = []
    try:
        for served, (path, role) in wanted.items():
            try:
                digest, new = store.store_file(path)
            except OSError as exc:
                raise Invalid(f"{role} {path}: {exc.strerror}") from None
            if new:
                added.append(digest)
            files[served] = {"sha256": digest, "size": path.stat().st_size, "role": role}
        data = ImageIn(name=name, os=os, arch=arch, kernel=kernel.name, initrd=initrd.name, cmdline=cmdline,
                       files=files)
        return create_image(session, data, actor=actor)
    except BaseException:
        for digest in added:
            store.remove(digest)
        raise


def image_file(session: Session, data_dir: Path, image: str, file: str) -> tuple[Path, int, str]:
    """(blob path, size, sha256) of /images/IMAGE/FILE, or NotFound; a file known only by its
    upstream URL is fetched first and pinned in the caller's transaction (`catalog.upstream`)."""
    i = session.scalar(select(Image).where(Image.name == image))
    entry = i.files.get(file) if i is not None else None
    if i is not None and isinstance(entry, dict) and "sha256" not in entry and "url" in entry:
        entry = upstream.pull(blob_store(data_dir), i, file, entry)  # fetched on first use (catalog.upstream)
        session.flush()
    if not isinstance(entry, dict) or "sha256" not in entry:
        raise NotFound(f"no file {file!r} in image {image!r}")
    try:
        path = blob_store(data_dir).path(str(entry["sha256"]))
    except ValueError:  # a row from before files were checked at add time (catalog.schemas.check_files)
        raise NotFound(f"file {file!r} of image {image!r} has no valid sha256") from None
    try:
        size = path.stat().st_size
    except OSError:
        raise NotFound(f"file {file!r} of image {image!r} is missing from the data dir") from None
    return path, size, str(entry["sha256"])
