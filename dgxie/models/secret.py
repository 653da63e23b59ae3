"""Brokered secrets (Kubernetes join token, Slurm munge key, ...), sealed at rest.

The value is only ever stored encrypted (`Site.box.seal`); the API and the CLI show names only.
`roles` limits which roles' bootstrap scripts may receive it (empty: any role).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from dgxie.db import Base
from dgxie.models.types import JSONType, UTCDateTime, utcnow


class Secret(Base):
    __tablename__ = "secrets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    value_enc: Mapped[bytes] = mapped_column(LargeBinary)
    roles: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
