"""Firmware aggregate: extra BMC endpoints per node, inventory scans and component readings, and
firmware update jobs with their per-node progress.

Every scan of a node is one `FirmwareScan` row; a complete scan owns one `FirmwareReading` per
component with the time it was read, so history is kept and "what changed since" is a query over
readings. A failed scan stores its error and no readings (never a partial inventory).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dgxie.db import Base
from dgxie.models.types import JSONType, UTCDateTime, utcnow


class BmcEndpoint(Base):
    """An extra management endpoint of a node (e.g. the HGX baseboard BMC of a DGX H100)."""

    __tablename__ = "bmc_endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(String(255))
    # None: use the node's BMC credentials.
    username: Mapped[str | None] = mapped_column(String(128))
    password_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("node_id", "name"),)


class FirmwareScan(Base):
    __tablename__ = "firmware_scans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id", ondelete="SET NULL"))
    hostname: Mapped[str] = mapped_column(String(63))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status: Mapped[str] = mapped_column(String(16))  # complete | failed
    error_kind: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str] = mapped_column(Text, default="")
    model: Mapped[str | None] = mapped_column(String(128))
    requests: Mapped[int] = mapped_column(Integer, default=0)
    notes: Mapped[list[str]] = mapped_column(JSONType, default=list)
    managers: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

    __table_args__ = (Index("ix_firmware_scans_node_id_id", "node_id", "id"),
                      Index("ix_firmware_scans_status", "status"))


class FirmwareReading(Base):
    __tablename__ = "firmware_readings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scan_id: Mapped[int] = mapped_column(ForeignKey("firmware_scans.id", ondelete="CASCADE"), index=True)
    node_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id", ondelete="SET NULL"))
    endpoint: Mapped[str] = mapped_column(String(32), default="bmc")
    component: Mapped[str] = mapped_column(String(128))
    version: Mapped[str | None] = mapped_column(String(128))
    read_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_firmware_readings_node_component", "node_id", "component", "read_at"),)


class FirmwareUpdate(Base):
    """A firmware update job (API `POST /api/v1/firmware/updates` or `dgxie firmware update`):
    what to flash where, in waves of `batch`; `status` queued | running | done | failed | cancelled.
    `cancel_requested` stops it before its next node. `job_id` is the queue job that runs it
    (dgxie/jobs/: claimed by one instance, taken over and resumed when that instance dies)."""

    __tablename__ = "firmware_updates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    selector: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    package: Mapped[str] = mapped_column(String(200))  # SHA256/NAME of a staged package
    baseline: Mapped[bool] = mapped_column(Boolean, default=False)  # only nodes outdated against it
    targets: Mapped[list[str]] = mapped_column(JSONType, default=list)
    batch: Mapped[int] = mapped_column(Integer, default=1)
    drain: Mapped[bool] = mapped_column(Boolean, default=True)
    multipart: Mapped[bool] = mapped_column(Boolean, default=False)
    timeout: Mapped[float] = mapped_column(Float, default=3600.0)
    poll: Mapped[float] = mapped_column(Float, default=5.0)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    actor: Mapped[str] = mapped_column(String(128))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_firmware_updates_status", "status"),)


class FirmwareUpdateNode(Base):
    """One node of a firmware update: its wave and progress, status pending | draining | uploading
    | running | done | failed | skipped | cancelled; `task`/`task_state`/`percent` mirror the
    Redfish Task (a job resumed after a crash follows a known task instead of flashing again)."""

    __tablename__ = "firmware_update_nodes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    update_id: Mapped[int] = mapped_column(ForeignKey("firmware_updates.id", ondelete="CASCADE"))
    node_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id", ondelete="SET NULL"))
    hostname: Mapped[str] = mapped_column(String(63))
    wave: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    drained: Mapped[bool] = mapped_column(Boolean, default=False)
    task: Mapped[str | None] = mapped_column(String(255))
    task_state: Mapped[str | None] = mapped_column(String(32))
    percent: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_firmware_update_nodes_update_id_wave", "update_id", "wave"),)
