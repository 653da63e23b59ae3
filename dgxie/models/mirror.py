"""Mirrors: per-mirror state, published snapshots, and sync jobs with their live progress.

The file manifests themselves (path -> sha256) live as JSON beside the snapshot trees under the
data dir (tens of thousands of rows per snapshot would only slow the database down).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from dgxie.db import Base
from dgxie.models.types import JSONType, UTCDateTime, utcnow


class MirrorState(Base):
    __tablename__ = "mirror_states"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    current_snapshot: Mapped[str | None] = mapped_column(String(64))
    files: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")


class MirrorSnapshot(Base):
    __tablename__ = "mirror_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mirror: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    snapshot: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    files: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    source: Mapped[str] = mapped_column(String(16), default="sync")  # sync | import
    meta: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

    __table_args__ = (UniqueConstraint("mirror", "snapshot"),)


class MirrorJob(Base):
    __tablename__ = "mirror_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mirror: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued running succeeded failed
    trigger: Mapped[str] = mapped_column(String(128), default="")
    phase: Mapped[str] = mapped_column(String(32), default="")
    files_total: Mapped[int] = mapped_column(BigInteger, default=0)
    files_done: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_total: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    files_fetched: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_fetched: Mapped[int] = mapped_column(BigInteger, default=0)
    snapshot: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    owner: Mapped[str | None] = mapped_column(String(64))  # the instance running it (instance.id)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # renewed while it runs

    __table_args__ = (
        Index("ix_mirror_jobs_mirror_id", "mirror", "id"),
        # one queued/running sync per mirror across every instance (the database arbitrates)
        Index("ux_mirror_jobs_active", "mirror", unique=True, postgresql_where=text("status IN ('queued', 'running')"),
              sqlite_where=text("status IN ('queued', 'running')")),
    )
