"""An install profile: image + template set + variables + the role the node takes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dgxie.db import Base
from dgxie.models.image import Image
from dgxie.models.types import JSONType, UTCDateTime, utcnow


class Profile(Base):
    __tablename__ = "profiles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    image_id: Mapped[int | None] = mapped_column(ForeignKey("images.id", ondelete="RESTRICT"))
    template: Mapped[str] = mapped_column(String(128), default="ubuntu/autoinstall")
    role: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    vars: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    source: Mapped[str] = mapped_column(String(16), default="api")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    image: Mapped[Image | None] = relationship(lazy="joined")
