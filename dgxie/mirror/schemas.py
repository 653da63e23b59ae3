"""JSON shapes of mirrors, snapshots and sync jobs (API and `--json` CLI output)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, computed_field


class JobOut(BaseModel):
    id: int
    mirror: str
    kind: str
    status: str
    trigger: str
    phase: str
    files_total: int
    files_done: int
    bytes_total: int
    bytes_done: int
    files_fetched: int
    bytes_fetched: int
    snapshot: str | None
    error: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rate_bytes_per_second(self) -> float | None:
        """Network transfer rate of the job so far (or over its whole run once finished)."""
        if self.started_at is None:
            return None
        secs = ((self.finished_at or datetime.now(UTC)) - self.started_at).total_seconds()
        return round(self.bytes_fetched / secs, 1) if secs > 0 else None


class SnapshotOut(BaseModel):
    snapshot: str
    created_at: datetime
    files: int
    bytes: int
    source: str
    current: bool
    meta: dict[str, Any] = {}


class MirrorOut(BaseModel):
    name: str
    kind: str
    configured: bool
    upstream: str | None = None
    url: str | None = None  # where clients reach it
    current_snapshot: str | None = None
    files: int = 0
    bytes: int = 0
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    failures: int = 0
    last_error: str = ""
    interval: float | None = None
    keep_snapshots: int | None = None
    job: JobOut | None = None  # the running job, else the latest one
