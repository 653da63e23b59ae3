"""A boot image: kernel + initrd (+ squashfs/ISO) stored by sha256 under the data dir."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dgxie.db import Base
from dgxie.models.types import JSONType, UTCDateTime, utcnow


class Image(Base):
    __tablename__ = "images"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    os: Mapped[str] = mapped_column(String(32), default="ubuntu")
    arch: Mapped[str] = mapped_column(String(16), default="x86_64")
    kernel: Mapped[str] = mapped_column(String(255))
    initrd: Mapped[str] = mapped_column(String(255))
    cmdline: Mapped[str] = mapped_column(Text, default="")
    # {"kernel": {"sha256": ..., "size": ...}, "initrd": {...}, "<extra name>": {...}}
    files: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
