"""Site-wide background work shared by every instance on one database (dgxie/jobs/).

`jobs`: one row per unit of work (a queue); an instance claims a queued row (or a running row
whose owner stopped heartbeating), runs it and records the outcome. `executions` counts how many
times a handler was started for the row: exactly-once means it ends at 1 (a takeover after a
crash is the only second execution). `key` dedupes: at most one queued/running job per key.
`leases`: named leader leases for periodic site-wide work (`Singleton`): one holder at a time,
renewed by heartbeat, taken over when `expires_at` has passed.
`instances`: who runs (id, role), for operators and for deciding an owner is dead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from dgxie.db import Base
from dgxie.models.types import JSONType, UTCDateTime, utcnow

ACTIVE = ("queued", "running")


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    key: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued running done failed cancelled
    owner: Mapped[str | None] = mapped_column(String(64))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # claims (a takeover is one more)
    executions: Mapped[int] = mapped_column(Integer, default=0)  # handler starts
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    progress: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_jobs_status_id", "status", "id"),
        Index("ux_jobs_active_key", "key", unique=True,
              postgresql_where=text("key IS NOT NULL AND status IN ('queued', 'running')"),
              sqlite_where=text("key IS NOT NULL AND status IN ('queued', 'running')")),
    )


class Lease(Base):
    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    runs: Mapped[int] = mapped_column(Integer, default=0)  # periodic runs done under this lease, all holders
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # the last periodic run started


class Instance(Base):
    __tablename__ = "instances"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(8))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    process: Mapped[str] = mapped_column(String(128), default="")  # host:pid:nonce of the process that beat last
