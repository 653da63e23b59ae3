"""The `instance:` section: who this dgxie process is among the site's instances, and what it runs.

Several `dgxie serve` processes may share one PostgreSQL database (docs/architecture.md, "Jobs and
instances"). Each has an `id` (default: the host's name; give each process on one host its own)
and a `role`:
- `all`: everything this config enables (API, background jobs, DHCP, TFTP, boot HTTP): one host;
- `api`: the API and the background job workers; no DHCP nor TFTP server is bound;
- `boot`: DHCP, TFTP and the boot HTTP fast path (iPXE scripts, seeds, image files, callbacks);
  no job worker (no mirror scheduler, install-timeout sweep nor bootstrap worker).
A running job or leader lease is renewed every `heartbeat_seconds`; one not renewed for
`expire_seconds` is taken over by another instance; an instance runs at most `job_concurrency`
queue jobs at once.
"""

from __future__ import annotations

import socket
from typing import Literal

from pydantic import Field, field_validator, model_validator

from dgxie.sections.common import Strict

Role = Literal["all", "api", "boot"]
ROLES: tuple[Role, ...] = ("all", "api", "boot")


def default_id() -> str:
    """The host's name (stable across restarts, so a restarted instance is the same instance)."""
    return (socket.gethostname() or "dgxie")[:64]


class InstanceConfig(Strict):
    id: str = Field(default_factory=default_id, min_length=1, max_length=64)
    role: Role = "all"
    heartbeat_seconds: float = Field(default=5.0, gt=0, le=300)
    expire_seconds: float = Field(default=15.0, gt=0, le=3600)
    job_concurrency: int = Field(default=4, ge=1, le=256)  # queue jobs one instance runs at once

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not v.strip() or any(c.isspace() for c in v):
            raise ValueError(f"{v!r}: an instance id is one word (no spaces)")
        return v

    @model_validator(mode="after")
    def _expire_after_beats(self) -> InstanceConfig:
        if self.expire_seconds < 2 * self.heartbeat_seconds:
            raise ValueError(f"expire_seconds ({self.expire_seconds:g}) must be at least twice heartbeat_seconds "
                             f"({self.heartbeat_seconds:g}): one late heartbeat must not hand a live job over")
        return self

    @property
    def runs_jobs(self) -> bool:
        """Whether this instance runs background job workers and site-wide periodic work."""
        return self.role != "boot"

    @property
    def runs_boot_servers(self) -> bool:
        """Whether this instance binds the DHCP and TFTP servers its config enables."""
        return self.role != "api"
